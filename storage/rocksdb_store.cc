#include "storage/rocksdb_store.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/codec.h"

namespace ila::storage {
namespace {

constexpr char kMetaRevision[] = "revision";
constexpr char kMetaCompacted[] = "compacted_revision";
constexpr char kMetaNextSequence[] = "next_sequence";
constexpr char kMetaCount[] = "mapping_count";
constexpr char kMetaFormat[] = "format_version";
constexpr char kMetaHistory[] = "history_id";

// A new history id: random and never 0 (0 means "unknown" on the wire).
uint64_t NewHistory() {
  std::random_device rd;
  uint64_t h = 0;
  while (h == 0) h = (uint64_t{rd()} << 32) ^ rd();
  return h;
}
constexpr uint64_t kFormatVersion = 1;

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (s.IsNotFound()) code = absl::StatusCode::kNotFound;
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() ||
      s.IsShutdownInProgress() || s.IsNoSpace()) {
    code = absl::StatusCode::kUnavailable;
  }
  if (s.IsCorruption()) code = absl::StatusCode::kDataLoss;
  if (s.IsInvalidArgument()) code = absl::StatusCode::kFailedPrecondition;
  return absl::Status(code, absl::StrCat(context, ": ", s.ToString()));
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// RocksDB's own messages go to ila-server's log (stderr, the journal), not
// to a LOG file in the data directory: with the disk full, Debian's RocksDB
// (built with assertions) aborted the process on the next line of its LOG
// file after a failed write to it (found by DiskFullTest).
class RocksLogger final : public rocksdb::Logger {
 public:
  RocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    vsnprintf(buf, sizeof(buf), format, ap);
    // Creating a new database, RocksDB first reports the missing directory.
    if (absl::StrContains(buf, "Error when reading") &&
        absl::StrContains(buf, "dir NotFound")) {
      return;
    }
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      ILA_LOG_ERROR("rocksdb: {}", buf);
    } else {
      ILA_LOG_WARN("rocksdb: {}", buf);
    }
  }
};

}  // namespace

absl::StatusOr<SyncMode> ParseSyncMode(absl::string_view text) {
  if (text == "always") return SyncMode::kAlways;
  if (text == "batch") return SyncMode::kBatch;
  if (text == "none") return SyncMode::kNone;
  return absl::InvalidArgumentError(absl::StrCat(
      "sync mode ", Quoted(text), " is not one of always|batch|none"));
}

absl::string_view SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kAlways:
      return "always";
    case SyncMode::kBatch:
      return "batch";
    case SyncMode::kNone:
      return "none";
  }
  return "unknown";
}

// Reads the latest committed state; used only by the writer thread, which is
// the only writer, so "latest" is exactly the committed state.
class RocksDbMappingStore::DbReader final : public StateReader {
 public:
  explicit DbReader(RocksDbMappingStore* store) : store_(store) {}
  absl::StatusOr<std::optional<Mapping>> FindTask(
      const std::string& task) override {
    return store_->GetTask(nullptr, task);
  }
  absl::StatusOr<std::optional<Mapping>> FindIdentifier(
      Identifier id) override {
    return store_->GetMapping(nullptr, id);
  }

 private:
  RocksDbMappingStore* store_;
};

RocksDbMappingStore::RocksDbMappingStore(RocksDbStoreOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<RocksDbMappingStore>> RocksDbMappingStore::Open(
    RocksDbStoreOptions options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("data directory: empty path");
  }
  if (options.retained_revisions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("retained revisions: ", options.retained_revisions,
                     " must be at least 1"));
  }
  if (options.max_group_requests < 1) options.max_group_requests = 1;
  if (!options.clock) options.clock = [] { return absl::Now(); };
  std::unique_ptr<RocksDbMappingStore> store(
      new RocksDbMappingStore(std::move(options)));
  ILA_RETURN_IF_ERROR(store->OpenDb());
  store->last_sync_ = store->options_.clock();
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

absl::Status RocksDbMappingStore::OpenDb() {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.info_log = std::make_shared<RocksLogger>();
  // Memory is bounded and shared (decision 27): every memtable counts
  // against one budget (a full budget flushes the largest), and data, index
  // and filter blocks share one cache.
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(
          options_.memtable_budget_bytes);
  rocksdb::LRUCacheOptions cache;
  cache.capacity = options_.block_cache_bytes;
  cache.high_pri_pool_ratio = 0.5;  // index and filter blocks
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(cache);
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // The tasks and mappings families are read by key, most lookups for keys
  // that do not exist (new tasks, new identifiers): Bloom filters in
  // partitions of 4 KiB (a lookup loads one partition, not a whole file's
  // filter), kept in the cache's high-priority pool with the index blocks.
  rocksdb::BlockBasedTableOptions point_table = table;
  point_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  point_table.partition_filters = true;
  point_table.index_type =
      rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  point_table.metadata_block_size = 4096;
  point_table.pin_top_level_index_and_filter = true;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.write_buffer_size =
      std::max<size_t>(options_.memtable_budget_bytes / 4, 1 << 20);
  cf_options.max_write_buffer_number = 2;
  // The writer looks up every task and identifier a request names, most of
  // them new: a bloom filter in the memtable answers "not here" without a
  // skiplist search (decision 32).
  cf_options.memtable_whole_key_filtering = true;
  cf_options.memtable_prefix_bloom_size_ratio = 0.02;
  rocksdb::ColumnFamilyOptions point_options = cf_options;
  point_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(point_table));
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {"mappings", point_options},
      {"tasks", point_options},
      {"changes", cf_options},
      {"meta", cf_options},
  };
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options),
                                        options_.path, cfs, &handles_, &db_);
  ILA_RETURN_IF_ERROR(
      FromRocks(s, absl::StrCat("opening RocksDB in ", Quoted(options_.path))));
  mappings_ = handles_[1];
  tasks_ = handles_[2];
  changes_ = handles_[3];
  meta_cf_ = handles_[4];

  std::string format;
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFormat, &format);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ILA_RETURN_IF_ERROR(FromRocks(
        db_->Put(wo, meta_cf_, kMetaFormat, EncodeUint64Key(kFormatVersion)),
        "writing format version"));
  } else {
    ILA_RETURN_IF_ERROR(FromRocks(s, "reading format version"));
    ILA_ASSIGN_OR_RETURN(uint64_t v, DecodeUint64Key(format));
    if (v != kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", Quoted(options_.path), " has format version ", v,
          "; this build reads ", kFormatVersion));
    }
  }
  std::string history;
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaHistory, &history);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    const uint64_t h = NewHistory();
    ILA_RETURN_IF_ERROR(
        FromRocks(db_->Put(wo, meta_cf_, kMetaHistory, EncodeUint64Key(h)),
                  "writing the history id"));
    history_ = h;
  } else {
    ILA_RETURN_IF_ERROR(FromRocks(s, "reading the history id"));
    ILA_ASSIGN_OR_RETURN(uint64_t h, DecodeUint64Key(history));
    history_ = h;
  }
  ILA_ASSIGN_OR_RETURN(committed_, ReadMeta(nullptr));
  ILA_LOG_INFO(
      "mapping store open at {}: revision {}, {} mappings, compacted "
      "revision {}, history {:016x}, sync={}",
      options_.path, committed_.revision, committed_.mapping_count,
      committed_.compacted_revision, history_.load(),
      SyncModeName(options_.sync_mode));
  return absl::OkStatus();
}

RocksDbMappingStore::~RocksDbMappingStore() { Close(); }

absl::Status RocksDbMappingStore::Restore(
    int64_t revision, const std::vector<Mapping>& mappings) {
  absl::MutexLock l(&mu_);  // no group commit can start meanwhile
  if (committed_.revision != 0 || committed_.mapping_count != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore: data directory ", Quoted(options_.path),
        " is not empty (revision ", committed_.revision, ", ",
        committed_.mapping_count, " mappings); restore into a new one"));
  }
  if (revision < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore: revision ", revision, " must be at least 1"));
  }
  absl::flat_hash_set<std::string> tasks;
  absl::flat_hash_set<uint64_t> ids;
  uint64_t next_sequence = 1;
  for (const Mapping& m : mappings) {
    if (!tasks.insert(m.task).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("restore: task ", Quoted(m.task), " appears twice"));
    }
    if (!ids.insert(m.identifier.value).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "restore: identifier of task ", Quoted(m.task), " appears twice"));
    }
    if (m.mod_revision > revision || m.create_revision > m.mod_revision ||
        m.create_revision < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("restore: task ", Quoted(m.task), " has revisions ",
                       m.create_revision, "..", m.mod_revision,
                       ", not within 1..", revision));
    }
    // Allocation continues after the highest LUID sequence in use.
    if ((m.identifier.value >> 61) == 1) {
      next_sequence = std::max(
          next_sequence, (m.identifier.value & kMaxIdentifierSequence) + 1);
    }
  }
  rocksdb::WriteOptions wo;
  rocksdb::WriteBatch batch;
  auto flush = [&](bool last) -> absl::Status {
    wo.sync = last;
    ILA_RETURN_IF_ERROR(
        FromRocks(db_->Write(wo, &batch), "restore: writing mappings"));
    batch.Clear();
    return absl::OkStatus();
  };
  for (const Mapping& m : mappings) {
    batch.Put(mappings_, EncodeUint64Key(m.identifier.value), EncodeMapping(m));
    batch.Put(tasks_, m.task, EncodeUint64Key(m.identifier.value));
    if (batch.Count() >= 20000) ILA_RETURN_IF_ERROR(flush(false));
  }
  Meta meta;
  meta.revision = revision;
  meta.compacted_revision = revision;
  meta.next_sequence = next_sequence;
  meta.mapping_count = static_cast<int64_t>(mappings.size());
  // The meta goes last, with the sync: a restore cut short leaves revision
  // 0 (start it again, into a new directory).
  batch.Put(meta_cf_, kMetaRevision, EncodeUint64Key(meta.revision));
  batch.Put(meta_cf_, kMetaCompacted, EncodeUint64Key(meta.compacted_revision));
  batch.Put(meta_cf_, kMetaNextSequence, EncodeUint64Key(meta.next_sequence));
  batch.Put(meta_cf_, kMetaCount, EncodeUint64Key(meta.mapping_count));
  // A new history: subscribers that saw revisions of the old database
  // resync from a snapshot instead of trusting their revision numbers.
  const uint64_t history = NewHistory();
  batch.Put(meta_cf_, kMetaHistory, EncodeUint64Key(history));
  ILA_RETURN_IF_ERROR(flush(true));
  committed_ = meta;
  history_ = history;
  ILA_LOG_INFO("restored {} mappings at revision {} into {}", mappings.size(),
               revision, options_.path);
  return absl::OkStatus();
}

void RocksDbMappingStore::Close() {
  {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    closed_ = true;
    closing_ = true;
  }
  if (writer_.joinable()) writer_.join();
  {
    absl::MutexLock l(&snapshots_mu_);
    snapshots_.clear();
  }
  if (db_ != nullptr) {
    for (auto* h : handles_) {
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    handles_.clear();
    rocksdb::Status s = db_->Close();
    if (!s.ok()) ILA_LOG_ERROR("closing RocksDB: {}", s.ToString());
    delete db_;
    db_ = nullptr;
    ILA_LOG_INFO("mapping store closed at revision {}", committed_.revision);
  }
}

absl::StatusOr<uint64_t> RocksDbMappingStore::ReadMetaKey(
    const rocksdb::Snapshot* snapshot, const char* key) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(ro, meta_cf_, key, &value);
  if (s.IsNotFound()) return 0;  // a new database
  ILA_RETURN_IF_ERROR(FromRocks(s, absl::StrCat("reading meta ", key)));
  return DecodeUint64Key(value);
}

absl::StatusOr<RocksDbMappingStore::Meta> RocksDbMappingStore::ReadMeta(
    const rocksdb::Snapshot* snapshot) {
  Meta meta;
  ILA_ASSIGN_OR_RETURN(meta.revision, ReadRevision(snapshot));
  ILA_ASSIGN_OR_RETURN(uint64_t compacted,
                       ReadMetaKey(snapshot, kMetaCompacted));
  meta.compacted_revision = static_cast<int64_t>(compacted);
  ILA_ASSIGN_OR_RETURN(uint64_t next, ReadMetaKey(snapshot, kMetaNextSequence));
  if (next != 0) meta.next_sequence = next;  // absent: the default, 1
  ILA_ASSIGN_OR_RETURN(uint64_t count, ReadMetaKey(snapshot, kMetaCount));
  meta.mapping_count = static_cast<int64_t>(count);
  return meta;
}

absl::StatusOr<int64_t> RocksDbMappingStore::ReadRevision(
    const rocksdb::Snapshot* snapshot) {
  ILA_ASSIGN_OR_RETURN(uint64_t revision, ReadMetaKey(snapshot, kMetaRevision));
  return static_cast<int64_t>(revision);
}

absl::StatusOr<std::optional<Mapping>> RocksDbMappingStore::GetMapping(
    const rocksdb::Snapshot* snapshot, Identifier id) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  rocksdb::Status s =
      db_->Get(ro, mappings_, EncodeUint64Key(id.value), &value);
  if (s.IsNotFound()) return std::nullopt;
  ILA_RETURN_IF_ERROR(
      FromRocks(s, absl::StrCat("reading mapping ", FormatIdentifier(id))));
  ILA_ASSIGN_OR_RETURN(Mapping m, DecodeMapping(value));
  return m;
}

absl::StatusOr<std::optional<Mapping>> RocksDbMappingStore::GetTask(
    const rocksdb::Snapshot* snapshot, const std::string& task) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(ro, tasks_, task, &value);
  if (s.IsNotFound()) return std::nullopt;
  ILA_RETURN_IF_ERROR(
      FromRocks(s, absl::StrCat("reading task ", Quoted(task))));
  ILA_ASSIGN_OR_RETURN(uint64_t id, DecodeUint64Key(value));
  ILA_ASSIGN_OR_RETURN(std::optional<Mapping> m,
                       GetMapping(snapshot, Identifier{id}));
  if (!m) {
    return absl::DataLossError(absl::StrCat(
        "task ", Quoted(task), " names identifier ",
        FormatIdentifier(Identifier{id}), " which has no mapping"));
  }
  return m;
}

void RocksDbMappingStore::Submit(WriteRequest request, CommitCallback done) {
  {
    absl::MutexLock l(&mu_);
    if (!closing_) {
      queue_.push_back(Pending{std::move(request), std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("mapping store is closed"));
}

void RocksDbMappingStore::WriterLoop() {
  std::vector<Pending> group;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || closing_;
      };
      if (unsynced_) {
        absl::Duration wait =
            options_.batch_sync_interval - (options_.clock() - last_sync_);
        mu_.AwaitWithTimeout(absl::Condition(&ready),
                             std::max(wait, absl::ZeroDuration()));
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      if (queue_.empty() && closing_) break;
      size_t n = std::min(queue_.size(), options_.max_group_requests);
      std::move(queue_.begin(), queue_.begin() + n, std::back_inserter(group));
      queue_.erase(queue_.begin(), queue_.begin() + n);
    }
    if (!group.empty()) {
      CommitGroup(group);
      group.clear();
    }
    if (unsynced_ &&
        options_.clock() - last_sync_ >= options_.batch_sync_interval) {
      SyncWal();
    }
  }
  if (unsynced_) SyncWal();
}

void RocksDbMappingStore::SyncWal() {
  rocksdb::Status s = db_->SyncWAL();
  if (!s.ok()) ILA_LOG_ERROR("syncing the RocksDB WAL: {}", s.ToString());
  unsynced_ = false;
  last_sync_ = options_.clock();
}

void RocksDbMappingStore::CommitGroup(std::vector<Pending>& group) {
  if (needs_resume_) {
    // The last write failed (disk full, I/O error) and RocksDB stopped
    // writing; try to resume before each group, so that writes work again
    // as soon as the cause is gone. Until then every write fails saying so.
    // Busy: RocksDB is recovering by itself (it does for a full disk);
    // the write below then succeeds once that is done, or fails again.
    const rocksdb::Status r = db_->Resume();
    absl::Status resumed = r.IsBusy()
                               ? absl::OkStatus()
                               : FromRocks(r,
                                           "storage is refusing writes since a "
                                           "failed write");
    if (!resumed.ok()) {
      const absl::Status error = absl::UnavailableError(resumed.message());
      for (Pending& p : group) p.done(error);
      return;
    }
    needs_resume_ = false;
    ILA_LOG_WARN("storage resumed at revision {}; trying writes again",
                 committed_.revision);
  }
  DbReader base(this);
  OverlayReader overlay(&base);
  Meta state = committed_;
  PlannerState planner_state{state.revision, state.next_sequence,
                             state.mapping_count};
  const absl::Time now = options_.clock();
  rocksdb::WriteBatch batch;
  std::vector<absl::StatusOr<CommitResult>> results;
  results.reserve(group.size());
  std::vector<std::shared_ptr<const ChangeSet>> change_sets;

  for (Pending& p : group) {
    absl::StatusOr<PlannedRequest> planned =
        PlanRequest(p.request, overlay, planner_state, options_.planner, now);
    if (!planned.ok()) {
      results.push_back(planned.status());
      continue;
    }
    if (!planned->changes.empty()) {
      auto set = std::make_shared<ChangeSet>();
      set->revision = planned->state.revision;
      set->commit_time = now;
      for (const Change& c : planned->changes) {
        overlay.Apply(c);
        if (c.before &&
            (!c.after || c.after->identifier != c.before->identifier)) {
          batch.Delete(mappings_, EncodeUint64Key(c.before->identifier.value));
        }
        if (c.before && (!c.after || c.after->task != c.before->task)) {
          batch.Delete(tasks_, c.before->task);
        }
        if (c.after) {
          batch.Put(mappings_, EncodeUint64Key(c.after->identifier.value),
                    EncodeMapping(*c.after));
          if (!c.before) {
            batch.Put(tasks_, c.after->task,
                      EncodeUint64Key(c.after->identifier.value));
          }
        }
      }
      set->changes = std::move(planned->changes);
      batch.Put(changes_, EncodeUint64Key(set->revision),
                EncodeChangeSet(*set));
      change_sets.push_back(std::move(set));
    }
    planner_state = planned->state;
    results.push_back(std::move(planned->result));
  }

  if (!change_sets.empty()) {
    state.revision = planner_state.revision;
    state.next_sequence = planner_state.next_sequence;
    state.mapping_count = planner_state.mapping_count;
    const int64_t retained = options_.retained_revisions;
    const int64_t step = std::clamp<int64_t>(retained / 10, 1, 1024);
    if (state.revision - state.compacted_revision > retained + step) {
      int64_t compact_to = state.revision - retained;
      batch.DeleteRange(changes_, EncodeUint64Key(state.compacted_revision + 1),
                        EncodeUint64Key(compact_to + 1));
      state.compacted_revision = compact_to;
    }
    batch.Put(meta_cf_, kMetaRevision, EncodeUint64Key(state.revision));
    batch.Put(meta_cf_, kMetaCompacted,
              EncodeUint64Key(state.compacted_revision));
    batch.Put(meta_cf_, kMetaNextSequence,
              EncodeUint64Key(state.next_sequence));
    batch.Put(meta_cf_, kMetaCount, EncodeUint64Key(state.mapping_count));
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_mode == SyncMode::kAlways;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (s.ok()) {
      committed_ = state;
      unsynced_ = options_.sync_mode == SyncMode::kBatch;
    } else {
      absl::Status error = FromRocks(
          s, absl::StrCat("storage write of revisions ",
                          committed_.revision + 1, "..", state.revision,
                          " failed; nothing of it was committed"));
      error = absl::UnavailableError(error.message());
      ILA_LOG_ERROR("{}", error.message());
      needs_resume_ = true;
      // Results planned against the lost writes are void too.
      for (auto& r : results) r = error;
      change_sets.clear();
    }
  }

  // Observers first (the stream hub's ring append is cheap): once a write is
  // acknowledged, streams know about it.
  if (!change_sets.empty()) {
    absl::MutexLock l(&observers_mu_);
    for (CommitObserver* o : observers_) o->OnCommit(change_sets);
  }
  for (size_t i = 0; i < group.size(); ++i) {
    group[i].done(std::move(results[i]));
  }
}

absl::StatusOr<LookupResult> RocksDbMappingStore::LookupTask(
    absl::string_view task) {
  rocksdb::ManagedSnapshot snap(db_);
  ILA_ASSIGN_OR_RETURN(std::optional<Mapping> m,
                       GetTask(snap.snapshot(), std::string(task)));
  if (!m) {
    return absl::NotFoundError(
        absl::StrCat("task ", Quoted(task), " is not registered"));
  }
  ILA_ASSIGN_OR_RETURN(int64_t revision, ReadRevision(snap.snapshot()));
  return LookupResult{*std::move(m), revision};
}

absl::StatusOr<LookupResult> RocksDbMappingStore::LookupIdentifier(
    Identifier id) {
  rocksdb::ManagedSnapshot snap(db_);
  ILA_ASSIGN_OR_RETURN(std::optional<Mapping> m,
                       GetMapping(snap.snapshot(), id));
  if (!m) {
    return absl::NotFoundError(
        absl::StrCat("identifier ", FormatIdentifier(id), " is not mapped"));
  }
  ILA_ASSIGN_OR_RETURN(int64_t revision, ReadRevision(snap.snapshot()));
  return LookupResult{*std::move(m), revision};
}

absl::StatusOr<std::shared_ptr<rocksdb::ManagedSnapshot>>
RocksDbMappingStore::ListSnapshot(int64_t revision, int64_t* actual_revision) {
  const absl::Time now = options_.clock();
  absl::MutexLock l(&snapshots_mu_);
  for (auto it = snapshots_.begin(); it != snapshots_.end();) {
    if (now - it->second.last_used > options_.list_snapshot_ttl) {
      it = snapshots_.erase(it);
    } else {
      ++it;
    }
  }
  if (revision != 0) {
    if (auto it = snapshots_.find(revision); it != snapshots_.end()) {
      it->second.last_used = now;
      *actual_revision = revision;
      return it->second.snapshot;
    }
  }
  auto snap = std::make_shared<rocksdb::ManagedSnapshot>(db_);
  ILA_ASSIGN_OR_RETURN(const int64_t current, ReadRevision(snap->snapshot()));
  if (revision != 0 && current != revision) {
    return absl::OutOfRangeError(
        absl::StrCat("revision ", revision,
                     " can no longer be listed (the current revision "
                     "is ",
                     current, "; unfinished lists are kept for ",
                     absl::FormatDuration(options_.list_snapshot_ttl),
                     "); start the list again"));
  }
  *actual_revision = current;
  return snap;
}

absl::StatusOr<ListPage> RocksDbMappingStore::List(const ListOptions& options) {
  if (options.limit == 0) {
    return absl::InvalidArgumentError("page size: must be at least 1");
  }
  ListPage page;
  ILA_ASSIGN_OR_RETURN(std::shared_ptr<rocksdb::ManagedSnapshot> snap,
                       ListSnapshot(options.revision, &page.revision));
  rocksdb::ReadOptions ro;
  ro.snapshot = snap->snapshot();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, mappings_));
  if (options.after) {
    std::string start = EncodeUint64Key(options.after->value);
    it->Seek(start);
    if (it->Valid() && it->key() == start) it->Next();
  } else {
    it->SeekToFirst();
  }
  for (; it->Valid(); it->Next()) {
    ILA_ASSIGN_OR_RETURN(Mapping m,
                         DecodeMapping(absl::string_view(it->value().data(),
                                                         it->value().size())));
    if (options.locator && m.locator != *options.locator) continue;
    if (options.sir_prefix && m.sir_prefix != *options.sir_prefix) continue;
    if (page.mappings.size() == options.limit) {
      page.more = true;
      break;
    }
    page.mappings.push_back(std::move(m));
  }
  ILA_RETURN_IF_ERROR(FromRocks(it->status(), "listing mappings"));
  if (page.more) {
    absl::MutexLock l(&snapshots_mu_);
    snapshots_[page.revision] = CachedSnapshot{snap, options_.clock()};
    while (snapshots_.size() > options_.max_list_snapshots) {
      auto oldest =
          std::min_element(snapshots_.begin(), snapshots_.end(),
                           [](const auto& a, const auto& b) {
                             return a.second.last_used < b.second.last_used;
                           });
      snapshots_.erase(oldest);
    }
  }
  return page;
}

absl::StatusOr<StoreStatus> RocksDbMappingStore::Status() {
  rocksdb::ManagedSnapshot snap(db_);
  ILA_ASSIGN_OR_RETURN(Meta meta, ReadMeta(snap.snapshot()));
  return StoreStatus{meta.revision, meta.compacted_revision, meta.mapping_count,
                     history_.load()};
}

absl::StatusOr<std::vector<ChangeSet>> RocksDbMappingStore::ReadChanges(
    int64_t after, size_t max) {
  rocksdb::ManagedSnapshot snap(db_);
  ILA_ASSIGN_OR_RETURN(Meta meta, ReadMeta(snap.snapshot()));
  if (after < meta.compacted_revision) {
    return absl::OutOfRangeError(
        absl::StrCat("revision ", after + 1,
                     " is compacted (the change log holds revisions ",
                     meta.compacted_revision + 1, " to ", meta.revision, ")"));
  }
  std::vector<ChangeSet> out;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.snapshot();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, changes_));
  for (it->Seek(EncodeUint64Key(static_cast<uint64_t>(after) + 1));
       it->Valid() && out.size() < max; it->Next()) {
    ILA_ASSIGN_OR_RETURN(
        ChangeSet c, DecodeChangeSet(absl::string_view(it->value().data(),
                                                       it->value().size())));
    out.push_back(std::move(c));
  }
  ILA_RETURN_IF_ERROR(FromRocks(it->status(), "reading the change log"));
  return out;
}

class RocksDbMappingStore::Snapshot final : public MappingSnapshot {
 public:
  Snapshot(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* mappings)
      : snapshot_(db) {
    read_options_.snapshot = snapshot_.snapshot();
    iterator_.reset(db->NewIterator(read_options_, mappings));
    iterator_->SeekToFirst();
  }
  int64_t revision() const override { return revision_; }
  void set_revision(int64_t r) { revision_ = r; }
  const rocksdb::Snapshot* snapshot() { return snapshot_.snapshot(); }

  absl::StatusOr<bool> ReadNext(size_t max,
                                std::vector<Mapping>* out) override {
    for (size_t n = 0; n < max && iterator_->Valid(); ++n, iterator_->Next()) {
      ILA_ASSIGN_OR_RETURN(Mapping m, DecodeMapping(absl::string_view(
                                          iterator_->value().data(),
                                          iterator_->value().size())));
      out->push_back(std::move(m));
    }
    ILA_RETURN_IF_ERROR(FromRocks(iterator_->status(), "reading a snapshot"));
    return iterator_->Valid();
  }

 private:
  rocksdb::ManagedSnapshot snapshot_;
  rocksdb::ReadOptions read_options_;
  std::unique_ptr<rocksdb::Iterator> iterator_;
  int64_t revision_ = 0;
};

absl::StatusOr<std::unique_ptr<MappingSnapshot>>
RocksDbMappingStore::OpenSnapshot() {
  auto snap = std::make_unique<Snapshot>(db_, mappings_);
  ILA_ASSIGN_OR_RETURN(const int64_t revision, ReadRevision(snap->snapshot()));
  snap->set_revision(revision);
  return snap;
}

void RocksDbMappingStore::AddCommitObserver(CommitObserver* observer) {
  absl::MutexLock l(&observers_mu_);
  observers_.push_back(observer);
}

}  // namespace ila::storage
