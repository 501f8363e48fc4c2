// RouterAgent against an in-process ila-server and a fake kernel that can
// refuse routes: refusals are reported upstream as a Nack with the kernel's
// reason and retried until the kernel holds exactly the mappings.
#include "router-sync/agent.h"

#include <grpcpp/grpcpp.h>

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

// A kernel that refuses routes to `refused_locator` while `refusing` is set.
class FakeKernel : public RouteBackend {
 public:
  absl::StatusOr<std::vector<IlaRoute>> Dump() override {
    absl::MutexLock l(&mu_);
    std::vector<IlaRoute> out;
    for (const auto& [d, r] : routes_) out.push_back(r);
    return out;
  }
  absl::StatusOr<std::vector<RtNetlink::Result>> Apply(
      const RoutePlan& plan) override {
    absl::MutexLock l(&mu_);
    std::vector<RtNetlink::Result> results;
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
  void Refuse(Locator l, bool on) {
    absl::MutexLock l2(&mu_);
    refused_ = l;
    refusing_ = on;
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

 private:
  absl::Mutex mu_;
  DesiredRoutes routes_ ABSL_GUARDED_BY(mu_);
  Locator refused_ ABSL_GUARDED_BY(mu_);
  bool refusing_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(RouterAgent, RefusedRoutesAreNackedAndRetriedUntilTheKernelIsExact) {
  testing::TempDir dir;
  server::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.store.path = dir.Sub("db");
  auto srv = server::IlaServer::Start(std::move(so));
  ASSERT_TRUE(srv.ok()) << srv.status();
  const std::string addr = absl::StrCat("127.0.0.1:", (*srv)->port());
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = v1::MappingService::NewStub(channel);
  std::map<uint64_t, uint64_t> want;  // identifier -> locator
  auto reg = [&](const std::string& task, const std::string& loc) {
    v1::RegisterTaskRequest req;
    req.set_task(task);
    req.set_locator(loc);
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->RegisterTask(&ctx, req, &resp).ok());
    want[resp.mapping().identifier()] = resp.mapping().locator();
  };
  reg("a", "2001:db8:1::");

  auto kernel_owned = std::make_unique<FakeKernel>();
  FakeKernel* kernel = kernel_owned.get();
  kernel->Refuse(Locator{0x20010db800020000}, true);
  AgentOptions o;
  o.servers = {addr};
  o.name = "r1";
  o.route.via =
      Ipv6Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  o.retry_initial = absl::Milliseconds(20);
  o.retry_max = absl::Milliseconds(100);
  RouterAgent agent(o, std::move(kernel_owned));
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(kernel->WaitFor(want));

  reg("b", "2001:db8:2::");  // refused by the kernel for now
  // The server hears about it as a Nack naming the route and the reason.
  auto diag = v1::Diagnostics::NewStub(channel);
  bool nacked = false;
  for (int i = 0; i < 1500 && !nacked; ++i) {
    v1::ListSubscribersResponse list;
    grpc::ClientContext ctx;
    ASSERT_TRUE(
        diag->ListSubscribers(&ctx, v1::ListSubscribersRequest(), &list).ok());
    for (const auto& s : list.subscribers()) {
      if (s.node() == "r1" && s.last_nack_revision() > 0) {
        nacked = true;
        EXPECT_THAT(s.last_nack_error(), HasSubstr("1 route(s) not applied"));
        EXPECT_THAT(s.last_nack_error(), HasSubstr("refused"));
        EXPECT_THAT(s.last_nack_error(), HasSubstr("encap ila 2001:db8:2:0"));
      }
    }
    if (!nacked) absl::SleepFor(absl::Milliseconds(20));  // polling the server
  }
  EXPECT_TRUE(nacked);
  EXPECT_GT(agent.stats().failed_routes, 0);
  // The kernel recovers: the retry (with backoff) programs it.
  kernel->Refuse(Locator{}, false);
  EXPECT_TRUE(kernel->WaitFor(want));
  agent.Stop();
  (*srv)->Shutdown();
}

}  // namespace
}  // namespace ila::router_sync
