// TraceSession without sockets: target resolution, request checks, and the
// ILA explanation of probe results (translated hop -> locator, host agent,
// task; checksum-neutral identifiers; stale mappings), and the summary.
#include "server/trace_service.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_store.h"
#include "tests/testing/temp_dir.h"
#include "trace/rewrite.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

constexpr Locator kL1{0x20010db800010000};
constexpr Locator kL2{0x20010db800020000};
constexpr SirPrefix kPrefix{0xfd00000100000000};

class NullSink : public SubscriberSink {
 public:
  void Wake() override {}
  void Close(const grpc::Status&) override {}
};

trace::Ipv6Bytes Bytes(uint64_t high, uint64_t low) {
  trace::Ipv6Bytes a;
  for (int i = 0; i < 8; ++i) {
    a[i] = static_cast<uint8_t>(high >> (56 - 8 * i));
    a[8 + i] = static_cast<uint8_t>(low >> (56 - 8 * i));
  }
  return a;
}

class TraceSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc_init();
    storage::RocksDbStoreOptions so;
    so.path = dir_.Sub("db");
    so.sync_mode = storage::SyncMode::kNone;
    auto store = storage::RocksDbMappingStore::Open(std::move(so));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    hub_ = std::make_unique<StreamHub>(store_.get(), StreamHubOptions());
    store_->AddCommitObserver(hub_.get());
    ASSERT_TRUE(hub_->Start().ok());
    auto r = store_->Commit(storage::WriteRequest{
        {storage::RegisterOp{"web/3", kL1, Identifier{0x2000000000000042},
                             kPrefix, std::nullopt}},
        false});
    ASSERT_TRUE(r.ok()) << r.status();
    v1::Hello hello;  // the host agent that owns kL1
    hello.set_node("task-17");
    hello.set_role(v1::NODE_ROLE_HOST);
    hello.mutable_filter()->add_locators("2001:db8:1:0");
    auto sub = hub_->Add(hello, "test", &sink_);
    ASSERT_TRUE(sub.ok()) << sub.status();
    sub_ = *sub;
  }
  void TearDown() override {
    hub_->Remove(sub_);
    hub_.reset();
    store_.reset();
    grpc_shutdown();
  }

  // A Time Exceeded from `from` quoting a probe to `quoted`.
  trace::ProbeResult Hop(int ttl, const trace::Ipv6Bytes& quoted) {
    trace::ProbeResult r;
    r.ttl = ttl;
    r.from = Bytes(0x20010db8f0000000, ttl);
    r.rtt = absl::Milliseconds(ttl);
    r.icmp_type = trace::kIcmp6TimeExceeded;
    trace::QuotedPacket q;
    q.destination = quoted;
    r.quoted = q;
    return r;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbMappingStore> store_;
  std::unique_ptr<StreamHub> hub_;
  NullSink sink_;
  std::shared_ptr<Subscription> sub_;
};

TEST_F(TraceSessionTest, TargetsResolveToTheTasksSirAddress) {
  for (const char* target : {"web/3", "2000:0:0:42", "fd00:1::2000:0:0:42"}) {
    TraceSession s(store_.get(), hub_.get());
    v1::TraceRequest req;
    req.set_target(target);
    ASSERT_TRUE(s.Prepare(req).ok()) << target;
    EXPECT_EQ(s.options().destination, Bytes(kPrefix.value, 0x2000000000000042))
        << target;
    EXPECT_EQ(s.Summary().task(), "web/3") << target;
  }
  TraceSession s(store_.get(), hub_.get());
  v1::TraceRequest req;
  req.set_target("2001:db8::1");  // any address
  ASSERT_TRUE(s.Prepare(req).ok());
  EXPECT_EQ(s.Summary().task(), "");
}

TEST_F(TraceSessionTest, BadRequestsNameTheField) {
  auto prepare = [&](auto edit) {
    TraceSession s(store_.get(), hub_.get());
    v1::TraceRequest req;
    req.set_target("web/3");
    edit(req);
    return s.Prepare(req);
  };
  EXPECT_THAT(prepare([](v1::TraceRequest& r) { r.set_target(""); }).message(),
              HasSubstr("target: empty"));
  EXPECT_THAT(
      prepare([](v1::TraceRequest& r) { r.set_target("no/such"); }).message(),
      HasSubstr("target: "));
  EXPECT_EQ(
      prepare([](v1::TraceRequest& r) { r.set_target("no/such"); }).code(),
      absl::StatusCode::kNotFound);
  EXPECT_THAT(
      prepare([](v1::TraceRequest& r) { r.set_max_hops(65); }).message(),
      HasSubstr("max_hops: 65"));
  EXPECT_THAT(prepare([](v1::TraceRequest& r) { r.set_queries(11); }).message(),
              HasSubstr("queries: 11"));
  EXPECT_THAT(prepare([](v1::TraceRequest& r) { r.set_wait_ms(5); }).message(),
              HasSubstr("wait_ms: 5"));
  EXPECT_THAT(prepare([](v1::TraceRequest& r) { r.set_port(70000); }).message(),
              HasSubstr("port: 70000"));
  EXPECT_THAT(prepare([](v1::TraceRequest& r) {
                r.set_protocol(static_cast<v1::ProbeProtocol>(9));
              }).message(),
              HasSubstr("protocol: unknown value 9"));
}

TEST_F(TraceSessionTest, TranslatedHopsNameLocatorHostAndTask) {
  TraceSession s(store_.get(), hub_.get());
  v1::TraceRequest req;
  req.set_target("web/3");
  ASSERT_TRUE(s.Prepare(req).ok());
  const auto dst = s.options().destination;
  // Hop 1 before the ILA router: the quote is the probe's destination.
  v1::ProbeEvent e = s.Annotate(Hop(1, dst));
  EXPECT_FALSE(e.ila().translated());
  // Hop 2 after it (adj-transport: the identifier is unchanged).
  e = s.Annotate(Hop(2, Bytes(kL1.value, 0x2000000000000042)));
  EXPECT_TRUE(e.ila().translated());
  EXPECT_EQ(e.ila().locator(), "2001:db8:1:0");
  EXPECT_EQ(e.ila().identifier(), "2000:0:0:42");
  EXPECT_EQ(e.ila().host(), "task-17");
  EXPECT_EQ(e.ila().task(), "web/3");
  EXPECT_FALSE(e.ila().stale());
  // csum-mode neutral-map: C-bit set, low 16 bits changed; undone.
  const Identifier neutral =
      trace::ApplyChecksumNeutral(kPrefix, kL1, Identifier{0x2000000000000042});
  e = s.Annotate(Hop(3, Bytes(kL1.value, neutral.value)));
  EXPECT_EQ(e.ila().identifier(), "2000:0:0:42");
  EXPECT_EQ(e.ila().task(), "web/3");
  // A router with an old mapping sends the task to kL2: stale.
  e = s.Annotate(Hop(4, Bytes(kL2.value, 0x2000000000000042)));
  EXPECT_TRUE(e.ila().stale());
  EXPECT_EQ(e.ila().expected_locator(), "2001:db8:1:0");
  EXPECT_EQ(e.ila().host(), "");  // no host agent announced kL2
  // The destination answers at hop 5; a lost probe at hop 4.
  trace::ProbeResult reached;
  reached.ttl = 5;
  reached.from = dst;
  reached.reached = true;
  s.Annotate(reached);
  trace::ProbeResult lost;
  lost.ttl = 4;
  lost.query = 1;
  s.Annotate(lost);
  v1::TraceSummary sum = s.Summary();
  EXPECT_TRUE(sum.reached());
  ASSERT_EQ(sum.hops_size(), 5);
  EXPECT_EQ(sum.hops(3).lost(), 1);
  EXPECT_EQ(sum.hops(3).rtts_ms_size(), 1);
  EXPECT_TRUE(sum.hops(1).ila().translated());
  EXPECT_TRUE(sum.hops(4).reached());
}

}  // namespace
}  // namespace ila::server
