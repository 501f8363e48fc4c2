// StreamHub without gRPC streams: a sink the test drains by hand, so the
// paths a host agent's subscription takes (revisions recorded per locator,
// their overflow, the ring and the change log) are exercised
// deterministically.
#include "server/stream_hub.h"

#include <grpc/grpc.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_store.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

constexpr Locator kLocA{0x20010db8000a0000};
constexpr Locator kLocB{0x20010db8000b0000};
constexpr char kLocAText[] = "2001:db8:a:0";

storage::RegisterOp Reg(std::string task, Locator locator) {
  return storage::RegisterOp{std::move(task), locator, std::nullopt,
                             std::nullopt, std::nullopt};
}

// A store in `dir` without fsync (these tests do not crash).
absl::StatusOr<std::unique_ptr<storage::RocksDbMappingStore>> OpenStore(
    const testing::TempDir& dir) {
  storage::RocksDbStoreOptions so;
  so.path = dir.Sub("db");
  so.sync_mode = storage::SyncMode::kNone;
  return storage::RocksDbMappingStore::Open(std::move(so));
}

class NullSink : public SubscriberSink {
 public:
  void Wake() override {}
  void Close(const grpc::Status&) override {}
};

struct HubCase {
  const char* name;
  size_t ring_max_changes;
  int revisions;    // committed while the subscriber does not read
  int drain_every;  // the subscriber reads after this many commits (0: end)
};

class StreamHubTest : public ::testing::TestWithParam<HubCase> {
 protected:
  void SetUp() override {
    grpc_init();
    auto store = OpenStore(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    StreamHubOptions ho;
    ho.ring_max_changes = GetParam().ring_max_changes;
    ho.batch_delay = absl::ZeroDuration();
    ho.skip_progress_delay = absl::ZeroDuration();
    hub_ = std::make_unique<StreamHub>(store_.get(), ho);
    store_->AddCommitObserver(hub_.get());
    ASSERT_TRUE(hub_->Start().ok());
  }
  void TearDown() override {
    hub_.reset();
    store_.reset();
    grpc_shutdown();
  }

  // Commits one operation; returns its revision.
  int64_t Commit(storage::Operation op) {
    auto r = store_->Commit(storage::WriteRequest{{std::move(op)}, false});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->revision : 0;
  }

  // Takes the next message for `sub`, if any: appends the revisions of its
  // updates and advances current_.
  bool TakeOne(Subscription& sub, std::vector<int64_t>* revisions) {
    auto next = hub_->NextMessage(sub);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return false;
    v1::SubscribeResponse resp;
    grpc::ByteBuffer bytes = **next;
    EXPECT_TRUE(grpc::SerializationTraits<v1::SubscribeResponse>::Deserialize(
                    &bytes, &resp)
                    .ok());
    if (resp.has_progress()) {
      current_ = resp.progress().revision();
      return true;
    }
    EXPECT_TRUE(resp.has_updates()) << resp.ShortDebugString();
    for (const auto& u : resp.updates().updates()) {
      revisions->push_back(u.revision());
    }
    if (!revisions->empty()) current_ = revisions->back();
    return true;
  }

  // Takes every message the hub has for `sub` until it reports the latest
  // revision.
  void Drain(Subscription& sub, std::vector<int64_t>* revisions) {
    const int64_t latest = hub_->latest_revision();
    for (int i = 0; i < 100000 && current_ < latest; ++i) {
      ASSERT_TRUE(TakeOne(sub, revisions))
          << "nothing to send before revision " << latest;
    }
    ASSERT_EQ(current_, latest) << "the hub never reached it";
  }

  // A host agent on locator A that resumes after one commit elsewhere.
  absl::StatusOr<std::shared_ptr<Subscription>> AddSeededHostAgent(
      NullSink* sink) {
    return AddHostAgent(Commit(Reg("seed", kLocB)), sink);
  }

  absl::StatusOr<std::shared_ptr<Subscription>> AddHostAgent(int64_t resume,
                                                             NullSink* sink) {
    v1::Hello hello;
    hello.set_node("host-a");
    hello.set_role(v1::NODE_ROLE_HOST);
    hello.set_resume_revision(resume);
    hello.mutable_filter()->add_locators(kLocAText);
    return hub_->Add(hello, "test", sink);
  }

  int64_t current_ = 0;  // the subscriber knows it has everything up to it
  testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbMappingStore> store_;
  std::unique_ptr<StreamHub> hub_;
};

// A host agent filtering on locator A gets exactly the revisions whose
// change had A before or after, in order, whether it reads after every few
// commits (the recorded revisions) or only after hundreds of them (more than
// the list holds: a scan), and whether they are in the ring or only in the
// change log.
TEST_P(StreamHubTest, HostAgentGetsExactlyTheRevisionsTouchingItsLocators) {
  NullSink sink;
  auto sub = AddSeededHostAgent(&sink);
  ASSERT_TRUE(sub.ok()) << sub.status();

  std::vector<int64_t> expected;
  std::vector<int64_t> got;
  std::vector<std::string> on_a, on_b;
  for (int i = 0; i < GetParam().revisions; ++i) {
    int64_t r = 0;
    bool touches_a = false;
    switch (i % 5) {
      case 0:
        on_a.push_back(absl::StrCat("a", i));
        r = Commit(Reg(on_a.back(), kLocA));
        touches_a = true;
        break;
      case 1:
      case 2:
        on_b.push_back(absl::StrCat("b", i));
        r = Commit(Reg(on_b.back(), kLocB));
        break;
      case 3:  // A -> B: a delete for the host agent
        on_b.push_back(on_a.back());
        on_a.pop_back();
        r = Commit(storage::MoveOp{on_b.back(), kLocB, std::nullopt});
        touches_a = true;
        break;
      case 4:  // B -> A every other time: an upsert
        if (i % 10 == 4) {
          on_a.push_back(on_b.front());
          on_b.erase(on_b.begin());
          r = Commit(storage::MoveOp{on_a.back(), kLocA, std::nullopt});
          touches_a = true;
        } else {
          r = Commit(storage::UnregisterOp{on_b.back(), std::nullopt});
          on_b.pop_back();
        }
        break;
    }
    if (touches_a) expected.push_back(r);
    const int every = GetParam().drain_every;
    if (every > 0 && (i + 1) % every == 0) Drain(**sub, &got);
  }
  Drain(**sub, &got);
  EXPECT_EQ(got, expected);
  // Acked what it was told: no lag, although it was sent only its revisions.
  v1::Ack ack;
  ack.set_applied_revision(current_);
  ASSERT_TRUE(hub_->OnAck(**sub, ack).ok());
  // A later revision elsewhere is none of its business: still no lag.
  Commit(Reg("elsewhere", kLocB));
  v1::ListSubscribersResponse list = hub_->ListSubscribers();
  ASSERT_EQ(list.subscribers_size(), 1);
  EXPECT_EQ(list.subscribers(0).lag_revisions(), 0)
      << list.subscribers(0).ShortDebugString();
  hub_->Remove(*sub);
}

// Commits from several threads while the host agent reads all the time: a
// revision committed while a read takes its recorded revisions is neither
// skipped nor sent twice.
TEST_P(StreamHubTest, ConcurrentCommitsAndReadsLoseNothing) {
  NullSink sink;
  auto sub = AddSeededHostAgent(&sink);
  ASSERT_TRUE(sub.ok()) << sub.status();
  absl::Mutex mu;
  std::vector<int64_t> expected;
  std::atomic<int> running{4};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < GetParam().revisions / 4; ++i) {
        const bool a = (i + w) % 3 == 0;
        const int64_t r =
            Commit(Reg(absl::StrCat("w", w, "/", i), a ? kLocA : kLocB));
        if (a) {
          absl::MutexLock l(&mu);
          expected.push_back(r);
        }
      }
      --running;
    });
  }
  std::vector<int64_t> got;
  for (int i = 0; i < 10000000 && running.load() > 0; ++i) {
    TakeOne(**sub, &got);
  }
  for (auto& t : writers) t.join();
  Drain(**sub, &got);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
  hub_->Remove(*sub);
}

// A sink that counts the hub's wake-ups.
class CountingSink : public SubscriberSink {
 public:
  void Wake() override {
    absl::MutexLock l(&mu_);
    ++wakes_;
  }
  void Close(const grpc::Status&) override {}
  // Waits (bounded) until more than `n` wake-ups happened.
  bool AwaitMoreThan(int n, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wakes_ > n; };
    return mu_.AwaitWithTimeout(absl::Condition(&more), timeout);
  }
  int wakes() {
    absl::MutexLock l(&mu_);
    return wakes_;
  }

 private:
  absl::Mutex mu_;
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Coalescing has a leading edge: with a window of an hour, a commit after a
// quiet window still reaches the subscriber at once; a second one inside the
// window waits for the window's end.
TEST(StreamHubWindow, FirstCommitOfAWindowGoesOutAtOnce) {
  grpc_init();
  {
    testing::TempDir dir;
    auto store = OpenStore(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    StreamHubOptions ho;
    ho.batch_delay = absl::Hours(1);
    ho.progress_interval = absl::Hours(10);
    StreamHub hub(store->get(), ho);
    (*store)->AddCommitObserver(&hub);
    ASSERT_TRUE(hub.Start().ok());
    auto commit = [&](const std::string& task) {
      auto r =
          (*store)->Commit(storage::WriteRequest{{Reg(task, kLocA)}, false});
      EXPECT_TRUE(r.ok()) << r.status();
      return r.ok() ? r->revision : 0;
    };
    const int64_t first = commit("before");
    CountingSink sink;
    v1::Hello hello;
    hello.set_node("router-1");
    hello.set_role(v1::NODE_ROLE_ROUTER);
    hello.set_resume_revision(first);
    auto sub = hub.Add(hello, "test", &sink);
    ASSERT_TRUE(sub.ok()) << sub.status();
    const int before = sink.wakes();

    const int64_t second = commit("one");
    ASSERT_TRUE(sink.AwaitMoreThan(before, absl::Seconds(10)))
        << "the first commit of a window was held back";
    auto next = hub.NextMessage(**sub);
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(next->has_value());
    v1::SubscribeResponse resp;
    grpc::ByteBuffer bytes = **next;
    ASSERT_TRUE(grpc::SerializationTraits<v1::SubscribeResponse>::Deserialize(
                    &bytes, &resp)
                    .ok());
    ASSERT_EQ(resp.updates().updates_size(), 1) << resp.ShortDebugString();
    EXPECT_EQ(resp.updates().updates(0).revision(), second);

    // Inside the window: nothing now (it comes when the window ends).
    commit("two");
    next = hub.NextMessage(**sub);
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_FALSE(next->has_value());
    hub.Remove(*sub);
    hub.CloseAll();
    hub.Stop();
  }
  grpc_shutdown();
}

// The threads that woke a set of sinks.
class ThreadRecordingSink : public SubscriberSink {
 public:
  struct Seen {
    absl::Mutex mu;
    std::set<std::thread::id> threads ABSL_GUARDED_BY(mu);
    int woken ABSL_GUARDED_BY(mu) = 0;  // sinks woken at least once
  };
  explicit ThreadRecordingSink(Seen* seen) : seen_(seen) {}
  void Wake() override {
    absl::MutexLock l(&seen_->mu);
    seen_->threads.insert(std::this_thread::get_id());
    if (!woken_) ++seen_->woken;
    woken_ = true;
  }
  void Close(const grpc::Status&) override {}

 private:
  Seen* seen_;
  bool woken_ = false;  // guarded by seen_->mu
};

// With many subscribers, the wakes after a commit are split across the
// fan-out thread and its helpers (a wake runs the stream's next gRPC write
// on the waking thread): every subscriber is woken, by exactly the
// configured number of threads, and Stop() ends the helpers.
TEST(StreamHubWake, ManySubscribersAreWokenByEveryWakeThread) {
  grpc_init();
  {
    testing::TempDir dir;
    auto store = OpenStore(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    StreamHubOptions ho;
    ho.batch_delay = absl::ZeroDuration();
    ho.fan_out_threads = 3;
    StreamHub hub(store->get(), ho);
    (*store)->AddCommitObserver(&hub);
    ASSERT_TRUE(hub.Start().ok());
    constexpr int kSubscribers = 200;  // 3 shares of at least 32
    ThreadRecordingSink::Seen seen;
    std::vector<std::unique_ptr<ThreadRecordingSink>> sinks;
    std::vector<std::shared_ptr<Subscription>> subs;
    for (int i = 0; i < kSubscribers; ++i) {
      sinks.push_back(std::make_unique<ThreadRecordingSink>(&seen));
      v1::Hello hello;
      hello.set_node(absl::StrCat("router-", i));
      hello.set_role(v1::NODE_ROLE_ROUTER);
      hello.set_resume_revision(hub.latest_revision());
      auto sub = hub.Add(hello, "test", sinks.back().get());
      ASSERT_TRUE(sub.ok()) << sub.status();
      subs.push_back(*sub);
    }
    auto r = (*store)->Commit(storage::WriteRequest{{Reg("t", kLocA)}, false});
    ASSERT_TRUE(r.ok()) << r.status();
    {
      absl::MutexLock l(&seen.mu);
      auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) {
        return seen.woken == kSubscribers;
      };
      EXPECT_TRUE(
          seen.mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30)))
          << seen.woken << " of " << kSubscribers << " woken";
      EXPECT_EQ(seen.threads.size(), 3u);
      EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u);
    }
    for (auto& sub : subs) hub.Remove(sub);
    hub.CloseAll();
    hub.Stop();
  }
  grpc_shutdown();
}

INSTANTIATE_TEST_SUITE_P(
    Paths, StreamHubTest,
    ::testing::Values(HubCase{"RecordedRevisions", 200000, 600, 7},
                      HubCase{"MoreThanTheListHolds", 200000, 2000, 0},
                      HubCase{"OffTheRing", 50, 600, 40},
                      HubCase{"OffTheRingAndTheList", 50, 2000, 0}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace ila::server
