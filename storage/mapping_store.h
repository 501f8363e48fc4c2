// MappingStore: the durable identifier -> locator database behind ila-server.
//
// Writes go through Submit(): requests are committed in submission order, each
// committed request that changes something gets the next revision, and `done`
// runs only once the write is durable under the store's sync mode. Reads see
// every write whose `done` has run. Implementations: RocksDbMappingStore (the
// embedded default); later an etcd-backed store with the same contract.
//
// Thread-safety: all methods may be called concurrently from any thread.
// Callbacks and observers run on the store's writer thread, in revision
// order, and must not block.
#pragma once

#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/types.h"

namespace ila::storage {

using CommitCallback = absl::AnyInvocable<void(absl::StatusOr<CommitResult>)>;

// Told about every committed revision once it is durable, before the
// requests that made it are completed (so whoever got the acknowledgement
// finds it in the streams). Runs on the writer thread; must not block.
class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  virtual void OnCommit(
      const std::vector<std::shared_ptr<const ChangeSet>>& change_sets) = 0;
};

// A consistent view of every mapping at one revision, read in identifier
// order in pieces (stream snapshots). Holds a database snapshot until
// destroyed.
//
// Thread-safety: one thread at a time. REQUIRES: destroyed before the store
// is closed.
class MappingSnapshot {
 public:
  virtual ~MappingSnapshot() = default;
  virtual int64_t revision() const = 0;
  // Appends up to `max` further mappings to `out`; false once none are left.
  virtual absl::StatusOr<bool> ReadNext(size_t max,
                                        std::vector<Mapping>* out) = 0;
};

class MappingStore {
 public:
  virtual ~MappingStore() = default;

  // Queues `request`; `done` runs exactly once, with the result or an error:
  // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (CAS),
  // RESOURCE_EXHAUSTED, UNAVAILABLE (closed or storage failure).
  virtual void Submit(WriteRequest request, CommitCallback done) = 0;

  // Submit() and wait for the result.
  absl::StatusOr<CommitResult> Commit(WriteRequest request);

  // NOT_FOUND when absent.
  virtual absl::StatusOr<LookupResult> LookupTask(absl::string_view task) = 0;
  virtual absl::StatusOr<LookupResult> LookupIdentifier(Identifier id) = 0;

  // A page of mappings at one revision. A later page names the revision of
  // the first; OUT_OF_RANGE once that revision can no longer be read.
  virtual absl::StatusOr<ListPage> List(const ListOptions& options) = 0;

  virtual absl::StatusOr<StoreStatus> Status() = 0;

  // Up to `max` change sets with revision > `after`, in order. OUT_OF_RANGE
  // when revision after+1 is compacted away.
  virtual absl::StatusOr<std::vector<ChangeSet>> ReadChanges(int64_t after,
                                                             size_t max) = 0;

  // A snapshot of all mappings at the current revision.
  virtual absl::StatusOr<std::unique_ptr<MappingSnapshot>> OpenSnapshot() = 0;

  // REQUIRES: `observer` outlives the store.
  virtual void AddCommitObserver(CommitObserver* observer) = 0;
};

}  // namespace ila::storage
