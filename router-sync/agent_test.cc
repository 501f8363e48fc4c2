// SyncAgent against an in-process ila-server and a fake kernel: refusals are
// reported upstream as a Nack with the kernel's reason and retried until the
// kernel holds exactly the mappings; the host role's translation entries
// and --direct routes; saved state and its filter.
#include "router-sync/agent.h"

#include <grpcpp/grpcpp.h>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::router_sync {
namespace {

using ::testing::HasSubstr;

// A kernel that refuses routes to `refused_locator` while `refusing` is set,
// and holds translation entries as the kernel does (keyed by locator match
// and ifindex; ADD of an existing key is EEXIST).
class FakeKernel : public KernelBackend {
 public:
  absl::StatusOr<std::vector<IlaRoute>> DumpRoutes() override {
    absl::MutexLock l(&mu_);
    std::vector<IlaRoute> out;
    for (const auto& [d, r] : routes_) out.push_back(r);
    return out;
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyRoutes(
      const RoutePlan& plan) override {
    absl::MutexLock l(&mu_);
    std::vector<NetlinkResult> results;
    for (const IlaRoute& r : plan.replace) {
      if (refusing_ && r.locator == refused_) {
        results.push_back(
            {RouteReplaceCommand(r),
             KernelError(RouteReplaceCommand(r), -ENETUNREACH, "refused")});
        continue;
      }
      routes_[r.destination] = r;
      results.push_back({RouteReplaceCommand(r), absl::OkStatus()});
    }
    for (const SirAddress& d : plan.remove) {
      routes_.erase(d);
      results.push_back({"del", absl::OkStatus()});
    }
    return results;
  }
  absl::StatusOr<std::vector<IlaXlatEntry>> DumpXlat() override {
    absl::MutexLock l(&mu_);
    std::vector<IlaXlatEntry> out;
    for (const auto& [k, e] : xlat_) out.push_back(e);
    return out;
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyXlat(
      const XlatPlan& plan) override {
    absl::MutexLock l(&mu_);
    std::vector<NetlinkResult> results;
    for (const IlaXlatEntry& e : plan.remove) {
      xlat_.erase({e.locator_match.value, e.ifindex});
      results.push_back(
          {XlatDeleteCommand(e.locator_match, e.ifindex), absl::OkStatus()});
    }
    for (const IlaXlatEntry& e : plan.add) {
      const bool fresh =
          xlat_.emplace(std::pair{e.locator_match.value, e.ifindex}, e).second;
      results.push_back({XlatAddCommand(e),
                         fresh ? absl::OkStatus()
                               : KernelError(XlatAddCommand(e), -EEXIST, "")});
    }
    return results;
  }
  void Refuse(Locator l, bool on) {
    absl::MutexLock l2(&mu_);
    refused_ = l;
    refusing_ = on;
  }
  void AddXlat(const IlaXlatEntry& e) {
    absl::MutexLock l(&mu_);
    xlat_[{e.locator_match.value, e.ifindex}] = e;
  }
  size_t routes() {
    absl::MutexLock l(&mu_);
    return routes_.size();
  }
  // Waits until the kernel's locators by identifier equal `want`.
  bool WaitFor(const std::map<uint64_t, uint64_t>& want) {
    absl::MutexLock l(&mu_);
    auto equal = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      std::map<uint64_t, uint64_t> have;
      for (const auto& [d, r] : routes_)
        have[d.identifier.value] = r.locator.value;
      return have == want;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&equal), absl::Seconds(30));
  }
  // Waits until the translation entries (locator match -> SIR prefix, any
  // ifindex) equal `want`.
  bool WaitForXlat(const std::map<uint64_t, uint64_t>& want) {
    absl::MutexLock l(&mu_);
    auto equal = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      std::map<uint64_t, uint64_t> have;
      for (const auto& [k, e] : xlat_) {
        have[e.locator_match.value] = e.sir_prefix.value;
      }
      return have == want;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&equal), absl::Seconds(30));
  }

 private:
  absl::Mutex mu_;
  DesiredRoutes routes_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::pair<uint64_t, int32_t>, IlaXlatEntry> xlat_
      ABSL_GUARDED_BY(mu_);
  Locator refused_ ABSL_GUARDED_BY(mu_);
  bool refusing_ ABSL_GUARDED_BY(mu_) = false;
};

// An in-process ila-server and a client for it.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.store.path = dir_.Sub("db");
    auto srv = server::IlaServer::Start(std::move(so));
    ASSERT_TRUE(srv.ok()) << srv.status();
    server_ = *std::move(srv);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::MappingService::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  // Registers a task; returns its mapping.
  v1::Mapping Register(const std::string& task, const std::string& locator,
                       const std::string& sir_prefix = "") {
    v1::RegisterTaskRequest req;
    req.set_task(task);
    req.set_locator(locator);
    req.set_sir_prefix(sir_prefix);
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->RegisterTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.mapping();
  }
  void Move(const std::string& task, const std::string& locator) {
    v1::MoveTaskRequest req;
    req.set_task(task);
    req.set_locator(locator);
    v1::MoveTaskResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->MoveTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  // The last Nack error the server holds for `node`, once there is one
  // (polls the server, bounded: 30 s).
  std::string WaitForNack(const std::string& node) {
    auto diag = v1::Diagnostics::NewStub(channel_);
    for (int i = 0; i < 1500; ++i) {
      v1::ListSubscribersResponse list;
      grpc::ClientContext ctx;
      EXPECT_TRUE(
          diag->ListSubscribers(&ctx, v1::ListSubscribersRequest(), &list)
              .ok());
      for (const auto& s : list.subscribers()) {
        if (s.node() == node && s.last_nack_revision() > 0) {
          return s.last_nack_error();
        }
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling the server
    }
    return "";
  }
  AgentOptions Options(const std::string& name) {
    AgentOptions o;
    o.servers = {address_};
    o.name = name;
    o.route.via =
        Ipv6Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    o.retry_initial = absl::Milliseconds(20);
    o.retry_max = absl::Milliseconds(100);
    return o;
  }

  testing::TempDir dir_;
  std::unique_ptr<server::IlaServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MappingService::Stub> stub_;
};

constexpr uint64_t kL1 = 0x20010db800010000;
constexpr uint64_t kL2 = 0x20010db800020000;
constexpr uint64_t kL3 = 0x20010db800030000;

TEST_F(AgentTest, RefusedRoutesAreNackedAndRetriedUntilTheKernelIsExact) {
  std::map<uint64_t, uint64_t> want;  // identifier -> locator
  auto reg = [&](const std::string& task, const std::string& loc) {
    v1::Mapping m = Register(task, loc);
    want[m.identifier()] = m.locator();
  };
  reg("a", "2001:db8:1::");

  auto kernel_owned = std::make_unique<FakeKernel>();
  FakeKernel* kernel = kernel_owned.get();
  kernel->Refuse(Locator{kL2}, true);
  SyncAgent agent(Options("r1"), std::move(kernel_owned));
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(kernel->WaitFor(want));

  reg("b", "2001:db8:2::");  // refused by the kernel for now
  // The server hears about it as a Nack naming the route and the reason.
  const std::string nack = WaitForNack("r1");
  EXPECT_THAT(nack, HasSubstr("1 change(s) not applied"));
  EXPECT_THAT(nack, HasSubstr("refused"));
  EXPECT_THAT(nack, HasSubstr("encap ila 2001:db8:2:0"));
  EXPECT_GT(agent.stats().failed, 0);
  // The kernel recovers: the retry (with backoff) programs it.
  kernel->Refuse(Locator{}, false);
  EXPECT_TRUE(kernel->WaitFor(want));
  agent.Stop();
}

// Host role: one translation entry per local locator that has tasks,
// locator -> their SIR prefix; entries of other locators are not ours; a
// stale entry of ours is corrected; no routes without --direct.
TEST_F(AgentTest, HostKeepsOneTranslationEntryPerLocalLocatorWithTasks) {
  Register("a", "2001:db8:1::", "fd00:1::");
  Register("b", "2001:db8:1::", "fd00:1::");
  Register("c", "2001:db8:3::", "fd00:1::");  // another host's
  auto kernel_owned = std::make_unique<FakeKernel>();
  FakeKernel* kernel = kernel_owned.get();
  IlaXlatEntry foreign;  // a locator this host does not own
  foreign.locator_match = Locator{0x20010db8009a0000};
  foreign.sir_prefix = SirPrefix{0xfd00000900000000};
  kernel->AddXlat(foreign);
  IlaXlatEntry stale;  // ours, with the wrong SIR prefix
  stale.locator_match = Locator{kL1};
  stale.sir_prefix = SirPrefix{0xfd00000700000000};
  kernel->AddXlat(stale);

  AgentOptions o = Options("h1");
  o.role = AgentRole::kHost;
  o.locators = {kL1, kL2};
  SyncAgent agent(o, std::move(kernel_owned));
  ASSERT_TRUE(agent.Start().ok());
  const uint64_t p1 = 0xfd00000100000000;
  EXPECT_TRUE(kernel->WaitForXlat(
      {{kL1, p1}, {foreign.locator_match.value, foreign.sir_prefix.value}}));
  Move("c", "2001:db8:2::");  // moves onto this host's second locator
  EXPECT_TRUE(
      kernel->WaitForXlat({{kL1, p1},
                           {kL2, p1},
                           {foreign.locator_match.value, 0xfd00000900000000}}));
  Move("a", "2001:db8:3::");  // one of two leaves: the entry stays
  Move("b", "2001:db8:3::");  // the last leaves: the entry goes
  EXPECT_TRUE(kernel->WaitForXlat(
      {{kL2, p1}, {foreign.locator_match.value, 0xfd00000900000000}}));
  EXPECT_EQ(kernel->routes(), 0u);
  EXPECT_EQ(agent.stats().xlat_entries, 1);
  agent.Stop();
}

// The kernel holds one entry per locator: tasks of a second SIR prefix on
// the same locator cannot be translated back, and the server is told.
TEST_F(AgentTest, HostNacksTasksOfASecondSirPrefixOnOneLocator) {
  Register("a", "2001:db8:1::", "fd00:1::");
  Register("b", "2001:db8:1::", "fd00:1::");
  auto kernel_owned = std::make_unique<FakeKernel>();
  FakeKernel* kernel = kernel_owned.get();
  AgentOptions o = Options("h2");
  o.role = AgentRole::kHost;
  o.locators = {kL1};
  SyncAgent agent(o, std::move(kernel_owned));
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(kernel->WaitForXlat({{kL1, 0xfd00000100000000}}));
  Register("z", "2001:db8:1::", "fd00:2::");  // a minority prefix
  const std::string nack = WaitForNack("h2");
  EXPECT_THAT(nack, HasSubstr("1 mapping(s) on locator 2001:db8:1:0 with SIR "
                              "prefix fd00:2:0:0"));
  EXPECT_THAT(nack, HasSubstr("cannot be translated back"));
  EXPECT_TRUE(kernel->WaitForXlat({{kL1, 0xfd00000100000000}}));
  agent.Stop();
}

// --direct: routes to the tasks of other hosts, none to its own; a task
// that moves here loses its route and gains the translation entry.
TEST_F(AgentTest, DirectHostRoutesOnlyToRemoteTasks) {
  v1::Mapping a = Register("a", "2001:db8:1::");
  v1::Mapping b = Register("b", "2001:db8:3::");
  v1::Mapping c = Register("c", "2001:db8:3::");
  auto kernel_owned = std::make_unique<FakeKernel>();
  FakeKernel* kernel = kernel_owned.get();
  AgentOptions o = Options("h3");
  o.role = AgentRole::kHost;
  o.direct = true;
  o.locators = {kL1};
  SyncAgent agent(o, std::move(kernel_owned));
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_TRUE(kernel->WaitFor({{b.identifier(), kL3}, {c.identifier(), kL3}}));
  EXPECT_TRUE(kernel->WaitForXlat({{kL1, a.sir_prefix()}}));
  Move("b", "2001:db8:1::");
  Move("a", "2001:db8:2::");
  EXPECT_TRUE(kernel->WaitFor({{a.identifier(), kL2}, {c.identifier(), kL3}}));
  EXPECT_TRUE(kernel->WaitForXlat({{kL1, b.sir_prefix()}}));
  agent.Stop();
}

// A state saved under another filter is not resumed (the server's deltas
// are per filter): the kernel waits for a snapshot instead.
TEST_F(AgentTest, StateOfAnotherFilterIsNotResumed) {
  v1::Mapping a = Register("a", "2001:db8:1::");
  {
    AgentOptions o = Options("r2");
    o.state_dir = dir_.path();
    auto kernel_owned = std::make_unique<FakeKernel>();
    FakeKernel* kernel = kernel_owned.get();
    SyncAgent agent(o, std::move(kernel_owned));
    ASSERT_TRUE(agent.Start().ok());
    ASSERT_TRUE(kernel->WaitFor({{a.identifier(), kL1}}));
    agent.Stop();  // saves the state
  }
  server_->Shutdown();  // no snapshot can come now
  server_.reset();
  for (bool same : {true, false}) {
    AgentOptions o = Options("r2");
    o.state_dir = dir_.path();
    o.servers = {"127.0.0.1:1"};  // nothing listens there
    if (!same) {
      o.shard_index = 0;
      o.shard_count = 2;
    }
    auto kernel_owned = std::make_unique<FakeKernel>();
    FakeKernel* kernel = kernel_owned.get();
    SyncAgent agent(o, std::move(kernel_owned));
    ASSERT_TRUE(agent.Start().ok());
    // Start() reconciles from a usable saved state before returning.
    EXPECT_EQ(kernel->routes(), same ? 1u : 0u) << "same filter: " << same;
    EXPECT_EQ(agent.stats().applied_revision, same ? a.mod_revision() : 0);
    agent.Stop();
  }
}

}  // namespace
}  // namespace ila::router_sync
