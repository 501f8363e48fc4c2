// The desired kernel state of an ILA router or host, and the plan that
// makes the kernel equal to it: pure functions of (mappings, kernel dump).
//
// Routes: the plan only ever names routes with the agent's protocol in the
// agent's table; any other route in the dump is left alone, whatever its
// destination. Translation entries (host role): the plan only names entries
// whose locator match is one of the host's own locators (--locator); the
// kernel has no owner tag for them, so the configured locators are the
// ownership.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
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

// The checksum mode a mapping is translated with: the override (--csum-mode)
// or the mapping's own; INVALID_ARGUMENT naming the task when unknown.
absl::StatusOr<ChecksumMode> MappingChecksumMode(
    const v1::Mapping& mapping, std::optional<ChecksumMode> override_mode);

// How a host translates its locators back: --dev (0: any device) and
// --csum-mode.
struct XlatTemplate {
  int32_t ifindex = 0;
  std::optional<ChecksumMode> csum_mode;
};

// The mappings on one of the host's locators, counted by what their
// translation needs: (SIR prefix, checksum mode) -> number of mappings.
using LocatorTasks =
    absl::btree_map<std::pair<uint64_t, ChecksumMode>, int64_t>;

// The translation entry for a local locator: the (SIR prefix, checksum
// mode) most of its mappings have (ties: the lowest); nullopt when no
// mapping is on it. The kernel keeps one entry per locator (and device):
// mappings with another prefix or mode cannot be translated back, and each
// such group is described in `conflicts`.
std::optional<IlaXlatEntry> XlatForLocator(Locator locator,
                                           const LocatorTasks& tasks,
                                           const XlatTemplate& t,
                                           std::vector<std::string>* conflicts);

using DesiredXlat = absl::btree_map<uint64_t, IlaXlatEntry>;  // by locator

struct XlatPlan {
  std::vector<IlaXlatEntry> remove;  // ours, unwanted or different
  std::vector<IlaXlatEntry> add;     // missing or different
  size_t unchanged = 0;
  bool empty() const { return remove.empty() && add.empty(); }
};

// Makes the kernel's translation entries (a dump: all of them) equal to
// `desired` for the entries whose locator match is in `owned`. A changed
// entry is removed and added again (the kernel has no replace).
XlatPlan PlanXlat(const DesiredXlat& desired,
                  const std::vector<IlaXlatEntry>& kernel,
                  const absl::btree_set<uint64_t>& owned);

}  // namespace ila::router_sync
