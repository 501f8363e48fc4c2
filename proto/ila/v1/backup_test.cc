// The backup file codec: a round trip, and every kind of damage refused
// with a message saying what is wrong (every single-byte change and every
// truncation of a small backup).
#include "ila/v1/backup.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::v1 {
namespace {

using ::testing::HasSubstr;

Backup Sample() {
  Backup b;
  b.revision = 42;
  for (int i = 0; i < 3; ++i) {
    Mapping m;
    m.set_task("task/" + std::to_string(i));
    m.set_identifier(0x2000000000000000ULL + i);
    m.set_locator(0x20010db800010000ULL);
    m.set_create_revision(i + 1);
    m.set_mod_revision(40 + i);
    b.mappings.push_back(m);
  }
  return b;
}

TEST(Backup, RoundTrip) {
  const Backup b = Sample();
  auto d = DecodeBackup(EncodeBackup(b));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->revision, 42);
  ASSERT_EQ(d->mappings.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(d->mappings[i].SerializeAsString(),
              b.mappings[i].SerializeAsString());
  }
  auto empty = DecodeBackup(EncodeBackup(Backup{7, {}}));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->revision, 7);
  EXPECT_TRUE(empty->mappings.empty());
}

TEST(Backup, EveryChangedByteAndEveryTruncationIsRefused) {
  const std::string good = EncodeBackup(Sample());
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = DecodeBackup(good.substr(0, n));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << "cut at " << n;
  }
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x04;
    auto d = DecodeBackup(bad);
    EXPECT_FALSE(d.ok()) << "byte " << i << " changed and accepted";
  }
  EXPECT_THAT(DecodeBackup("hello").status().message(),
              HasSubstr("not an ila-server backup"));
}

}  // namespace
}  // namespace ila::v1
