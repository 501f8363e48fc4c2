// The desired kernel state of an ILA router, and the plan that makes the
// kernel equal to it: pure functions of (mappings, kernel dump).
//
// The plan only ever names routes with the agent's protocol in the agent's
// table; any other route in the dump is left alone, whatever its
// destination.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "ila/v1/mapping.pb.h"
#include "router-sync/route_codec.h"

namespace ila::router_sync {

// How a router programs each mapping.
struct RouteTemplate {
  std::optional<Ipv6Bytes> via;  // --via
  uint32_t oif = 0;              // --dev (ifindex)
  uint32_t table = kMainTable;   // --table
  uint8_t protocol = kRouteProtocol;
  // --csum-mode: overrides the mapping's checksum mode when set.
  std::optional<ChecksumMode> csum_mode;
};

// The route for one mapping. INVALID_ARGUMENT naming the mapping's task when
// the kernel would refuse it (an identifier that is not LUID type or has the
// C-bit set; an unknown checksum mode).
absl::StatusOr<IlaRoute> RouteForMapping(const v1::Mapping& mapping,
                                         const RouteTemplate& t);

using DesiredRoutes = absl::btree_map<SirAddress, IlaRoute>;

struct RoutePlan {
  std::vector<IlaRoute> replace;   // missing or different
  std::vector<SirAddress> remove;  // ours, no longer wanted
  size_t unchanged = 0;
  bool empty() const { return replace.empty() && remove.empty(); }
};

// Makes the kernel's routes (a dump, any protocol and table) equal to
// `desired` for the routes with `protocol` in `table`.
RoutePlan PlanRoutes(const DesiredRoutes& desired,
                     const std::vector<IlaRoute>& kernel, uint32_t table,
                     uint8_t protocol);

}  // namespace ila::router_sync
