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
  ILA_ASSIGN_OR_RETURN(route.csum_mode,
                       MappingChecksumMode(mapping, t.csum_mode));
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
  absl::btree_set<SirAddress> seen;  // ours in the dump
  for (const IlaRoute& k : kernel) {
    if (k.protocol != protocol || k.table != table) continue;  // not ours
    // A route the dump holds twice (the kernel restarts a walk when its
    // tree changes between two parts of a dump) is planned once.
    if (!seen.insert(k.destination).second) continue;
    auto it = desired.find(k.destination);
    if (it == desired.end()) {
      plan.remove.push_back(k.destination);
      continue;
    }
    if (it->second == k) {
      ++plan.unchanged;
    } else {
      plan.replace.push_back(it->second);
    }
  }
  for (const auto& [dst, route] : desired) {
    if (!seen.contains(dst)) plan.replace.push_back(route);
  }
  return plan;
}

absl::StatusOr<ChecksumMode> MappingChecksumMode(
    const v1::Mapping& mapping, std::optional<ChecksumMode> override_mode) {
  if (override_mode) return *override_mode;
  auto mode = FromProtoChecksumMode(mapping.checksum_mode());
  if (!mode.ok()) {
    return Annotate(mode.status(),
                    absl::StrCat("mapping of task \"", mapping.task(),
                                 "\": checksum_mode"));
  }
  return *mode;
}

std::optional<IlaXlatEntry> XlatForLocator(
    Locator locator, const LocatorTasks& tasks, const XlatTemplate& t,
    std::vector<std::string>* conflicts) {
  const LocatorTasks::value_type* best = nullptr;
  for (const auto& group : tasks) {
    if (group.second <= 0) continue;
    if (best == nullptr || group.second > best->second) best = &group;
  }
  if (best == nullptr) return std::nullopt;
  IlaXlatEntry e;
  e.locator_match = locator;
  e.sir_prefix = SirPrefix{best->first.first};
  e.csum_mode = best->first.second;
  e.ifindex = t.ifindex;
  for (const auto& group : tasks) {
    if (&group == best || group.second <= 0) continue;
    conflicts->push_back(absl::StrCat(
        group.second, " mapping(s) on locator ", FormatLocator(locator),
        " with SIR prefix ", FormatSirPrefix(SirPrefix{group.first.first}),
        " csum-mode ", ChecksumModeName(group.first.second),
        " cannot be translated back: the kernel keeps one entry per locator "
        "and it has loc ",
        FormatSirPrefix(e.sir_prefix), " csum-mode ",
        ChecksumModeName(e.csum_mode)));
  }
  return e;
}

XlatPlan PlanXlat(const DesiredXlat& desired,
                  const std::vector<IlaXlatEntry>& kernel,
                  const absl::btree_set<uint64_t>& owned) {
  XlatPlan plan;
  absl::btree_set<uint64_t> present;
  // The kernel's key: an entry the dump holds twice is planned once (were
  // the copy removed, the kernel would lose the entry kept as unchanged).
  absl::btree_set<std::pair<uint64_t, int32_t>> seen;
  for (const IlaXlatEntry& k : kernel) {
    if (!owned.contains(k.locator_match.value)) continue;  // not ours
    if (!seen.insert({k.locator_match.value, k.ifindex}).second) continue;
    auto it = desired.find(k.locator_match.value);
    if (it != desired.end() && it->second == k) {
      present.insert(k.locator_match.value);
      ++plan.unchanged;
    } else {
      plan.remove.push_back(k);
    }
  }
  for (const auto& [locator, entry] : desired) {
    if (!present.contains(locator)) plan.add.push_back(entry);
  }
  return plan;
}

}  // namespace ila::router_sync
