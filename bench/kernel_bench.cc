// kernel_bench, inside the test VM (a kernel with ILA, root):
// 1. ILA route programming rate, ila-router-sync's netlink path (RtNetlink:
//    batches of 128 messages per sendmsg, an ACK each) side by side with
//    `ip -batch` installing the same routes;
// 2. time from a MoveTask's acknowledgement (and from sending it) to the
//    kernel's route changing: ila-server in-process, the router agent
//    (SyncAgent, netlink backend), and the kernel's own route notifications
//    (RTNLGRP_IPV6_ROUTE) timestamped as they arrive; one move at a time.
// Run:
//   ILA_VM_TIMEOUT=900 tests/kernel/vm_run.sh /var/cache/ila-kernel
//       build/bin/kernel_bench
// It works in a network namespace of its own (routes via lo). With
// --ca/--cert/--key (bench/tls_flags.h; the files passed into the VM with
// vm_run.sh --with), part 2's server, client and agent use mTLS.
#include <grpcpp/grpcpp.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/tls_flags.h"
#include "common/runtime.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "router-sync/agent.h"
#include "router-sync/rtnetlink.h"
#include "server/server.h"

namespace {

using namespace ila::router_sync;

std::vector<IlaRoute> MakeRoutes(int n) {
  std::vector<IlaRoute> routes(n);
  const uint32_t lo = if_nametoindex("lo");
  for (int i = 0; i < n; ++i) {
    IlaRoute& r = routes[i];
    r.destination = {ila::SirPrefix{0xfd00000000000000},
                     ila::MakeLuidIdentifier(static_cast<uint64_t>(i) + 1)};
    r.locator =
        ila::Locator{0x20010db800000000 | static_cast<uint64_t>(i % 64)};
    r.oif = lo;
  }
  return routes;
}

size_t CountRoutes(RtNetlink& nl) {
  auto routes = nl.DumpRoutes(kMainTable, kRouteProtocol);
  if (!routes.ok()) {
    std::cerr << "kernel_bench: " << routes.status() << "\n";
    exit(1);
  }
  return routes->size();
}

void Clear(RtNetlink& nl, const std::vector<IlaRoute>& routes) {
  RoutePlan plan;
  for (const auto& r : routes) plan.remove.push_back(r.destination);
  auto results = nl.Apply(plan, kMainTable, kRouteProtocol);
  if (!results.ok()) {
    std::cerr << "kernel_bench: " << results.status() << "\n";
    exit(1);
  }
}

// The kernel's IPv6 route notifications: when each of our routes last
// changed to which locator.
class RouteMonitor {
 public:
  RouteMonitor() {
    socket_ = mnl_socket_open(NETLINK_ROUTE);
    if (socket_ == nullptr ||
        mnl_socket_bind(socket_, RTMGRP_IPV6_ROUTE, MNL_SOCKET_AUTOPID) < 0) {
      std::cerr << "kernel_bench: route notifications: " << strerror(errno)
                << "\n";
      exit(1);
    }
    const timeval timeout{0, 200000};  // so that the reader sees stop_
    setsockopt(mnl_socket_get_fd(socket_), SOL_SOCKET, SO_RCVTIMEO, &timeout,
               sizeof(timeout));
    reader_ = std::thread([this] { Read(); });
  }
  ~RouteMonitor() {
    stop_ = true;
    reader_.join();
    mnl_socket_close(socket_);
  }
  // When the route to `identifier` got `locator`, waiting up to 10 s.
  std::optional<absl::Time> WaitFor(uint64_t identifier, uint64_t locator) {
    absl::MutexLock l(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = last_.find(identifier);
      return it != last_.end() && it->second.first == locator;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(10))) {
      return std::nullopt;
    }
    return last_[identifier].second;
  }

 private:
  void Read() {
    std::vector<uint8_t> buf(1 << 16);
    while (!stop_) {
      const ssize_t n = mnl_socket_recvfrom(socket_, buf.data(), buf.size());
      const absl::Time now = absl::Now();
      if (n <= 0) continue;
      auto messages = SplitMessages(buf.data(), static_cast<size_t>(n));
      if (!messages.ok()) continue;
      absl::MutexLock l(&mu_);
      for (const NetlinkMessage& m : *messages) {
        if (m.type != RTM_NEWROUTE) continue;
        auto r = DecodeRoute(buf.data() + m.offset, m.length);
        if (!r.ok() || !r->has_value() || (*r)->protocol != kRouteProtocol) {
          continue;
        }
        last_[(*r)->destination.identifier.value] = {(*r)->locator.value, now};
      }
    }
  }

  mnl_socket* socket_;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::pair<uint64_t, absl::Time>> last_
      ABSL_GUARDED_BY(mu_);
};

std::string Percentiles(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](size_t pct) {
    return ms[std::min(ms.size() - 1, ms.size() * pct / 100)];
  };
  return absl::StrFormat("p50 %.1f ms  p99 %.1f ms  max %.1f ms", at(50),
                         at(99), ms.back());
}

// MoveTask -> kernel route, one move at a time over `tasks` tasks.
// --ca/--cert/--key: part 2 over mTLS.
ila::bench::BenchTls g_tls;

int MoveLatency(int tasks, int moves) {
  const std::string dir = "/tmp/kernel_bench.db";
  std::filesystem::remove_all(dir);
  ila::server::ServerOptions so;
  so.tls = g_tls.ServerFiles();
  so.listen = "127.0.0.1:0";
  so.store.path = dir;
  so.store.sync_mode = ila::storage::SyncMode::kBatch;
  auto server = ila::server::IlaServer::Start(std::move(so));
  if (!server.ok()) {
    std::cerr << "kernel_bench: " << server.status() << "\n";
    return 1;
  }
  const std::string addr = absl::StrCat("127.0.0.1:", (*server)->port());
  auto stub = ila::v1::MappingService::NewStub(
      grpc::CreateChannel(addr, g_tls.credentials()));
  const char* locators[] = {"2001:db8:1::", "2001:db8:2::", "2001:db8:3::"};
  const uint64_t locator_values[] = {0x20010db800010000, 0x20010db800020000,
                                     0x20010db800030000};
  {
    ila::v1::ApplyRequest req;
    for (int i = 0; i < tasks; ++i) {
      auto* r = req.add_operations()->mutable_register_();
      r->set_task(absl::StrCat("t", i));
      r->set_locator(locators[0]);
    }
    ila::v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = stub->Apply(&ctx, req, &resp);
    if (!st.ok()) {
      std::cerr << "kernel_bench: Apply: " << st.error_message() << "\n";
      return 1;
    }
  }
  RouteMonitor monitor;
  AgentOptions o;
  o.servers = {addr};
  o.credentials = g_tls.credentials();
  o.name = "kernel-bench";
  o.route.oif = if_nametoindex("lo");
  auto rt = RtNetlink::Open();
  if (!rt.ok()) {
    std::cerr << "kernel_bench: " << rt.status() << "\n";
    return 1;
  }
  SyncAgent agent(o, MakeNetlinkBackend(*std::move(rt), nullptr, o.route.table,
                                        o.route.protocol));
  if (absl::Status st = agent.Start(); !st.ok()) {
    std::cerr << "kernel_bench: " << st << "\n";
    return 1;
  }
  std::vector<double> from_ack, from_send;
  std::vector<int> at(tasks, 0);
  for (int i = 0; i < moves; ++i) {
    const int task = i % tasks;
    const int to = (at[task] + 1) % 3;
    ila::v1::MoveTaskRequest req;
    req.set_task(absl::StrCat("t", task));
    req.set_locator(locators[to]);
    ila::v1::MoveTaskResponse resp;
    grpc::ClientContext ctx;
    const absl::Time sent = absl::Now();
    grpc::Status st = stub->MoveTask(&ctx, req, &resp);
    const absl::Time acked = absl::Now();
    if (!st.ok()) {
      std::cerr << "kernel_bench: MoveTask: " << st.error_message() << "\n";
      return 1;
    }
    auto kernel =
        monitor.WaitFor(resp.mapping().identifier(), locator_values[to]);
    if (!kernel) {
      std::cerr << "kernel_bench: move " << i << " did not reach the kernel "
                << "in 10 s\n";
      return 1;
    }
    at[task] = to;
    from_ack.push_back(absl::ToDoubleMilliseconds(*kernel - acked));
    from_send.push_back(absl::ToDoubleMilliseconds(*kernel - sent));
  }
  std::cout << "MoveTask -> kernel route (" << moves << " moves, " << tasks
            << " routes, one at a time):\n"
            << "  from the acknowledgement: " << Percentiles(from_ack) << "\n"
            << "  from sending MoveTask:    " << Percentiles(from_send) << "\n";
  agent.Stop();
  (*server)->Shutdown();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ila::InitRuntime();
  CLI::App app{"kernel_bench: ILA route programming and MoveTask -> kernel"};
  g_tls.AddFlags(app);
  CLI11_PARSE(app, argc, argv);
  g_tls.Init();
  if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 ||
      std::system("/sbin/ip link set lo up") != 0) {
    std::cerr << "kernel_bench: needs root for a network namespace of its own "
                 "(run it in the kernel VM)\n";
    return 77;
  }
  auto nl_or = RtNetlink::Open();
  if (!nl_or.ok()) {
    std::cerr << "kernel_bench: " << nl_or.status() << "\n";
    return 1;
  }
  RtNetlink& nl = **nl_or;
  std::cout << "routes    netlink routes/s  ip -batch routes/s  ratio\n";
  for (int n : {10000, 100000}) {
    std::vector<IlaRoute> routes = MakeRoutes(n);
    RoutePlan plan;
    plan.replace = routes;
    absl::Time start = absl::Now();
    auto results = nl.Apply(plan, kMainTable, kRouteProtocol);
    const double ours_s = absl::ToDoubleSeconds(absl::Now() - start);
    if (!results.ok()) {
      std::cerr << "kernel_bench: " << results.status() << "\n";
      return 1;
    }
    for (const auto& r : *results) {
      if (!r.status.ok()) {
        std::cerr << "kernel_bench: " << r.status << "\n";
        return 1;
      }
    }
    const size_t ours_count = CountRoutes(nl);
    Clear(nl, routes);

    const std::string batch = "/tmp/kernel_bench.batch";
    {
      std::ofstream out(batch);
      for (const auto& r : routes) {
        // RouteReplaceCommand minus the leading "ip -6 ".
        out << RouteReplaceCommand(r).substr(6) << "\n";
      }
    }
    start = absl::Now();
    const int rc =
        std::system(absl::StrCat("/sbin/ip -6 -batch ", batch).c_str());
    const double ip_s = absl::ToDoubleSeconds(absl::Now() - start);
    const size_t ip_count = CountRoutes(nl);
    Clear(nl, routes);
    if (rc != 0 || ours_count != routes.size() || ip_count != routes.size()) {
      std::cerr << "kernel_bench: installed " << ours_count << " (netlink) and "
                << ip_count << " (ip -batch, rc " << rc << ") of " << n << "\n";
      return 1;
    }
    std::cout << absl::StrFormat("%-9d %-17.0f %-19.0f %.1fx\n", n, n / ours_s,
                                 n / ip_s, ip_s / ours_s);
    std::cout.flush();
  }
  return MoveLatency(/*tasks=*/1000, /*moves=*/500);
}
