#include "router-sync/route_codec.h"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/ila.h>
#include <linux/lwtunnel.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ila::router_sync {
namespace {

// Room for the largest message built here.
constexpr size_t kMaxMessage = 512;

Ipv6Bytes ToBytes(const SirAddress& a) {
  in6_addr in = ToIn6Addr(a.prefix.value, a.identifier.value);
  Ipv6Bytes out;
  std::memcpy(out.data(), &in, 16);
  return out;
}

SirAddress FromBytes(const void* data) {
  in6_addr in;
  std::memcpy(&in, data, 16);
  return FromIn6Addr(in);
}

// Starts a message at the end of `out`; Finish() trims the buffer to it.
class Builder {
 public:
  Builder(std::vector<uint8_t>* out, uint16_t type, uint16_t flags,
          uint32_t seq)
      : out_(out), start_(out->size()) {
    out_->resize(start_ + kMaxMessage, 0);
    nlh_ = mnl_nlmsg_put_header(out_->data() + start_);
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
    nlh_->nlmsg_seq = seq;
  }
  nlmsghdr* nlh() { return nlh_; }
  rtmsg* PutRtmsg() {
    return static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(rtmsg)));
  }
  void PutGenl(uint8_t cmd, uint8_t version) {
    auto* g = static_cast<genlmsghdr*>(
        mnl_nlmsg_put_extra_header(nlh_, sizeof(genlmsghdr)));
    g->cmd = cmd;
    g->version = version;
  }
  void Finish() { out_->resize(start_ + nlh_->nlmsg_len); }

 private:
  std::vector<uint8_t>* out_;
  size_t start_;
  nlmsghdr* nlh_;
};

// iproute2 puts tables below 256 in rtm_table and larger ones in RTA_TABLE.
void PutTable(Builder& b, rtmsg* rtm, uint32_t table) {
  if (table < 256) {
    rtm->rtm_table = static_cast<uint8_t>(table);
  } else {
    rtm->rtm_table = RT_TABLE_UNSPEC;
    mnl_attr_put_u32(b.nlh(), RTA_TABLE, table);
  }
}

// Attributes by type (the last of a type wins; unknown types are ignored,
// newer kernels may add some).
struct Attributes {
  const nlattr** table;
  int max;
};

// Walks the attributes in [data, data + len): every one must fit exactly
// (libmnl's parser stops quietly at the first bad one).
bool ParseAttributes(const uint8_t* data, size_t len, Attributes* out) {
  size_t at = 0;
  while (at < len) {
    if (len - at < sizeof(nlattr)) return false;
    nlattr a;
    std::memcpy(&a, data + at, sizeof(a));
    if (a.nla_len < sizeof(nlattr) || a.nla_len > len - at) return false;
    const int type = a.nla_type & NLA_TYPE_MASK;
    if (type <= out->max) {
      out->table[type] = reinterpret_cast<const nlattr*>(data + at);
    }
    at += NLA_ALIGN(a.nla_len);
  }
  return true;
}

absl::Status Malformed(absl::string_view what,
                       absl::string_view kind = "route") {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed netlink ", kind, " message: ", what));
}

// The attributes of a generic netlink message of `type`, or why not.
absl::Status ParseGenl(const uint8_t* message, size_t len, uint16_t type,
                       absl::string_view kind, Attributes* attrs) {
  if (len < sizeof(nlmsghdr) + sizeof(genlmsghdr)) {
    return Malformed(absl::StrCat(len, " bytes, too short"), kind);
  }
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message);
  if (nlh->nlmsg_len != len) {
    return Malformed(
        absl::StrCat("length ", nlh->nlmsg_len, " in a ", len, "-byte message"),
        kind);
  }
  if (nlh->nlmsg_type != type) {
    return Malformed(
        absl::StrCat("type ", nlh->nlmsg_type, " where ", type, " was asked"),
        kind);
  }
  const size_t at = NLMSG_SPACE(sizeof(genlmsghdr));
  if (at > len || !ParseAttributes(message + at, len - at, attrs)) {
    return Malformed("attributes overrun the message", kind);
  }
  return absl::OkStatus();
}

std::string DeviceName(int64_t ifindex) {
  char name[IF_NAMESIZE] = {};
  return if_indextoname(static_cast<unsigned>(ifindex), name) != nullptr
             ? std::string(name)
             : absl::StrCat("if", ifindex);
}

}  // namespace

void AppendRouteReplace(const IlaRoute& route, uint32_t seq,
                        std::vector<uint8_t>* out) {
  Builder b(out, RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq);
  rtmsg* rtm = b.PutRtmsg();
  rtm->rtm_family = AF_INET6;
  rtm->rtm_dst_len = 128;
  rtm->rtm_protocol = route.protocol;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  const Ipv6Bytes dst = ToBytes(route.destination);
  mnl_attr_put(b.nlh(), RTA_DST, dst.size(), dst.data());
  nlattr* encap = mnl_attr_nest_start(b.nlh(), RTA_ENCAP);
  // The kernel reads the locator as the address's bytes (network order).
  mnl_attr_put_u64(b.nlh(), ILA_ATTR_LOCATOR, htobe64(route.locator.value));
  mnl_attr_put_u8(b.nlh(), ILA_ATTR_CSUM_MODE,
                  static_cast<uint8_t>(route.csum_mode));
  mnl_attr_put_u8(b.nlh(), ILA_ATTR_IDENT_TYPE, route.ident_type);
  mnl_attr_put_u8(b.nlh(), ILA_ATTR_HOOK_TYPE, route.hook_type);
  mnl_attr_nest_end(b.nlh(), encap);
  mnl_attr_put_u16(b.nlh(), RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_ILA);
  if (route.gateway) {
    mnl_attr_put(b.nlh(), RTA_GATEWAY, route.gateway->size(),
                 route.gateway->data());
  }
  PutTable(b, rtm, route.table);  // after the gateway, as iproute2 does
  if (route.oif != 0) mnl_attr_put_u32(b.nlh(), RTA_OIF, route.oif);
  b.Finish();
}

void AppendRouteDelete(const SirAddress& destination, uint32_t table,
                       uint8_t protocol, uint32_t seq,
                       std::vector<uint8_t>* out) {
  Builder b(out, RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq);
  rtmsg* rtm = b.PutRtmsg();
  rtm->rtm_family = AF_INET6;
  rtm->rtm_dst_len = 128;
  rtm->rtm_protocol = protocol;  // the kernel deletes only a match
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNSPEC;
  const Ipv6Bytes dst = ToBytes(destination);
  mnl_attr_put(b.nlh(), RTA_DST, dst.size(), dst.data());
  PutTable(b, rtm, table);
  b.Finish();
}

void AppendRouteDump(uint32_t table, uint8_t protocol, uint32_t seq,
                     std::vector<uint8_t>* out) {
  Builder b(out, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
  rtmsg* rtm = b.PutRtmsg();
  rtm->rtm_family = AF_INET6;
  rtm->rtm_protocol = protocol;
  rtm->rtm_table = RT_TABLE_UNSPEC;
  mnl_attr_put_u32(b.nlh(), RTA_TABLE, table);
  b.Finish();
}

absl::StatusOr<std::vector<NetlinkMessage>> SplitMessages(const uint8_t* data,
                                                          size_t len) {
  std::vector<NetlinkMessage> out;
  size_t offset = 0;
  while (offset < len) {
    if (len - offset < sizeof(nlmsghdr)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "netlink reply: ", len - offset, " stray bytes at offset ", offset));
    }
    nlmsghdr h;
    std::memcpy(&h, data + offset, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "netlink reply: message at offset ", offset, " has length ",
          h.nlmsg_len, " of ", len - offset, " bytes left"));
    }
    out.push_back(
        {h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, offset, h.nlmsg_len});
    offset += NLMSG_ALIGN(h.nlmsg_len);
  }
  return out;
}

absl::StatusOr<NetlinkAck> DecodeAck(const uint8_t* message, size_t len) {
  if (len < sizeof(nlmsghdr) + sizeof(nlmsgerr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("netlink ack: ", len, " bytes, too short for an error"));
  }
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message);
  if (nlh->nlmsg_type != NLMSG_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(
        "netlink ack: message type ", nlh->nlmsg_type, " is not NLMSG_ERROR"));
  }
  nlmsgerr err;
  std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
  NetlinkAck ack;
  ack.seq = nlh->nlmsg_seq;
  ack.error = err.error;
  if (err.error > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("netlink ack: positive error ", err.error));
  }
  if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
    // The TLVs follow the error and, unless capped, the whole request.
    size_t tlv_offset = sizeof(nlmsghdr) + sizeof(nlmsgerr);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
      tlv_offset += err.msg.nlmsg_len - sizeof(nlmsghdr);
    }
    const size_t at = NLMSG_ALIGN(tlv_offset);
    const nlattr* tlv[NLMSGERR_ATTR_MAX + 1] = {};
    Attributes attrs{tlv, NLMSGERR_ATTR_MAX};
    // The message is informative: what parses before a bad TLV is kept.
    if (at < len) (void)ParseAttributes(message + at, len - at, &attrs);
    if (const nlattr* m = tlv[NLMSGERR_ATTR_MSG]; m != nullptr) {
      const char* text = static_cast<const char*>(mnl_attr_get_payload(m));
      ack.message.assign(text, strnlen(text, mnl_attr_get_payload_len(m)));
    }
  }
  return ack;
}

absl::StatusOr<std::optional<IlaRoute>> DecodeRoute(const uint8_t* message,
                                                    size_t len) {
  if (len < sizeof(nlmsghdr) + sizeof(rtmsg)) {
    return Malformed(absl::StrCat(len, " bytes, too short"));
  }
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message);
  if (nlh->nlmsg_len != len) {
    return Malformed(absl::StrCat("length ", nlh->nlmsg_len, " in a ", len,
                                  "-byte message"));
  }
  if (nlh->nlmsg_type != RTM_NEWROUTE) {
    return Malformed(
        absl::StrCat("type ", nlh->nlmsg_type, " is not RTM_NEWROUTE"));
  }
  rtmsg rtm;
  std::memcpy(&rtm, mnl_nlmsg_get_payload(nlh), sizeof(rtm));
  if (rtm.rtm_family != AF_INET6 || rtm.rtm_dst_len != 128) {
    return std::nullopt;
  }
  const nlattr* tb[RTA_MAX + 1] = {};
  Attributes ctx{tb, RTA_MAX};
  const size_t attrs_at = NLMSG_SPACE(sizeof(rtmsg));
  if (attrs_at > len ||
      !ParseAttributes(message + attrs_at, len - attrs_at, &ctx)) {
    return Malformed("attributes overrun the message");
  }
  if (tb[RTA_ENCAP_TYPE] == nullptr ||
      mnl_attr_validate(tb[RTA_ENCAP_TYPE], MNL_TYPE_U16) < 0 ||
      mnl_attr_get_u16(tb[RTA_ENCAP_TYPE]) != LWTUNNEL_ENCAP_ILA) {
    return std::nullopt;  // not an ILA route
  }
  IlaRoute route;
  route.protocol = rtm.rtm_protocol;
  route.table = rtm.rtm_table;
  if (tb[RTA_TABLE] != nullptr) {
    if (mnl_attr_validate(tb[RTA_TABLE], MNL_TYPE_U32) < 0) {
      return Malformed("RTA_TABLE is not 4 bytes");
    }
    route.table = mnl_attr_get_u32(tb[RTA_TABLE]);
  }
  if (tb[RTA_DST] == nullptr || mnl_attr_get_payload_len(tb[RTA_DST]) != 16) {
    return Malformed("a /128 route without a 16-byte RTA_DST");
  }
  route.destination = FromBytes(mnl_attr_get_payload(tb[RTA_DST]));
  if (tb[RTA_GATEWAY] != nullptr) {
    if (mnl_attr_get_payload_len(tb[RTA_GATEWAY]) != 16) {
      return Malformed("RTA_GATEWAY is not 16 bytes");
    }
    Ipv6Bytes gw;
    std::memcpy(gw.data(), mnl_attr_get_payload(tb[RTA_GATEWAY]), 16);
    route.gateway = gw;
  }
  if (tb[RTA_OIF] != nullptr) {
    if (mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) < 0) {
      return Malformed("RTA_OIF is not 4 bytes");
    }
    route.oif = mnl_attr_get_u32(tb[RTA_OIF]);
  }
  if (tb[RTA_ENCAP] == nullptr) return Malformed("ILA route without RTA_ENCAP");
  const nlattr* ila[ILA_ATTR_MAX + 1] = {};
  Attributes ila_ctx{ila, ILA_ATTR_MAX};
  if (!ParseAttributes(
          static_cast<const uint8_t*>(mnl_attr_get_payload(tb[RTA_ENCAP])),
          mnl_attr_get_payload_len(tb[RTA_ENCAP]), &ila_ctx)) {
    return Malformed("ILA attributes overrun RTA_ENCAP");
  }
  if (ila[ILA_ATTR_LOCATOR] == nullptr) {
    return Malformed("ILA route without a locator");
  }
  if (mnl_attr_validate(ila[ILA_ATTR_LOCATOR], MNL_TYPE_U64) < 0) {
    return Malformed("ILA_ATTR_LOCATOR is not 8 bytes");
  }
  route.locator.value = be64toh(mnl_attr_get_u64(ila[ILA_ATTR_LOCATOR]));
  if (const nlattr* a = ila[ILA_ATTR_CSUM_MODE]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) {
      return Malformed("ILA_ATTR_CSUM_MODE is not 1 byte");
    }
    const uint8_t mode = mnl_attr_get_u8(a);
    if (!IsValidChecksumMode(mode)) {
      return Malformed(absl::StrCat("unknown csum-mode ", mode));
    }
    route.csum_mode = static_cast<ChecksumMode>(mode);
  }
  if (const nlattr* a = ila[ILA_ATTR_IDENT_TYPE]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) {
      return Malformed("ILA_ATTR_IDENT_TYPE is not 1 byte");
    }
    route.ident_type = mnl_attr_get_u8(a);
  }
  if (const nlattr* a = ila[ILA_ATTR_HOOK_TYPE]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) {
      return Malformed("ILA_ATTR_HOOK_TYPE is not 1 byte");
    }
    route.hook_type = mnl_attr_get_u8(a);
  }
  return route;
}

std::string RouteReplaceCommand(const IlaRoute& route) {
  std::string out = absl::StrCat(
      "ip -6 route replace ", FormatSirAddress(route.destination),
      "/128 encap ila ", FormatLocator(route.locator), " csum-mode ",
      ChecksumModeName(route.csum_mode), " ident-type ",
      route.ident_type == 1 ? std::string("luid")
                            : absl::StrCat(route.ident_type),
      " hook-type ",
      route.hook_type == 0 ? std::string("output") : std::string("input"));
  if (route.gateway)
    absl::StrAppend(&out, " via ",
                    FormatSirAddress(FromBytes(route.gateway->data())));
  if (route.oif != 0) absl::StrAppend(&out, " dev ", DeviceName(route.oif));
  absl::StrAppend(&out, " proto ", route.protocol, " table ", route.table);
  return out;
}

std::string RouteDeleteCommand(const SirAddress& destination, uint32_t table,
                               uint8_t protocol) {
  return absl::StrCat("ip -6 route del ", FormatSirAddress(destination),
                      "/128 proto ", protocol, " table ", table);
}

void AppendFamilyQuery(const std::string& name, uint32_t seq,
                       std::vector<uint8_t>* out) {
  Builder b(out, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq);
  b.PutGenl(CTRL_CMD_GETFAMILY, 1);
  mnl_attr_put_strz(b.nlh(), CTRL_ATTR_FAMILY_NAME, name.c_str());
  b.Finish();
}

absl::StatusOr<uint16_t> DecodeFamilyId(const uint8_t* message, size_t len) {
  const nlattr* tb[CTRL_ATTR_MAX + 1] = {};
  Attributes attrs{tb, CTRL_ATTR_MAX};
  if (absl::Status s = ParseGenl(message, len, GENL_ID_CTRL, "family", &attrs);
      !s.ok()) {
    return s;
  }
  if (tb[CTRL_ATTR_FAMILY_ID] == nullptr ||
      mnl_attr_validate(tb[CTRL_ATTR_FAMILY_ID], MNL_TYPE_U16) < 0) {
    return Malformed("no 2-byte CTRL_ATTR_FAMILY_ID", "family");
  }
  return mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
}

// Attributes in iproute2's order: locator match, locator, ifindex, csum
// mode, identifier type; locators as the address's bytes (network order).
void AppendXlatAdd(uint16_t family, const IlaXlatEntry& entry, uint32_t seq,
                   std::vector<uint8_t>* out) {
  Builder b(out, family, NLM_F_REQUEST | NLM_F_ACK, seq);
  b.PutGenl(ILA_CMD_ADD, ILA_GENL_VERSION);
  mnl_attr_put_u64(b.nlh(), ILA_ATTR_LOCATOR_MATCH,
                   htobe64(entry.locator_match.value));
  mnl_attr_put_u64(b.nlh(), ILA_ATTR_LOCATOR, htobe64(entry.sir_prefix.value));
  if (entry.ifindex != 0) {
    mnl_attr_put_u32(b.nlh(), ILA_ATTR_IFINDEX,
                     static_cast<uint32_t>(entry.ifindex));
  }
  mnl_attr_put_u8(b.nlh(), ILA_ATTR_CSUM_MODE,
                  static_cast<uint8_t>(entry.csum_mode));
  mnl_attr_put_u8(b.nlh(), ILA_ATTR_IDENT_TYPE, entry.ident_type);
  b.Finish();
}

void AppendXlatDelete(uint16_t family, Locator locator_match, int32_t ifindex,
                      uint32_t seq, std::vector<uint8_t>* out) {
  Builder b(out, family, NLM_F_REQUEST | NLM_F_ACK, seq);
  b.PutGenl(ILA_CMD_DEL, ILA_GENL_VERSION);
  mnl_attr_put_u64(b.nlh(), ILA_ATTR_LOCATOR_MATCH,
                   htobe64(locator_match.value));
  if (ifindex != 0) {
    mnl_attr_put_u32(b.nlh(), ILA_ATTR_IFINDEX, static_cast<uint32_t>(ifindex));
  }
  b.Finish();
}

void AppendXlatDump(uint16_t family, uint32_t seq, std::vector<uint8_t>* out) {
  Builder b(out, family, NLM_F_REQUEST | NLM_F_DUMP, seq);
  b.PutGenl(ILA_CMD_GET, ILA_GENL_VERSION);
  b.Finish();
}

absl::StatusOr<IlaXlatEntry> DecodeXlat(const uint8_t* message, size_t len,
                                        uint16_t family) {
  const nlattr* tb[ILA_ATTR_MAX + 1] = {};
  Attributes attrs{tb, ILA_ATTR_MAX};
  if (absl::Status s = ParseGenl(message, len, family, "ila", &attrs);
      !s.ok()) {
    return s;
  }
  IlaXlatEntry e;
  for (int type : {ILA_ATTR_LOCATOR_MATCH, ILA_ATTR_LOCATOR}) {
    if (tb[type] == nullptr || mnl_attr_validate(tb[type], MNL_TYPE_U64) < 0) {
      return Malformed(absl::StrCat("ILA attribute ", type,
                                    " (locator) missing or not 8 bytes"),
                       "ila");
    }
  }
  e.locator_match.value = be64toh(mnl_attr_get_u64(tb[ILA_ATTR_LOCATOR_MATCH]));
  e.sir_prefix.value = be64toh(mnl_attr_get_u64(tb[ILA_ATTR_LOCATOR]));
  if (const nlattr* a = tb[ILA_ATTR_IFINDEX]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) {
      return Malformed("ILA_ATTR_IFINDEX is not 4 bytes", "ila");
    }
    e.ifindex = static_cast<int32_t>(mnl_attr_get_u32(a));
  }
  if (const nlattr* a = tb[ILA_ATTR_CSUM_MODE]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) {
      return Malformed("ILA_ATTR_CSUM_MODE is not 1 byte", "ila");
    }
    const uint8_t mode = mnl_attr_get_u8(a);
    if (!IsValidChecksumMode(mode)) {
      return Malformed(absl::StrCat("unknown csum-mode ", mode), "ila");
    }
    e.csum_mode = static_cast<ChecksumMode>(mode);
  }
  if (const nlattr* a = tb[ILA_ATTR_IDENT_TYPE]; a != nullptr) {
    if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) {
      return Malformed("ILA_ATTR_IDENT_TYPE is not 1 byte", "ila");
    }
    e.ident_type = mnl_attr_get_u8(a);
  }
  return e;
}

std::string XlatAddCommand(const IlaXlatEntry& e) {
  std::string out = absl::StrCat(
      "ip ila add loc_match ", FormatLocator(e.locator_match), " loc ",
      FormatSirPrefix(e.sir_prefix), " csum-mode ",
      ChecksumModeName(e.csum_mode), " ident-type ",
      e.ident_type == 1 ? std::string("luid") : absl::StrCat(e.ident_type));
  if (e.ifindex != 0) absl::StrAppend(&out, " dev ", DeviceName(e.ifindex));
  return out;
}

std::string XlatDeleteCommand(Locator locator_match, int32_t ifindex) {
  std::string out =
      absl::StrCat("ip ila del loc_match ", FormatLocator(locator_match));
  if (ifindex != 0) absl::StrAppend(&out, " dev ", DeviceName(ifindex));
  return out;
}

}  // namespace ila::router_sync
