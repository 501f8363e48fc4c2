// ila-server: the ILA mapping database and its gRPC API.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "common/version.h"
#include "ila/v1/backup.h"
#include "server/convert.h"
#include "server/server.h"

namespace {

// ila-server --restore: the backup into an empty data directory.
absl::Status RestoreBackup(const std::string& file,
                           ila::storage::RocksDbStoreOptions store_options) {
  auto backup = ila::v1::ReadBackup(file);
  if (!backup.ok()) return backup.status();
  std::vector<ila::storage::Mapping> mappings;
  mappings.reserve(backup->mappings.size());
  for (const auto& m : backup->mappings) {
    auto mapping = ila::server::FromProto(m);
    if (!mapping.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backup \"", file, "\": mapping of task \"", m.task(),
                       "\": ", mapping.status().message()));
    }
    mappings.push_back(*std::move(mapping));
  }
  auto store =
      ila::storage::RocksDbMappingStore::Open(std::move(store_options));
  if (!store.ok()) return store.status();
  absl::Status s = (*store)->Restore(backup->revision, mappings);
  (*store)->Close();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  ila::InitRuntime();
  // Give freed memory back to the OS beyond 1 MiB at the top of the heap
  // (glibc's dynamic threshold grows to tens of MiB after large gRPC and
  // RocksDB buffers and keeps them resident; decision 27).
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  // Setting the trim threshold also fixes the mmap threshold at 128 KiB:
  // then every 1 MiB block of a RocksDB memtable is mmapped, faulted in
  // page by page and unmapped (page faults were ~20% of the writer thread
  // under batched writes). Blocks up to 8 MiB come from the heap and are
  // reused; what is free there is given back once a second below
  // (decision 32).
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  CLI::App app{"ila-server: the ILA identifier -> locator mapping database"};
  app.set_version_flag("--version", std::string(ila::Version()));
  app.set_config("--config", "", "read flags from this TOML file");

  std::string listen = "localhost:50051";
  std::string data_dir = "var/ila";
  std::string sync = "always";
  int sync_interval_ms = 10;
  int64_t retain = 100000;
  std::string sir_prefix = "fd00:0:0:0";
  std::string csum_mode = "adj-transport";
  size_t max_apply = 10000;
  std::string log_level = "info";
  std::string port_file;
  int progress_ms = 1000;
  int batch_delay_ms = 10;
  int wake_threads = 0;
  size_t ring_changes = 200000;
  size_t memtable_mb = 32, cache_mb = 16;
  int keepalive_s = 30;
  app.add_option("--listen", listen,
                 "gRPC address: host:port, or unix:PATH (local agents)")
      ->capture_default_str();
  ila::TlsFiles tls;
  bool allow_plaintext = false;
  app.add_option("--ca", tls.ca, "TLS: the CA that signs clients (PEM)");
  app.add_option("--cert", tls.cert, "TLS: this server's certificate (PEM)");
  app.add_option("--key", tls.key, "TLS: this server's private key (PEM)");
  app.add_flag("--allow-plaintext", allow_plaintext,
               "serve plaintext gRPC on a non-loopback address (insecure; "
               "logged loudly)");
  std::string restore;
  app.add_option("--restore", restore,
                 "load a backup (ilactl snapshot save) into the empty "
                 "--data-dir, then exit");
  app.add_option("--data-dir", data_dir, "RocksDB directory")
      ->capture_default_str();
  app.add_option("--sync", sync,
                 "always: fsync before every acknowledgement (survives power "
                 "loss); batch: fsync every --sync-interval-ms; none: never "
                 "fsync (survives process crashes only)")
      ->capture_default_str();
  app.add_option("--sync-interval-ms", sync_interval_ms,
                 "fsync period for --sync=batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--retain-revisions", retain,
                 "revisions kept in the change log for stream resume")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--sir-prefix", sir_prefix,
                 "SIR prefix for tasks registered without one")
      ->capture_default_str();
  app.add_option("--csum-mode", csum_mode,
                 "default checksum mode: adj-transport|neutral-map|"
                 "neutral-map-auto|no-action")
      ->capture_default_str();
  app.add_option("--max-apply-operations", max_apply,
                 "most operations in one Apply")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.add_option("--port-file", port_file,
                 "write the bound port here once serving (for --listen :0)");
  app.add_option("--progress-interval-ms", progress_ms,
                 "stream heartbeat (Progress) period while idle")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--stream-batch-delay-ms", batch_delay_ms,
                 "coalescing window: at most one stream message per "
                 "subscriber per window (0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--stream-wake-threads", wake_threads,
                 "threads that start the stream writes after a commit "
                 "(0 = one per CPU, at most 4)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app.add_option("--stream-ring-changes", ring_changes,
                 "recent changes kept in memory for streams; older ones are "
                 "read from the change log")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000000}));
  app.add_option("--rocksdb-memtable-mb", memtable_mb,
                 "RocksDB: all memtables together (a full budget flushes)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{4}, size_t{65536}));
  app.add_option("--rocksdb-cache-mb", cache_mb,
                 "RocksDB: the block cache (data, index and filter blocks)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{65536}));
  ila::server::ClientLimitOptions limits;
  size_t max_message_bytes = 4 << 20;
  app.add_option("--max-streams-per-client", limits.max_streams_per_client,
                 "concurrent Subscribe streams of one client (certificate, "
                 "or IP address in plaintext)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-requests-per-second", limits.max_requests_per_second,
                 "requests per second of one client (a second's worth may "
                 "come at once)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e9));
  app.add_option("--max-message-bytes", max_message_bytes,
                 "largest request accepted")
      ->capture_default_str()
      ->check(CLI::Range(size_t{4096}, size_t{1} << 30));
  app.add_option("--keepalive-seconds", keepalive_s,
                 "HTTP/2 keepalive ping period (half-open streams are "
                 "dropped 10 s after a ping goes unanswered)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& message) {
    std::cerr << "ila-server: " << message << "\n";
    return 2;
  };
  ila::logging::LogToStderr();
  if (absl::Status s = ila::logging::SetLevel(log_level); !s.ok()) {
    return fail(absl::StrCat("--log-level: ", s.message()));
  }
  ila::server::ServerOptions options;
  options.listen = listen;
  options.tls = tls;
  options.allow_plaintext = allow_plaintext;
  options.limits = limits;
  options.max_message_bytes = max_message_bytes;
  options.max_apply_operations = max_apply;
  options.store.path = data_dir;
  options.streams.progress_interval = absl::Milliseconds(progress_ms);
  options.streams.batch_delay = absl::Milliseconds(batch_delay_ms);
  options.streams.fan_out_threads = wake_threads;
  options.streams.ring_max_changes = ring_changes;
  options.store.memtable_budget_bytes = memtable_mb << 20;
  options.store.block_cache_bytes = cache_mb << 20;
  options.keepalive_time = absl::Seconds(keepalive_s);
  options.store.retained_revisions = retain;
  options.store.batch_sync_interval = absl::Milliseconds(sync_interval_ms);
  auto mode = ila::storage::ParseSyncMode(sync);
  if (!mode.ok())
    return fail(absl::StrCat("--sync: ", mode.status().message()));
  options.store.sync_mode = *mode;
  auto prefix = ila::ParseSirPrefix(sir_prefix);
  if (!prefix.ok()) {
    return fail(absl::StrCat("--sir-prefix: ", prefix.status().message()));
  }
  options.store.planner.default_sir_prefix = *prefix;
  auto csum = ila::ParseChecksumMode(csum_mode);
  if (!csum.ok()) {
    return fail(absl::StrCat("--csum-mode: ", csum.status().message()));
  }
  options.store.planner.default_checksum_mode = *csum;

  if (!restore.empty()) {
    absl::Status s = RestoreBackup(restore, options.store);
    if (!s.ok()) return fail(std::string(s.message()));
    std::cout << "ila-server: restored \"" << restore << "\" into " << data_dir
              << "; start ila-server on it" << std::endl;
    return 0;
  }

  // Signals are taken by sigwait() below; block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ila::server::RouteGrpcLogging();
  auto server = ila::server::IlaServer::Start(options);
  if (!server.ok()) return fail(std::string(server.status().message()));
  if (!port_file.empty() &&
      !ila::WriteFileAtomically(port_file,
                                absl::StrCat((*server)->port(), "\n"))
           .ok()) {
    (*server)->Shutdown();
    return fail(absl::StrCat("--port-file: cannot write \"", port_file, "\""));
  }
  std::string shown = listen;
  if (absl::EndsWith(shown, ":0")) {
    shown = absl::StrCat(shown.substr(0, shown.size() - 1), (*server)->port());
  }
  std::cout << "ila-server: serving on " << shown << ", data in " << data_dir
            << ", sync=" << sync << ". Try: build/bin/ilactl --server " << shown
            << " task register web/1 --locator 2001:db8:100:0 && "
               "build/bin/ilactl --server "
            << shown << " list" << std::endl;

  // Wait for SIGINT/SIGTERM; meanwhile, once a second, give free heap
  // memory back to the OS when more than 16 MiB of it has accumulated
  // (freed memtable blocks in the middle of the heap, which the trim
  // threshold cannot release).
  int sig = 0;
  for (;;) {
    const timespec one_second{1, 0};
    sig = sigtimedwait(&signals, nullptr, &one_second);
    if (sig > 0) break;
    if (mallinfo2().fordblks > (16u << 20)) malloc_trim(0);
  }
  ILA_LOG_INFO("received {}; shutting down",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  return 0;
}
