// ILA address types and their one parser/printer (design.md §3).
//
// An ILA address is 64 bits of prefix (SIR prefix or locator) followed by a
// 64-bit identifier: type (3 bits) | C-bit (1) | 60 bits. Human formats:
//   locator, SIR prefix: four hex groups "2001:db8:100:0" (with "::" allowed),
//                        an IPv6 /64 "2001:db8:100::/64", or 0x-hex
//   identifier:          four hex groups "2000:0:0:42" or 0x-hex
//   SIR address:         an ordinary IPv6 address "fd00::2000:0:0:42"
// Printers produce four groups without zero compression.
//
// Thread-safety: value types and pure functions; safe from any thread.
#pragma once

#include <netinet/in.h>

#include <compare>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ila {

// Identifier types of draft-herbert-intarea-ila §4.
enum class IdentifierType : uint8_t {
  kInterfaceId = 0,
  kLuid = 1,  // locally unique identifier: the only type Linux routes
  kVirtualV4 = 2,
  kVirtualV6Unicast = 3,
  kVirtualV6Multicast = 4,
};

struct Identifier {
  uint64_t value = 0;

  IdentifierType type() const {
    return static_cast<IdentifierType>(value >> 61);
  }
  bool c_bit() const { return (value >> 60) & 1; }
  friend auto operator<=>(const Identifier&, const Identifier&) = default;
};

struct Locator {
  uint64_t value = 0;
  friend auto operator<=>(const Locator&, const Locator&) = default;
};

struct SirPrefix {
  uint64_t value = 0;
  friend auto operator<=>(const SirPrefix&, const SirPrefix&) = default;
};

struct SirAddress {
  SirPrefix prefix;
  Identifier identifier;
  friend auto operator<=>(const SirAddress&, const SirAddress&) = default;
};

// A LUID-type identifier with C-bit 0 and the given 60-bit sequence number.
// REQUIRES: sequence < 2^60.
Identifier MakeLuidIdentifier(uint64_t sequence);
inline constexpr uint64_t kMaxIdentifierSequence = (uint64_t{1} << 60) - 1;

// Parsers. Errors are INVALID_ARGUMENT naming the value and what was wanted;
// callers prefix the field name (see Annotate in status_macros.h).
absl::StatusOr<Locator> ParseLocator(absl::string_view text);
absl::StatusOr<SirPrefix> ParseSirPrefix(absl::string_view text);
absl::StatusOr<Identifier> ParseIdentifier(absl::string_view text);
absl::StatusOr<SirAddress> ParseSirAddress(absl::string_view text);

// Printers.
std::string FormatGroups(uint64_t value);  // "2001:db8:100:0"
inline std::string FormatLocator(Locator l) { return FormatGroups(l.value); }
inline std::string FormatSirPrefix(SirPrefix p) {
  return FormatGroups(p.value);
}
inline std::string FormatIdentifier(Identifier i) {
  return FormatGroups(i.value);
}
std::string FormatSirAddress(const SirAddress& address);  // "fd00::2000:0:0:42"

in6_addr ToIn6Addr(uint64_t high, uint64_t low);
SirAddress FromIn6Addr(const in6_addr& address);

// OK when Linux accepts ILA routes for `id`: type LUID and C-bit clear (the
// C-bit marks a checksum-neutral rewrite and is set by translation only).
absl::Status ValidateKernelIdentifier(Identifier id);

// OK for a task name: 1..kMaxTaskNameBytes bytes of valid UTF-8 without
// whitespace or control characters.
inline constexpr size_t kMaxTaskNameBytes = 253;
absl::Status ValidateTaskName(absl::string_view name);

// Kernel checksum modes (ILA_CSUM_*), with the names `ip` uses.
enum class ChecksumMode : uint8_t {
  kAdjustTransport = 0,
  kNeutralMap = 1,
  kNoAction = 2,
  kNeutralMapAuto = 3,
};
absl::StatusOr<ChecksumMode> ParseChecksumMode(absl::string_view text);
absl::string_view ChecksumModeName(ChecksumMode mode);  // "adj-transport"
bool IsValidChecksumMode(uint32_t raw);

}  // namespace ila
