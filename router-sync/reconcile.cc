#include "router-sync/reconcile.h"

#include "absl/container/btree_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ila/v1/checksum_mode.h"

namespace ila::router_sync {

absl::StatusOr<IlaRoute> RouteForMapping(const v1::Mapping& mapping,
                                         const RouteTemplate& t) {
  const Identifier id{mapping.identifier()};
  absl::Status valid = ValidateKernelIdentifier(id);
  if (!valid.ok()) {
    return Annotate(valid, absl::StrCat("mapping of task \"", mapping.task(),
                                        "\": identifier"));
  }
  IlaRoute route;
  route.destination = {SirPrefix{mapping.sir_prefix()}, id};
  route.locator = Locator{mapping.locator()};
  if (t.csum_mode) {
    route.csum_mode = *t.csum_mode;
  } else {
    auto mode = FromProtoChecksumMode(mapping.checksum_mode());
    if (!mode.ok()) {
      return Annotate(mode.status(),
                      absl::StrCat("mapping of task \"", mapping.task(),
                                   "\": checksum_mode"));
    }
    route.csum_mode = *mode;
  }
  route.gateway = t.via;
  route.oif = t.oif;
  route.table = t.table;
  route.protocol = t.protocol;
  return route;
}

RoutePlan PlanRoutes(const DesiredRoutes& desired,
                     const std::vector<IlaRoute>& kernel, uint32_t table,
                     uint8_t protocol) {
  RoutePlan plan;
  absl::btree_set<SirAddress> present;
  for (const IlaRoute& k : kernel) {
    if (k.protocol != protocol || k.table != table) continue;  // not ours
    auto it = desired.find(k.destination);
    if (it == desired.end()) {
      plan.remove.push_back(k.destination);
      continue;
    }
    present.insert(k.destination);
    if (it->second == k) {
      ++plan.unchanged;
    } else {
      plan.replace.push_back(it->second);
    }
  }
  for (const auto& [dst, route] : desired) {
    if (!present.contains(dst)) plan.replace.push_back(route);
  }
  return plan;
}

}  // namespace ila::router_sync
