// etcd_bench: ila-server side by side with etcd on this machine, driven by
// the same load generator (bench/README.md). Both are child processes on
// loopback with data directories of their own and durable writes
// (ila-server --sync always; etcd as shipped, fsync per commit). ila-server
// through its API, etcd through its v3 gRPC API (proto/etcd: the subset this
// needs, field numbers as etcd publishes them).
//   W1  register N tasks, C concurrent clients, unary
//       (etcd: Put /ila/<identifier> -> a serialized mapping)
//   R1  unary reads of what W1 wrote, the same clients (up to 100,000;
//       ila-server: Lookup of a task; etcd: a serializable Range of one key):
//       what a call that writes nothing costs each server
//   W2  the same in batches (ila-server: Apply of 1,000; etcd: Txn of 128
//       puts, its default limit)
//   W4  a new subscriber's full sync of the table (ila-server: a snapshot on
//       the stream; etcd: a paged Range of the prefix)
//   W5  resident memory per mapping after the writes (the process's RSS
//       divided by the mappings it holds)
//   W3  propagation latency from a write's acknowledgement to its receipt
//       by each of S subscribers (ila-server: full-table stream
//       subscribers; etcd: watchers on the prefix), writes paced at R/s
// After the table, the CPU each server and the load generator used per
// operation in each workload (from /proc/<pid>/stat): the generator's share
// bounds what any server could reach on these cores.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/children.h"
#include "bench/paced_writes.h"
#include "bench/tls_flags.h"
#include "client/format.h"
#include "client/subscriber.h"
#include "common/address.h"
#include "common/runtime.h"
#include "etcd/rpc.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"

namespace ila::bench {
namespace {

struct Config {
  int tasks = 200000;
  int clients = 64;
  std::string workloads = "W1,R1,W2,W4,W5,W3";
  int w3_subscribers = 1000;
  double w3_rate = 200;  // writes per second
  double w3_seconds = 5;
  // W3's ila-server side: "reader" reads the stream and nothing more, as
  // the etcd watchers do; "library" runs the client library (replica,
  // listener, acks) as routers do.
  std::string w3_ila_client = "reader";
  std::string ila_server;
  // cmake/install-deps.sh unpacks Debian's etcd-server here (no service).
  std::string etcd = "/var/cache/ila-etcd/usr/bin/etcd";
  std::string dir = "/tmp/etcd_bench";
  std::string results;                 // a markdown file to write, if set
  std::vector<std::string> ila_flags;  // extra ila-server flags
};

// The value etcd stores per task: what ila-server stores, a mapping.
std::string EtcdValue(int i) {
  v1::Mapping m;
  m.set_task(absl::StrCat("task-", i));
  m.set_identifier(MakeLuidIdentifier(static_cast<uint64_t>(i) + 1).value);
  m.set_locator(0x20010db800000000 | static_cast<uint64_t>(i % 4096));
  m.set_sir_prefix(0xfd00000000000000);
  m.set_checksum_mode(v1::CHECKSUM_MODE_ADJ_TRANSPORT);
  m.set_version(1);
  return m.SerializeAsString();
}
std::string EtcdKey(int i) {
  return absl::StrCat(
      "/ila/",
      FormatIdentifier(MakeLuidIdentifier(static_cast<uint64_t>(i) + 1)));
}
std::string LocatorText(int i) {
  return FormatLocator(
      ila::Locator{0x20010db800000000 | static_cast<uint64_t>(i % 4096)});
}

// --ca/--cert/--key: ila-server over mTLS (etcd stays plaintext).
BenchTls g_tls;

std::shared_ptr<grpc::Channel> Dial(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials =
        grpc::InsecureChannelCredentials()) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, credentials, args);
}

// Runs `op(i)` for i in [0, n) on `clients` threads (each its own channel
// from `make_channel`); returns operations per second. Exits on a failure.
template <typename Op>
double RunParallel(int n, int clients, Op op) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = next++; i < n && !failed; i = next++) {
        if (!op(c, i)) failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) {
    std::cerr << "etcd_bench: a request failed (see above)\n";
    exit(1);
  }
  return n / absl::ToDoubleSeconds(absl::Now() - start);
}

// Signals when the first snapshot was applied, and its size.
class SnapshotWaiter : public client::SubscriberListener {
 public:
  void OnSnapshot(int64_t, const client::Replica& replica) override {
    absl::MutexLock l(&mu_);
    size_ = static_cast<int64_t>(replica.size());
    done_ = true;
  }
  // The snapshot's size, or -1 after `timeout`.
  int64_t Wait(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&done_), timeout)) return -1;
    return size_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

// When each subscriber first saw each revision (W3). One slot per subscriber
// with its own lock: 1,000 readers recording 200,000 receipts a second must
// not queue on one lock (that would add to both systems' latencies).
class Receipts {
 public:
  explicit Receipts(int subscribers) : slots_(subscribers) {}
  void Saw(int subscriber, int64_t revision) {
    const absl::Time now = absl::Now();
    Slot& s = slots_[subscriber];
    absl::MutexLock l(&s.mu);
    s.seen.emplace_back(revision, now);
    s.max = std::max(s.max, revision);
  }
  // Waits until every subscriber saw `revision` (bounded).
  bool WaitAll(int64_t revision, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (Slot& s : slots_) {
      absl::MutexLock l(&s.mu);
      auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
        return s.max >= revision;
      };
      if (!s.mu.AwaitWithDeadline(absl::Condition(&reached), deadline)) {
        return false;
      }
    }
    return true;
  }
  // Latencies (ms) to each receipt from each write's acknowledgement (0
  // when the receipt came first) and from its sending, sorted.
  struct Latency {
    std::vector<double> from_ack, from_send;
  };
  Latency Latencies(
      const absl::flat_hash_map<int64_t, std::pair<absl::Time, absl::Time>>&
          writes) {
    Latency out;
    for (Slot& s : slots_) {
      absl::MutexLock l(&s.mu);
      absl::flat_hash_set<int64_t> first;
      for (const auto& [rev, t] : s.seen) {
        auto it = writes.find(rev);
        if (it == writes.end() || !first.insert(rev).second) continue;
        out.from_send.push_back(
            absl::ToDoubleMilliseconds(t - it->second.first));
        out.from_ack.push_back(
            std::max(0.0, absl::ToDoubleMilliseconds(t - it->second.second)));
      }
    }
    std::sort(out.from_ack.begin(), out.from_ack.end());
    std::sort(out.from_send.begin(), out.from_send.end());
    return out;
  }

 private:
  struct Slot {
    absl::Mutex mu;
    std::vector<std::pair<int64_t, absl::Time>> seen ABSL_GUARDED_BY(mu);
    int64_t max ABSL_GUARDED_BY(mu) = 0;
  };
  std::vector<Slot> slots_;
};

// An ila-server subscriber's listener for W3.
class ReceiptListener : public client::SubscriberListener {
 public:
  ReceiptListener(Receipts* r, int index) : r_(r), index_(index) {}
  void OnChange(int64_t revision, uint64_t, const v1::Mapping*,
                const v1::Mapping*) override {
    r_->Saw(index_, revision);
  }

 private:
  Receipts* r_;
  int index_;
};

// A W3 subscriber or watcher as a gRPC callback reactor: it sends `first`,
// then hands every message to `on_message` on gRPC's own threads. 1,000 of
// them cost a few threads instead of 1,000 blocked ones, so the load
// generator takes less of the two cores both systems share (subscribers
// normally run on other machines).
template <typename Request, typename Response>
class StreamReader final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  using OnMessage = std::function<void(const Response&)>;
  StreamReader(Request first, OnMessage on_message)
      : first_(std::move(first)), on_message_(std::move(on_message)) {}
  // `begin(context, reactor)` is the stub's async() method, e.g.
  // stub->async()->Subscribe.
  template <typename Begin>
  void Start(Begin begin) {
    begin(&context_, this);
    this->StartWrite(&first_);
    this->StartRead(&response_);
    this->StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  // Waits (bounded) until gRPC has finished with the reactor.
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    on_message_(response_);
    this->StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override {
    absl::MutexLock l(&mu_);
    done_ = true;
  }

 private:
  grpc::ClientContext context_;
  Request first_;
  Response response_;
  OnMessage on_message_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

double Percentile(const std::vector<double>& sorted, int pct) {
  if (sorted.empty()) return -1;
  return sorted[std::min(sorted.size() - 1, sorted.size() * pct / 100)];
}

struct Row {
  std::string workload, unit;
  double ila = 0, etcd = 0;
  bool higher_is_better = true;
};

// CPU per operation of each server and of the load generator while it drove
// that server: where each system's time goes, and the most any server could
// gain (the generator's share is the same for both).
struct CpuRow {
  std::string operation;
  CpuMeter::PerOp ila, etcd;
};

}  // namespace
}  // namespace ila::bench

int main(int argc, char** argv) {
  using namespace ila::bench;
  namespace v1 = ila::v1;
  namespace client = ila::client;
  ila::InitRuntime();
  Config cfg;
  cfg.ila_server =
      (std::filesystem::path(argv[0]).parent_path() / "ila-server").string();
  CLI::App app{"etcd_bench: ila-server side by side with etcd"};
  app.add_option("--tasks", cfg.tasks, "mappings to write")
      ->check(CLI::Range(100, 10000000))
      ->capture_default_str();
  app.add_option("--clients", cfg.clients, "concurrent clients")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--workloads", cfg.workloads, "comma-separated")
      ->capture_default_str();
  app.add_option("--w3-subscribers", cfg.w3_subscribers,
                 "W3: subscribers / watchers")
      ->check(CLI::Range(1, 5000))
      ->capture_default_str();
  app.add_option("--w3-rate", cfg.w3_rate, "W3: writes per second")
      ->check(CLI::Range(1.0, 100000.0))
      ->capture_default_str();
  app.add_option("--w3-seconds", cfg.w3_seconds, "W3: seconds of writes")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--w3-ila-client", cfg.w3_ila_client,
                 "W3: reader (the stream only, like the etcd watchers) or "
                 "library (client/subscriber.h: replica, listener, acks)")
      ->check(CLI::IsMember({"reader", "library"}))
      ->capture_default_str();
  app.add_option("--ila-server", cfg.ila_server, "the ila-server binary");
  app.add_option("--etcd", cfg.etcd, "the etcd binary (Debian: etcd-server)")
      ->capture_default_str();
  app.add_option("--dir", cfg.dir, "scratch directory (emptied)")
      ->capture_default_str();
  app.add_option("--results", cfg.results, "also write the table here");
  app.add_option("--ila-flag", cfg.ila_flags,
                 "an extra ila-server flag (repeatable), e.g. "
                 "--ila-flag=--stream-batch-delay-ms=0");
  g_tls.AddFlags(app);
  CLI11_PARSE(app, argc, argv);
  g_tls.Init();
  if (!std::filesystem::exists(cfg.etcd)) {
    std::cerr << "etcd_bench: " << cfg.etcd
              << " not found (cmake/install-deps.sh unpacks etcd-server "
                 "there; or pass --etcd /usr/bin/etcd)\n";
    return 77;
  }
  std::vector<std::string> workloads = absl::StrSplit(cfg.workloads, ',');
  auto wants = [&](const char* w) {
    return std::find(workloads.begin(), workloads.end(), w) != workloads.end();
  };
  std::vector<Row> rows;
  std::vector<CpuRow> cpu_rows;

  std::vector<std::string> ila_flags = {"--sync", "always"};
  ila_flags.insert(ila_flags.end(), cfg.ila_flags.begin(), cfg.ila_flags.end());
  for (const std::string& f : g_tls.ServerFlags()) ila_flags.push_back(f);
  Server ila(cfg.ila_server, cfg.dir + "/ila", ila_flags);
  Etcd etcd(cfg.etcd, cfg.dir + "/etcd");
  std::vector<std::shared_ptr<grpc::Channel>> ila_ch, etcd_ch;
  for (int c = 0; c < cfg.clients; ++c) {
    ila_ch.push_back(Dial(ila.address(), g_tls.credentials()));
    etcd_ch.push_back(Dial(etcd.address()));
  }
  // etcd is ready when a Range answers.
  {
    auto kv = etcdserverpb::KV::NewStub(etcd_ch[0]);
    bool up = false;
    for (int i = 0; i < 300 && !up; ++i) {
      etcdserverpb::RangeRequest req;
      req.set_key("/ila/");
      req.set_count_only(true);
      etcdserverpb::RangeResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(1));
      up = kv->Range(&ctx, req, &resp).ok();
      if (!up) absl::SleepFor(absl::Milliseconds(100));  // etcd starting
    }
    if (!up) {
      std::cerr << "etcd_bench: etcd did not start: " << etcd.log() << "\n";
      return 1;
    }
  }
  std::cerr << "etcd_bench: ila-server at " << ila.address() << ", etcd at "
            << etcd.address() << "\n";

  // W1: unary writes.
  if (wants("W1")) {
    std::vector<std::unique_ptr<v1::MappingService::Stub>> ila_stubs;
    std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> etcd_stubs;
    for (int c = 0; c < cfg.clients; ++c) {
      ila_stubs.push_back(v1::MappingService::NewStub(ila_ch[c]));
      etcd_stubs.push_back(etcdserverpb::KV::NewStub(etcd_ch[c]));
    }
    const CpuMeter ila_cpu(ila.pid());
    const double ila_rate =
        RunParallel(cfg.tasks, cfg.clients, [&](int c, int i) {
          v1::RegisterTaskRequest req;
          req.set_task(absl::StrCat("w1-", i));
          req.set_locator(LocatorText(i));
          v1::RegisterTaskResponse resp;
          grpc::ClientContext ctx;
          grpc::Status s = ila_stubs[c]->RegisterTask(&ctx, req, &resp);
          if (!s.ok())
            std::cerr << "RegisterTask: " << s.error_message() << "\n";
          return s.ok();
        });
    const CpuMeter::PerOp ila_per_write = ila_cpu.Stop(cfg.tasks);
    const CpuMeter etcd_cpu(etcd.pid());
    const double etcd_rate =
        RunParallel(cfg.tasks, cfg.clients, [&](int c, int i) {
          etcdserverpb::PutRequest req;
          req.set_key(EtcdKey(i));
          req.set_value(EtcdValue(i));
          etcdserverpb::PutResponse resp;
          grpc::ClientContext ctx;
          grpc::Status s = etcd_stubs[c]->Put(&ctx, req, &resp);
          if (!s.ok()) std::cerr << "etcd Put: " << s.error_message() << "\n";
          return s.ok();
        });
    rows.push_back({absl::StrCat("W1 unary writes, ", cfg.clients, " clients"),
                    "writes/s", ila_rate, etcd_rate, true});
    cpu_rows.push_back({"W1 write", ila_per_write, etcd_cpu.Stop(cfg.tasks)});
    std::cerr << "etcd_bench: W1 done\n";
  }
  // R1: unary reads of what W1 wrote, the same clients: the cost of a call
  // that writes nothing (each server's floor for W1).
  if (wants("R1")) {
    if (!wants("W1")) {
      std::cerr << "etcd_bench: R1 reads what W1 wrote: add W1\n";
      return 2;
    }
    std::vector<std::unique_ptr<v1::MappingService::Stub>> ila_stubs;
    std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> etcd_stubs;
    for (int c = 0; c < cfg.clients; ++c) {
      ila_stubs.push_back(v1::MappingService::NewStub(ila_ch[c]));
      etcd_stubs.push_back(etcdserverpb::KV::NewStub(etcd_ch[c]));
    }
    const int reads = std::min(cfg.tasks, 100000);
    const CpuMeter ila_cpu(ila.pid());
    const double ila_rate = RunParallel(reads, cfg.clients, [&](int c, int i) {
      v1::LookupRequest req;
      req.set_task(absl::StrCat("w1-", i));
      v1::LookupResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = ila_stubs[c]->Lookup(&ctx, req, &resp);
      if (!s.ok()) std::cerr << "Lookup: " << s.error_message() << "\n";
      return s.ok();
    });
    const CpuMeter::PerOp ila_per_read = ila_cpu.Stop(reads);
    const CpuMeter etcd_cpu(etcd.pid());
    const double etcd_rate = RunParallel(reads, cfg.clients, [&](int c, int i) {
      etcdserverpb::RangeRequest req;
      req.set_key(EtcdKey(i));
      req.set_serializable(true);  // a local read, as LookupTask is
      etcdserverpb::RangeResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = etcd_stubs[c]->Range(&ctx, req, &resp);
      if (s.ok() && resp.kvs_size() != 1) {
        std::cerr << "etcd Range: " << EtcdKey(i) << " not found\n";
        return false;
      }
      if (!s.ok()) std::cerr << "etcd Range: " << s.error_message() << "\n";
      return s.ok();
    });
    rows.push_back({absl::StrCat("R1 unary reads, ", cfg.clients, " clients"),
                    "reads/s", ila_rate, etcd_rate, true});
    cpu_rows.push_back({"R1 read", ila_per_read, etcd_cpu.Stop(reads)});
    std::cerr << "etcd_bench: R1 done\n";
  }
  // W2: batches.
  if (wants("W2")) {
    constexpr int kIlaBatch = 1000, kEtcdBatch = 128;
    const int ila_batches = (cfg.tasks + kIlaBatch - 1) / kIlaBatch;
    const int etcd_batches = (cfg.tasks + kEtcdBatch - 1) / kEtcdBatch;
    std::vector<std::unique_ptr<v1::MappingService::Stub>> ila_stubs;
    std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> etcd_stubs;
    for (int c = 0; c < cfg.clients; ++c) {
      ila_stubs.push_back(v1::MappingService::NewStub(ila_ch[c]));
      etcd_stubs.push_back(etcdserverpb::KV::NewStub(etcd_ch[c]));
    }
    const CpuMeter ila_cpu(ila.pid());
    const double ila_rate =
        RunParallel(ila_batches, cfg.clients,
                    [&](int c, int b) {
                      v1::ApplyRequest req;
                      for (int i = b * kIlaBatch;
                           i < std::min(cfg.tasks, (b + 1) * kIlaBatch); ++i) {
                        auto* r = req.add_operations()->mutable_register_();
                        r->set_task(absl::StrCat("w2-", i));
                        r->set_locator(LocatorText(i));
                      }
                      v1::ApplyResponse resp;
                      grpc::ClientContext ctx;
                      grpc::Status s = ila_stubs[c]->Apply(&ctx, req, &resp);
                      if (!s.ok())
                        std::cerr << "Apply: " << s.error_message() << "\n";
                      return s.ok();
                    }) *
        kIlaBatch;
    const CpuMeter::PerOp ila_per_mapping = ila_cpu.Stop(cfg.tasks);
    const CpuMeter etcd_cpu(etcd.pid());
    const double etcd_rate =
        RunParallel(etcd_batches, cfg.clients,
                    [&](int c, int b) {
                      etcdserverpb::TxnRequest req;
                      for (int i = b * kEtcdBatch;
                           i < std::min(cfg.tasks, (b + 1) * kEtcdBatch); ++i) {
                        auto* put = req.add_success()->mutable_request_put();
                        put->set_key(absl::StrCat("/w2", EtcdKey(i)));
                        put->set_value(EtcdValue(i));
                      }
                      etcdserverpb::TxnResponse resp;
                      grpc::ClientContext ctx;
                      grpc::Status s = etcd_stubs[c]->Txn(&ctx, req, &resp);
                      if (!s.ok())
                        std::cerr << "etcd Txn: " << s.error_message() << "\n";
                      return s.ok();
                    }) *
        kEtcdBatch;
    rows.push_back({"W2 batched writes (Apply 1,000 / Txn 128)", "mappings/s",
                    ila_rate, etcd_rate, true});
    cpu_rows.push_back(
        {"W2 mapping written", ila_per_mapping, etcd_cpu.Stop(cfg.tasks)});
    std::cerr << "etcd_bench: W2 done\n";
  }
  // W4: a new subscriber's full sync of everything written so far.
  if (wants("W4")) {
    absl::Time start = absl::Now();
    int64_t ila_count = 0;
    {
      ila::client::SubscriberOptions o;
      o.servers = {ila.address()};
      o.credentials = g_tls.credentials();
      o.node = "etcd-bench";
      SnapshotWaiter waiter;
      ila::client::StreamSubscriber sub(o, &waiter);
      sub.Start();
      ila_count = waiter.Wait(absl::Seconds(120));
      sub.Stop();
    }
    const double ila_s = absl::ToDoubleSeconds(absl::Now() - start);
    start = absl::Now();
    auto kv = etcdserverpb::KV::NewStub(etcd_ch[0]);
    int64_t etcd_count = 0;
    std::string key = "/";
    const std::string end = "0";  // every key starting with "/"
    for (;;) {
      etcdserverpb::RangeRequest req;
      req.set_key(key);
      req.set_range_end(end);
      req.set_limit(10000);
      etcdserverpb::RangeResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = kv->Range(&ctx, req, &resp);
      if (!s.ok()) {
        std::cerr << "etcd Range: " << s.error_message() << "\n";
        return 1;
      }
      etcd_count += resp.kvs_size();
      if (!resp.more() || resp.kvs_size() == 0) break;
      key = resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0');
    }
    const double etcd_s = absl::ToDoubleSeconds(absl::Now() - start);
    rows.push_back({absl::StrCat("W4 full sync (", ila_count, " / ", etcd_count,
                                 " mappings)"),
                    "s", ila_s, etcd_s, false});
  }

  // W5: memory per mapping (everything W1 and W2 wrote).
  if (wants("W5")) {
    const double mappings =
        (wants("W1") ? cfg.tasks : 0) + (wants("W2") ? cfg.tasks : 0);
    if (mappings > 0) {
      rows.push_back({absl::StrCat("W5 resident memory per mapping (",
                                   static_cast<int64_t>(mappings), ")"),
                      "bytes", ila.Rss() / mappings,
                      RssOf(etcd.pid()) / mappings, false});
    }
  }

  // W3: propagation to many subscribers at a paced write rate.
  if (wants("W3")) {
    const int n = cfg.w3_subscribers;
    const int64_t writes = static_cast<int64_t>(cfg.w3_rate * cfg.w3_seconds);
    // Writes paced at the W3 rate, open loop (bench/paced_writes.h:
    // kWriters threads, so up to kWriters writes in flight), waits until
    // every subscriber saw the last one, and returns the latencies.
    // `write_one(i)` returns the write's revision, 0 on failure. `cpu`: per
    // delivered change (writes x subscribers). `rate`: writes acknowledged
    // per second.
    constexpr int kWriters = 32;
    auto measure = [&](Receipts& receipts, const char* who, pid_t server,
                       CpuMeter::PerOp* cpu, double* rate, auto write_one) {
      const CpuMeter meter(server);
      PacedWriteResult paced =
          PacedWrites(writes, cfg.w3_rate, kWriters, write_one);
      if (paced.failed > 0) {
        std::cerr << "etcd_bench: W3: " << paced.failed << " writes to " << who
                  << " failed\n";
        exit(1);
      }
      *rate = paced.rate;
      if (!receipts.WaitAll(paced.last_revision, absl::Seconds(120))) {
        std::cerr << "etcd_bench: W3: not every " << who << " got revision "
                  << paced.last_revision << " in 120 s\n";
      }
      *cpu = meter.Stop(static_cast<double>(writes) * n);
      return receipts.Latencies(paced.acked);
    };
    // ila-server: full-table subscribers from the current revision (no
    // snapshot: what an etcd watch from now does), 16 per connection.
    Receipts::Latency ila_ms;
    CpuMeter::PerOp ila_cpu, etcd_cpu;
    double ila_rate = 0, etcd_rate = 0;
    {
      int64_t from = 0;
      {
        v1::StatusResponse st;
        grpc::ClientContext ctx;
        grpc::Status s =
            v1::MappingService::NewStub(ila_ch[0])->Status(&ctx, {}, &st);
        if (!s.ok()) {
          std::cerr << "W3 Status: " << s.error_message() << "\n";
          return 1;
        }
        from = st.revision();
      }
      Receipts receipts(n);
      std::vector<std::unique_ptr<ReceiptListener>> listeners;
      std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
      std::vector<std::shared_ptr<grpc::Channel>> channels;
      using IlaReader =
          StreamReader<v1::SubscribeRequest, v1::SubscribeResponse>;
      std::vector<std::unique_ptr<v1::MappingStream::Stub>> stream_stubs;
      std::vector<std::unique_ptr<IlaReader>> readers;
      std::atomic<int> synced{0};
      if (cfg.w3_ila_client == "library") {
        for (int i = 0; i < n; ++i) {
          listeners.push_back(std::make_unique<ReceiptListener>(&receipts, i));
          client::SubscriberOptions o;
          o.servers = {ila.address()};
          o.credentials = g_tls.credentials();
          o.node = absl::StrCat("w3-", i);
          o.connection_group = i / 16;
          o.resume_revision = from;
          subs.push_back(std::make_unique<client::StreamSubscriber>(
              o, listeners.back().get()));
          subs.back()->Start();
        }
        for (auto& sub : subs) {
          for (int t = 0; t < 600 && !sub->synced(); ++t) {
            absl::SleepFor(absl::Milliseconds(100));  // polling the client
          }
        }
      } else {
        for (int c = 0; c < (n + 15) / 16; ++c) {
          channels.push_back(Dial(ila.address(), g_tls.credentials()));
          stream_stubs.push_back(v1::MappingStream::NewStub(channels.back()));
        }
        for (int i = 0; i < n; ++i) {
          v1::SubscribeRequest hello;
          hello.mutable_hello()->set_node(absl::StrCat("w3-", i));
          hello.mutable_hello()->set_role(v1::NODE_ROLE_OBSERVER);
          hello.mutable_hello()->set_resume_revision(from);
          // Streaming from `from`: the first message (a heartbeat within
          // the progress interval) says the stream is up.
          readers.push_back(std::make_unique<IlaReader>(
              hello,
              [&, i, first = true](const v1::SubscribeResponse& resp) mutable {
                if (first) ++synced;
                first = false;
                if (!resp.has_updates()) return;
                for (const auto& u : resp.updates().updates()) {
                  receipts.Saw(i, u.revision());
                }
              }));
          readers.back()->Start([&](grpc::ClientContext* ctx, IlaReader* r) {
            stream_stubs[i / 16]->async()->Subscribe(ctx, r);
          });
        }
        for (int t = 0; t < 600 && synced < n; ++t) {
          absl::SleepFor(absl::Milliseconds(100));  // polling the readers
        }
      }
      auto stub = v1::MappingService::NewStub(ila_ch[0]);
      ila_ms = measure(receipts, "ila-server", ila.pid(), &ila_cpu, &ila_rate,
                       [&](int64_t i) {
                         v1::RegisterTaskRequest req;
                         req.set_task(absl::StrCat("w3-", i));
                         req.set_locator(LocatorText(static_cast<int>(i)));
                         v1::RegisterTaskResponse resp;
                         grpc::ClientContext ctx;
                         grpc::Status s = stub->RegisterTask(&ctx, req, &resp);
                         if (!s.ok()) {
                           std::cerr << "W3 RegisterTask: " << s.error_message()
                                     << "\n";
                           return int64_t{0};
                         }
                         return resp.revision();
                       });
      for (auto& sub : subs) sub->Stop();
      for (auto& r : readers) r->Cancel();
      for (auto& r : readers) {
        if (!r->WaitDone(absl::Seconds(30))) {
          std::cerr << "etcd_bench: W3: a stream did not end\n";
          exit(1);
        }
      }
    }
    // etcd: one watcher per Watch stream, 16 streams per connection.
    Receipts::Latency etcd_ms;
    {
      Receipts receipts(n);
      std::vector<std::shared_ptr<grpc::Channel>> channels;
      for (int c = 0; c < (n + 15) / 16; ++c) {
        channels.push_back(Dial(etcd.address()));
      }
      using EtcdWatcher =
          StreamReader<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;
      std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_stubs;
      for (auto& ch : channels) {
        watch_stubs.push_back(etcdserverpb::Watch::NewStub(ch));
      }
      std::vector<std::unique_ptr<EtcdWatcher>> watchers;
      std::atomic<int> created{0};
      for (int i = 0; i < n; ++i) {
        etcdserverpb::WatchRequest req;
        req.mutable_create_request()->set_key("/w3/");
        req.mutable_create_request()->set_range_end("/w30");
        watchers.push_back(std::make_unique<EtcdWatcher>(
            req, [&, i](const etcdserverpb::WatchResponse& resp) {
              if (resp.created()) ++created;
              for (const auto& e : resp.events()) {
                receipts.Saw(i, e.kv().mod_revision());
              }
            }));
        watchers.back()->Start([&](grpc::ClientContext* ctx, EtcdWatcher* w) {
          watch_stubs[i / 16]->async()->Watch(ctx, w);
        });
      }
      for (int t = 0; t < 600 && created < n; ++t) {
        absl::SleepFor(absl::Milliseconds(100));  // polling the watchers
      }
      auto kv = etcdserverpb::KV::NewStub(etcd_ch[0]);
      etcd_ms = measure(
          receipts, "etcd", etcd.pid(), &etcd_cpu, &etcd_rate, [&](int64_t i) {
            etcdserverpb::PutRequest req;
            req.set_key(absl::StrCat("/w3/", i));
            req.set_value(EtcdValue(static_cast<int>(i)));
            etcdserverpb::PutResponse resp;
            grpc::ClientContext ctx;
            grpc::Status s = kv->Put(&ctx, req, &resp);
            if (!s.ok()) {
              std::cerr << "W3 etcd Put: " << s.error_message() << "\n";
              return int64_t{0};
            }
            return resp.header().revision();
          });
      for (auto& w : watchers) w->Cancel();
      for (auto& w : watchers) {
        if (!w->WaitDone(absl::Seconds(30))) {
          std::cerr << "etcd_bench: W3: a watch did not end\n";
          exit(1);
        }
      }
    }
    const std::string what =
        absl::StrCat(n, " subscribers (", cfg.w3_ila_client, "), ", cfg.w3_rate,
                     " writes/s");
    rows.push_back({absl::StrCat("W3 p50 from ack (", what, ")"), "ms",
                    Percentile(ila_ms.from_ack, 50),
                    Percentile(etcd_ms.from_ack, 50), false});
    rows.push_back({absl::StrCat("W3 p99 from ack (", what, ")"), "ms",
                    Percentile(ila_ms.from_ack, 99),
                    Percentile(etcd_ms.from_ack, 99), false});
    rows.push_back({absl::StrCat("W3 p50 from send (", what, ")"), "ms",
                    Percentile(ila_ms.from_send, 50),
                    Percentile(etcd_ms.from_send, 50), false});
    rows.push_back({absl::StrCat("W3 p99 from send (", what, ")"), "ms",
                    Percentile(ila_ms.from_send, 99),
                    Percentile(etcd_ms.from_send, 99), false});
    rows.push_back({absl::StrCat("W3 writes acknowledged per second (paced at ",
                                 cfg.w3_rate, ")"),
                    "writes/s", ila_rate, etcd_rate, true});
    cpu_rows.push_back({"W3 change delivered", ila_cpu, etcd_cpu});
    std::cerr << "etcd_bench: W3 done\n";
  }

  std::vector<std::vector<std::string>> table = {
      {"workload", "ila-server", "etcd", "ila-server / etcd"}};
  for (const Row& r : rows) {
    const double ratio = r.higher_is_better ? r.ila / r.etcd : r.etcd / r.ila;
    table.push_back({r.workload, absl::StrFormat("%.2f %s", r.ila, r.unit),
                     absl::StrFormat("%.2f %s", r.etcd, r.unit),
                     absl::StrFormat("%.1fx", ratio)});
  }
  std::string text = ila::client::FormatColumns(table);
  if (!cpu_rows.empty()) {
    std::vector<std::vector<std::string>> cpu_table = {
        {"CPU per operation", "ila-server", "generator", "etcd", "generator"}};
    for (const CpuRow& r : cpu_rows) {
      cpu_table.push_back({r.operation,
                           absl::StrFormat("%.2f us", r.ila.server_us),
                           absl::StrFormat("%.2f us", r.ila.generator_us),
                           absl::StrFormat("%.2f us", r.etcd.server_us),
                           absl::StrFormat("%.2f us", r.etcd.generator_us)});
    }
    absl::StrAppend(&text, "\n", ila::client::FormatColumns(cpu_table));
  }
  std::cout << text;
  if (!cfg.results.empty()) {
    std::ofstream out(cfg.results);
    std::string cpu = "unknown CPU";
    for (absl::string_view line :
         absl::StrSplit(ReadFile("/proc/cpuinfo"), '\n')) {
      if (absl::ConsumePrefix(&line, "model name")) {
        cpu = std::string(absl::StripLeadingAsciiWhitespace(
            absl::StripPrefix(absl::StripLeadingAsciiWhitespace(line), ":")));
        break;
      }
    }
    std::string command;
    for (int i = 0; i < argc; ++i)
      absl::StrAppend(&command, i ? " " : "", argv[i]);
    out << "# etcd_bench\n\nMachine: " << std::thread::hardware_concurrency()
        << " CPUs (" << cpu << "). ila-server --sync always and etcd ("
        << cfg.etcd
        << ") as children on loopback, one load generator on the same CPUs"
        << (g_tls.enabled() ? "; ila-server over mTLS, etcd plaintext" : "")
        << ".\n"
        << "Command: `" << command << "`\n\n```\n"
        << text << "```\n";
  }
  return 0;
}
