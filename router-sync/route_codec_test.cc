// Golden bytes: what iproute2 6.1 sends, captured on Debian 12 with
//   unshare -n sh -c 'ip link set lo up; strace -e trace=sendmsg,sendto
//   -e write=3 ip -6 route ...'
// (the kernel there refuses ILA routes, but iproute2 has sent the request);
// `ip ila` needs the "ila" family, so those were captured the same way
// (write=4) inside the kernel VM (tests/kernel/vm_run.sh --with strace),
// where the family's id was 0x20 and v1 was ifindex 2.
// iproute2 leaves attribute padding uninitialized; those bytes are listed
// and must be zero in ours.
#include "router-sync/route_codec.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::router_sync {
namespace {

using ::testing::HasSubstr;

// 2001:db8::1:0:0:5 -> locator 2001:db8:100:0, via 2001:db8::ff dev lo.
IlaRoute TestRoute() {
  IlaRoute r;
  r.destination = {SirPrefix{0x20010db800000000},
                   Identifier{0x0001000000000005}};
  r.locator = Locator{0x20010db801000000};
  r.gateway =
      Ipv6Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff};
  r.oif = 1;
  return r;
}

// Compares ours with iproute2's, skipping iproute2's padding (which must be
// zero in ours).
void ExpectSameBytes(const std::vector<uint8_t>& ours,
                     const std::vector<uint8_t>& iproute2,
                     const std::set<size_t>& padding) {
  ASSERT_EQ(ours.size(), iproute2.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    if (padding.contains(i)) {
      EXPECT_EQ(ours[i], 0) << "padding byte " << i;
    } else {
      EXPECT_EQ(ours[i], iproute2[i]) << "byte " << i;
    }
  }
}

// ip -6 route replace 2001:db8::1:0:0:5/128 encap ila 2001:db8:100:0
//   csum-mode adj-transport ident-type luid hook-type output
//   via 2001:db8::ff dev lo proto 73 table main
const std::vector<uint8_t> kReplaceMain = {
    0x7c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x05, 0x18, 0x51, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x80, 0x00, 0x00, 0xfe, 0x49, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x28, 0x00, 0x16, 0x80, 0x0c, 0x00, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x07, 0x00, 0x00, 0xd0, 0x01, 0x00,
    0x05, 0x00, 0x08, 0x00, 0x01, 0xf0, 0x01, 0x00, 0x05, 0x00, 0x09, 0x00,
    0x00, 0xe1, 0x01, 0x00, 0x06, 0x00, 0x15, 0x00, 0x03, 0x00, 0x01, 0x00,
    0x14, 0x00, 0x05, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x08, 0x00, 0x04, 0x00,
    0x01, 0x00, 0x00, 0x00};
const std::set<size_t> kReplacePadding = {0x45, 0x46, 0x47, 0x4d, 0x4e, 0x4f,
                                          0x55, 0x56, 0x57, 0x5e, 0x5f};

// The same with csum-mode neutral-map-auto and table 1000 (RTA_TABLE).
const std::vector<uint8_t> kReplaceTable1000 = {
    0x84, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x05, 0x18, 0x51, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x80, 0x00, 0x00, 0x00, 0x49, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x28, 0x00, 0x16, 0x80, 0x0c, 0x00, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x07, 0x00, 0x03, 0xd0, 0x01, 0x00,
    0x05, 0x00, 0x08, 0x00, 0x01, 0xf0, 0x01, 0x00, 0x05, 0x00, 0x09, 0x00,
    0x00, 0xe1, 0x01, 0x00, 0x06, 0x00, 0x15, 0x00, 0x03, 0x00, 0x01, 0x00,
    0x14, 0x00, 0x05, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x08, 0x00, 0x0f, 0x00,
    0xe8, 0x03, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00};

// ip -6 route del 2001:db8::7/128 proto 73 table main
const std::vector<uint8_t> kDelete = {
    0x30, 0x00, 0x00, 0x00, 0x19, 0x00, 0x05, 0x00, 0x18, 0x51, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x80, 0x00, 0x00, 0xfe, 0x49, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07};

// ip -6 route show proto 73 table main
const std::vector<uint8_t> kDump = {
    0x24, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x01, 0x03, 0x23, 0x51, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x49, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0f, 0x00, 0xfe, 0x00, 0x00, 0x00};

constexpr uint32_t kSeq = 0x6b135118;

TEST(RouteCodec, ReplaceMatchesIproute2) {
  std::vector<uint8_t> out;
  AppendRouteReplace(TestRoute(), kSeq, &out);
  ExpectSameBytes(out, kReplaceMain, kReplacePadding);
}

TEST(RouteCodec, LargeTableGoesInRtaTableAsIniproute2) {
  IlaRoute r = TestRoute();
  r.csum_mode = ChecksumMode::kNeutralMapAuto;
  r.table = 1000;
  std::vector<uint8_t> out;
  AppendRouteReplace(r, kSeq, &out);
  ExpectSameBytes(out, kReplaceTable1000, kReplacePadding);
}

TEST(RouteCodec, DeleteAndDumpMatchIproute2) {
  std::vector<uint8_t> out;
  AppendRouteDelete({SirPrefix{0x20010db800000000}, Identifier{7}}, kMainTable,
                    kRouteProtocol, kSeq, &out);
  ExpectSameBytes(out, kDelete, {});
  out.clear();
  AppendRouteDump(kMainTable, kRouteProtocol, 0x6b135123, &out);
  ExpectSameBytes(out, kDump, {});
}

TEST(RouteCodec, ManyMessagesInOneBufferSplitBack) {
  std::vector<uint8_t> out;
  for (uint32_t i = 0; i < 100; ++i) {
    IlaRoute r = TestRoute();
    r.destination.identifier.value = i;
    AppendRouteReplace(r, i + 1, &out);
  }
  auto messages = SplitMessages(out.data(), out.size());
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 100u);
  for (uint32_t i = 0; i < 100; ++i) {
    const NetlinkMessage& m = (*messages)[i];
    EXPECT_EQ(m.seq, i + 1);
    EXPECT_EQ(m.type, RTM_NEWROUTE);
    // A dump reply carries the same layout: decode it back.
    std::vector<uint8_t> one(out.begin() + m.offset,
                             out.begin() + m.offset + m.length);
    auto route = DecodeRoute(one.data(), one.size());
    ASSERT_TRUE(route.ok()) << route.status();
    ASSERT_TRUE(route->has_value());
    IlaRoute want = TestRoute();
    want.destination.identifier.value = i;
    EXPECT_EQ(**route, want);
  }
}

TEST(RouteCodec, DecodeSkipsOtherRoutesAndRejectsMalformedOnes) {
  // A plain route (no ILA encap) is not ours to decode.
  std::vector<uint8_t> plain = kDelete;
  plain[4] = RTM_NEWROUTE;
  auto r = DecodeRoute(plain.data(), plain.size());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());

  std::vector<uint8_t> good;
  AppendRouteReplace(TestRoute(), 1, &good);
  // Truncated: the header says more than there is.
  auto truncated = DecodeRoute(good.data(), good.size() - 4);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  // An attribute whose length runs past the end.
  std::vector<uint8_t> overrun = good;
  overrun[0x1c] = 0xf0;  // RTA_DST's nla_len
  auto bad = DecodeRoute(overrun.data(), overrun.size());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("malformed"));
  // An unknown checksum mode.
  std::vector<uint8_t> mode = good;
  mode[0x44] = 9;
  auto unknown = DecodeRoute(mode.data(), mode.size());
  EXPECT_THAT(unknown.status().message(), HasSubstr("csum-mode 9"));
  // A locator of the wrong size.
  std::vector<uint8_t> locator = good;
  locator[0x34] = 0x0b;  // ILA_ATTR_LOCATOR nla_len 12 -> 11
  auto short_locator = DecodeRoute(locator.data(), locator.size());
  EXPECT_FALSE(short_locator.ok());
}

TEST(RouteCodec, SplitRejectsBadLengths) {
  std::vector<uint8_t> out;
  AppendRouteReplace(TestRoute(), 1, &out);
  out.push_back(0);  // a stray byte
  EXPECT_THAT(SplitMessages(out.data(), out.size()).status().message(),
              HasSubstr("stray"));
  std::vector<uint8_t> lying = kDelete;
  lying[0] = 0xff;
  EXPECT_THAT(SplitMessages(lying.data(), lying.size()).status().message(),
              HasSubstr("has length 255"));
}

TEST(RouteCodec, AckCarriesErrnoAndExtendedMessage) {
  // NLMSG_ERROR, capped, with NLMSGERR_ATTR_MSG.
  const char text[] = "lwt encapsulation type not supported";
  std::vector<uint8_t> msg(sizeof(nlmsghdr) + sizeof(nlmsgerr));
  nlattr attr{static_cast<uint16_t>(sizeof(nlattr) + sizeof(text)),
              NLMSGERR_ATTR_MSG};
  const size_t attr_at = msg.size();
  msg.resize(attr_at + NLA_ALIGN(attr.nla_len), 0);
  std::memcpy(msg.data() + attr_at, &attr, sizeof(attr));
  std::memcpy(msg.data() + attr_at + sizeof(attr), text, sizeof(text));
  nlmsghdr h{static_cast<uint32_t>(msg.size()), NLMSG_ERROR,
             NLM_F_CAPPED | NLM_F_ACK_TLVS, 42, 0};
  nlmsgerr err{};
  err.error = -95;  // EOPNOTSUPP
  err.msg.nlmsg_len = 124;
  std::memcpy(msg.data(), &h, sizeof(h));
  std::memcpy(msg.data() + sizeof(h), &err, sizeof(err));
  auto ack = DecodeAck(msg.data(), msg.size());
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->seq, 42u);
  EXPECT_EQ(ack->error, -95);
  EXPECT_EQ(ack->message, text);
  EXPECT_FALSE(DecodeAck(msg.data(), 10).ok());
}

TEST(RouteCodec, DryRunCommandsReadLikeIp) {
  IlaRoute r = TestRoute();
  r.oif = 0;
  EXPECT_EQ(RouteReplaceCommand(r),
            "ip -6 route replace 2001:db8::1:0:0:5/128 encap ila "
            "2001:db8:100:0 csum-mode adj-transport ident-type luid hook-type "
            "output via 2001:db8::ff proto 73 table 254");
  EXPECT_EQ(RouteDeleteCommand(r.destination, 254, 73),
            "ip -6 route del 2001:db8::1:0:0:5/128 proto 73 table 254");
}

constexpr uint16_t kIlaFamily = 0x20;

// ip ila add loc_match 2001:db8:1:0 loc fd00:1:0:0 csum-mode adj-transport
//   ident-type luid
const std::vector<uint8_t> kXlatAdd = {
    0x3c, 0x00, 0x00, 0x00, 0x20, 0x00, 0x05, 0x00, 0x6a, 0x67, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x0c, 0x00, 0x01, 0x00,
    0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x07, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00};
// ip ila add loc_match 2001:db8:2:0 loc fd00:1:0:0 csum-mode neutral-map
//   ident-type luid dev v1
const std::vector<uint8_t> kXlatAddDev = {
    0x44, 0x00, 0x00, 0x00, 0x20, 0x00, 0x05, 0x00, 0x72, 0x67, 0x13, 0x6b,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x0c, 0x00, 0x01, 0x00,
    0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x05, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00};
// ip ila del loc_match 2001:db8:2:0 dev v1
const std::vector<uint8_t> kXlatDel = {
    0x28, 0x00, 0x00, 0x00, 0x20, 0x00, 0x05, 0x00, 0x6a, 0x67,
    0x13, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00,
    0x0c, 0x00, 0x03, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02,
    0x00, 0x00, 0x08, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00};
// ip ila list
const std::vector<uint8_t> kXlatDump = {
    0x14, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00};

IlaXlatEntry TestEntry() {
  IlaXlatEntry e;
  e.locator_match = Locator{0x20010db800010000};
  e.sir_prefix = SirPrefix{0xfd00000100000000};
  return e;
}

TEST(XlatCodec, MessagesMatchIproute2) {
  std::vector<uint8_t> out;
  AppendXlatAdd(kIlaFamily, TestEntry(), 0x6b13676a, &out);
  ExpectSameBytes(out, kXlatAdd, {});
  IlaXlatEntry dev = TestEntry();
  dev.locator_match = Locator{0x20010db800020000};
  dev.ifindex = 2;
  dev.csum_mode = ChecksumMode::kNeutralMap;
  out.clear();
  AppendXlatAdd(kIlaFamily, dev, 0x6b136772, &out);
  ExpectSameBytes(out, kXlatAddDev, {});
  out.clear();
  AppendXlatDelete(kIlaFamily, dev.locator_match, 2, 0x6b13676a, &out);
  ExpectSameBytes(out, kXlatDel, {});
  out.clear();
  AppendXlatDump(kIlaFamily, 0, &out);
  ExpectSameBytes(out, kXlatDump, {});
}

TEST(XlatCodec, DecodesEntriesAndRejectsMalformedOnes) {
  // A dump entry carries the same attributes as an ADD.
  for (const auto& golden : {kXlatAdd, kXlatAddDev}) {
    auto e = DecodeXlat(golden.data(), golden.size(), kIlaFamily);
    ASSERT_TRUE(e.ok()) << e.status();
    std::vector<uint8_t> again;
    AppendXlatAdd(kIlaFamily, *e, 0x6b13676a, &again);
    std::vector<uint8_t> want = golden;
    std::memcpy(want.data() + 8, again.data() + 8, 4);  // the seq
    EXPECT_EQ(again, want);
  }
  auto e = DecodeXlat(kXlatAddDev.data(), kXlatAddDev.size(), kIlaFamily);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ifindex, 2);
  EXPECT_EQ(e->csum_mode, ChecksumMode::kNeutralMap);
  // Another family's message, a truncated one, a locator of 4 bytes, no
  // locator, an unknown checksum mode.
  EXPECT_THAT(
      DecodeXlat(kXlatAdd.data(), kXlatAdd.size(), 0x21).status().message(),
      HasSubstr("type 32 where 33 was asked"));
  EXPECT_FALSE(DecodeXlat(kXlatAdd.data(), 18, kIlaFamily).ok());
  std::vector<uint8_t> bad = kXlatAdd;
  bad[0] = 0x3b;  // nlmsg_len one short of the buffer
  EXPECT_FALSE(DecodeXlat(bad.data(), bad.size(), kIlaFamily).ok());
  bad = kXlatAdd;
  bad[20] = 0x08;  // LOCATOR_MATCH of 4 bytes: the next attribute misparses
  EXPECT_FALSE(DecodeXlat(bad.data(), bad.size(), kIlaFamily).ok());
  std::vector<uint8_t> no_locator(kXlatDel.begin(), kXlatDel.end());
  EXPECT_THAT(DecodeXlat(no_locator.data(), no_locator.size(), kIlaFamily)
                  .status()
                  .message(),
              HasSubstr("missing or not 8 bytes"));
  bad = kXlatAdd;
  bad[48] = 9;  // csum-mode 9
  EXPECT_THAT(DecodeXlat(bad.data(), bad.size(), kIlaFamily).status().message(),
              HasSubstr("unknown csum-mode 9"));
}

TEST(XlatCodec, FamilyIdComesFromTheControllerReply) {
  std::vector<uint8_t> query;
  AppendFamilyQuery("ila", 7, &query);
  // The reply: the same header layout with CTRL_ATTR_FAMILY_ID (u16) added.
  std::vector<uint8_t> reply = query;
  const uint8_t id_attr[] = {0x06, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00, 0x00};
  reply.insert(reply.end(), id_attr, id_attr + sizeof(id_attr));
  const uint32_t len = static_cast<uint32_t>(reply.size());
  std::memcpy(reply.data(), &len, sizeof(len));
  auto id = DecodeFamilyId(reply.data(), reply.size());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 0x20);
  EXPECT_THAT(DecodeFamilyId(query.data(), query.size()).status().message(),
              HasSubstr("CTRL_ATTR_FAMILY_ID"));
}

TEST(XlatCodec, DryRunCommandsReadLikeIp) {
  IlaXlatEntry e = TestEntry();
  EXPECT_EQ(XlatAddCommand(e),
            "ip ila add loc_match 2001:db8:1:0 loc fd00:1:0:0 csum-mode "
            "adj-transport ident-type luid");
  EXPECT_EQ(XlatDeleteCommand(e.locator_match, 0),
            "ip ila del loc_match 2001:db8:1:0");
  EXPECT_EQ(XlatDeleteCommand(e.locator_match, 1),
            "ip ila del loc_match 2001:db8:1:0 dev lo");
}

}  // namespace
}  // namespace ila::router_sync
