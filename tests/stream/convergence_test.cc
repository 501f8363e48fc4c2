// Convergence: 1,000 concurrent subscribers on loopback with mixed filters
// while 100,000 random register/move/unregister operations run. At the end
// every subscriber's replica equals the server's state for its filter, and
// no subscriber saw a revision go back or repeat (the client library counts
// such protocol violations).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/subscriber.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/convert.h"
#include "server/server.h"
#include "server/stream_filter.h"
#include "tests/testing/temp_dir.h"

namespace ila {
namespace {

// Sizes can be lowered for experiments (never in CI):
// ILA_CONVERGENCE_SUBS, ILA_CONVERGENCE_OPS.
int EnvOr(const char* name, int value) {
  const char* v = getenv(name);
  return v && *v ? atoi(v) : value;
}
const int kSubscribers = EnvOr("ILA_CONVERGENCE_SUBS", 1000);
const int kOperations = EnvOr("ILA_CONVERGENCE_OPS", 100000);
constexpr int kWriters = 16;
constexpr int kTasksPerWriter = 320;
const char* kLocators[] = {
    "2001:db8:1::", "2001:db8:2::", "2001:db8:3::", "2001:db8:4::",
    "2001:db8:5::", "2001:db8:6::", "2001:db8:7::", "2001:db8:8::"};
const char* kPrefixes[] = {"fd00:0:0:1", "fd00:0:0:2"};

v1::Filter FilterFor(int i) {
  v1::Filter f;
  switch (i % 4) {
    case 0:
      break;  // everything (a router)
    case 1:
      f.set_shard_index((i / 4) % 8);
      f.set_shard_count(8);
      break;
    case 2:  // a host agent with two locators
      f.add_locators(kLocators[i % 8]);
      f.add_locators(kLocators[(i + 3) % 8]);
      break;
    case 3:
      f.set_sir_prefix(kPrefixes[(i / 4) % 2]);
      break;
  }
  return f;
}

void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

TEST(Convergence, ThousandSubscribersHundredThousandOperations) {
  RaiseFileLimit();
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < static_cast<rlim_t>(4 * kSubscribers + 256)) {
    GTEST_SKIP() << "needs " << 4 * kSubscribers + 256
                 << " open files; the limit is " << rl.rlim_cur;
  }
  (void)logging::SetLevel("warn");
  testing::TempDir dir;
  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.store.path = dir.Sub("db");
  o.store.sync_mode = storage::SyncMode::kNone;  // durability is not under test
  auto srv = server::IlaServer::Start(o);
  ASSERT_TRUE(srv.ok()) << srv.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*srv)->port());

  std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
  for (int i = 0; i < kSubscribers; ++i) {
    client::SubscriberOptions so;
    so.servers = {address};
    so.node = absl::StrCat("node-", i);
    so.role = i % 4 == 2 ? v1::NODE_ROLE_HOST : v1::NODE_ROLE_ROUTER;
    so.filter = FilterFor(i);
    so.connection_group = i % 16;  // 16 sockets, ~63 streams each
    so.initial_backoff = absl::Milliseconds(50);
    so.max_backoff = absl::Seconds(1);
    subs.push_back(std::make_unique<client::StreamSubscriber>(so, nullptr));
    subs.back()->Start();
  }

  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  const absl::Time start = absl::Now();
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto stub = v1::MappingService::NewStub(channel);
      std::mt19937 rng(1000 + w);
      std::vector<bool> live(kTasksPerWriter, false);
      for (int n = 0; n < kOperations / kWriters; ++n) {
        const int k =
            std::uniform_int_distribution<int>(0, kTasksPerWriter - 1)(rng);
        const std::string task = absl::StrCat("w", w, "/t", k);
        const char* loc = kLocators[rng() % 8];
        grpc::ClientContext ctx;
        grpc::Status s;
        if (!live[k]) {
          v1::RegisterTaskRequest req;
          req.set_task(task);
          req.set_locator(loc);
          req.set_sir_prefix(kPrefixes[rng() % 2]);
          v1::RegisterTaskResponse resp;
          s = stub->RegisterTask(&ctx, req, &resp);
          live[k] = true;
        } else if (rng() % 3 != 0) {
          v1::MoveTaskRequest req;
          req.set_task(task);
          req.set_locator(loc);
          v1::MoveTaskResponse resp;
          s = stub->MoveTask(&ctx, req, &resp);
        } else {
          v1::UnregisterTaskRequest req;
          req.set_task(task);
          v1::UnregisterTaskResponse resp;
          s = stub->UnregisterTask(&ctx, req, &resp);
          live[k] = false;
        }
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  const absl::Time writes_done = absl::Now();

  auto status = (*srv)->store()->Status();
  ASSERT_TRUE(status.ok());
  const int64_t final_revision = status->revision;
  EXPECT_GT(final_revision, kOperations / 2);

  // The server's state, read through the store.
  std::vector<storage::Mapping> state;
  storage::ListOptions lo;
  lo.limit = 10000;
  for (;;) {
    auto page = (*srv)->store()->List(lo);
    ASSERT_TRUE(page.ok());
    state.insert(state.end(), page->mappings.begin(), page->mappings.end());
    if (!page->more) break;
    lo.revision = page->revision;
    lo.after = page->mappings.back().identifier;
  }

  for (int i = 0; i < kSubscribers; ++i) {
    auto& sub = *subs[i];
    ASSERT_TRUE(sub.WaitForRevision(final_revision, absl::Seconds(300)))
        << "subscriber " << i << " stuck at " << sub.applied_revision()
        << " of " << final_revision;
    EXPECT_EQ(sub.stats().violations, 0)
        << "subscriber " << i << ": " << sub.stats().last_violation;
    auto filter = server::ParseFilter(FilterFor(i));
    ASSERT_TRUE(filter.ok());
    client::Replica replica = sub.CopyReplica();
    size_t expected = 0;
    for (const auto& m : state) {
      if (!filter->Matches(m)) continue;
      ++expected;
      auto it = replica.find(m.identifier.value);
      ASSERT_NE(it, replica.end()) << "subscriber " << i << " lacks " << m.task;
      auto got = server::FromProto(it->second);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, m) << "subscriber " << i << " task " << m.task;
    }
    EXPECT_EQ(replica.size(), expected) << "subscriber " << i;
  }
  std::cerr << "writes took " << (writes_done - start) << ", convergence "
            << (absl::Now() - writes_done) << ", " << final_revision
            << " revisions; hub built " << (*srv)->hub()->stats().updates_built
            << " and reused " << (*srv)->hub()->stats().updates_reused
            << " Updates messages\n";
  for (auto& s : subs) s->Stop();
  (*srv)->Shutdown();
}

}  // namespace
}  // namespace ila
