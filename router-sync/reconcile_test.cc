#include "router-sync/reconcile.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/checksum_mode.h"

namespace ila::router_sync {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kPrefix = 0xfd00000000000000;
constexpr uint64_t kLuid = uint64_t{1} << 61;  // type LUID, C-bit clear

v1::Mapping MakeMapping(const std::string& task, uint64_t seq,
                        uint64_t locator) {
  v1::Mapping m;
  m.set_task(task);
  m.set_identifier(kLuid | seq);
  m.set_locator(locator);
  m.set_sir_prefix(kPrefix);
  m.set_checksum_mode(v1::CHECKSUM_MODE_NEUTRAL_MAP_AUTO);
  return m;
}

RouteTemplate Template() {
  RouteTemplate t;
  t.via = Ipv6Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return t;
}

DesiredRoutes Desired(const std::vector<v1::Mapping>& mappings) {
  DesiredRoutes out;
  for (const auto& m : mappings) {
    auto r = RouteForMapping(m, Template());
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) out[r->destination] = *r;
  }
  return out;
}

TEST(RouteForMapping, BuildsTheRouteAndRefusesWhatTheKernelWould) {
  auto r =
      RouteForMapping(MakeMapping("web/1", 5, 0x20010db801000000), Template());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->destination.prefix.value, kPrefix);
  EXPECT_EQ(r->destination.identifier.value, kLuid | 5);
  EXPECT_EQ(r->locator.value, 0x20010db801000000u);
  EXPECT_EQ(r->csum_mode, ChecksumMode::kNeutralMapAuto);
  EXPECT_EQ(r->protocol, kRouteProtocol);
  EXPECT_EQ(r->table, kMainTable);

  RouteTemplate forced = Template();
  forced.csum_mode = ChecksumMode::kNoAction;
  EXPECT_EQ(RouteForMapping(MakeMapping("web/1", 5, 1), forced)->csum_mode,
            ChecksumMode::kNoAction);

  v1::Mapping iid = MakeMapping("web/2", 6, 1);
  iid.set_identifier(6);  // type 0: the kernel refuses it
  EXPECT_THAT(RouteForMapping(iid, Template()).status().message(),
              HasSubstr("web/2"));
  v1::Mapping mode = MakeMapping("web/3", 7, 1);
  mode.set_checksum_mode(v1::CHECKSUM_MODE_UNSPECIFIED);
  EXPECT_THAT(RouteForMapping(mode, Template()).status().message(),
              HasSubstr("checksum_mode"));
}

TEST(PlanRoutes, AddsReplacesRemovesAndLeavesForeignRoutesAlone) {
  DesiredRoutes desired =
      Desired({MakeMapping("a", 1, 0x1000), MakeMapping("b", 2, 0x2000),
               MakeMapping("c", 3, 0x3000)});
  std::vector<IlaRoute> kernel;
  kernel.push_back(desired.begin()->second);            // a: as wanted
  IlaRoute stale = std::next(desired.begin())->second;  // b: old locator
  stale.locator = Locator{0x9999};
  kernel.push_back(stale);
  IlaRoute gone = stale;  // d: ours, no longer a mapping
  gone.destination.identifier.value = kLuid | 4;
  kernel.push_back(gone);
  IlaRoute foreign = gone;  // someone else's route to a SIR address
  foreign.destination.identifier.value = kLuid | 5;
  foreign.protocol = 4;  // static
  kernel.push_back(foreign);
  IlaRoute other_table = gone;  // ours, but in another table
  other_table.destination.identifier.value = kLuid | 6;
  other_table.table = 100;
  kernel.push_back(other_table);
  IlaRoute same_dst_foreign = desired.begin()->second;  // a, by someone else
  same_dst_foreign.protocol = 4;
  kernel.push_back(same_dst_foreign);

  RoutePlan plan = PlanRoutes(desired, kernel, kMainTable, kRouteProtocol);
  EXPECT_EQ(plan.unchanged, 1u);
  std::vector<uint64_t> replaced;
  for (const auto& r : plan.replace)
    replaced.push_back(r.destination.identifier.value);
  EXPECT_THAT(replaced, UnorderedElementsAre(kLuid | 2, kLuid | 3));
  ASSERT_THAT(plan.remove, ElementsAre(gone.destination));
}

TEST(PlanRoutes, EqualStatesPlanNothingAndEmptyDesiredRemovesOnlyOurs) {
  DesiredRoutes desired = Desired({MakeMapping("a", 1, 0x1000)});
  std::vector<IlaRoute> kernel = {desired.begin()->second};
  EXPECT_TRUE(PlanRoutes(desired, kernel, kMainTable, kRouteProtocol).empty());
  IlaRoute foreign = kernel[0];
  foreign.protocol = 186;  // bgp
  kernel.push_back(foreign);
  RoutePlan plan = PlanRoutes({}, kernel, kMainTable, kRouteProtocol);
  EXPECT_TRUE(plan.replace.empty());
  EXPECT_EQ(plan.remove.size(), 1u);
}

constexpr uint64_t kL1 = 0x20010db800010000;
constexpr uint64_t kL2 = 0x20010db800020000;

IlaXlatEntry Entry(uint64_t locator, uint64_t prefix, int32_t ifindex = 0) {
  IlaXlatEntry e;
  e.locator_match = Locator{locator};
  e.sir_prefix = SirPrefix{prefix};
  e.ifindex = ifindex;
  return e;
}

TEST(XlatForLocator, MostMappingsWinAndTheOthersAreNamed) {
  std::vector<std::string> conflicts;
  EXPECT_FALSE(XlatForLocator(Locator{kL1}, {}, {}, &conflicts).has_value());
  LocatorTasks tasks = {{{kPrefix, ChecksumMode::kAdjustTransport}, 3}};
  XlatTemplate t;
  t.ifindex = 4;
  auto e = XlatForLocator(Locator{kL1}, tasks, t, &conflicts);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, Entry(kL1, kPrefix, 4));
  EXPECT_TRUE(conflicts.empty());
  // Another prefix with fewer mappings: the entry stays, the two are named.
  tasks[{0xfd00000200000000, ChecksumMode::kAdjustTransport}] = 2;
  e = XlatForLocator(Locator{kL1}, tasks, t, &conflicts);
  EXPECT_EQ(e->sir_prefix.value, kPrefix);
  ASSERT_THAT(conflicts,
              ElementsAre(HasSubstr("2 mapping(s) on locator 2001:db8:1:0 "
                                    "with SIR prefix fd00:2:0:0")));
  // A checksum mode differing is a conflict too; ties go to the lowest key.
  conflicts.clear();
  tasks = {{{kPrefix, ChecksumMode::kNeutralMap}, 1},
           {{kPrefix, ChecksumMode::kAdjustTransport}, 1}};
  e = XlatForLocator(Locator{kL1}, tasks, {}, &conflicts);
  EXPECT_EQ(e->csum_mode, ChecksumMode::kAdjustTransport);
  EXPECT_THAT(conflicts, ElementsAre(HasSubstr("csum-mode neutral-map")));
}

TEST(PlanXlat, AddsRemovesChangedAndLeavesOtherLocatorsAlone) {
  const absl::btree_set<uint64_t> owned = {kL1, kL2};
  DesiredXlat desired = {{kL1, Entry(kL1, kPrefix)},
                         {kL2, Entry(kL2, kPrefix)}};
  IlaXlatEntry changed = Entry(kL2, 0xfd00000900000000);
  IlaXlatEntry other_dev = Entry(kL1, kPrefix, 7);  // ours, on a device
  IlaXlatEntry foreign = Entry(0x20010db8000f0000, kPrefix);
  std::vector<IlaXlatEntry> kernel = {desired[kL1], changed, other_dev,
                                      foreign};
  XlatPlan plan = PlanXlat(desired, kernel, owned);
  EXPECT_THAT(plan.remove, UnorderedElementsAre(changed, other_dev));
  EXPECT_THAT(plan.add, ElementsAre(desired[kL2]));
  EXPECT_EQ(plan.unchanged, 1u);
  // Applied: nothing left to do. Nothing desired: only ours go.
  kernel = {desired[kL1], desired[kL2], foreign};
  EXPECT_TRUE(PlanXlat(desired, kernel, owned).empty());
  plan = PlanXlat({}, kernel, owned);
  EXPECT_THAT(plan.remove, UnorderedElementsAre(desired[kL1], desired[kL2]));
  EXPECT_TRUE(plan.add.empty());
}

// A dump may hold an entry twice (the kernel restarts a walk when its
// table changes between two parts of a dump): each is planned once. Were
// the second copy of a wanted translation entry planned as a removal, the
// kernel would lose the entry the plan counts as unchanged.
TEST(PlanRoutes, ARouteDumpedTwiceIsPlannedOnce) {
  DesiredRoutes desired =
      Desired({MakeMapping("a", 1, 0x1000), MakeMapping("b", 2, 0x2000)});
  IlaRoute a = desired.begin()->second;
  IlaRoute b_stale = std::next(desired.begin())->second;
  b_stale.locator = Locator{0x9999};
  IlaRoute gone = a;
  gone.destination.identifier.value = kLuid | 4;
  std::vector<IlaRoute> kernel = {a, b_stale, gone, a, gone, b_stale};
  RoutePlan plan = PlanRoutes(desired, kernel, kMainTable, kRouteProtocol);
  EXPECT_EQ(plan.unchanged, 1u);
  ASSERT_EQ(plan.replace.size(), 1u);
  EXPECT_EQ(plan.replace[0], std::next(desired.begin())->second);
  EXPECT_THAT(plan.remove, ElementsAre(gone.destination));
}

TEST(PlanXlat, AnEntryDumpedTwiceIsPlannedOnce) {
  const absl::btree_set<uint64_t> owned = {kL1, kL2};
  DesiredXlat desired = {{kL1, Entry(kL1, kPrefix)}};
  IlaXlatEntry unwanted = Entry(kL2, kPrefix);
  std::vector<IlaXlatEntry> kernel = {desired[kL1], unwanted, desired[kL1],
                                      unwanted};
  XlatPlan plan = PlanXlat(desired, kernel, owned);
  EXPECT_EQ(plan.unchanged, 1u);
  EXPECT_THAT(plan.remove, ElementsAre(unwanted));
  EXPECT_TRUE(plan.add.empty());
}

}  // namespace
}  // namespace ila::router_sync
