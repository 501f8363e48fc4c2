// Prober against the running kernel in network namespaces of the test's own:
// the test process (in a namespace of its own: unshare) is the probing host,
// two routers and a destination are named namespaces joined by veth:
//   probe (fd00:1::1) - r1 - r2 - dst (fd00:3::2)
// Every protocol must show r1, r2 and the destination, with the quoted
// destination equal to the probe's (no ILA here), and stop there. Needs root
// (CI runs it as root); skips otherwise. The namespaces are removed at the
// end.
#include "trace/prober.h"

#include <arpa/inet.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::trace {
namespace {

Ipv6Bytes Parse(const char* text) {
  Ipv6Bytes a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.data()), 1) << text;
  return a;
}

class ProberTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    const std::string p = absl::StrCat("ilatr", getpid(), "-");
    prefix_ = p;
    const std::string script = absl::StrCat(
        "set -e; IP=/sbin/ip; ", "for n in r1 r2 dst; do $IP netns add ", p,
        "$n; ", "$IP -n ", p, "$n link set lo up; ", "$IP netns exec ", p,
        "$n sysctl -qw net.ipv6.icmp.ratelimit=0 "
        "net.ipv6.conf.all.forwarding=1 net.ipv6.conf.all.accept_dad=0 "
        "net.ipv6.conf.default.accept_dad=0; done; ",
        "sysctl -qw net.ipv6.conf.all.accept_dad=0 "
        "net.ipv6.conf.default.accept_dad=0 "
        "net.ipv4.ping_group_range='0 2147483647'; $IP link set lo up; ",
        "$IP link add p0 type veth peer name vx0 netns ", p, "r1; ", "$IP -n ",
        p, "r1 link add vy0 type veth peer name vx0 netns ", p, "r2; ",
        "$IP -n ", p, "r2 link add vy0 type veth peer name vx0 netns ", p,
        "dst; ", "$IP addr add fd00:1::1/64 dev p0 nodad; $IP link set p0 up; ",
        "$IP -6 route add default via fd00:1::2; ", "$IP -n ", p,
        "r1 addr add fd00:1::2/64 dev vx0 nodad; ", "$IP -n ", p,
        "r1 addr add fd00:2::1/64 dev vy0 nodad; ", "$IP -n ", p,
        "r2 addr add fd00:2::2/64 dev vx0 nodad; ", "$IP -n ", p,
        "r2 addr add fd00:3::1/64 dev vy0 nodad; ", "$IP -n ", p,
        "dst addr add fd00:3::2/64 dev vx0 nodad; ",
        "for l in r1:vx0 r1:vy0 r2:vx0 r2:vy0 dst:vx0; do ", "$IP -n ", p,
        "${l%:*} link set ${l#*:} up; done; ", "$IP -n ", p,
        "r1 -6 route add fd00:3::/64 via fd00:2::2; ", "$IP -n ", p,
        "r2 -6 route add default via fd00:2::1; ", "$IP -n ", p,
        "dst -6 route add default via fd00:3::1");
    ASSERT_EQ(std::system(script.c_str()), 0) << script;
    topology_ready_ = true;
  }
  static void TearDownTestSuite() {
    if (prefix_.empty()) return;
    for (const char* n : {"r1", "r2", "dst"}) {
      (void)std::system(
          absl::StrCat("/sbin/ip netns del ", prefix_, n).c_str());
    }
  }
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root: the test makes network namespaces of its "
                      "own (CI runs it as root)";
    }
    // A failed set-up must fail the tests, not skip them.
    ASSERT_TRUE(topology_ready_) << "the namespace topology was not built";
  }
  static std::string prefix_;
  static bool topology_ready_;
};
std::string ProberTest::prefix_;
bool ProberTest::topology_ready_ = false;

struct ProberCase {
  ProbeProtocol protocol;
  bool raw;  // false: the unprivileged sockets (as without CAP_NET_RAW)
};

class ProberProtocols : public ProberTest,
                        public ::testing::WithParamInterface<ProberCase> {};

TEST_P(ProberProtocols, EveryHopAnswersAndTheTraceStopsAtTheDestination) {
  auto prober = Prober::Open(GetParam().raw);
  ASSERT_TRUE(prober.ok()) << prober.status();
  EXPECT_EQ((*prober)->privileged(), GetParam().raw);
  EXPECT_EQ((*prober)->Limitations().empty(), GetParam().raw);
  ProbeOptions o;
  o.destination = Parse("fd00:3::2");
  o.protocol = GetParam().protocol;
  o.max_hops = 8;
  // Every probe is answered here: a long fixed wait costs nothing and keeps a
  // loaded machine (CI runs the VM tests alongside) from losing answers to
  // the adaptive wait (SilentHopsAreReportedLostWithinTheWait keeps it).
  o.wait = absl::Seconds(5);
  o.min_adaptive_wait = o.wait;
  std::map<int, std::vector<ProbeResult>> hops;
  absl::Status s = (*prober)->Run(
      o, [&](const ProbeResult& r) { hops[r.ttl].push_back(r); });
  ASSERT_TRUE(s.ok()) << s;
  const std::vector<Ipv6Bytes> want = {Parse("fd00:1::2"), Parse("fd00:2::2"),
                                       Parse("fd00:3::2")};
  ASSERT_EQ(hops.size(), 3u) << "hops beyond the destination were reported";
  for (int ttl = 1; ttl <= 3; ++ttl) {
    ASSERT_EQ(hops[ttl].size(), 3u) << "ttl " << ttl;
    for (const ProbeResult& r : hops[ttl]) {
      ASSERT_TRUE(r.from.has_value()) << "ttl " << ttl << " query " << r.query;
      EXPECT_EQ(*r.from, want[ttl - 1]) << FormatAddress(*r.from);
      EXPECT_EQ(r.reached, ttl == 3);
      EXPECT_GT(r.rtt, absl::ZeroDuration());
      if (ttl < 3) {
        EXPECT_EQ(r.icmp_type, kIcmp6TimeExceeded);
        ASSERT_TRUE(r.quoted.has_value());
        EXPECT_EQ(r.quoted->destination, o.destination);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, ProberProtocols,
    ::testing::Values(ProberCase{ProbeProtocol::kUdp, true},
                      ProberCase{ProbeProtocol::kIcmp, true},
                      ProberCase{ProbeProtocol::kTcp, true},
                      ProberCase{ProbeProtocol::kUdp, false},
                      ProberCase{ProbeProtocol::kIcmp, false}),
    [](const auto& param_info) {
      std::string name = param_info.param.raw ? "Raw" : "Unprivileged";
      switch (param_info.param.protocol) {
        case ProbeProtocol::kUdp:
          return name + "Udp";
        case ProbeProtocol::kIcmp:
          return name + "Icmp";
        case ProbeProtocol::kTcp:
          return name + "Tcp";
      }
      return name;
    });

TEST_F(ProberTest, UnprivilegedTcpIsRefusedSayingWhy) {
  auto prober = Prober::Open(/*allow_raw=*/false);
  ASSERT_TRUE(prober.ok()) << prober.status();
  ProbeOptions o;
  o.destination = Parse("fd00:3::2");
  o.protocol = ProbeProtocol::kTcp;
  absl::Status s = (*prober)->Run(o, [](const ProbeResult&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("need CAP_NET_RAW"));
  EXPECT_THAT((*prober)->Limitations(), ::testing::HasSubstr("no TCP probes"));
}

TEST_F(ProberTest, SilentHopsAreReportedLostWithinTheWait) {
  auto prober = Prober::Open();
  ASSERT_TRUE(prober.ok()) << prober.status();
  ProbeOptions o;
  o.destination = Parse("fd00:3::2");  // resolves the neighbours first
  o.protocol = ProbeProtocol::kIcmp;
  ASSERT_TRUE((*prober)->Run(o, [](const ProbeResult&) {}).ok());
  // fd00:3::99 does not exist: r1 and r2 answer, the hop after r2 is silent
  // (r2 waits for a neighbour that never answers).
  o.destination = Parse("fd00:3::99");
  o.max_hops = 3;
  o.queries = 2;
  o.wait = absl::Milliseconds(500);
  std::map<int, int> answered, lost;
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*prober)
                  ->Run(o,
                        [&](const ProbeResult& r) {
                          (r.from ? answered : lost)[r.ttl]++;
                          EXPECT_FALSE(r.reached);
                        })
                  .ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(answered[1], 2);
  EXPECT_EQ(answered[2], 2);
  EXPECT_EQ(lost[3], 2);
}

TEST(ProberOptions, BadOptionsAreRefusedNamingThem) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_NET_RAW to open the prober";
  auto prober = Prober::Open();
  ASSERT_TRUE(prober.ok()) << prober.status();
  ProbeOptions o;
  o.max_hops = 0;
  EXPECT_THAT((*prober)->Run(o, [](const ProbeResult&) {}).message(),
              ::testing::HasSubstr("max_hops 0"));
}

}  // namespace
}  // namespace ila::trace
