#include "common/address.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ila {
namespace {

constexpr absl::string_view kGroupsHint =
    "want four hex groups like 2001:db8:100:0, or 0x-hex";

// Quotes untrusted text for an error message: at most 80 bytes, with
// non-printable bytes escaped, so messages stay one readable line.
std::string Quote(absl::string_view text) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char c : text) {
    if (++n > 80) {
      absl::StrAppend(&out, "...");
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  out.push_back('"');
  return out;
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

absl::StatusOr<uint16_t> ParseGroup(absl::string_view group,
                                    absl::string_view whole) {
  if (group.empty() || group.size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(whole), ": hex group ", Quote(group),
                     " must have 1 to 4 digits; ", kGroupsHint));
  }
  uint32_t v = 0;
  for (char c : group) {
    if (!IsHexDigit(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(whole), ": ", Quote(group),
                       " is not a hex group; ", kGroupsHint));
    }
    v = v * 16 +
        static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return static_cast<uint16_t>(v);
}

// "0x1234" -> 0x1234 (1..16 digits).
absl::StatusOr<uint64_t> ParseHex(absl::string_view text) {
  absl::string_view digits = text.substr(2);
  if (digits.empty() || digits.size() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), ": 0x-hex must have 1 to 16 digits"));
  }
  uint64_t v = 0;
  for (char c : digits) {
    if (!IsHexDigit(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), ": ", Quote(std::string(1, c)), " is not a hex digit"));
    }
    v = v * 16 +
        static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

// Four groups, "::" allowed once, or 0x-hex.
absl::StatusOr<uint64_t> ParseGroupsOrHex(absl::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty value; ", kGroupsHint));
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    return ParseHex(text);
  }
  std::vector<absl::string_view> head, tail;
  size_t dc = text.find("::");
  bool compressed = dc != absl::string_view::npos;
  if (compressed) {
    if (text.find("::", dc + 1) != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(text), ": \"::\" may appear only once"));
    }
    absl::string_view left = text.substr(0, dc);
    absl::string_view right = text.substr(dc + 2);
    if (!left.empty()) head = absl::StrSplit(left, ':');
    if (!right.empty()) tail = absl::StrSplit(right, ':');
  } else {
    head = absl::StrSplit(text, ':');
  }
  size_t groups = head.size() + tail.size();
  if (groups > 4 || (compressed && groups > 3) ||
      (!compressed && groups != 4)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " has ", groups,
        " groups where 4 are wanted (the 64 bits "
        "of a locator, SIR prefix or identifier); write a /64 prefix as "
        "2001:db8:100::/64"));
  }
  std::array<uint16_t, 4> g{};
  for (size_t i = 0; i < head.size(); ++i) {
    auto v = ParseGroup(head[i], text);
    if (!v.ok()) return v.status();
    g[i] = *v;
  }
  for (size_t i = 0; i < tail.size(); ++i) {
    auto v = ParseGroup(tail[i], text);
    if (!v.ok()) return v.status();
    g[4 - tail.size() + i] = *v;
  }
  return (uint64_t{g[0]} << 48) | (uint64_t{g[1]} << 32) |
         (uint64_t{g[2]} << 16) | uint64_t{g[3]};
}

uint64_t LoadBigEndian64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void StoreBigEndian64(uint64_t v, uint8_t* p) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// A 64-bit prefix: groups, hex, or "<IPv6>/64" with the low 64 bits zero.
absl::StatusOr<uint64_t> ParsePrefix64(absl::string_view text,
                                       absl::string_view what) {
  uint64_t value = 0;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    absl::string_view len = text.substr(slash + 1);
    if (len != "64") {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), ": a ", what, " is a /64, not /", len.substr(0, 8)));
    }
    std::string addr(text.substr(0, slash));
    in6_addr a{};
    if (addr.size() > INET6_ADDRSTRLEN ||
        inet_pton(AF_INET6, addr.c_str(), &a) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), ": ", Quote(addr), " is not an IPv6 address"));
    }
    if (LoadBigEndian64(a.s6_addr + 8) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(text), ": host bits set below /64"));
    }
    value = LoadBigEndian64(a.s6_addr);
  } else {
    auto v = ParseGroupsOrHex(text);
    if (!v.ok()) return v.status();
    value = *v;
  }
  if (value == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), ": a ", what, " must not be zero"));
  }
  return value;
}

}  // namespace

Identifier MakeLuidIdentifier(uint64_t sequence) {
  return Identifier{(uint64_t{1} << 61) | (sequence & kMaxIdentifierSequence)};
}

absl::StatusOr<Locator> ParseLocator(absl::string_view text) {
  auto v = ParsePrefix64(text, "locator");
  if (!v.ok()) return v.status();
  return Locator{*v};
}

absl::StatusOr<SirPrefix> ParseSirPrefix(absl::string_view text) {
  auto v = ParsePrefix64(text, "SIR prefix");
  if (!v.ok()) return v.status();
  return SirPrefix{*v};
}

absl::StatusOr<Identifier> ParseIdentifier(absl::string_view text) {
  auto v = ParseGroupsOrHex(text);
  if (!v.ok()) return v.status();
  return Identifier{*v};
}

absl::StatusOr<SirAddress> ParseSirAddress(absl::string_view text) {
  in6_addr a{};
  std::string s(text);
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN ||
      inet_pton(AF_INET6, s.c_str(), &a) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not an IPv6 address"));
  }
  return FromIn6Addr(a);
}

std::string FormatGroups(uint64_t value) {
  return absl::StrFormat("%x:%x:%x:%x", (value >> 48) & 0xffff,
                         (value >> 32) & 0xffff, (value >> 16) & 0xffff,
                         value & 0xffff);
}

in6_addr ToIn6Addr(uint64_t high, uint64_t low) {
  in6_addr a{};
  StoreBigEndian64(high, a.s6_addr);
  StoreBigEndian64(low, a.s6_addr + 8);
  return a;
}

SirAddress FromIn6Addr(const in6_addr& address) {
  return SirAddress{SirPrefix{LoadBigEndian64(address.s6_addr)},
                    Identifier{LoadBigEndian64(address.s6_addr + 8)}};
}

std::string FormatSirAddress(const SirAddress& address) {
  in6_addr a = ToIn6Addr(address.prefix.value, address.identifier.value);
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &a, buf, sizeof(buf));
  return buf;
}

absl::Status ValidateKernelIdentifier(Identifier id) {
  if (id.type() != IdentifierType::kLuid) {
    return absl::InvalidArgumentError(absl::StrCat(
        FormatIdentifier(id), " has identifier type ",
        static_cast<int>(id.type()),
        "; Linux routes only type 1 (LUID: first hex digit 2 or 3)"));
  }
  if (id.c_bit()) {
    return absl::InvalidArgumentError(absl::StrCat(
        FormatIdentifier(id),
        " has the C-bit set (first hex digit 3); it marks a checksum-neutral "
        "rewrite and must be clear in a task's identifier"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTaskName(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("task name is empty");
  }
  if (name.size() > kMaxTaskNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("task name ", Quote(name), " is ", name.size(),
                     " bytes; at most ", kMaxTaskNameBytes));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(name.data());
  const auto* end = p + name.size();
  while (p < end) {
    uint32_t cp;
    int len;
    if (*p < 0x80) {
      cp = *p;
      len = 1;
    } else if ((*p & 0xe0) == 0xc0) {
      cp = *p & 0x1f;
      len = 2;
    } else if ((*p & 0xf0) == 0xe0) {
      cp = *p & 0x0f;
      len = 3;
    } else if ((*p & 0xf8) == 0xf0) {
      cp = *p & 0x07;
      len = 4;
    } else {
      cp = 0xffffffff;
      len = 0;
    }
    bool ok = len > 0 && end - p >= len;
    for (int i = 1; ok && i < len; ++i) {
      if ((p[i] & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (cp < kMinForLength[len] || cp > 0x10ffff ||
               (cp >= 0xd800 && cp <= 0xdfff))) {
      ok = false;
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task name ", Quote(name), " is not valid UTF-8 at byte ",
          p - reinterpret_cast<const unsigned char*>(name.data())));
    }
    if (cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0xfeff) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task name ", Quote(name),
          " contains whitespace or a control character at byte ",
          p - reinterpret_cast<const unsigned char*>(name.data())));
    }
    p += len;
  }
  return absl::OkStatus();
}

absl::StatusOr<ChecksumMode> ParseChecksumMode(absl::string_view text) {
  if (text == "adj-transport") return ChecksumMode::kAdjustTransport;
  if (text == "neutral-map") return ChecksumMode::kNeutralMap;
  if (text == "neutral-map-auto") return ChecksumMode::kNeutralMapAuto;
  if (text == "no-action") return ChecksumMode::kNoAction;
  return absl::InvalidArgumentError(
      absl::StrCat(Quote(text),
                   " is not a checksum mode; want adj-transport, "
                   "neutral-map, neutral-map-auto or no-action"));
}

absl::string_view ChecksumModeName(ChecksumMode mode) {
  switch (mode) {
    case ChecksumMode::kAdjustTransport:
      return "adj-transport";
    case ChecksumMode::kNeutralMap:
      return "neutral-map";
    case ChecksumMode::kNoAction:
      return "no-action";
    case ChecksumMode::kNeutralMapAuto:
      return "neutral-map-auto";
  }
  return "unknown";
}

bool IsValidChecksumMode(uint32_t raw) { return raw <= 3; }

}  // namespace ila
