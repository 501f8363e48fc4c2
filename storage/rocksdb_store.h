// RocksDbMappingStore: the embedded MappingStore on RocksDB (design.md §5).
//
// Column families: mappings (identifier, 8 bytes big-endian -> MappingRecord),
// tasks (task name -> identifier), changes (revision -> ChangeSetRecord, with
// before and after values), meta (revision, compacted revision, next
// identifier sequence, mapping count, format version).
//
// Group commit: Submit() queues; one writer thread takes every queued request
// (up to max_group_requests), plans each against the state left by the ones
// before it, writes one WriteBatch for the whole group (one fsync under
// SyncMode::kAlways), then completes the requests and tells the observers, in
// revision order. A request is acknowledged only after that write returned:
//   kAlways: the WAL is fsynced before acknowledging: survives power loss.
//   kBatch:  the WAL is written (survives a process crash) and fsynced at
//            most batch_sync_interval later: power loss may lose that window.
//   kNone:   the WAL is written, never fsynced by us: survives a process
//            crash; power loss may lose whatever the OS had not written.
// If the write fails, every request of the group fails with UNAVAILABLE and
// nothing of the group is committed; RocksDB then refuses writes, and each
// later group first tries DB::Resume(), so writes work again once the cause
// (a full disk) is gone. Reads and streams go on meanwhile.
//
// The change log keeps the last `retained_revisions` revisions; older change
// sets are removed with DeleteRange in the same batch and the compacted
// revision advances.
//
// Thread-safety: thread-safe; see MappingStore. Close() must not race with
// reads (the server stops its RPCs first).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/mapping_store.h"
#include "storage/planner.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class ManagedSnapshot;
class Snapshot;
}  // namespace rocksdb

namespace ila::storage {

enum class SyncMode { kAlways, kBatch, kNone };
absl::StatusOr<SyncMode> ParseSyncMode(absl::string_view text);
absl::string_view SyncModeName(SyncMode mode);

struct RocksDbStoreOptions {
  std::string path;  // the data directory; created when missing
  SyncMode sync_mode = SyncMode::kAlways;
  absl::Duration batch_sync_interval = absl::Milliseconds(10);
  int64_t retained_revisions = 100000;  // >= 1
  PlannerConfig planner;
  size_t max_group_requests = 1024;
  // Memory: all memtables together (flushed when full) and the block cache.
  size_t memtable_budget_bytes = 32 << 20;
  size_t block_cache_bytes = 16 << 20;
  // How long an unfinished paged List keeps its revision readable.
  absl::Duration list_snapshot_ttl = absl::Seconds(60);
  size_t max_list_snapshots = 64;
  std::function<absl::Time()> clock;  // default absl::Now
};

class RocksDbMappingStore final : public MappingStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksDbMappingStore>> Open(
      RocksDbStoreOptions options);
  ~RocksDbMappingStore() override;

  // Completes every queued request, stops the writer, closes the database.
  // Later Submit()s fail with UNAVAILABLE. Idempotent.
  void Close();

  void Submit(WriteRequest request, CommitCallback done) override;
  absl::StatusOr<LookupResult> LookupTask(absl::string_view task) override;
  absl::StatusOr<LookupResult> LookupIdentifier(Identifier id) override;
  absl::StatusOr<ListPage> List(const ListOptions& options) override;
  absl::StatusOr<StoreStatus> Status() override;
  absl::StatusOr<std::vector<ChangeSet>> ReadChanges(int64_t after,
                                                     size_t max) override;
  absl::StatusOr<std::unique_ptr<MappingSnapshot>> OpenSnapshot() override;
  void AddCommitObserver(CommitObserver* observer) override;

  SyncMode sync_mode() const { return options_.sync_mode; }

  // Loads `mappings` as the whole state at `revision` into an empty store (a
  // restore from a backup; docs/reliability.md): FAILED_PRECONDITION when
  // the store already has a revision, INVALID_ARGUMENT naming the mapping
  // when two share a task or an identifier or one is newer than `revision`.
  // The change log starts empty, compacted at `revision`, and the store
  // gets a new history id. Synced before it returns. REQUIRES: nothing
  // Submit()ted yet.
  absl::Status Restore(int64_t revision, const std::vector<Mapping>& mappings);

 private:
  struct Meta {
    int64_t revision = 0;
    int64_t compacted_revision = 0;
    uint64_t next_sequence = 1;
    int64_t mapping_count = 0;
  };
  struct Pending {
    WriteRequest request;
    CommitCallback done;
  };
  struct CachedSnapshot {
    std::shared_ptr<rocksdb::ManagedSnapshot> snapshot;
    absl::Time last_used;
  };
  class DbReader;
  class Snapshot;

  explicit RocksDbMappingStore(RocksDbStoreOptions options);
  absl::Status OpenDb();
  absl::StatusOr<Meta> ReadMeta(const rocksdb::Snapshot* snapshot);
  // Only the revision: one read instead of four (lookups, lists, snapshots).
  absl::StatusOr<int64_t> ReadRevision(const rocksdb::Snapshot* snapshot);
  // A meta value; 0 when absent.
  absl::StatusOr<uint64_t> ReadMetaKey(const rocksdb::Snapshot* snapshot,
                                       const char* key);
  absl::StatusOr<std::optional<Mapping>> GetMapping(
      const rocksdb::Snapshot* snapshot, Identifier id);
  absl::StatusOr<std::optional<Mapping>> GetTask(
      const rocksdb::Snapshot* snapshot, const std::string& task);
  absl::StatusOr<std::shared_ptr<rocksdb::ManagedSnapshot>> ListSnapshot(
      int64_t revision, int64_t* actual_revision);
  void WriterLoop();
  void CommitGroup(std::vector<Pending>& group);
  void SyncWal();

  const RocksDbStoreOptions options_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* mappings_ = nullptr;
  rocksdb::ColumnFamilyHandle* tasks_ = nullptr;
  rocksdb::ColumnFamilyHandle* changes_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;

  std::atomic<uint64_t> history_{0};  // StoreStatus::history

  // Owned by the writer thread (and Open before it starts).
  Meta committed_;
  bool unsynced_ = false;
  bool needs_resume_ = false;  // a write failed: DB::Resume() before the next
  absl::Time last_sync_;

  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;

  absl::Mutex observers_mu_;
  std::vector<CommitObserver*> observers_ ABSL_GUARDED_BY(observers_mu_);

  absl::Mutex snapshots_mu_;
  std::map<int64_t, CachedSnapshot> snapshots_ ABSL_GUARDED_BY(snapshots_mu_);
};

}  // namespace ila::storage
