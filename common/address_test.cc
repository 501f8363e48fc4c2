#include "common/address.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila {
namespace {

using ::testing::HasSubstr;

TEST(ParseLocator, AcceptsGroupsCompressionHexAndSlash64) {
  struct Case {
    const char* text;
    uint64_t want;
  } cases[] = {
      {"2001:db8:100:0", 0x20010db801000000},
      {"2001:DB8:100:0", 0x20010db801000000},
      {"2001:db8:100::", 0x20010db801000000},
      {"2001:db8::1", 0x20010db800000001},
      {"::1", 1},
      {"0x20010db801000000", 0x20010db801000000},
      {"0X1", 1},
      {"2001:db8:100::/64", 0x20010db801000000},
      {"ffff:ffff:ffff:ffff", 0xffffffffffffffff},
  };
  for (const auto& c : cases) {
    auto got = ParseLocator(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(got->value, c.want) << c.text;
  }
}

TEST(ParseLocator, RejectsWithMessageNamingValue) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"", "empty"},
      {"0:0:0:0", "must not be zero"},
      {"::", "must not be zero"},
      {"0x0", "must not be zero"},
      {"2001:db8:100", "has 3 groups"},
      {"2001:db8:100:0:1", "has 5 groups"},
      {"2001:db8::100::", "only once"},
      {"2001:db8:1000g:0", "must have 1 to 4 digits"},
      {"2001:db8:zz:0", "\"zz\" is not a hex group"},
      {"2001:db8:100:", "\"\" must have 1 to 4 digits"},
      {"0x", "\"0x\""},
      {"0x12345678123456789", "1 to 16 digits"},
      {"0xabcg", "not a hex digit"},
      {"2001:db8:100::/48", "is a /64, not /48"},
      {"2001:db8:100::1/64", "host bits set"},
      {"2001:db8:100:::/64", "is not an IPv6 address"},
      {"1.2.3.4", "has 1 groups"},
      {"2001:db8:1:2:3:4:5:6", "has 8 groups"},
  };
  for (const auto& c : cases) {
    auto got = ParseLocator(c.text);
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr(c.want)) << c.text;
  }
}

TEST(ParseLocator, QuotesUnprintableBytes) {
  auto got = ParseLocator(std::string("20\x01\xff:0:0:1", 10));
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("\\x01\\xff"));
}

TEST(ParseIdentifier, GroupsAndHexRoundTrip) {
  auto id = ParseIdentifier("2000:0:0:42");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->value, 0x2000000000000042u);
  EXPECT_EQ(id->type(), IdentifierType::kLuid);
  EXPECT_FALSE(id->c_bit());
  EXPECT_EQ(FormatIdentifier(*id), "2000:0:0:42");
  auto hex = ParseIdentifier("0x2000000000000042");
  ASSERT_TRUE(hex.ok());
  EXPECT_EQ(*hex, *id);
  // Zero is a syntactically valid identifier (the kernel check is separate).
  EXPECT_TRUE(ParseIdentifier("0:0:0:0").ok());
}

TEST(FormatGroups, RandomRoundTrip) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = rng() | 1;
    auto back = ParseLocator(FormatGroups(v));
    ASSERT_TRUE(back.ok()) << FormatGroups(v);
    EXPECT_EQ(back->value, v);
    auto id = ParseIdentifier(FormatGroups(v));
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->value, v);
  }
}

TEST(SirAddress, ParseAndFormat) {
  auto a = ParseSirAddress("fd00::2000:0:0:42");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->prefix.value, 0xfd00000000000000u);
  EXPECT_EQ(a->identifier.value, 0x2000000000000042u);
  EXPECT_EQ(FormatSirAddress(*a), "fd00::2000:0:0:42");
  SirAddress b{SirPrefix{0x20010db800000000}, Identifier{0x2000000000000001}};
  EXPECT_EQ(FormatSirAddress(b), "2001:db8::2000:0:0:1");
  auto back = ParseSirAddress(FormatSirAddress(b));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
  for (const char* bad : {"", "fd00::g", "10.0.0.1", "fd00::/64", "x"}) {
    auto r = ParseSirAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("is not an IPv6 address"));
  }
}

TEST(Identifier, LuidAllocationFormat) {
  Identifier id = MakeLuidIdentifier(0x42);
  EXPECT_EQ(id.value, 0x2000000000000042u);
  EXPECT_TRUE(ValidateKernelIdentifier(id).ok());
  EXPECT_TRUE(
      ValidateKernelIdentifier(MakeLuidIdentifier(kMaxIdentifierSequence))
          .ok());
}

TEST(Identifier, KernelRefusesOtherTypesAndCBit) {
  EXPECT_THAT(
      ValidateKernelIdentifier(Identifier{0x0000000000000001}).message(),
      HasSubstr("identifier type 0"));
  EXPECT_THAT(
      ValidateKernelIdentifier(Identifier{0x4000000000000001}).message(),
      HasSubstr("identifier type 2"));
  EXPECT_THAT(
      ValidateKernelIdentifier(Identifier{0x3000000000000001}).message(),
      HasSubstr("C-bit"));
}

TEST(TaskName, AcceptsAndRejects) {
  for (const char* ok : {"web/3", "a", "job:frontend.prod-17", "tâche/é"}) {
    EXPECT_TRUE(ValidateTaskName(ok).ok()) << ok;
  }
  EXPECT_TRUE(ValidateTaskName(std::string(kMaxTaskNameBytes, 'x')).ok());
  struct Case {
    std::string name;
    const char* want;
  } cases[] = {
      {"", "empty"},
      {std::string(kMaxTaskNameBytes + 1, 'x'), "254 bytes; at most 253"},
      {"web 3", "whitespace"},
      {"web\t3", "whitespace"},
      {"web\n", "control"},
      {std::string("a\0b", 3), "control"},
      {"\xff", "not valid UTF-8 at byte 0"},
      {"ab\xc3", "not valid UTF-8 at byte 2"},
      {"\xc0\xaf", "not valid UTF-8"},          // overlong '/'
      {"\xed\xa0\x80", "not valid UTF-8"},      // surrogate
      {"\xf4\x90\x80\x80", "not valid UTF-8"},  // > U+10FFFF
      {"a\xc2\x85", "control"},                 // NEL
  };
  for (const auto& c : cases) {
    auto s = ValidateTaskName(c.name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.name;
  }
}

TEST(ChecksumMode, ParseAndName) {
  for (ChecksumMode m :
       {ChecksumMode::kAdjustTransport, ChecksumMode::kNeutralMap,
        ChecksumMode::kNoAction, ChecksumMode::kNeutralMapAuto}) {
    auto back = ParseChecksumMode(ChecksumModeName(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
  EXPECT_THAT(ParseChecksumMode("fast").status().message(),
              HasSubstr("\"fast\" is not a checksum mode"));
  EXPECT_FALSE(IsValidChecksumMode(4));
}

}  // namespace
}  // namespace ila
