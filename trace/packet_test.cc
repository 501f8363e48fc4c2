// ParseIcmp6 on packets built byte by byte the way routers send them (the
// kernel VM scenarios check real ones end to end).
#include "trace/packet.h"

#include <netinet/in.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trace/rewrite.h"
#include "trace/testdata.h"

namespace ila::trace {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Bytes = std::vector<uint8_t>;

Ipv6Bytes Addr(uint8_t last, uint8_t first = 0xfd) {
  Ipv6Bytes a{};
  a[0] = first;
  a[15] = last;
  return a;
}

void Put16(Bytes* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v));
}
void Put32(Bytes* b, uint32_t v) {
  Put16(b, static_cast<uint16_t>(v >> 16));
  Put16(b, static_cast<uint16_t>(v));
}

// An IPv6 header (payload length left 0: quotes are judged by what is
// there) with flow label 0x12345 and hop limit 1.
Bytes Ipv6(uint8_t next, const Ipv6Bytes& src, const Ipv6Bytes& dst) {
  Bytes b;
  Put32(&b, 0x60000000u | 0x12345);
  Put16(&b, 0);
  b.push_back(next);
  b.push_back(1);
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  return b;
}

Bytes Udp(uint16_t sport, uint16_t dport, const std::string& payload) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  Put16(&b, static_cast<uint16_t>(8 + payload.size()));
  Put16(&b, 0xbeef);  // checksum: never looked at
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// An ICMPv6 error of `type` quoting `quote`, with the RFC 4884 length byte.
Bytes Error(uint8_t type, uint8_t code, const Bytes& quote,
            uint8_t length_words = 0) {
  Bytes b = {type, code, 0, 0, length_words, 0, 0, 0};
  b.insert(b.end(), quote.begin(), quote.end());
  return b;
}

Bytes Cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ParseIcmp6, TimeExceededQuotingAUdpProbe) {
  const Bytes quote = Cat(Ipv6(IPPROTO_UDP, Addr(1), Addr(0x42)),
                          Udp(40000, 33437, "ila-trace"));
  const Bytes msg = Error(kIcmp6TimeExceeded, 0, quote);
  auto m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type, kIcmp6TimeExceeded);
  ASSERT_TRUE(m->quoted.has_value());
  const QuotedPacket& q = *m->quoted;
  EXPECT_EQ(q.source, Addr(1));
  EXPECT_EQ(q.destination, Addr(0x42));
  EXPECT_EQ(q.flow_label, 0x12345u);
  EXPECT_EQ(q.hop_limit, 1);
  EXPECT_EQ(q.protocol, IPPROTO_UDP);
  EXPECT_EQ(q.source_port, 40000);
  EXPECT_EQ(q.destination_port, 33437);
  EXPECT_EQ(std::string(q.payload.begin(), q.payload.end()), "ila-trace");
  EXPECT_TRUE(m->extensions.empty());
}

TEST(ParseIcmp6, ExtensionHeadersAreWalkedToTheTcpHeader) {
  Bytes hop_by_hop = {IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0};
  Bytes dest_opts = {
      IPPROTO_FRAGMENT, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Bytes fragment = {IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 7};
  Bytes tcp;
  Put16(&tcp, 41000);
  Put16(&tcp, 80);
  Put32(&tcp, 0xdeadbeef);
  Put32(&tcp, 0);
  tcp.push_back(5 << 4);
  tcp.push_back(0x02);
  Put16(&tcp, 65535);
  Put32(&tcp, 0);
  Bytes quote =
      Cat(Cat(Cat(Cat(Ipv6(IPPROTO_HOPOPTS, Addr(1), Addr(2)), hop_by_hop),
                  dest_opts),
              fragment),
          tcp);
  const Bytes msg = Error(kIcmp6TimeExceeded, 0, quote);
  auto m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  const QuotedPacket& q = *m->quoted;
  EXPECT_THAT(q.extension_headers,
              ElementsAre(IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT));
  EXPECT_EQ(q.protocol, IPPROTO_TCP);
  EXPECT_EQ(q.source_port, 41000);
  EXPECT_EQ(q.destination_port, 80);
  EXPECT_EQ(q.tcp_sequence, 0xdeadbeefu);
}

TEST(ParseIcmp6, EchoReplyAndAQuotedEchoRequest) {
  Bytes reply = {
      kIcmp6EchoReply, 0, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x07, 'h', 'i'};
  auto m = ParseIcmp6(reply.data(), reply.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->echo_id, 0xabcd);
  EXPECT_EQ(m->echo_sequence, 7);
  EXPECT_THAT(m->echo_payload, ElementsAre('h', 'i'));
  Bytes request = {kIcmp6EchoRequest, 0, 0, 0, 0xab, 0xcd, 0x00, 0x09};
  const Bytes msg = Error(kIcmp6TimeExceeded, 0,
                          Cat(Ipv6(IPPROTO_ICMPV6, Addr(1), Addr(2)), request));
  m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->quoted->icmp_type, kIcmp6EchoRequest);
  EXPECT_EQ(m->quoted->echo_id, 0xabcd);
  EXPECT_EQ(m->quoted->echo_sequence, 9);
}

TEST(ParseIcmp6, ShortQuotesYieldWhatTheyHold) {
  const Bytes full =
      Cat(Ipv6(IPPROTO_UDP, Addr(1), Addr(2)), Udp(40000, 33434, "x"));
  // Cut inside the UDP ports: addresses, no ports.
  Bytes msg =
      Error(kIcmp6DestUnreachable, 4, Bytes(full.begin(), full.begin() + 42));
  auto m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->quoted->destination, Addr(2));
  EXPECT_FALSE(m->quoted->source_port.has_value());
  // Cut inside an extension header.
  Bytes ext = Cat(Ipv6(IPPROTO_HOPOPTS, Addr(1), Addr(2)), {IPPROTO_UDP, 0});
  msg = Error(kIcmp6TimeExceeded, 0, ext);
  m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->quoted->protocol, IPPROTO_HOPOPTS);
  EXPECT_FALSE(m->quoted->source_port.has_value());
  // An extension header claiming more than the quote holds.
  ext = Cat(Ipv6(IPPROTO_DSTOPTS, Addr(1), Addr(2)),
            {IPPROTO_UDP, 200, 0, 0, 0, 0, 0, 0});
  msg = Error(kIcmp6TimeExceeded, 0, ext);
  m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->quoted->source_port.has_value());
}

TEST(ParseIcmp6, Rfc4884ExtensionObjectsFollowThePaddedQuote) {
  Bytes quote =
      Cat(Ipv6(IPPROTO_UDP, Addr(1), Addr(2)), Udp(40000, 33434, "probe"));
  quote.resize(128, 0);         // RFC 4884: padded to 128 bytes
  Bytes ext = {0x20, 0, 0, 0};  // version 2, checksum (unchecked)
  Bytes mpls = {0, 8, 1, 1, 0x00, 0x01, 0x41, 0xff};  // class 1 (MPLS)
  Bytes iface = {0, 6, 2, 0x0c, 'e', '0'};            // class 2
  Bytes msg = Cat(Cat(Error(kIcmp6TimeExceeded, 0, quote, 128 / 8), ext),
                  Cat(mpls, iface));
  auto m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->quoted->source_port, 40000);
  ASSERT_EQ(m->extensions.size(), 2u);
  EXPECT_EQ(m->extensions[0].class_num, 1);
  EXPECT_THAT(m->extensions[0].data, ElementsAre(0x00, 0x01, 0x41, 0xff));
  EXPECT_EQ(m->extensions[1].class_num, 2);
  EXPECT_EQ(m->extensions[1].c_type, 0x0c);
  // A length byte that points past the message: no extensions, the whole
  // rest is the quote.
  msg[4] = 200;
  m = ParseIcmp6(msg.data(), msg.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->extensions.empty());
}

TEST(ParseIcmp6, MalformedMessagesAreRefusedNamingWhy) {
  Bytes tiny = {3, 0};
  EXPECT_THAT(ParseIcmp6(tiny.data(), tiny.size()).status().message(),
              HasSubstr("shorter than a header"));
  Bytes short_error = {3, 0, 0, 0, 0};
  EXPECT_FALSE(ParseIcmp6(short_error.data(), short_error.size()).ok());
  Bytes short_quote = Error(3, 0, Bytes(20, 0x60));
  EXPECT_THAT(
      ParseIcmp6(short_quote.data(), short_quote.size()).status().message(),
      HasSubstr("shorter than an IPv6 header"));
  Bytes v4 = Error(3, 0, Bytes(40, 0x45));
  EXPECT_THAT(ParseIcmp6(v4.data(), v4.size()).status().message(),
              HasSubstr("IP version 4"));
  Bytes echo = {kIcmp6EchoReply, 0, 0, 0, 1};
  EXPECT_FALSE(ParseIcmp6(echo.data(), echo.size()).ok());
  // Other types: type and code only.
  Bytes other = {135, 0, 0, 0, 1, 2, 3, 4};
  auto m = ParseIcmp6(other.data(), other.size());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, 135);
  EXPECT_FALSE(m->quoted.has_value());
}

// Messages captured in the kernel VM (trace/testdata/icmp6/README.md).
TEST(ParseIcmp6, CapturedFromTheKernelVm) {
  const auto captures = testdata::Captures(ILA_TRACE_TESTDATA "/icmp6");
  auto parse = [&](const std::string& name) {
    const auto& bytes = captures.at(name);
    EXPECT_FALSE(bytes.empty()) << name;
    auto m = ParseIcmp6(bytes.data(), bytes.size());
    EXPECT_TRUE(m.ok()) << name << ": " << m.status();
    return m.ok() ? *m : Icmp6Message{};
  };
  const std::string sir1 = "fd00:1::2000:0:0:42";
  Icmp6Message m = parse("udp_time_exceeded");
  EXPECT_EQ(m.type, kIcmp6TimeExceeded);
  EXPECT_EQ(FormatAddress(m.quoted->source), "2001:db8:f0::2");
  EXPECT_EQ(FormatAddress(m.quoted->destination), sir1);
  EXPECT_EQ(m.quoted->protocol, IPPROTO_UDP);
  EXPECT_TRUE(m.quoted->source_port.has_value());
  EXPECT_GE(*m.quoted->destination_port, 33434);
  EXPECT_EQ(std::string(m.quoted->payload.begin(), m.quoted->payload.end()),
            std::string("ila-trace probe", 16));
  // After the ILA router: the quote holds the ILA address.
  for (const char* name :
       {"udp_time_exceeded_translated", "icmp_time_exceeded_translated",
        "tcp_time_exceeded_translated"}) {
    m = parse(name);
    EXPECT_EQ(FormatAddress(m.quoted->destination), "2001:db8:1:0:2000::42")
        << name;
  }
  EXPECT_TRUE(parse("tcp_time_exceeded_translated").quoted->tcp_sequence);
  EXPECT_TRUE(parse("icmp_time_exceeded_translated").quoted->echo_sequence);
  m = parse("udp_port_unreachable");
  EXPECT_EQ(m.type, kIcmp6DestUnreachable);
  EXPECT_EQ(m.code, 4);
  EXPECT_EQ(FormatAddress(m.quoted->destination), sir1);
  m = parse("echo_reply");
  EXPECT_EQ(m.type, kIcmp6EchoReply);
  EXPECT_EQ(m.echo_sequence, 3);
  // neutral-map: the quoted identifier has the C-bit and other low bits;
  // undone with the SIR prefix it is web/2's again.
  for (const char* name :
       {"udp_time_exceeded_neutral_map", "icmp_time_exceeded_neutral_map",
        "tcp_time_exceeded_neutral_map"}) {
    m = parse(name);
    const Ipv6Bytes& q = m.quoted->destination;
    EXPECT_EQ(High64(q), 0x20010db800020000u) << name;
    EXPECT_NE(Low64(q), 0x2000000000000043u) << name;
    EXPECT_THAT(UndoChecksumNeutral(Locator{High64(q)}, Identifier{Low64(q)},
                                    SirPrefix{0xfd00000100000000}),
                ::testing::Contains(Identifier{0x2000000000000043}))
        << name;
  }
  m = parse("neighbor_solicitation");
  EXPECT_EQ(m.type, 135);
  EXPECT_FALSE(m.quoted.has_value());
}

}  // namespace
}  // namespace ila::trace
