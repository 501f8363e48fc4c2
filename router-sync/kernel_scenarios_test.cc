// Router scenarios of the router-sync issue against a kernel with ILA, run
// inside the test VM (tests/kernel/vm_run.sh): ila-server in-process, the
// agent with the real netlink backend, in a network namespace of the test's
// own. Skipped (with the reason) on a kernel without ILA unless
// ILA_EXPECT_KERNEL_ILA is set, as it is in the VM.
//   1. 10,000 tasks -> exactly those 10,000 ILA routes (netlink dump and
//      `ip -6 route show proto 73`).
//   2. MoveTask -> route updated; UnregisterTask -> route gone.
//   3. Agent stopped, mappings changed, a stale route of ours and a foreign
//      route added by hand, agent started: the kernel converges to the
//      mappings, the stale route is gone, the foreign one untouched.
#include <grpcpp/grpcpp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "router-sync/agent.h"
#include "router-sync/checks.h"
#include "server/server.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace ila::router_sync {
namespace {

using ::testing::HasSubstr;

constexpr int kTasks = 10000;

using testing::ShellOutput;

class KernelScenarios : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (runs in the kernel VM)";
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    ASSERT_EQ(std::system("/sbin/ip link set lo up"), 0);
    absl::Status ila = CheckIlaSupport();
    if (!ila.ok()) {
      ASSERT_EQ(std::getenv("ILA_EXPECT_KERNEL_ILA"), nullptr) << ila;
      GTEST_SKIP() << ila.message() << " (runs in the kernel VM)";
    }
    server::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.store.path = dir_.Sub("db");
    so.store.sync_mode = storage::SyncMode::kNone;
    auto srv = server::IlaServer::Start(std::move(so));
    ASSERT_TRUE(srv.ok()) << srv.status();
    server_ = *std::move(srv);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    stub_ = v1::MappingService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    auto nl = RtNetlink::Open();
    ASSERT_TRUE(nl.ok()) << nl.status();
    nl_ = *std::move(nl);
  }
  void TearDown() override {
    agent_.reset();
    if (server_) server_->Shutdown();
  }

  void StartAgent() {
    AgentOptions o;
    o.servers = {address_};
    o.name = "vm-router";
    o.state_dir = dir_.path();
    o.route.oif = if_nametoindex("lo");
    o.save_interval = absl::Milliseconds(100);
    auto nl = RtNetlink::Open();
    ASSERT_TRUE(nl.ok()) << nl.status();
    agent_ = std::make_unique<SyncAgent>(
        o, MakeNetlinkBackend(*std::move(nl), nullptr, o.route.table,
                              o.route.protocol));
    ASSERT_TRUE(agent_->Start().ok());
  }

  // identifier -> locator of every mapping.
  std::map<uint64_t, uint64_t> Mappings() {
    std::map<uint64_t, uint64_t> out;
    v1::ListRequest req;
    req.set_page_size(10000);
    for (;;) {
      v1::ListResponse resp;
      grpc::ClientContext ctx;
      EXPECT_TRUE(stub_->List(&ctx, req, &resp).ok());
      for (const auto& m : resp.mappings()) out[m.identifier()] = m.locator();
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }
  // identifier -> locator of our routes in the kernel.
  std::map<uint64_t, uint64_t> KernelRoutes() {
    std::map<uint64_t, uint64_t> out;
    auto routes = nl_->DumpRoutes(kMainTable, kRouteProtocol);
    EXPECT_TRUE(routes.ok()) << routes.status();
    if (!routes.ok()) return out;
    for (const auto& r : *routes) {
      out[r.destination.identifier.value] = r.locator.value;
    }
    return out;
  }
  // Polls the kernel (bounded) until it holds exactly the mappings; returns
  // how long it took, or nullopt.
  std::optional<absl::Duration> WaitKernelEqualsMappings() {
    const auto want = Mappings();
    const absl::Time start = absl::Now();
    for (int i = 0; i < 1200; ++i) {
      if (KernelRoutes() == want) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(100));  // polling the kernel
    }
    return std::nullopt;
  }

  void Register(int from, int to) {
    v1::ApplyRequest req;
    for (int i = from; i < to; ++i) {
      auto* r = req.add_operations()->mutable_register_();
      r->set_task(absl::StrCat("t", i));
      r->set_locator(i % 2 ? "2001:db8:1::" : "2001:db8:2::");
    }
    v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Apply(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  void Move(const std::string& task, const std::string& loc) {
    v1::MoveTaskRequest req;
    req.set_task(task);
    req.set_locator(loc);
    v1::MoveTaskResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->MoveTask(&ctx, req, &resp).ok());
  }
  void Unregister(const std::string& task) {
    v1::UnregisterTaskRequest req;
    req.set_task(task);
    v1::UnregisterTaskResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->UnregisterTask(&ctx, req, &resp).ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<server::IlaServer> server_;
  std::string address_;
  std::unique_ptr<v1::MappingService::Stub> stub_;
  std::unique_ptr<RtNetlink> nl_;
  std::unique_ptr<SyncAgent> agent_;
};

TEST_F(KernelScenarios, RoutesFollowTheMappingsThroughRestartsAndHandEdits) {
  for (int i = 0; i < kTasks; i += 1000) Register(i, i + 1000);
  StartAgent();
  auto took = WaitKernelEqualsMappings();
  ASSERT_TRUE(took.has_value()) << "the kernel never held the 10,000 routes";
  std::cerr << "scenario 1: 10000 routes in the kernel " << *took
            << " after the agent started\n";
  const std::string shown =
      ShellOutput("/sbin/ip -6 route show proto 73 | wc -l");
  EXPECT_EQ(std::atoi(shown.c_str()), kTasks) << shown;
  const std::string first =
      ShellOutput("/sbin/ip -6 route show proto 73 | head -1");
  EXPECT_THAT(first, HasSubstr("encap ila"));
  EXPECT_THAT(first, HasSubstr("ident-type luid"));

  // 2. Move and unregister.
  Move("t0", "2001:db8:3::");
  took = WaitKernelEqualsMappings();
  ASSERT_TRUE(took.has_value());
  std::cerr << "scenario 2: move in the kernel within " << *took << "\n";
  Unregister("t1");
  took = WaitKernelEqualsMappings();
  ASSERT_TRUE(took.has_value());
  std::cerr << "scenario 2: unregister in the kernel within " << *took << "\n";

  // 3. Down, changes, hand edits, up again.
  agent_->Stop();
  agent_.reset();
  Move("t2", "2001:db8:4::");
  Unregister("t3");
  ASSERT_EQ(
      std::system("/sbin/ip -6 route add fd00::2000:0:ffff:1/128 encap ila "
                  "2001:db8:9:0 csum-mode adj-transport ident-type luid "
                  "dev lo proto 73"),
      0);  // stale: ours, no mapping
  ASSERT_EQ(
      std::system("/sbin/ip -6 route add fd00::2000:0:ffff:2/128 encap ila "
                  "2001:db8:9:0 csum-mode adj-transport ident-type luid "
                  "dev lo proto static"),
      0);  // foreign
  StartAgent();
  took = WaitKernelEqualsMappings();
  ASSERT_TRUE(took.has_value()) << "no convergence after the restart";
  EXPECT_EQ(ShellOutput("/sbin/ip -6 route show fd00::2000:0:ffff:1/128"), "");
  EXPECT_THAT(ShellOutput("/sbin/ip -6 route show fd00::2000:0:ffff:2/128"),
              HasSubstr("encap ila"));
  EXPECT_EQ(agent_->stats().failed, 0);
}

}  // namespace
}  // namespace ila::router_sync
