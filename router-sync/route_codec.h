// Pure encoders and decoders of the netlink messages ila-router-sync uses:
// rtnetlink for ILA routes (design.md §7): one /128 route per mapping,
//   <SIR address>/128 encap ila <locator> csum-mode <mode> ident-type luid
//   hook-type output via <next hop> [dev <if>] proto <ours> table <t>
// added or replaced with RTM_NEWROUTE (NLM_F_CREATE | NLM_F_REPLACE),
// removed with RTM_DELROUTE, listed with a RTM_GETROUTE dump filtered by
// protocol and table (the kernel filters when NETLINK_GET_STRICT_CHK is on).
// The bytes match what iproute2 6.1 sends for the same `ip -6 route`
// command (route_codec_test.cc holds the captures), except that padding is
// zero here and garbage there. Generic netlink (family "ila") for a host's
// translation entries: see IlaXlatEntry below.
//
// No sockets here: messages are appended to a byte buffer so that many go
// out in one sendmsg, and replies are decoded from bytes.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/address.h"

namespace ila::router_sync {

// The rtm_protocol that marks the routes ila-router-sync owns ("ila" in
// deploy/rt_protos.d/ila.conf). It never touches a route without it.
inline constexpr uint8_t kRouteProtocol = 73;
inline constexpr uint32_t kMainTable = 254;  // RT_TABLE_MAIN

using Ipv6Bytes = std::array<uint8_t, 16>;

// One ILA route as ila-router-sync programs it and reads it back.
struct IlaRoute {
  SirAddress destination;  // the /128 destination
  Locator locator;
  ChecksumMode csum_mode = ChecksumMode::kAdjustTransport;
  // ident-type luid and hook-type output are what the product programs; a
  // kernel route with other values decodes with these set accordingly and
  // compares unequal, so it gets replaced.
  uint8_t ident_type = 1;            // ILA_ATYPE_LUID
  uint8_t hook_type = 0;             // ILA_HOOK_ROUTE_OUTPUT
  std::optional<Ipv6Bytes> gateway;  // via
  uint32_t oif = 0;                  // dev (ifindex); 0 = none
  uint32_t table = kMainTable;
  uint8_t protocol = kRouteProtocol;

  friend bool operator==(const IlaRoute&, const IlaRoute&) = default;
};

// Appends one message to `out`.
void AppendRouteReplace(const IlaRoute& route, uint32_t seq,
                        std::vector<uint8_t>* out);
// Deletes our route to `destination` in `table` (only with our protocol).
void AppendRouteDelete(const SirAddress& destination, uint32_t table,
                       uint8_t protocol, uint32_t seq,
                       std::vector<uint8_t>* out);
// A dump of the IPv6 routes with `protocol` in `table`.
void AppendRouteDump(uint32_t table, uint8_t protocol, uint32_t seq,
                     std::vector<uint8_t>* out);

// One decoded netlink message of a reply stream.
struct NetlinkMessage {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t seq = 0;
  size_t offset = 0;  // of its header in the buffer
  size_t length = 0;  // nlmsg_len
};
// Splits a receive buffer into messages; INVALID_ARGUMENT (naming the offset
// and the bad length) when a header does not fit.
absl::StatusOr<std::vector<NetlinkMessage>> SplitMessages(const uint8_t* data,
                                                          size_t len);

// An NLMSG_ERROR reply: error 0 is the ACK; otherwise -errno and, with
// NETLINK_EXT_ACK, the kernel's message.
struct NetlinkAck {
  uint32_t seq = 0;
  int error = 0;  // negative errno, 0 = success
  std::string message;
};
absl::StatusOr<NetlinkAck> DecodeAck(const uint8_t* message, size_t len);

// A RTM_NEWROUTE message of a dump: the route when it is an IPv6 /128 ILA
// route (whatever its protocol: the caller filters), nullopt for any other
// route; INVALID_ARGUMENT for a malformed message.
absl::StatusOr<std::optional<IlaRoute>> DecodeRoute(const uint8_t* message,
                                                    size_t len);

// The route as an `ip` command (for --dry-run and logs).
std::string RouteReplaceCommand(const IlaRoute& route);
std::string RouteDeleteCommand(const SirAddress& destination, uint32_t table,
                               uint8_t protocol);

// --- ILA translation entries: the generic netlink family "ila" ---
// A host rewrites the locator of packets it receives back to the SIR
// prefix: `ip ila add loc_match <locator> loc <SIR prefix> csum-mode <mode>
// ident-type luid [dev <if>]`. The kernel keys entries by (locator_match,
// ifindex), refuses a second ADD of a key (EEXIST), and DEL of a missing
// key succeeds. The bytes match iproute2 6.1's `ip ila add/del`.
struct IlaXlatEntry {
  Locator locator_match;  // the host's locator, as received
  SirPrefix sir_prefix;   // what it is rewritten to
  int32_t ifindex = 0;    // 0: packets from any device
  ChecksumMode csum_mode = ChecksumMode::kAdjustTransport;
  uint8_t ident_type = 1;  // ILA_ATYPE_LUID

  friend bool operator==(const IlaXlatEntry&, const IlaXlatEntry&) = default;
};

// Generic netlink families are numbered at run time: a CTRL_CMD_GETFAMILY
// request for `name`, and its answer's family id.
void AppendFamilyQuery(const std::string& name, uint32_t seq,
                       std::vector<uint8_t>* out);
absl::StatusOr<uint16_t> DecodeFamilyId(const uint8_t* message, size_t len);

void AppendXlatAdd(uint16_t family, const IlaXlatEntry& entry, uint32_t seq,
                   std::vector<uint8_t>* out);
void AppendXlatDelete(uint16_t family, Locator locator_match, int32_t ifindex,
                      uint32_t seq, std::vector<uint8_t>* out);
void AppendXlatDump(uint16_t family, uint32_t seq, std::vector<uint8_t>* out);
// One entry of a dump (a message of type `family`); INVALID_ARGUMENT for a
// malformed one.
absl::StatusOr<IlaXlatEntry> DecodeXlat(const uint8_t* message, size_t len,
                                        uint16_t family);

std::string XlatAddCommand(const IlaXlatEntry& entry);
std::string XlatDeleteCommand(Locator locator_match, int32_t ifindex);

}  // namespace ila::router_sync
