// Reading an ILA rewrite out of a quoted destination (design.md §8): when a
// hop quotes a destination other than the one the probe was sent to, that
// hop saw the packet after an ILA router rewrote the top 64 bits (SIR
// prefix -> locator) and, in csum-mode neutral-map, the identifier's C-bit
// and low 16 bits. These functions recover the locator and the original
// identifier.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/address.h"
#include "trace/packet.h"

namespace ila::trace {

// The 64-bit halves of an address.
uint64_t High64(const Ipv6Bytes& a);
uint64_t Low64(const Ipv6Bytes& a);

// The identifiers a quoted (locator, identifier) may have had before a
// checksum-neutral rewrite from `sir_prefix`: the rewrite keeps the
// one's-complement sum of the address and sets the C-bit, so the original
// low 16 bits follow from the sums. One candidate, or two when the sum
// cannot tell 0x0000 from 0xffff. With the C-bit clear the identifier was
// not changed: itself.
std::vector<Identifier> UndoChecksumNeutral(Locator locator, Identifier quoted,
                                            SirPrefix sir_prefix);

// The kernel's SIR -> ILA rewrite in csum-mode neutral-map (its arithmetic,
// for tests and for explaining a quote): the identifier after translating
// `identifier` from `sir_prefix` to `locator`.
Identifier ApplyChecksumNeutral(SirPrefix sir_prefix, Locator locator,
                                Identifier identifier);

}  // namespace ila::trace
