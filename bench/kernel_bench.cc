// kernel_bench: ILA route programming rate, ila-router-sync's netlink path
// (RtNetlink: batches of 128 messages per sendmsg, an ACK each) side by side
// with `ip -batch` installing the same routes. Needs a kernel with ILA and
// root: run it inside the test VM,
//   ILA_VM_TIMEOUT=900 tests/kernel/vm_run.sh /var/cache/ila-kernel
//       build/bin/kernel_bench
// It works in a network namespace of its own (routes via lo).
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/runtime.h"
#include "router-sync/rtnetlink.h"

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

}  // namespace

int main(int argc, char** argv) {
  ila::InitRuntime();
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
  (void)argc;
  (void)argv;
  return 0;
}
