// stream_bench: how fast mapping changes reach routers and hosts.
//
//   propagation: write acknowledgement -> applied by each subscriber,
//                p50/p99/max, at 1, 100 and 1,000 subscribers and a paced
//                write rate;
//   snapshot:    a new subscriber's full sync of N mappings;
//   memory:      ila-server's resident memory per connected subscriber;
//   stalled:     unary write throughput with and without a subscriber that
//                never reads.
// ila-server runs as a child process (build/bin/ila-server, --sync always)
// on 127.0.0.1; the subscribers use the client library (client/subscriber.h),
// 16 subscribers per connection. Client and server share this machine.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/children.h"
#include "bench/paced_writes.h"
#include "bench/tls_flags.h"
#include "client/format.h"
#include "client/subscriber.h"
#include "common/runtime.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"

namespace ila::bench {
namespace {

// --ca/--cert/--key: the whole benchmark over mTLS.
BenchTls g_tls;

// Records when each sampled revision's change was applied.
class Timing : public client::SubscriberListener {
 public:
  explicit Timing(int64_t sample_every) : every_(sample_every) {}
  void OnChange(int64_t revision, uint64_t, const v1::Mapping*,
                const v1::Mapping*) override {
    if (revision % every_ != 0) return;
    const absl::Time now = absl::Now();
    absl::MutexLock l(&mu_);
    applied_.emplace(revision, now);
  }
  absl::flat_hash_map<int64_t, absl::Time> applied() {
    absl::MutexLock l(&mu_);
    return applied_;
  }

 private:
  const int64_t every_;
  absl::Mutex mu_;
  absl::flat_hash_map<int64_t, absl::Time> applied_;
};

struct Propagation {
  int subscribers = 0;
  double rate = 0;                            // achieved writes/s
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // from the acknowledgement
  double sent_p99_ms = 0;  // from sending the write (includes the commit)
  size_t samples = 0;
  double rss_per_subscriber = 0;
};

std::unique_ptr<v1::MappingService::Stub> Stub(const std::string& address,
                                               int group) {
  grpc::ChannelArguments args;
  args.SetInt("ila.bench.writer", group);
  return v1::MappingService::NewStub(
      grpc::CreateCustomChannel(address, g_tls.credentials(), args));
}

// The locator of host agent `h` in fleet mode.
std::string HostLocator(int h) {
  return absl::StrFormat("2001:db8:%x:%x", 1 + h / 65536, h % 65536);
}

// `routers` < 0: every subscriber takes the whole table. Otherwise the first
// `routers` do, and the rest are host agents, each filtering on a locator of
// its own; writes are spread over the hosts' locators.
Propagation RunPropagation(const std::string& bin, const std::string& dir,
                           int n, int rate, absl::Duration duration,
                           int routers) {
  const int hosts = routers < 0 ? 0 : std::max(0, n - routers);
  Server server(bin, dir, g_tls.ServerFlags());
  Propagation out;
  out.subscribers = n;
  const int64_t rss_before = server.Rss();
  std::vector<std::unique_ptr<Timing>> timings;
  std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
  for (int i = 0; i < n; ++i) {
    const bool host = routers >= 0 && i >= routers;
    timings.push_back(std::make_unique<Timing>(host ? 1 : 10));
    client::SubscriberOptions o;
    o.servers = {server.address()};
    o.credentials = g_tls.credentials();
    o.node = absl::StrCat("bench-", i);
    o.role = host ? v1::NODE_ROLE_HOST : v1::NODE_ROLE_ROUTER;
    if (host) o.filter.add_locators(HostLocator(i - routers));
    o.connection_group = i / 16;
    subs.push_back(
        std::make_unique<client::StreamSubscriber>(o, timings.back().get()));
    subs.back()->Start();
  }
  for (auto& s : subs) s->WaitForRevision(0, absl::Seconds(60));
  out.rss_per_subscriber =
      n > 0 ? static_cast<double>(server.Rss() - rss_before) / n : 0;

  // The writes, open loop at `rate` (bench/paced_writes.h): kWriters
  // threads over 4 connections, so up to kWriters writes in flight.
  constexpr int kWriters = 64;
  std::vector<std::unique_ptr<v1::MappingService::Stub>> stubs;
  for (int c = 0; c < 4; ++c) stubs.push_back(Stub(server.address(), c));
  const int64_t total =
      static_cast<int64_t>(rate * absl::ToDoubleSeconds(duration));
  PacedWriteResult paced = PacedWrites(total, rate, kWriters, [&](int64_t i) {
    v1::RegisterTaskRequest req;
    req.set_task(absl::StrCat("p/", i));
    req.set_locator(hosts > 0 ? HostLocator(static_cast<int>(i % hosts))
                              : "2001:db8:100:0");
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stubs[i % stubs.size()]->RegisterTask(&ctx, req, &resp);
    if (!s.ok()) {
      std::cerr << "stream_bench: RegisterTask: " << s.error_message() << "\n";
      return int64_t{0};
    }
    return resp.revision();
  });
  out.rate = paced.rate;
  const auto& acked = paced.acked;
  const int64_t last = paced.last_revision;
  std::vector<double> ms, from_sent;
  for (int i = 0; i < n; ++i) {
    if (!subs[i]->WaitForRevision(last, absl::Seconds(120))) {
      std::cerr << "stream_bench: subscriber " << i << " stuck at "
                << subs[i]->applied_revision() << "\n";
    }
    for (const auto& [r, t] : timings[i]->applied()) {
      auto it = acked.find(r);
      if (it == acked.end()) continue;
      ms.push_back(
          std::max(0.0, absl::ToDoubleMilliseconds(t - it->second.second)));
      from_sent.push_back(absl::ToDoubleMilliseconds(t - it->second.first));
    }
  }
  for (auto& s : subs) s->Stop();
  std::sort(ms.begin(), ms.end());
  out.samples = ms.size();
  if (!ms.empty()) {
    out.p50_ms = ms[ms.size() / 2];
    out.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    out.max_ms = ms.back();
    std::sort(from_sent.begin(), from_sent.end());
    out.sent_p99_ms =
        from_sent[std::min(from_sent.size() - 1, from_sent.size() * 99 / 100)];
  }
  return out;
}

double Populate(const std::string& address, int64_t count) {
  const absl::Time start = absl::Now();
  std::atomic<int64_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stub = Stub(address, t);
      for (int64_t b = next++; b * 10000 < count; b = next++) {
        v1::ApplyRequest req;
        for (int64_t i = b * 10000; i < std::min(count, (b + 1) * 10000); ++i) {
          auto* r = req.add_operations()->mutable_register_();
          r->set_task(absl::StrCat("snap/", i));
          r->set_locator(i % 2 ? "2001:db8:100:0" : "2001:db8:200:0");
        }
        v1::ApplyResponse resp;
        grpc::ClientContext ctx;
        grpc::Status s = stub->Apply(&ctx, req, &resp);
        if (!s.ok()) std::cerr << "populate: " << s.error_message() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

double WriteThroughput(const std::string& address, int count) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  static std::atomic<int> round{0};
  const int r = round++;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      auto stub = Stub(address, t % 4);
      for (int i = next++; i < count; i = next++) {
        v1::RegisterTaskRequest req;
        req.set_task(absl::StrCat("w", r, "/", i));
        req.set_locator("2001:db8:100:0");
        v1::RegisterTaskResponse resp;
        grpc::ClientContext ctx;
        (void)stub->RegisterTask(&ctx, req, &resp);
      }
    });
  }
  for (auto& t : threads) t.join();
  return count / absl::ToDoubleSeconds(absl::Now() - start);
}

}  // namespace
}  // namespace ila::bench

int main(int argc, char** argv) {
  using namespace ila::bench;
  ila::InitRuntime();
  CLI::App app{"stream_bench: propagation latency, snapshot time, memory"};
  std::string subscribers = "1,100,1000";
  int routers = -1;
  int rate = 5000;
  double seconds = 5;
  int64_t snapshot = 1000000;
  int stalled_writes = 20000;
  std::string server_bin =
      (std::filesystem::path(argv[0]).parent_path() / "ila-server").string();
  app.add_option("--subscribers", subscribers, "comma-separated counts");
  app.add_option("--routers", routers,
                 "fleet mode: this many full-table routers, the other "
                 "subscribers are host agents filtering on their own locator "
                 "(default: all subscribers take the full table)");
  app.add_option("--rate", rate, "paced writes per second")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--seconds", seconds, "write phase length")
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--snapshot", snapshot,
                 "mappings for the snapshot test (0: skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}));
  app.add_option("--stalled-writes", stalled_writes,
                 "writes per stalled-subscriber run (0: skip)")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--server-bin", server_bin, "the ila-server binary");
  g_tls.AddFlags(app);
  CLI11_PARSE(app, argc, argv);
  g_tls.Init();
  const std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(),
                   "/ila-stream-bench-", getpid());

  std::cout << (routers < 0
                    ? std::string("every subscriber takes the full table")
                    : absl::StrCat(routers,
                                   " full-table routers, the "
                                   "rest host agents on their "
                                   "own locator"))
            << "; target " << rate << " writes/s for " << seconds << " s\n";
  std::vector<std::vector<std::string>> rows = {
      {"subscribers", "writes/s", "p50 ms", "p99 ms", "max ms", "p99 from send",
       "samples", "server RSS/subscriber"}};
  for (absl::string_view part : absl::StrSplit(subscribers, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      std::cerr << "stream_bench: --subscribers: \"" << part
                << "\" is not a positive count\n";
      return 2;
    }
    Propagation p = RunPropagation(server_bin, dir, n, rate,
                                   absl::Seconds(seconds), routers);
    rows.push_back({absl::StrCat(n), absl::StrFormat("%.0f", p.rate),
                    absl::StrFormat("%.1f", p.p50_ms),
                    absl::StrFormat("%.1f", p.p99_ms),
                    absl::StrFormat("%.1f", p.sent_p99_ms),
                    absl::StrFormat("%.1f", p.max_ms), absl::StrCat(p.samples),
                    absl::StrFormat("%.0f KiB", p.rss_per_subscriber / 1024)});
    std::cerr << "stream_bench: " << n << " subscribers measured\n";
  }
  std::cout << ila::client::FormatColumns(rows) << std::endl;

  if (snapshot > 0) {
    Server server(server_bin, dir, g_tls.ServerFlags());
    double populate_s = Populate(server.address(), snapshot);
    ila::client::SubscriberOptions o;
    o.servers = {server.address()};
    o.credentials = g_tls.credentials();
    o.node = "bench-snapshot";
    const absl::Time start = absl::Now();
    ila::client::StreamSubscriber sub(o, nullptr);
    sub.Start();
    bool ok = sub.WaitForRevision(1, absl::Seconds(300));
    const double sync_s = absl::ToDoubleSeconds(absl::Now() - start);
    const size_t got = sub.CopyReplica().size();
    sub.Stop();
    std::cout << absl::StrFormat(
        "snapshot: %d mappings (loaded in %.1f s) reached a new subscriber in "
        "%.2f s (%zu received%s)\n\n",
        snapshot, populate_s, sync_s, got, ok ? "" : ", TIMED OUT");
  }

  if (stalled_writes > 0) {
    Server server(server_bin, dir, g_tls.ServerFlags());
    double without = WriteThroughput(server.address(), stalled_writes);
    // A subscriber that says hello and never reads again.
    auto stream_stub = ila::v1::MappingStream::NewStub(
        grpc::CreateChannel(server.address(), g_tls.credentials()));
    grpc::ClientContext ctx;
    auto stream = stream_stub->Subscribe(&ctx);
    ila::v1::SubscribeRequest hello;
    hello.mutable_hello()->set_node("stalled");
    hello.mutable_hello()->set_role(ila::v1::NODE_ROLE_OBSERVER);
    stream->Write(hello);
    double with = WriteThroughput(server.address(), stalled_writes);
    ctx.TryCancel();
    std::cout << absl::StrFormat(
        "stalled subscriber: unary writes %.0f/s without it, %.0f/s with it\n",
        without, with);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
