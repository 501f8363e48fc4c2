// Protocol tests of MappingStream.Subscribe against the real server
// in-process: raw streams where message order matters, the client library
// where the replica matters.
#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/server.h"
#include "server/stream_filter.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

constexpr char kLocA[] = "2001:db8:a::";
constexpr char kLocB[] = "2001:db8:b::";

// Records a subscriber's changes.
class Recorder : public client::SubscriberListener {
 public:
  struct Event {
    int64_t revision;
    uint64_t identifier;
    bool deleted;
  };
  void OnChange(int64_t revision, uint64_t identifier, const v1::Mapping*,
                const v1::Mapping* after) override {
    absl::MutexLock l(&mu_);
    events_.push_back({revision, identifier, after == nullptr});
  }
  std::vector<Event> events() {
    absl::MutexLock l(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_;
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override { server_.reset(); }

  void Start(int64_t retained = 100000, size_t ring = 200000) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.store.path = dir_.Sub("db");
    o.store.retained_revisions = retained;
    o.streams.ring_max_changes = ring;
    o.streams.progress_interval = absl::Milliseconds(200);
    auto s = IlaServer::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    mappings_ = v1::MappingService::NewStub(channel_);
    streams_ = v1::MappingStream::NewStub(channel_);
  }

  int64_t Register(const std::string& task, const std::string& locator) {
    v1::RegisterTaskRequest req;
    req.set_task(task);
    req.set_locator(locator);
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = mappings_->RegisterTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.revision();
  }
  int64_t Move(const std::string& task, const std::string& locator) {
    v1::MoveTaskRequest req;
    req.set_task(task);
    req.set_locator(locator);
    v1::MoveTaskResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(mappings_->MoveTask(&ctx, req, &resp).ok());
    return resp.revision();
  }
  int64_t Unregister(const std::string& task) {
    v1::UnregisterTaskRequest req;
    req.set_task(task);
    v1::UnregisterTaskResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(mappings_->UnregisterTask(&ctx, req, &resp).ok());
    return resp.revision();
  }
  std::map<uint64_t, v1::Mapping> ServerState() {
    std::map<uint64_t, v1::Mapping> out;
    v1::ListRequest req;
    req.set_page_size(10000);
    for (;;) {
      v1::ListResponse resp;
      grpc::ClientContext ctx;
      EXPECT_TRUE(mappings_->List(&ctx, req, &resp).ok());
      for (const auto& m : resp.mappings()) out[m.identifier()] = m;
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }

  client::SubscriberOptions SubOptions(const std::string& node) {
    client::SubscriberOptions o;
    o.servers = {address_};
    o.node = node;
    o.initial_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(200);
    return o;
  }

  static std::map<uint64_t, v1::Mapping> Sorted(const client::Replica& r) {
    return std::map<uint64_t, v1::Mapping>(r.begin(), r.end());
  }

  // A raw stream for tests that look at message order.
  struct Raw {
    grpc::ClientContext ctx;
    std::unique_ptr<
        grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>>
        stream;
  };
  std::unique_ptr<Raw> OpenRaw(int64_t resume, v1::Filter filter = {},
                               uint64_t history = 0) {
    auto raw = std::make_unique<Raw>();
    raw->ctx.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    raw->stream = streams_->Subscribe(&raw->ctx);
    v1::SubscribeRequest req;
    req.mutable_hello()->set_node("raw-test");
    req.mutable_hello()->set_role(v1::NODE_ROLE_OBSERVER);
    req.mutable_hello()->set_resume_revision(resume);
    req.mutable_hello()->set_resume_history(history);
    *req.mutable_hello()->mutable_filter() = filter;
    EXPECT_TRUE(raw->stream->Write(req));
    return raw;
  }

  testing::TempDir dir_;
  std::unique_ptr<IlaServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MappingService::Stub> mappings_;
  std::unique_ptr<v1::MappingStream::Stub> streams_;
};

TEST_F(StreamTest, SnapshotThenUpdatesBuildAnExactReplica) {
  for (int i = 0; i < 30; ++i) Register(absl::StrCat("t", i), kLocA);
  client::StreamSubscriber sub(SubOptions("r1"), nullptr);
  sub.Start();
  ASSERT_TRUE(sub.WaitForRevision(30, absl::Seconds(20)));
  EXPECT_EQ(Sorted(sub.CopyReplica()).size(), 30u);
  Move("t1", kLocB);
  Unregister("t2");
  const int64_t last = Register("t-new", kLocB);
  ASSERT_TRUE(sub.WaitForRevision(last, absl::Seconds(20)));
  auto replica = Sorted(sub.CopyReplica());
  auto state = ServerState();
  ASSERT_EQ(replica.size(), state.size());
  for (const auto& [id, m] : state) {
    EXPECT_EQ(replica[id].SerializeAsString(), m.SerializeAsString());
  }
  EXPECT_EQ(sub.stats().snapshots, 1);
  EXPECT_EQ(sub.stats().violations, 0);
}

TEST_F(StreamTest, ResumeSendsExactlyTheRevisionsAfterIt) {
  for (int i = 0; i < 20; ++i) Register(absl::StrCat("t", i), kLocA);
  auto raw = OpenRaw(/*resume=*/7);
  std::vector<int64_t> seen;
  v1::SubscribeResponse resp;
  while (seen.size() < 13 && raw->stream->Read(&resp)) {
    ASSERT_FALSE(resp.has_snapshot_begin()) << "resume must not snapshot";
    for (const auto& u : resp.updates().updates()) seen.push_back(u.revision());
  }
  std::vector<int64_t> want;
  for (int r = 8; r <= 20; ++r) want.push_back(r);
  EXPECT_EQ(seen, want);
  raw->ctx.TryCancel();
}

TEST_F(StreamTest, ResumedStreamNeverGoesBack) {
  for (int i = 0; i < 5; ++i) Register(absl::StrCat("t", i), kLocA);
  client::StreamSubscriber sub(SubOptions("r1"), nullptr);
  sub.Start();
  ASSERT_TRUE(sub.WaitForRevision(5, absl::Seconds(20)));
  // Restart the server under the subscriber, write more, and see it resume.
  server_.reset();
  Start();
  // The new server listens on a new port: a new subscriber continues from
  // the old one's position.
  client::SubscriberOptions o = SubOptions("r2");
  o.resume_revision = sub.applied_revision();
  sub.Stop();
  for (int i = 5; i < 10; ++i) Register(absl::StrCat("t", i), kLocA);
  Recorder rec;
  client::StreamSubscriber resumed(o, &rec);
  resumed.Start();
  ASSERT_TRUE(resumed.WaitForRevision(10, absl::Seconds(20)));
  auto events = rec.events();
  std::string got;
  for (const auto& e : events) absl::StrAppend(&got, " ", e.revision);
  ASSERT_EQ(events.size(), 5u)
      << "revisions:" << got << "; resumed from " << o.resume_revision;
  for (const auto& e : events) EXPECT_GT(e.revision, 5);
  EXPECT_EQ(resumed.stats().snapshots, 0);
  EXPECT_EQ(resumed.stats().violations, 0);
}

// A database replaced under its subscribers (restored from a backup, or a
// new one) has a new history: a subscriber resuming from a revision of the
// old one gets a snapshot even when the new one has reached that revision
// number; with the new history it gets deltas.
TEST_F(StreamTest, ResumeFromAnotherHistoryGetsASnapshot) {
  for (int i = 0; i < 10; ++i) Register(absl::StrCat("old", i), kLocA);
  uint64_t old_history = 0;
  {
    client::StreamSubscriber sub(SubOptions("r1"), nullptr);
    sub.Start();
    ASSERT_TRUE(sub.WaitForRevision(10, absl::Seconds(20)));
    old_history = sub.history();
    sub.Stop();
  }
  ASSERT_NE(old_history, 0u);
  server_.reset();
  std::filesystem::remove_all(dir_.Sub("db"));
  Start();
  for (int i = 0; i < 12; ++i) Register(absl::StrCat("new", i), kLocA);

  auto raw = OpenRaw(/*resume=*/10, {}, old_history);
  v1::SubscribeResponse resp;
  ASSERT_TRUE(raw->stream->Read(&resp));
  ASSERT_TRUE(resp.has_snapshot_begin()) << resp.ShortDebugString();
  EXPECT_EQ(resp.snapshot_begin().revision(), 12);
  const uint64_t new_history = resp.snapshot_begin().history();
  EXPECT_NE(new_history, old_history);
  EXPECT_NE(new_history, 0u);
  raw->ctx.TryCancel();

  auto same = OpenRaw(/*resume=*/10, {}, new_history);
  ASSERT_TRUE(same->stream->Read(&resp));
  ASSERT_TRUE(resp.has_updates()) << resp.ShortDebugString();
  EXPECT_EQ(resp.updates().updates(0).revision(), 11);
  same->ctx.TryCancel();

  // The client library sends the history it saved.
  client::SubscriberOptions o = SubOptions("r2");
  o.resume_revision = 10;
  o.resume_history = old_history;
  Recorder rec;
  client::StreamSubscriber resumed(o, &rec);
  resumed.Start();
  ASSERT_TRUE(resumed.WaitForRevision(12, absl::Seconds(20)));
  EXPECT_EQ(resumed.stats().snapshots, 1);
  EXPECT_EQ(resumed.history(), new_history);
  EXPECT_EQ(resumed.CopyReplica().size(), 12u);
}

TEST_F(StreamTest, ResumePastCompactionGetsASnapshot) {
  server_.reset();
  Start(/*retained=*/5, /*ring=*/4);
  for (int i = 0; i < 60; ++i) Register(absl::StrCat("t", i), kLocA);
  auto raw = OpenRaw(/*resume=*/3);
  v1::SubscribeResponse resp;
  ASSERT_TRUE(raw->stream->Read(&resp));
  ASSERT_TRUE(resp.has_snapshot_begin());
  EXPECT_EQ(resp.snapshot_begin().revision(), 60);
  int64_t count = 0;
  while (raw->stream->Read(&resp) && !resp.has_snapshot_end()) {
    count += resp.snapshot_chunk().mappings_size();
  }
  EXPECT_EQ(count, 60);
  EXPECT_EQ(resp.snapshot_end().mapping_count(), 60);
  raw->ctx.TryCancel();
}

TEST_F(StreamTest, FallingOffTheRingCatchesUpFromTheChangeLog) {
  server_.reset();
  Start(/*retained=*/100000, /*ring=*/4);
  for (int i = 0; i < 40; ++i) Register(absl::StrCat("t", i), kLocA);
  auto raw = OpenRaw(/*resume=*/10);
  std::vector<int64_t> seen;
  v1::SubscribeResponse resp;
  while (seen.size() < 30 && raw->stream->Read(&resp)) {
    ASSERT_FALSE(resp.has_snapshot_begin());
    for (const auto& u : resp.updates().updates()) seen.push_back(u.revision());
  }
  ASSERT_EQ(seen.size(), 30u);
  EXPECT_EQ(seen.front(), 11);
  EXPECT_EQ(seen.back(), 40);
  raw->ctx.TryCancel();
}

TEST_F(StreamTest, DeletesNearCompactionAreNotLost) {
  server_.reset();
  Start(/*retained=*/5, /*ring=*/4);
  for (int i = 0; i < 10; ++i) Register(absl::StrCat("t", i), kLocA);
  client::SubscriberOptions o = SubOptions("r1");
  client::StreamSubscriber first(o, nullptr);
  first.Start();
  ASSERT_TRUE(first.WaitForRevision(10, absl::Seconds(20)));
  const client::Replica held = first.CopyReplica();
  first.Stop();
  Unregister("t3");  // revision 11, soon compacted away
  for (int i = 10; i < 40; ++i) Register(absl::StrCat("t", i), kLocA);
  o.resume_revision = 10;
  client::StreamSubscriber resumed(o, nullptr);
  resumed.Start();
  ASSERT_TRUE(resumed.WaitForRevision(40, absl::Seconds(20)));
  auto replica = Sorted(resumed.CopyReplica());
  auto state = ServerState();
  EXPECT_EQ(replica.size(), state.size());
  for (const auto& [id, m] : replica) {
    EXPECT_NE(m.task(), "t3") << "the delete of t3 was lost";
    EXPECT_TRUE(state.contains(id));
  }
  EXPECT_EQ(resumed.stats().snapshots, 1);
  EXPECT_EQ(held.size(), 10u);
}

TEST_F(StreamTest, MovesIntoAndOutOfTheFilterAreUpsertsAndDeletes) {
  client::SubscriberOptions o = SubOptions("host-a");
  o.role = v1::NODE_ROLE_HOST;
  o.filter.add_locators(kLocA);
  Recorder rec;
  client::StreamSubscriber sub(o, &rec);
  sub.Start();
  ASSERT_TRUE(sub.WaitForRevision(0, absl::Seconds(20)));
  Register("elsewhere", kLocB);                   // 1: not for host-a
  const int64_t in = Move("elsewhere", kLocA);    // 2: moves in
  const int64_t out = Move("elsewhere", kLocB);   // 3: moves out
  const int64_t last = Register("other", kLocB);  // 4: not for host-a
  ASSERT_TRUE(sub.WaitForRevision(last, absl::Seconds(20)));
  auto events = rec.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].revision, in);
  EXPECT_FALSE(events[0].deleted);
  EXPECT_EQ(events[1].revision, out);
  EXPECT_TRUE(events[1].deleted);
  EXPECT_TRUE(sub.CopyReplica().empty());
}

TEST_F(StreamTest, ProgressNeverAnnouncesARevisionBeforeItsEvents) {
  v1::Filter filter;
  filter.add_locators(kLocA);
  auto raw = OpenRaw(0, filter);
  std::set<int64_t> for_a;
  for (int i = 0; i < 200; ++i) {
    const int64_t r =
        Register(absl::StrCat("t", i), i % 3 == 0 ? kLocA : kLocB);
    if (i % 3 == 0) for_a.insert(r);
  }
  std::set<int64_t> received;
  int progresses = 0;
  v1::SubscribeResponse resp;
  while (raw->stream->Read(&resp)) {
    if (resp.has_snapshot_begin()) {
      // The stream may start after the first writes: those came in the
      // snapshot.
      for (int64_t r : for_a) {
        if (r <= resp.snapshot_begin().revision()) received.insert(r);
      }
    }
    for (const auto& u : resp.updates().updates()) {
      EXPECT_TRUE(for_a.contains(u.revision())) << u.revision();
      EXPECT_TRUE(received.insert(u.revision()).second);
    }
    if (resp.has_progress()) {
      ++progresses;
      for (int64_t r : for_a) {
        if (r <= resp.progress().revision()) {
          EXPECT_TRUE(received.contains(r))
              << "progress " << resp.progress().revision()
              << " announced before revision " << r;
        }
      }
      if (resp.progress().revision() == 200) break;
    }
  }
  EXPECT_GT(progresses, 0);
  EXPECT_EQ(received, for_a);
  raw->ctx.TryCancel();
}

TEST_F(StreamTest, ShardsPartitionTheMappings) {
  for (int i = 0; i < 100; ++i) Register(absl::StrCat("t", i), kLocA);
  size_t total = 0;
  for (uint32_t shard = 0; shard < 4; ++shard) {
    client::SubscriberOptions o = SubOptions(absl::StrCat("router-", shard));
    o.role = v1::NODE_ROLE_ROUTER;
    o.filter.set_shard_index(shard);
    o.filter.set_shard_count(4);
    client::StreamSubscriber sub(o, nullptr);
    sub.Start();
    ASSERT_TRUE(sub.WaitForRevision(100, absl::Seconds(20)));
    for (const auto& [id, m] : sub.CopyReplica()) {
      EXPECT_EQ(ShardOf(Identifier{id}, 4), shard);
    }
    total += sub.CopyReplica().size();
  }
  EXPECT_EQ(total, 100u);
}

TEST_F(StreamTest, BadHelloIsInvalidArgumentNamingTheField) {
  struct Case {
    std::function<void(v1::Hello*)> set;
    const char* want;
  } cases[] = {
      {[](v1::Hello* h) { h->set_role(v1::NODE_ROLE_UNSPECIFIED); },
       "hello.role"},
      {[](v1::Hello* h) { h->set_node(""); }, "hello.node"},
      {[](v1::Hello* h) { h->mutable_filter()->add_locators("zz"); },
       "hello: filter.locators[0]: \"zz\""},
      {[](v1::Hello* h) {
         h->mutable_filter()->set_shard_count(2);
         h->mutable_filter()->set_shard_index(2);
       },
       "filter.shard_index: 2 must be below"},
      {[](v1::Hello* h) { h->set_resume_revision(-1); },
       "hello.resume_revision: -1"},
  };
  for (const auto& c : cases) {
    grpc::ClientContext ctx;
    auto stream = streams_->Subscribe(&ctx);
    v1::SubscribeRequest req;
    req.mutable_hello()->set_node("n");
    req.mutable_hello()->set_role(v1::NODE_ROLE_ROUTER);
    c.set(req.mutable_hello());
    stream->Write(req);
    v1::SubscribeResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.want;
    EXPECT_THAT(s.error_message(), HasSubstr(c.want));
  }
  // An Ack first is not a Hello.
  grpc::ClientContext ctx;
  auto stream = streams_->Subscribe(&ctx);
  v1::SubscribeRequest ack;
  ack.mutable_ack()->set_applied_revision(1);
  stream->Write(ack);
  v1::SubscribeResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_THAT(stream->Finish().error_message(), HasSubstr("must be a Hello"));
}

TEST_F(StreamTest, AckAheadOfWhatWasSentIsRefused) {
  Register("t", kLocA);
  auto raw = OpenRaw(0);
  v1::SubscribeResponse resp;
  ASSERT_TRUE(raw->stream->Read(&resp));  // snapshot begin
  v1::SubscribeRequest ack;
  ack.mutable_ack()->set_applied_revision(999);
  raw->stream->Write(ack);
  while (raw->stream->Read(&resp)) {
  }
  grpc::Status s = raw->stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("ack.applied_revision: 999"));
}

TEST_F(StreamTest, ListSubscribersShowsProgressAndNacks) {
  for (int i = 0; i < 5; ++i) Register(absl::StrCat("t", i), kLocA);
  client::SubscriberOptions o = SubOptions("router-7");
  o.role = v1::NODE_ROLE_ROUTER;
  client::StreamSubscriber sub(o, nullptr);
  sub.Start();
  ASSERT_TRUE(sub.WaitForRevision(5, absl::Seconds(20)));
  auto raw = OpenRaw(5);
  v1::SubscribeRequest nack;
  nack.mutable_nack()->set_revision(5);
  nack.mutable_nack()->set_error("EPERM: no route");
  raw->stream->Write(nack);

  auto diag = v1::Diagnostics::NewStub(channel_);
  // The ack travels asynchronously: poll the diagnostics (bounded).
  v1::ListSubscribersResponse resp;
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(diag->ListSubscribers(&ctx, {}, &resp).ok());
    seen = resp.subscribers_size() == 2;
    for (const auto& s : resp.subscribers()) {
      if (s.node() == "router-7" && s.last_acked_revision() != 5) seen = false;
      if (s.node() == "raw-test" && s.last_nack_revision() != 5) seen = false;
    }
    if (!seen) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(seen);
  EXPECT_EQ(resp.revision(), 5);
  for (const auto& s : resp.subscribers()) {
    if (s.node() == "router-7") {
      EXPECT_EQ(s.role(), v1::NODE_ROLE_ROUTER);
      EXPECT_EQ(s.lag_revisions(), 0);
      EXPECT_EQ(s.snapshots_sent(), 1);
      EXPECT_FALSE(s.peer().empty());
    } else {
      EXPECT_EQ(s.last_nack_error(), "EPERM: no route");
    }
  }
  raw->ctx.TryCancel();
}

TEST_F(StreamTest, StalledSubscriberDoesNotBlockWritersOrOthers) {
  // A stream that never reads: its socket buffers fill up.
  auto stalled = OpenRaw(0);
  client::StreamSubscriber healthy(SubOptions("healthy"), nullptr);
  healthy.Start();
  v1::ApplyRequest batch;
  int64_t last = 0;
  for (int b = 0; b < 40; ++b) {
    batch.Clear();
    for (int i = 0; i < 500; ++i) {
      auto* r = batch.add_operations()->mutable_register_();
      r->set_task(absl::StrCat("b", b, "/", i, std::string(100, 'x')));
      r->set_locator(kLocA);
    }
    v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(mappings_->Apply(&ctx, batch, &resp).ok());
    last = resp.revision();
  }
  ASSERT_TRUE(healthy.WaitForRevision(last, absl::Seconds(60)));
  EXPECT_EQ(healthy.CopyReplica().size(), 20000u);
  stalled->ctx.TryCancel();
}

TEST_F(StreamTest, UpdatesAreSerializedOncePerRangeAndFilter) {
  Register("t0", kLocA);
  std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
  for (int i = 0; i < 20; ++i) {
    subs.push_back(std::make_unique<client::StreamSubscriber>(
        SubOptions(absl::StrCat("n", i)), nullptr));
    subs.back()->Start();
  }
  for (auto& s : subs) ASSERT_TRUE(s->WaitForRevision(1, absl::Seconds(30)));
  const StreamHub::Stats before = server_->hub()->stats();
  const int64_t r = Register("t1", kLocA);
  for (auto& s : subs) ASSERT_TRUE(s->WaitForRevision(r, absl::Seconds(30)));
  const StreamHub::Stats after = server_->hub()->stats();
  // Twenty subscribers, one revision, one filter: built once (twice at most
  // if two raced), reused by the rest.
  EXPECT_LE(after.updates_built - before.updates_built, 2);
  EXPECT_GE(after.updates_reused - before.updates_reused, 18);
}

TEST_F(StreamTest, ShutdownEndsManyOpenStreams) {
  Register("t", kLocA);
  std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
  for (int i = 0; i < 300; ++i) {
    subs.push_back(std::make_unique<client::StreamSubscriber>(
        SubOptions(absl::StrCat("n", i)), nullptr));
    subs.back()->Start();
  }
  for (auto& s : subs) ASSERT_TRUE(s->WaitForRevision(1, absl::Seconds(30)));
  EXPECT_EQ(server_->hub()->subscriber_count(), 300u);
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  for (auto& s : subs) s->Stop();
}

}  // namespace
}  // namespace ila::server
