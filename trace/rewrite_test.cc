#include "trace/rewrite.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::trace {
namespace {

using ::testing::Contains;

// The one's-complement sum of an address's eight 16-bit words, folded,
// with 0xffff and 0 the same number.
uint32_t AddressSum(uint64_t high, uint64_t low) {
  uint64_t s = 0;
  for (uint64_t v : {high, low}) {
    for (int shift = 0; shift < 64; shift += 16) s += (v >> shift) & 0xffff;
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s == 0xffff ? 0 : static_cast<uint32_t>(s);
}

TEST(Rewrite, HalvesOfAnAddress) {
  Ipv6Bytes a{};
  for (int i = 0; i < 16; ++i) a[i] = static_cast<uint8_t>(i + 1);
  EXPECT_EQ(High64(a), 0x0102030405060708u);
  EXPECT_EQ(Low64(a), 0x090a0b0c0d0e0f10u);
}

TEST(Rewrite, WithoutTheCBitTheIdentifierIsUnchanged) {
  const Identifier id{0x2000000000000042};
  EXPECT_THAT(UndoChecksumNeutral(Locator{0x20010db800010000}, id,
                                  SirPrefix{0xfd00000100000000}),
              ::testing::ElementsAre(id));
}

// The rewrite keeps the address's checksum sum and sets the C-bit; undoing
// it gives back the identifier, for any prefix, locator and identifier.
TEST(Rewrite, ChecksumNeutralRewriteIsUndone) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const SirPrefix prefix{rng()};
    const Locator locator{rng()};
    // LUID type (001), C-bit clear; every low 16-bit value is possible.
    Identifier id{(rng() & 0x0fffffffffffffff) | (uint64_t{1} << 61)};
    if (i < 4) id.value = (id.value & ~uint64_t{0xffff}) | (i % 2 ? 0 : 0xffff);
    const Identifier rewritten = ApplyChecksumNeutral(prefix, locator, id);
    ASSERT_NE(rewritten.value & (uint64_t{1} << 60), 0u);
    ASSERT_EQ((rewritten.value >> 16) & ~(uint64_t{1} << 44),
              (id.value >> 16) & ~(uint64_t{1} << 44));
    ASSERT_EQ(AddressSum(locator.value, rewritten.value),
              AddressSum(prefix.value, id.value));
    ASSERT_THAT(UndoChecksumNeutral(locator, rewritten, prefix), Contains(id))
        << std::hex << prefix.value << " " << locator.value << " " << id.value;
  }
}

}  // namespace
}  // namespace ila::trace
