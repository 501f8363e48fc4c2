// Parsing of the ICMPv6 messages a trace receives (design.md §8): echo
// replies, and errors (Time Exceeded, Destination Unreachable, Packet Too
// Big, Parameter Problem) with the whole quoted packet — IPv6 header,
// extension headers, UDP/TCP/ICMPv6 header and payload — plus RFC 4884
// extension objects when present.
//
// Input is untrusted (any host on the path can send anything): every length
// is checked, a quote cut short yields what it holds (the fields it could
// not reach are absent), and a malformed message is an INVALID_ARGUMENT
// naming what is wrong. No sockets here.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ila::trace {

using Ipv6Bytes = std::array<uint8_t, 16>;

inline constexpr uint8_t kIcmp6DestUnreachable = 1;
inline constexpr uint8_t kIcmp6PacketTooBig = 2;
inline constexpr uint8_t kIcmp6TimeExceeded = 3;
inline constexpr uint8_t kIcmp6ParamProblem = 4;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;

// The packet an ICMPv6 error quotes, as far as the quote reaches.
struct QuotedPacket {
  Ipv6Bytes source{};
  Ipv6Bytes destination{};
  uint32_t flow_label = 0;
  uint8_t hop_limit = 0;
  // Extension headers walked (their Next Header values), then the upper
  // layer protocol (IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMPV6 or another).
  std::vector<uint8_t> extension_headers;
  uint8_t protocol = 0;
  // UDP or TCP ports, when the quote reaches them.
  std::optional<uint16_t> source_port, destination_port;
  std::optional<uint32_t> tcp_sequence;
  // ICMPv6 inside: its type, and the echo identifier/sequence.
  std::optional<uint8_t> icmp_type;
  std::optional<uint16_t> echo_id, echo_sequence;
  // The upper layer's payload (after its header), as quoted.
  std::vector<uint8_t> payload;
};

// One RFC 4884 extension object (e.g. RFC 4950 MPLS labels, RFC 5837
// interface information).
struct ExtensionObject {
  uint8_t class_num = 0;
  uint8_t c_type = 0;
  std::vector<uint8_t> data;
};

struct Icmp6Message {
  uint8_t type = 0;
  uint8_t code = 0;
  // Echo reply: identifier, sequence, payload.
  uint16_t echo_id = 0, echo_sequence = 0;
  std::vector<uint8_t> echo_payload;
  // Errors: MTU (Packet Too Big) or pointer (Parameter Problem), the quoted
  // packet, and the extension objects.
  uint32_t parameter = 0;
  std::optional<QuotedPacket> quoted;
  std::vector<ExtensionObject> extensions;
};

// Parses an ICMPv6 message as a raw IPPROTO_ICMPV6 socket delivers it
// (starting at the ICMPv6 header). Types other than the four errors and
// echo reply parse to their type and code only.
absl::StatusOr<Icmp6Message> ParseIcmp6(const uint8_t* data, size_t len);

// Parses a quoted IPv6 packet (from its IPv6 header); INVALID_ARGUMENT when
// not even the IPv6 header is there or it is not IPv6.
absl::StatusOr<QuotedPacket> ParseQuotedPacket(const uint8_t* data, size_t len);

// "2001:db8::1" (inet_ntop).
std::string FormatAddress(const Ipv6Bytes& address);

}  // namespace ila::trace
