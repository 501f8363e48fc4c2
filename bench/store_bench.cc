// store_bench: the write ceiling of the storage design itself, without gRPC
// or a load generator (bench/README.md): how many mappings a second the
// RocksDB store can make durable on this machine, and what RocksDB alone
// costs for the design's key layout (design.md §5: per mapping a `mappings`
// and a `tasks` key, per revision a `changes` record and the meta keys, one
// WriteBatch per group, fsynced).
//   store    RocksDbMappingStore::Submit of requests of --batch registrations,
//            --inflight requests outstanding (planner, group commit, fsync)
//   rocksdb  the same keys and values written with WriteBatch from one
//            thread, one batch of --batch mappings per fsync, no reads: the
//            floor under the store's writer
// Prints mappings/s and the CPU per mapping (this process, all threads).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/children.h"
#include "client/format.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/codec.h"
#include "storage/rocksdb_store.h"

namespace ila::bench {
namespace {

struct Config {
  int mappings = 1000000;
  int batch = 1000;
  int inflight = 4;
  std::string parts = "store,rocksdb";
  std::string dir = "/tmp/store_bench";
};

struct Result {
  double mappings_per_second = 0;
  double cpu_us_per_mapping = 0;
};

Locator LocatorOf(int i) {
  return Locator{0x20010db800000000 | static_cast<uint64_t>(i % 4096)};
}

// RocksDbMappingStore with --inflight requests of --batch registrations
// outstanding; exits on a failed request.
Result RunStore(const Config& cfg) {
  storage::RocksDbStoreOptions o;
  o.path = cfg.dir + "/store";
  o.sync_mode = storage::SyncMode::kAlways;
  o.planner.max_operations = std::max<size_t>(10000, cfg.batch);
  auto store = storage::RocksDbMappingStore::Open(o);
  if (!store.ok()) {
    std::cerr << "store_bench: " << store.status() << "\n";
    exit(1);
  }
  absl::Mutex mu;
  int outstanding = 0;
  bool failed = false;
  const int requests = (cfg.mappings + cfg.batch - 1) / cfg.batch;
  const double cpu0 = CpuSecondsOf(0);
  const absl::Time start = absl::Now();
  for (int r = 0; r < requests; ++r) {
    storage::WriteRequest req;
    req.batch = true;
    for (int i = r * cfg.batch; i < std::min(cfg.mappings, (r + 1) * cfg.batch);
         ++i) {
      storage::RegisterOp op;
      op.task = absl::StrCat("s-", i);
      op.locator = LocatorOf(i);
      req.operations.push_back(std::move(op));
    }
    {
      absl::MutexLock l(&mu);
      auto room = [&] { return outstanding < cfg.inflight; };
      mu.Await(absl::Condition(&room));
      ++outstanding;
    }
    (*store)->Submit(
        std::move(req), [&](absl::StatusOr<storage::CommitResult> result) {
          absl::MutexLock l(&mu);
          if (!result.ok()) {
            std::cerr << "store_bench: " << result.status() << "\n";
            failed = true;
          }
          --outstanding;
        });
  }
  {
    absl::MutexLock l(&mu);
    auto done = [&] { return outstanding == 0; };
    mu.Await(absl::Condition(&done));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = CpuSecondsOf(0) - cpu0;
  (*store)->Close();
  if (failed) exit(1);
  return {cfg.mappings / seconds, cpu * 1e6 / cfg.mappings};
}

// The store's key layout written with plain WriteBatches from one thread.
Result RunRocksDb(const Config& cfg) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = 8 << 20;  // the store's: its 32 MiB budget / 4
  cf.max_write_buffer_number = 2;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, cf},
      {"mappings", cf},
      {"tasks", cf},
      {"changes", cf},
      {"meta", cf}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(options),
                                        cfg.dir + "/rocksdb", cfs, &h, &raw);
  if (!s.ok()) {
    std::cerr << "store_bench: " << s.ToString() << "\n";
    exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const absl::Time now = absl::Now();
  const double cpu0 = CpuSecondsOf(0);
  const absl::Time start = absl::Now();
  int64_t revision = 0;
  for (int first = 0; first < cfg.mappings; first += cfg.batch) {
    rocksdb::WriteBatch batch;
    storage::ChangeSet set;
    set.revision = ++revision;
    set.commit_time = now;
    for (int i = first; i < std::min(cfg.mappings, first + cfg.batch); ++i) {
      storage::Mapping m;
      m.task = absl::StrCat("s-", i);
      m.identifier = MakeLuidIdentifier(static_cast<uint64_t>(i) + 1);
      m.locator = LocatorOf(i);
      m.sir_prefix = SirPrefix{0xfd00000000000000};
      m.create_revision = m.mod_revision = revision;
      m.version = 1;
      m.update_time = now;
      const std::string id = storage::EncodeUint64Key(m.identifier.value);
      batch.Put(h[1], id, storage::EncodeMapping(m));
      batch.Put(h[2], m.task, id);
      set.changes.push_back(storage::Change{std::nullopt, std::move(m)});
    }
    batch.Put(h[3], storage::EncodeUint64Key(revision),
              storage::EncodeChangeSet(set));
    for (const char* key :
         {"revision", "compacted_revision", "next_sequence", "mapping_count"}) {
      batch.Put(h[4], key, storage::EncodeUint64Key(revision));
    }
    s = db->Write(wo, &batch);
    if (!s.ok()) {
      std::cerr << "store_bench: " << s.ToString() << "\n";
      exit(1);
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = CpuSecondsOf(0) - cpu0;
  for (auto* handle : h)
    db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  db->Close().PermitUncheckedError();
  return {cfg.mappings / seconds, cpu * 1e6 / cfg.mappings};
}

}  // namespace
}  // namespace ila::bench

int main(int argc, char** argv) {
  using namespace ila::bench;
  ila::InitRuntime();
  Config cfg;
  CLI::App app{"store_bench: the storage design's write ceiling"};
  app.add_option("--mappings", cfg.mappings, "mappings to write per part")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--batch", cfg.batch, "registrations per request / batch")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--inflight", cfg.inflight, "store: requests outstanding")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--parts", cfg.parts, "comma-separated: store,rocksdb")
      ->capture_default_str();
  app.add_option("--dir", cfg.dir, "scratch directory (emptied)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::vector<std::vector<std::string>> table = {
      {"part", "mappings/s", "CPU per mapping"}};
  for (absl::string_view part : absl::StrSplit(cfg.parts, ',')) {
    std::filesystem::remove_all(cfg.dir);
    std::filesystem::create_directories(cfg.dir);
    Result r;
    if (part == "store") {
      r = RunStore(cfg);
    } else if (part == "rocksdb") {
      r = RunRocksDb(cfg);
    } else {
      std::cerr << "store_bench: --parts: \"" << part
                << "\" is not store or rocksdb\n";
      return 2;
    }
    table.push_back({std::string(part),
                     absl::StrFormat("%.0f", r.mappings_per_second),
                     absl::StrFormat("%.2f us", r.cpu_us_per_mapping)});
  }
  std::filesystem::remove_all(cfg.dir);
  std::cout << ila::client::FormatColumns(table);
  return 0;
}
