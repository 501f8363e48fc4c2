#include "server/stream_filter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

storage::Mapping M(uint64_t id, uint64_t loc,
                   uint64_t prefix = 0xfd00000000000000) {
  storage::Mapping m;
  m.task = "t" + std::to_string(id);
  m.identifier = MakeLuidIdentifier(id);
  m.locator = Locator{loc};
  m.sir_prefix = SirPrefix{prefix};
  return m;
}

TEST(StreamFilter, ParseValidatesEveryField) {
  v1::Filter f;
  f.add_locators("2001:db8:1::");
  f.add_locators("0x20010db800020000");
  f.set_shard_index(1);
  f.set_shard_count(3);
  f.set_sir_prefix("fd00::/64");
  auto parsed = ParseFilter(f);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->locators.size(), 2u);
  EXPECT_FALSE(parsed->IsAll());
  EXPECT_TRUE(ParseFilter(v1::Filter())->IsAll());

  v1::Filter bad = f;
  bad.set_locators(1, "nope");
  EXPECT_THAT(ParseFilter(bad).status().message(),
              HasSubstr("filter.locators[1]: \"nope\""));
  bad = f;
  bad.set_shard_index(3);
  EXPECT_THAT(ParseFilter(bad).status().message(),
              HasSubstr("filter.shard_index: 3 must be below"));
  bad = f;
  bad.set_shard_count(0);
  EXPECT_THAT(ParseFilter(bad).status().message(),
              HasSubstr("without filter.shard_count"));
  bad = f;
  bad.set_sir_prefix("0:0:0:0");
  EXPECT_THAT(ParseFilter(bad).status().message(),
              HasSubstr("filter.sir_prefix"));
}

TEST(StreamFilter, KeyIsCanonical) {
  v1::Filter a, b;
  a.add_locators("2001:db8:1::");
  a.add_locators("2001:db8:2::");
  b.add_locators("2001:db8:2::");
  b.add_locators("2001:db8:1::");
  EXPECT_EQ(ParseFilter(a)->Key(), ParseFilter(b)->Key());
  EXPECT_NE(ParseFilter(a)->Key(), ParseFilter(v1::Filter())->Key());
}

TEST(StreamFilter, ShardsAreBalanced) {
  int counts[8] = {};
  for (uint64_t i = 1; i <= 80000; ++i)
    ++counts[ShardOf(MakeLuidIdentifier(i), 8)];
  for (int c : counts) {
    EXPECT_GT(c, 9000);
    EXPECT_LT(c, 11000);
  }
}

TEST(FilterChangeSet, MovesAcrossTheFilterBoundary) {
  StreamFilter f;
  f.locators.insert(1);
  storage::ChangeSet set;
  set.revision = 9;
  set.changes.push_back({std::nullopt, M(1, 1)});  // created inside
  set.changes.push_back({std::nullopt, M(2, 2)});  // created outside
  set.changes.push_back({M(3, 2), M(3, 1)});       // moved in
  set.changes.push_back({M(4, 1), M(4, 2)});       // moved out
  set.changes.push_back({M(5, 1), std::nullopt});  // deleted inside
  set.changes.push_back({M(6, 2), std::nullopt});  // deleted outside
  v1::Update u;
  ASSERT_TRUE(FilterChangeSet(set, f, &u));
  EXPECT_EQ(u.revision(), 9);
  ASSERT_EQ(u.upserts_size(), 2);
  EXPECT_EQ(u.upserts(0).identifier(), MakeLuidIdentifier(1).value);
  EXPECT_EQ(u.upserts(1).identifier(), MakeLuidIdentifier(3).value);
  ASSERT_EQ(u.deletes_size(), 2);
  EXPECT_EQ(u.deletes(0), MakeLuidIdentifier(4).value);
  EXPECT_EQ(u.deletes(1), MakeLuidIdentifier(5).value);

  storage::ChangeSet outside;
  outside.changes.push_back({std::nullopt, M(7, 2)});
  v1::Update none;
  EXPECT_FALSE(FilterChangeSet(outside, f, &none));
}

}  // namespace
}  // namespace ila::server
