// StreamHub: the fan-out of committed changes to every stream subscriber
// (design.md §6).
//
// The store tells the hub about each commit (CommitObserver, writer thread):
// the hub appends the change sets to a ring of recent revisions and signals
// its fan-out thread, which wakes idle subscribers; the writer never waits
// for a subscriber. Each subscriber reads at its own pace: when its stream
// can take a message, NextMessage() returns the next one: snapshot pieces,
// then Updates covering the revisions after the last sent one (from the
// ring, or from the store's change log when it fell off the ring, or a new
// snapshot when those are compacted), or Progress when caught up. An Updates
// message for a revision range and filter is serialized once and shared by
// every subscriber that needs the same range with the same filter. Per
// subscriber the hub holds one position and at most one pending message.
//
// Thread-safety: thread-safe. Lock order: Subscription::sink_mu_, then the
// sink's own lock, then Subscription::mu_, then the hub's mu_, then
// Subscription::touch_mu_ (the wake helpers' sweep_.mu is held alone).
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ila/v1/diagnostics.pb.h"
#include "ila/v1/stream.pb.h"
#include "server/stream_filter.h"
#include "storage/mapping_store.h"

namespace ila::server {

struct StreamHubOptions {
  size_t ring_max_changes = 200000;  // changes kept in memory for streams
  size_t max_revisions_per_message = 1000;
  size_t max_changes_per_message = 4096;
  size_t snapshot_chunk_mappings = 1000;
  absl::Duration progress_interval = absl::Seconds(1);
  // Coalescing (leading edge): time is cut into windows of batch_delay, the
  // same for every subscriber, and a subscriber gets at most one Updates or
  // Progress per window (snapshots are not paced). A commit goes out at once
  // to a subscriber that got nothing in the current window; one that did
  // gets everything committed meanwhile when the window ends, together with
  // every other such subscriber, so they share one serialized message.
  // Bounds messages per subscriber to 1/batch_delay per second; adds at most
  // batch_delay of latency, none to an isolated write.
  absl::Duration batch_delay = absl::Milliseconds(10);
  // A filtered subscriber whose filter skipped revisions learns that it is
  // current (Progress) at most this often: its lag shows within this delay
  // without a message per window for thousands of host agents.
  absl::Duration skip_progress_delay = absl::Milliseconds(1000);
  size_t message_cache_entries = 1024;
  // Threads that wake subscribers after a commit (the fan-out thread and
  // fan_out_threads - 1 helpers; 0: one per CPU, at most 4). A wake starts
  // the stream's next write, which gRPC performs on the waking thread, so
  // with 1,000 subscribers one thread puts the last one ~1,000 writes
  // behind the first (decision 34).
  int fan_out_threads = 0;
  std::function<absl::Time()> clock;  // default absl::Now
};

// The stream end of a subscription (the gRPC reactor).
class SubscriberSink {
 public:
  virtual ~SubscriberSink() = default;
  // There may be something to send: ask NextMessage() if no write is in
  // flight. Must not block.
  virtual void Wake() = 0;
  // End the stream with `status`.
  virtual void Close(const grpc::Status& status) = 0;
};

// One subscriber's state, shared by the hub and the stream.
class Subscription {
 public:
  uint64_t id() const { return id_; }

 private:
  friend class StreamHub;
  enum class Phase { kNeedSnapshot, kSnapshot, kStreaming };

  uint64_t id_ = 0;
  // The filter's locators (immutable once added): the fan-out wakes such a
  // subscriber after a commit only when the commit touched one of them.
  std::vector<uint64_t> locators_;
  // For such a subscriber, the revisions whose commits touched one of its
  // locators, ascending, recorded by the commit observer (up to kMaxTouches):
  // thousands of host agents build their Updates from those revisions alone
  // instead of reading every revision. Where the list is incomplete (before
  // the subscriber was indexed, revisions dropped when it was full, a range
  // a reader gave up) [unrecorded_from_, unrecorded_through_] says so, and
  // the reader scans from its position instead.
  static constexpr size_t kMaxTouches = 256;
  static constexpr int64_t kNone = INT64_MAX;
  absl::Mutex touch_mu_;  // a leaf lock
  std::vector<int64_t> touches_ ABSL_GUARDED_BY(touch_mu_);
  int64_t unrecorded_from_ ABSL_GUARDED_BY(touch_mu_) = 0;
  int64_t unrecorded_through_ ABSL_GUARDED_BY(touch_mu_) = 0;
  absl::Mutex sink_mu_;
  SubscriberSink* sink_ ABSL_GUARDED_BY(sink_mu_) = nullptr;

  absl::Mutex mu_;
  v1::Hello hello_ ABSL_GUARDED_BY(mu_);
  StreamFilter filter_ ABSL_GUARDED_BY(mu_);
  std::string filter_key_ ABSL_GUARDED_BY(mu_);
  std::string peer_ ABSL_GUARDED_BY(mu_);
  absl::Time connected_since_ ABSL_GUARDED_BY(mu_);
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNeedSnapshot;
  std::unique_ptr<storage::MappingSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  int64_t snapshot_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool snapshot_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_revision_ ABSL_GUARDED_BY(mu_) = 1;
  bool skipped_since_sent_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_message_time_ ABSL_GUARDED_BY(mu_);
  absl::Time last_paced_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // When the last Updates or Progress went out (its window), and the end of
  // that window, readable without mu_: the fan-out
  // does not wake a subscriber inside its window but retries it at the end.
  std::atomic<int64_t> paced_until_ns_{0};
  int64_t last_sent_revision_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_acked_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_ack_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t last_nack_revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_nack_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_nack_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t snapshots_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t messages_sent_ ABSL_GUARDED_BY(mu_) = 0;
};

class StreamHub final : public storage::CommitObserver {
 public:
  // REQUIRES: `store` outlives the hub.
  StreamHub(storage::MappingStore* store, StreamHubOptions options);
  ~StreamHub() override;

  // Reads the store's revision and starts the fan-out thread. Call after
  // store->AddCommitObserver(this) and before any subscriber arrives.
  absl::Status Start();
  // Closes every stream (UNAVAILABLE) and refuses new ones. Idempotent.
  void CloseAll();
  // Stops the fan-out thread. Call after every stream has ended.
  void Stop();

  void OnCommit(const std::vector<std::shared_ptr<const storage::ChangeSet>>&
                    change_sets) override;

  // A new subscriber from its Hello; INVALID_ARGUMENT naming the field, or
  // UNAVAILABLE when closing.
  absl::StatusOr<std::shared_ptr<Subscription>> Add(const v1::Hello& hello,
                                                    const std::string& peer,
                                                    SubscriberSink* sink);
  // Forgets a subscriber; after it returns the sink is never called again.
  void Remove(const std::shared_ptr<Subscription>& sub);

  // The next message for `sub`, or nullopt when there is nothing to send
  // now. Called by the sink with no write in flight.
  absl::StatusOr<std::optional<grpc::ByteBuffer>> NextMessage(
      Subscription& sub);

  // INVALID_ARGUMENT when the ack is ahead of what was sent.
  absl::Status OnAck(Subscription& sub, const v1::Ack& ack);
  void OnNack(Subscription& sub, const v1::Nack& nack);

  v1::ListSubscribersResponse ListSubscribers();

  struct Stats {
    int64_t updates_built = 0;   // Updates messages serialized
    int64_t updates_reused = 0;  // sends that reused a serialized message
  };
  Stats stats();
  int64_t latest_revision();
  size_t subscriber_count();

 private:
  struct CachedMessage {
    grpc::ByteBuffer bytes;
    bool empty = false;         // the range changes nothing for the filter
    int64_t last_revision = 0;  // the last revision in the message
  };

  absl::StatusOr<std::optional<grpc::ByteBuffer>> NextLocked(Subscription& sub)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sub.mu_);
  // For a subscriber with a locator filter: the Updates built from the
  // revisions that touched its locators, or nullopt when it must scan.
  std::optional<std::shared_ptr<const CachedMessage>> FromTouches(
      Subscription& sub, int64_t* latest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sub.mu_);
  absl::StatusOr<std::optional<grpc::ByteBuffer>> NextSnapshotMessage(
      Subscription& sub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sub.mu_);
  // Change sets from `from` on (bounded); empty when none are committed yet;
  // OUT_OF_RANGE when compacted away.
  absl::StatusOr<std::vector<std::shared_ptr<const storage::ChangeSet>>>
  ChangesFrom(int64_t from);
  std::shared_ptr<const CachedMessage> BuildUpdates(
      const std::vector<std::shared_ptr<const storage::ChangeSet>>& sets,
      const StreamFilter& filter, const std::string& filter_key);
  void FanOutLoop();
  // Calls Wake() on each subscriber's sink, split across the wake threads
  // (the fan-out thread takes share 0, helper k share k); returns when all
  // are done.
  void WakeAll(const std::vector<std::shared_ptr<Subscription>>& subs);
  size_t WakeShares(size_t subscribers) const;
  void WakeShare(const std::vector<std::shared_ptr<Subscription>>& subs,
                 size_t share);
  void WakeHelperLoop(size_t share);
  // Wake `sub` at `when` (the end of its coalescing window).
  void RetryLocked(Subscription& sub, absl::Time when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The end of the coalescing window that holds `last_message`.
  absl::Time WindowEnd(absl::Time last_message) const;
  absl::Time Now() const { return options_.clock(); }

  storage::MappingStore* const store_;
  const StreamHubOptions options_;
  uint64_t history_ = 0;  // the store's history id; set by Start()

  absl::Mutex mu_;
  std::deque<std::shared_ptr<const storage::ChangeSet>> ring_
      ABSL_GUARDED_BY(mu_);
  int64_t ring_first_revision_ ABSL_GUARDED_BY(mu_) = 0;  // 0: ring empty
  size_t ring_changes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t latest_revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::shared_ptr<Subscription>> subscriptions_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Who the next sweep wakes: subscribers without a locator filter, those
  // whose locators the commits since the last sweep touched, and those that
  // asked to be retried; every subscriber on the periodic tick.
  std::map<uint64_t, std::shared_ptr<Subscription>> broad_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::vector<std::shared_ptr<Subscription>>>
      by_locator_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> touched_locators_ ABSL_GUARDED_BY(mu_);
  // Paced subscribers to wake when their window ends, and the earliest end.
  absl::flat_hash_map<uint64_t, absl::Time> retry_ ABSL_GUARDED_BY(mu_);
  absl::Time next_retry_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // A commit found broad subscribers inside their window: wake every broad
  // one at next_retry_.
  bool broad_retry_ ABSL_GUARDED_BY(mu_) = false;
  // When the fan-out thread wakes next unless something comes earlier.
  absl::Time fan_out_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::map<std::string, std::shared_ptr<const CachedMessage>> cache_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::string> cache_order_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread fan_out_;

  // The wake helpers: the fan-out thread publishes a sweep (its subscribers
  // and a new generation); helper k (1, 2, ...) wakes share k of it, the
  // fan-out thread share 0, and it waits until every helper is done.
  // sweep_.mu is never held together with another lock.
  struct Sweep {
    absl::Mutex mu;
    uint64_t generation ABSL_GUARDED_BY(mu) = 0;
    const std::vector<std::shared_ptr<Subscription>>* subs ABSL_GUARDED_BY(mu) =
        nullptr;
    size_t busy ABSL_GUARDED_BY(mu) = 0;  // helpers still waking
    bool stop ABSL_GUARDED_BY(mu) = false;
  };
  Sweep sweep_;
  std::vector<std::thread> wake_helpers_;
};

}  // namespace ila::server
