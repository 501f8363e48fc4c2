#include "trace/packet.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ila::trace {
namespace {

constexpr size_t kIpv6Header = 40;

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
         p[3];
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("ICMPv6 message: ", what));
}

bool IsExtensionHeader(uint8_t next) {
  switch (next) {
    case IPPROTO_HOPOPTS:
    case IPPROTO_ROUTING:
    case IPPROTO_FRAGMENT:
    case IPPROTO_DSTOPTS:
    case 51:   // AH
    case 135:  // Mobility
    case 139:  // HIP
    case 140:  // Shim6
      return true;
    default:
      return false;
  }
}

// RFC 4884 extension structure: version 2, then objects.
std::vector<ExtensionObject> ParseExtensions(const uint8_t* data, size_t len) {
  std::vector<ExtensionObject> out;
  if (len < 4 || (data[0] >> 4) != 2) return out;
  size_t at = 4;
  while (len - at >= 4) {
    const uint16_t object_len = Be16(data + at);
    if (object_len < 4 || object_len > len - at) break;
    ExtensionObject o;
    o.class_num = data[at + 2];
    o.c_type = data[at + 3];
    o.data.assign(data + at + 4, data + at + object_len);
    out.push_back(std::move(o));
    at += object_len;
  }
  return out;
}

}  // namespace

absl::StatusOr<QuotedPacket> ParseQuotedPacket(const uint8_t* data,
                                               size_t len) {
  if (len < kIpv6Header) {
    return Bad(absl::StrCat("quoted packet of ", len,
                            " bytes, shorter than an IPv6 header"));
  }
  if ((data[0] >> 4) != 6) {
    return Bad(absl::StrCat("quoted packet of IP version ", data[0] >> 4));
  }
  QuotedPacket q;
  q.flow_label = Be32(data) & 0xfffff;
  q.hop_limit = data[7];
  std::memcpy(q.source.data(), data + 8, 16);
  std::memcpy(q.destination.data(), data + 24, 16);
  uint8_t next = data[6];
  size_t at = kIpv6Header;
  // At most 16 extension headers: a quote is at most 1,232 bytes anyway.
  for (int i = 0; i < 16 && IsExtensionHeader(next); ++i) {
    q.extension_headers.push_back(next);
    if (len - at < 8) {  // the quote ends inside the extension headers
      q.protocol = next;
      return q;
    }
    const uint8_t following = data[at];
    size_t header_len;
    if (next == IPPROTO_FRAGMENT) {
      header_len = 8;
    } else if (next == 51) {  // AH: length in 4-octet units, minus 2
      header_len = (size_t{data[at + 1]} + 2) * 4;
    } else {
      header_len = (size_t{data[at + 1]} + 1) * 8;
    }
    if (header_len > len - at) {
      q.protocol = next;
      return q;
    }
    at += header_len;
    next = following;
  }
  q.protocol = next;
  const uint8_t* l4 = data + at;
  const size_t l4_len = len - at;
  size_t header = 0;
  switch (next) {
    case IPPROTO_UDP:
      if (l4_len >= 4) {
        q.source_port = Be16(l4);
        q.destination_port = Be16(l4 + 2);
      }
      header = 8;
      break;
    case IPPROTO_TCP:
      if (l4_len >= 4) {
        q.source_port = Be16(l4);
        q.destination_port = Be16(l4 + 2);
      }
      if (l4_len >= 8) q.tcp_sequence = Be32(l4 + 4);
      header =
          l4_len >= 13 ? size_t{static_cast<uint8_t>(l4[12] >> 4)} * 4 : 20;
      if (header < 20) header = 20;
      break;
    case IPPROTO_ICMPV6:
      if (l4_len >= 1) q.icmp_type = l4[0];
      if (l4_len >= 8 &&
          (l4[0] == kIcmp6EchoRequest || l4[0] == kIcmp6EchoReply)) {
        q.echo_id = Be16(l4 + 4);
        q.echo_sequence = Be16(l4 + 6);
      }
      header = 8;
      break;
    default:
      return q;
  }
  if (l4_len > header) q.payload.assign(l4 + header, l4 + l4_len);
  return q;
}

absl::StatusOr<Icmp6Message> ParseIcmp6(const uint8_t* data, size_t len) {
  if (len < 4) return Bad(absl::StrCat(len, " bytes, shorter than a header"));
  Icmp6Message m;
  m.type = data[0];
  m.code = data[1];
  switch (m.type) {
    case kIcmp6EchoReply:
      if (len < 8) return Bad(absl::StrCat("echo reply of ", len, " bytes"));
      m.echo_id = Be16(data + 4);
      m.echo_sequence = Be16(data + 6);
      m.echo_payload.assign(data + 8, data + len);
      return m;
    case kIcmp6DestUnreachable:
    case kIcmp6PacketTooBig:
    case kIcmp6TimeExceeded:
    case kIcmp6ParamProblem:
      break;
    default:
      return m;
  }
  if (len < 8) {
    return Bad(absl::StrCat("error type ", int{m.type}, " of ", len, " bytes"));
  }
  m.parameter = Be32(data + 4);
  size_t quote_len = len - 8;
  // RFC 4884: Time Exceeded and Destination Unreachable carry the quote's
  // length (in 64-bit words) in their first byte; extensions follow it.
  if ((m.type == kIcmp6TimeExceeded || m.type == kIcmp6DestUnreachable) &&
      data[4] != 0) {
    const size_t declared = size_t{data[4]} * 8;
    if (declared <= quote_len) {
      m.extensions = ParseExtensions(data + 8 + declared, quote_len - declared);
      quote_len = declared;
    }
  }
  auto q = ParseQuotedPacket(data + 8, quote_len);
  if (!q.ok()) return q.status();
  m.quoted = *std::move(q);
  return m;
}

std::string FormatAddress(const Ipv6Bytes& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, address.data(), text, sizeof(text));
  return text;
}

}  // namespace ila::trace
