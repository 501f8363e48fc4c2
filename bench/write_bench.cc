// write_bench: durable write throughput of ila-server, unary RegisterTask
// from N concurrent clients and Apply batches, for each sync mode.
//
// Starts an in-process ila-server on 127.0.0.1 (ephemeral port, temporary
// RocksDB) per sync mode and drives it over real gRPC on loopback.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/tls_flags.h"
#include "client/format.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/server.h"

namespace ila::bench {
namespace {

// --ca/--cert/--key: the in-process server and its clients over mTLS.
BenchTls g_tls;

struct Config {
  int tasks = 20000;
  int clients = 64;
  int batch = 1000;
  int batch_clients = 4;
  int channels = 4;
  std::string sync_modes = "always,batch,none";
};

struct Result {
  double unary_per_s = 0;
  double batch_per_s = 0;
  int errors = 0;
};

std::vector<std::unique_ptr<v1::MappingService::Stub>> Stubs(int port, int n) {
  std::vector<std::unique_ptr<v1::MappingService::Stub>> stubs;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("bench.channel", i);  // distinct channels, distinct sockets
    stubs.push_back(v1::MappingService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port), g_tls.credentials(), args)));
  }
  return stubs;
}

// Runs `threads` workers over `items` work items; returns items per second.
template <typename Fn>
double RunParallel(int threads, int items, Fn fn) {
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = next++; i < items; i = next++) fn(t, i);
    });
  }
  for (auto& w : workers) w.join();
  return items / absl::ToDoubleSeconds(absl::Now() - start);
}

Result RunMode(const Config& cfg, storage::SyncMode mode) {
  const std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(),
                   "/ila-bench-", getpid(), "-", storage::SyncModeName(mode));
  std::filesystem::remove_all(dir);
  server::ServerOptions o;
  o.tls = g_tls.ServerFiles();
  o.listen = "127.0.0.1:0";
  o.store.path = dir;
  o.store.sync_mode = mode;
  o.max_apply_operations = std::max(cfg.batch, 1);
  auto srv = server::IlaServer::Start(o);
  if (!srv.ok()) {
    std::cerr << "write_bench: " << srv.status() << "\n";
    exit(1);
  }
  auto stubs = Stubs((*srv)->port(), cfg.channels);
  Result r;
  std::atomic<int> errors{0};

  r.unary_per_s = RunParallel(cfg.clients, cfg.tasks, [&](int t, int i) {
    v1::RegisterTaskRequest req;
    req.set_task(absl::StrCat("unary/", i));
    req.set_locator("2001:db8:100:0");
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    if (!stubs[t % stubs.size()]->RegisterTask(&ctx, req, &resp).ok()) {
      ++errors;
    }
  });

  const int batches = (cfg.tasks + cfg.batch - 1) / cfg.batch;
  double batches_per_s =
      RunParallel(cfg.batch_clients, batches, [&](int t, int b) {
        v1::ApplyRequest req;
        for (int k = 0; k < cfg.batch; ++k) {
          auto* reg = req.add_operations()->mutable_register_();
          reg->set_task(absl::StrCat("batch/", b, "/", k));
          reg->set_locator("2001:db8:200:0");
        }
        v1::ApplyResponse resp;
        grpc::ClientContext ctx;
        if (!stubs[t % stubs.size()]->Apply(&ctx, req, &resp).ok()) ++errors;
      });
  r.batch_per_s = batches_per_s * cfg.batch;
  r.errors = errors.load();
  (*srv)->Shutdown();
  srv->reset();
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace
}  // namespace ila::bench

int main(int argc, char** argv) {
  using namespace ila::bench;
  ila::InitRuntime();
  CLI::App app{"write_bench: ila-server durable write throughput"};
  Config cfg;
  app.add_option("--tasks", cfg.tasks, "mappings written per workload")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--clients", cfg.clients, "concurrent unary clients")
      ->check(CLI::Range(1, 4096));
  app.add_option("--batch", cfg.batch, "operations per Apply")
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch-clients", cfg.batch_clients,
                 "concurrent Apply clients")
      ->check(CLI::Range(1, 256));
  app.add_option("--sync-modes", cfg.sync_modes, "comma-separated");
  g_tls.AddFlags(app);
  CLI11_PARSE(app, argc, argv);
  g_tls.Init();
  ila::logging::LogToStderr();
  (void)ila::logging::SetLevel("warn");

  std::cout << absl::StrFormat(
      "write_bench: %d mappings per workload, %d unary clients, Apply "
      "batches of %d from %d clients, %u cores\n\n",
      cfg.tasks, cfg.clients, cfg.batch, cfg.batch_clients,
      std::thread::hardware_concurrency());
  std::vector<std::vector<std::string>> rows = {
      {"sync", "unary mappings/s", "Apply mappings/s", "errors"}};
  int errors = 0;
  for (absl::string_view name : absl::StrSplit(cfg.sync_modes, ',')) {
    auto mode = ila::storage::ParseSyncMode(name);
    if (!mode.ok()) {
      std::cerr << "write_bench: --sync-modes: " << mode.status().message()
                << "\n";
      return 2;
    }
    Result r = RunMode(cfg, *mode);
    rows.push_back({std::string(name), absl::StrFormat("%.0f", r.unary_per_s),
                    absl::StrFormat("%.0f", r.batch_per_s),
                    absl::StrCat(r.errors)});
    errors += r.errors;
  }
  std::cout << ila::client::FormatColumns(rows);
  // A failed request makes the figures meaningless: say so in the exit code.
  return errors == 0 ? 0 : 1;
}
