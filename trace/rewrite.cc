#include "trace/rewrite.h"

namespace ila::trace {
namespace {

constexpr uint64_t kCBit = uint64_t{1} << 60;

// One's-complement sum of 16-bit words, folded to 16 bits.
uint32_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint32_t>(sum);
}
uint32_t Sum64(uint64_t v) {
  return Fold((v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) +
              (v & 0xffff));
}
uint32_t Add(uint32_t a, uint32_t b) { return Fold(uint64_t{a} + b); }
uint32_t Sub(uint32_t a, uint32_t b) { return Add(a, ~b & 0xffff); }

}  // namespace

uint64_t High64(const Ipv6Bytes& a) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | a[i];
  return v;
}

uint64_t Low64(const Ipv6Bytes& a) {
  uint64_t v = 0;
  for (int i = 8; i < 16; ++i) v = v << 8 | a[i];
  return v;
}

std::vector<Identifier> UndoChecksumNeutral(Locator locator, Identifier quoted,
                                            SirPrefix sir_prefix) {
  if ((quoted.value & kCBit) == 0) return {quoted};
  // sum(prefix) + sum(original) == sum(locator) + sum(quoted); the original
  // is the quoted identifier with the C-bit clear and other low 16 bits.
  const uint64_t high48 = (quoted.value & ~kCBit) & ~uint64_t{0xffff};
  const uint32_t target = Add(Sum64(locator.value), Sum64(quoted.value));
  const uint32_t low = Sub(target, Add(Sum64(sir_prefix.value), Sum64(high48)));
  std::vector<Identifier> out = {Identifier{high48 | low}};
  if (low == 0) out.push_back(Identifier{high48 | 0xffff});
  if (low == 0xffff) out.push_back(Identifier{high48});
  return out;
}

Identifier ApplyChecksumNeutral(SirPrefix sir_prefix, Locator locator,
                                Identifier identifier) {
  // The rewritten address keeps the sum: the C-bit is set and the low 16
  // bits absorb the difference between prefix and locator (and the bit).
  const uint64_t high48 = (identifier.value | kCBit) & ~uint64_t{0xffff};
  const uint32_t target = Add(Sum64(sir_prefix.value), Sum64(identifier.value));
  const uint32_t low = Sub(target, Add(Sum64(locator.value), Sum64(high48)));
  return Identifier{high48 | low};
}

}  // namespace ila::trace
