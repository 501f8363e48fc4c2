#include "server/stream_hub.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/convert.h"

namespace ila::server {
namespace {

grpc::ByteBuffer Serialize(const v1::SubscribeResponse& message) {
  grpc::ByteBuffer buffer;
  bool own = false;
  grpc::Status s = grpc::SerializationTraits<v1::SubscribeResponse>::Serialize(
      message, &buffer, &own);
  if (!s.ok())
    ILA_LOG_ERROR("serializing a stream message: {}", s.error_message());
  return buffer;
}

// Whether any change in `sets` concerns `filter` (old or new value).
bool AnyChangeMatches(
    const std::vector<std::shared_ptr<const storage::ChangeSet>>& sets,
    const StreamFilter& filter) {
  for (const auto& set : sets) {
    for (const auto& c : set->changes) {
      if ((c.after && filter.Matches(*c.after)) ||
          (c.before && filter.Matches(*c.before))) {
        return true;
      }
    }
  }
  return false;
}

absl::Status ValidateNode(const std::string& node) {
  if (node.empty() || node.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.node: must be 1 to 253 bytes, got ", node.size()));
  }
  for (unsigned char c : node) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hello.node: \"", node.substr(0, 64),
          "\" must be printable ASCII without spaces (a host name)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

StreamHub::StreamHub(storage::MappingStore* store, StreamHubOptions options)
    : store_(store), options_([&] {
        if (!options.clock) options.clock = [] { return absl::Now(); };
        return options;
      }()) {}

StreamHub::~StreamHub() {
  CloseAll();
  Stop();
}

absl::Status StreamHub::Start() {
  ILA_ASSIGN_OR_RETURN(storage::StoreStatus st, store_->Status());
  {
    absl::MutexLock l(&mu_);
    latest_revision_ = std::max(latest_revision_, st.revision);
  }
  history_ = st.history;
  int threads = options_.fan_out_threads;
  if (threads <= 0) {
    threads = static_cast<int>(
        std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 4));
  }
  for (int k = 1; k < threads; ++k) {
    wake_helpers_.emplace_back([this, k] { WakeHelperLoop(k); });
  }
  fan_out_ = std::thread([this] { FanOutLoop(); });
  return absl::OkStatus();
}

void StreamHub::CloseAll() {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
    for (auto& [id, s] : subscriptions_) subs.push_back(s);
  }
  for (auto& s : subs) {
    absl::MutexLock l(&s->sink_mu_);
    if (s->sink_ != nullptr) {
      s->sink_->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "ila-server is shutting down; reconnect"));
    }
  }
}

void StreamHub::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (fan_out_.joinable()) fan_out_.join();
  {
    absl::MutexLock l(&sweep_.mu);
    sweep_.stop = true;
  }
  for (std::thread& t : wake_helpers_) t.join();
  wake_helpers_.clear();
}

void StreamHub::OnCommit(
    const std::vector<std::shared_ptr<const storage::ChangeSet>>& change_sets) {
  absl::MutexLock l(&mu_);
  for (const auto& set : change_sets) {
    if (ring_.empty() ||
        set->revision !=
            ring_first_revision_ + static_cast<int64_t>(ring_.size())) {
      ring_.clear();
      ring_changes_ = 0;
      ring_first_revision_ = set->revision;
    }
    ring_.push_back(set);
    ring_changes_ += set->changes.size();
    if (!by_locator_.empty()) {
      auto touch = [&](uint64_t locator) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        auto it = by_locator_.find(locator);
        if (it == by_locator_.end()) return;
        touched_locators_.insert(locator);
        for (auto& sub : it->second) {
          absl::MutexLock tl(&sub->touch_mu_);
          auto& t = sub->touches_;
          if (!t.empty() && t.back() == set->revision) continue;
          if (t.size() < Subscription::kMaxTouches) {
            t.push_back(set->revision);
          } else {
            sub->unrecorded_from_ =
                std::min(sub->unrecorded_from_, set->revision);
            sub->unrecorded_through_ = set->revision;
          }
        }
      };
      for (const auto& c : set->changes) {
        if (c.before) touch(c.before->locator.value);
        if (c.after) touch(c.after->locator.value);
      }
    }
    latest_revision_ = std::max(latest_revision_, set->revision);
  }
  while (ring_changes_ > options_.ring_max_changes && ring_.size() > 1) {
    ring_changes_ -= ring_.front()->changes.size();
    ring_.pop_front();
    ++ring_first_revision_;
  }
  wake_pending_ = true;
}

void StreamHub::FanOutLoop() {
  // Leading-edge coalescing: a commit wakes its subscribers at once; one
  // that got a message less than batch_delay ago is not woken but retried
  // when its window ends, and then takes everything committed meanwhile in
  // one message. A full sweep at least every tick sends heartbeats and paced
  // Progress without a commit to trigger them.
  const absl::Duration tick = std::max(
      options_.batch_delay,
      std::min(options_.progress_interval / 4, absl::Milliseconds(250)));
  absl::Time last_full_sweep = Now();
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    fan_out_deadline_ = std::min(last_full_sweep + tick, next_retry_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return wake_pending_ || stopping_ || next_retry_ < fan_out_deadline_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), fan_out_deadline_ - Now());
    if (stopping_) break;
    const bool commit = wake_pending_;
    wake_pending_ = false;
    const absl::Time now = Now();
    std::vector<std::shared_ptr<Subscription>> subs;
    if (now - last_full_sweep >= tick) {
      // Everyone (heartbeats, paced Progress), even while commits keep
      // coming; a subscriber still in its window asks to be retried.
      last_full_sweep = now;
      subs.reserve(subscriptions_.size());
      for (auto& [id, s] : subscriptions_) subs.push_back(s);
      retry_.clear();
      broad_retry_ = false;
      next_retry_ = absl::InfiniteFuture();
      touched_locators_.clear();
    } else {
      // Broad subscribers inside their window are not retried one by one:
      // they all share the window's end, when every broad one is woken.
      absl::flat_hash_set<uint64_t> seen;
      const int64_t now_ns = absl::ToUnixNanos(now);
      if (commit) {
        subs.reserve(broad_.size());
        for (auto& [id, s] : broad_) {
          const int64_t until =
              s->paced_until_ns_.load(std::memory_order_relaxed);
          if (until > now_ns) {
            broad_retry_ = true;
            next_retry_ = std::min(next_retry_, absl::FromUnixNanos(until));
          } else {
            subs.push_back(s);
          }
        }
        for (uint64_t loc : touched_locators_) {
          auto it = by_locator_.find(loc);
          if (it == by_locator_.end()) continue;
          for (auto& s : it->second) {
            if (!seen.insert(s->id_).second) continue;
            const absl::Time until = absl::FromUnixNanos(
                s->paced_until_ns_.load(std::memory_order_relaxed));
            if (until > now) {
              RetryLocked(*s, until);
            } else {
              subs.push_back(s);
            }
          }
        }
        touched_locators_.clear();
      }
      if (now >= next_retry_) {
        next_retry_ = absl::InfiniteFuture();
        const bool all_broad = broad_retry_;
        if (all_broad) {
          broad_retry_ = false;
          for (auto& [id, s] : broad_) subs.push_back(s);
        }
        for (auto it = retry_.begin(); it != retry_.end();) {
          auto cur = it++;
          if (cur->second > now) {
            next_retry_ = std::min(next_retry_, cur->second);
            continue;
          }
          auto sit = subscriptions_.find(cur->first);
          if (sit != subscriptions_.end() &&
              !(all_broad && broad_.contains(cur->first)) &&
              seen.insert(cur->first).second) {
            subs.push_back(sit->second);
          }
          retry_.erase(cur);
        }
      }
    }
    if (subs.empty()) continue;
    mu_.Unlock();
    WakeAll(subs);
    subs.clear();
    mu_.Lock();
  }
}

size_t StreamHub::WakeShares(size_t subscribers) const {
  // A handful of wakes costs less than handing them to another thread.
  constexpr size_t kMinPerShare = 32;
  return std::min(wake_helpers_.size() + 1,
                  std::max<size_t>(1, subscribers / kMinPerShare));
}

void StreamHub::WakeShare(
    const std::vector<std::shared_ptr<Subscription>>& subs, size_t share) {
  const size_t shares = WakeShares(subs.size());
  if (share >= shares) return;
  for (size_t i = subs.size() * share / shares,
              end = subs.size() * (share + 1) / shares;
       i < end; ++i) {
    Subscription& sub = *subs[i];
    absl::MutexLock sl(&sub.sink_mu_);
    if (sub.sink_ != nullptr) sub.sink_->Wake();
  }
}

void StreamHub::WakeAll(
    const std::vector<std::shared_ptr<Subscription>>& subs) {
  if (WakeShares(subs.size()) == 1) {
    WakeShare(subs, 0);
    return;
  }
  {
    absl::MutexLock l(&sweep_.mu);
    sweep_.subs = &subs;
    sweep_.busy = wake_helpers_.size();
    ++sweep_.generation;
  }
  WakeShare(subs, 0);
  absl::MutexLock l(&sweep_.mu);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sweep_.mu) {
    return sweep_.busy == 0;
  };
  sweep_.mu.Await(absl::Condition(&done));
  sweep_.subs = nullptr;
}

void StreamHub::WakeHelperLoop(size_t share) {
  uint64_t seen = 0;
  for (;;) {
    const std::vector<std::shared_ptr<Subscription>>* subs;
    {
      absl::MutexLock l(&sweep_.mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sweep_.mu) {
        return sweep_.stop || sweep_.generation != seen;
      };
      sweep_.mu.Await(absl::Condition(&ready));
      if (sweep_.stop) return;
      seen = sweep_.generation;
      subs = sweep_.subs;
    }
    WakeShare(*subs, share);
    absl::MutexLock l(&sweep_.mu);
    --sweep_.busy;
  }
}

absl::Time StreamHub::WindowEnd(absl::Time last_message) const {
  const int64_t window = absl::ToInt64Nanoseconds(options_.batch_delay);
  if (window <= 0) return last_message;
  return absl::FromUnixNanos((absl::ToUnixNanos(last_message) / window + 1) *
                             window);
}

void StreamHub::RetryLocked(Subscription& sub, absl::Time when) {
  auto [it, inserted] = retry_.try_emplace(sub.id_, when);
  if (!inserted) it->second = std::min(it->second, when);
  next_retry_ = std::min(next_retry_, when);
}

int64_t StreamHub::latest_revision() {
  absl::MutexLock l(&mu_);
  return latest_revision_;
}

StreamHub::Stats StreamHub::stats() {
  absl::MutexLock l(&mu_);
  return stats_;
}

size_t StreamHub::subscriber_count() {
  absl::MutexLock l(&mu_);
  return subscriptions_.size();
}

absl::StatusOr<std::shared_ptr<Subscription>> StreamHub::Add(
    const v1::Hello& hello, const std::string& peer, SubscriberSink* sink) {
  ILA_RETURN_IF_ERROR(ValidateNode(hello.node()));
  if (hello.role() == v1::NODE_ROLE_UNSPECIFIED ||
      !v1::NodeRole_IsValid(hello.role())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hello.role: ", hello.role(), " is not router, host or observer"));
  }
  if (hello.resume_revision() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hello.resume_revision: ", hello.resume_revision(), " is negative"));
  }
  auto filter = ParseFilter(hello.filter());
  if (!filter.ok()) return Annotate(filter.status(), "hello");

  auto sub = std::make_shared<Subscription>();
  int64_t known = latest_revision();
  if (hello.resume_revision() > known) {
    auto st = store_->Status();
    if (st.ok()) known = std::max(known, st->revision);
  }
  {
    absl::MutexLock sl(&sub->mu_);
    sub->hello_ = hello;
    sub->filter_ = *std::move(filter);
    sub->filter_key_ = sub->filter_.Key();
    sub->locators_.assign(sub->filter_.locators.begin(),
                          sub->filter_.locators.end());
    sub->peer_ = peer;
    sub->connected_since_ = Now();
    sub->last_message_time_ = Now();
    if (hello.resume_revision() == 0) {
      sub->phase_ = Subscription::Phase::kNeedSnapshot;
    } else if (hello.resume_history() != 0 &&
               hello.resume_history() != history_) {
      // Its revisions are of another database (this one was restored from
      // a backup, or replaced): the numbers may match, the contents not.
      ILA_LOG_WARN(
          "subscriber {} resumes from revision {} of history {:016x}; this "
          "database's history is {:016x}: sending a snapshot",
          hello.node(), hello.resume_revision(), hello.resume_history(),
          history_);
      sub->phase_ = Subscription::Phase::kNeedSnapshot;
    } else if (hello.resume_revision() > known) {
      // The subscriber has seen revisions this server never had (e.g. the
      // server was restored from an older backup): resync from a snapshot.
      ILA_LOG_WARN(
          "subscriber {} resumes from revision {} but the server is at {}; "
          "sending a snapshot",
          hello.node(), hello.resume_revision(), known);
      sub->phase_ = Subscription::Phase::kNeedSnapshot;
    } else {
      sub->phase_ = Subscription::Phase::kStreaming;
      sub->next_revision_ = hello.resume_revision() + 1;
      sub->last_sent_revision_ = hello.resume_revision();
    }
  }
  {
    absl::MutexLock sl(&sub->sink_mu_);
    sub->sink_ = sink;
  }
  absl::MutexLock l(&mu_);
  if (closing_) {
    return absl::UnavailableError("ila-server is shutting down; reconnect");
  }
  sub->id_ = next_id_++;
  subscriptions_[sub->id_] = sub;
  if (sub->locators_.empty()) {
    broad_[sub->id_] = sub;
  } else {
    // Commits up to now were not recorded for it: its first read scans.
    absl::MutexLock tl(&sub->touch_mu_);
    sub->unrecorded_from_ = 0;
    sub->unrecorded_through_ = latest_revision_;
    for (uint64_t loc : sub->locators_) by_locator_[loc].push_back(sub);
  }
  ILA_LOG_INFO("subscriber {} ({}) from {} connected, resume revision {}",
               hello.node(), v1::NodeRole_Name(hello.role()), peer,
               hello.resume_revision());
  return sub;
}

void StreamHub::Remove(const std::shared_ptr<Subscription>& sub) {
  {
    absl::MutexLock sl(&sub->sink_mu_);
    sub->sink_ = nullptr;
  }
  {
    absl::MutexLock sl(&sub->mu_);
    sub->snapshot_.reset();  // release the database snapshot now
    ILA_LOG_INFO("subscriber {} disconnected at revision {} (acked {})",
                 sub->hello_.node(), sub->last_sent_revision_,
                 sub->last_acked_revision_);
  }
  absl::MutexLock l(&mu_);
  subscriptions_.erase(sub->id_);
  broad_.erase(sub->id_);
  for (uint64_t loc : sub->locators_) {
    auto it = by_locator_.find(loc);
    if (it == by_locator_.end()) continue;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), sub), v.end());
    if (v.empty()) by_locator_.erase(it);
  }
  retry_.erase(sub->id_);
}

absl::Status StreamHub::OnAck(Subscription& sub, const v1::Ack& ack) {
  absl::MutexLock sl(&sub.mu_);
  if (ack.applied_revision() > sub.last_sent_revision_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ack.applied_revision: ", ack.applied_revision(),
        " is ahead of the last revision sent, ", sub.last_sent_revision_));
  }
  sub.last_acked_revision_ =
      std::max(sub.last_acked_revision_, ack.applied_revision());
  sub.last_ack_time_ = Now();
  return absl::OkStatus();
}

void StreamHub::OnNack(Subscription& sub, const v1::Nack& nack) {
  absl::MutexLock sl(&sub.mu_);
  sub.last_nack_revision_ = nack.revision();
  sub.last_nack_error_ = nack.error().substr(0, 1024);
  sub.last_nack_time_ = Now();
  ILA_LOG_WARN("subscriber {} could not apply revision {}: {}",
               sub.hello_.node(), nack.revision(), sub.last_nack_error_);
}

absl::StatusOr<std::optional<grpc::ByteBuffer>> StreamHub::NextMessage(
    Subscription& sub) {
  absl::MutexLock sl(&sub.mu_);
  const bool was_streaming = sub.phase_ == Subscription::Phase::kStreaming;
  auto next = NextLocked(sub);
  if (next.ok() && next->has_value()) {
    ++sub.messages_sent_;
    sub.last_message_time_ = Now();
    if (was_streaming && sub.phase_ == Subscription::Phase::kStreaming) {
      // Updates or Progress: the subscriber's window starts.
      sub.last_paced_time_ = sub.last_message_time_;
      sub.paced_until_ns_.store(
          absl::ToUnixNanos(WindowEnd(sub.last_paced_time_)),
          std::memory_order_relaxed);
    }
  }
  return next;
}

absl::StatusOr<std::optional<grpc::ByteBuffer>> StreamHub::NextLocked(
    Subscription& sub) {
  // Each turn handles up to max_revisions_per_message revisions; ranges that
  // change nothing for the filter are skipped. Bounded, then Progress.
  // A locator-filtered subscriber takes its touched revisions once per turn
  // (FromTouches); when it has to scan instead and stops short of the
  // revision it scanned for, the next call scans again.
  bool touches_taken = false;
  int64_t must_scan_through = 0;
  auto rescan_later = absl::MakeCleanup([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (sub.next_revision_ <= must_scan_through) {
      absl::MutexLock tl(&sub.touch_mu_);
      sub.unrecorded_from_ = std::min(sub.unrecorded_from_, sub.next_revision_);
      sub.unrecorded_through_ =
          std::max(sub.unrecorded_through_, must_scan_through);
    }
  });
  for (int turn = 0; turn < 256; ++turn) {
    if (sub.phase_ != Subscription::Phase::kStreaming) {
      return NextSnapshotMessage(sub);
    }
    int64_t latest = latest_revision();
    if (sub.next_revision_ > latest) break;
    if (const absl::Time end = WindowEnd(sub.last_paced_time_); Now() < end) {
      // Paced: the fan-out comes back for it when its window ends.
      absl::MutexLock l(&mu_);
      RetryLocked(sub, end);
      return std::nullopt;
    }
    if (!sub.locators_.empty() && !touches_taken) {
      touches_taken = true;
      auto message = FromTouches(sub, &latest);
      if (!message.has_value()) must_scan_through = latest;
      if (message.has_value()) {
        if (*message == nullptr || (*message)->empty) {
          sub.skipped_since_sent_ = true;
          touches_taken = false;
          continue;
        }
        // Revisions after the message's last one were skipped: Progress
        // tells the subscriber about them.
        sub.last_sent_revision_ = (*message)->last_revision;
        sub.skipped_since_sent_ =
            sub.next_revision_ - 1 > (*message)->last_revision;
        return (*message)->bytes;
      }
    }
    auto sets = ChangesFrom(sub.next_revision_);
    if (absl::IsOutOfRange(sets.status()) || absl::IsDataLoss(sets.status())) {
      ILA_LOG_INFO("subscriber {} needs revision {}: {}; sending a snapshot",
                   sub.hello_.node(), sub.next_revision_,
                   sets.status().message());
      sub.phase_ = Subscription::Phase::kNeedSnapshot;
      continue;
    }
    if (!sets.ok()) return sets.status();
    if (sets->empty()) break;
    // Fast path for filtered subscribers (thousands of host agents): most
    // ranges hold nothing for them; find out without building anything.
    if (!sub.filter_.IsAll() && !AnyChangeMatches(*sets, sub.filter_)) {
      sub.next_revision_ = sets->back()->revision + 1;
      sub.skipped_since_sent_ = true;
      continue;
    }
    const std::string key =
        absl::StrCat(sets->front()->revision, "-", sets->back()->revision, "|",
                     sub.filter_key_);
    std::shared_ptr<const CachedMessage> message;
    {
      absl::MutexLock l(&mu_);
      if (auto it = cache_.find(key); it != cache_.end()) {
        message = it->second;
        ++stats_.updates_reused;
      }
    }
    if (message == nullptr) {
      message = BuildUpdates(*sets, sub.filter_, key);
    }
    sub.next_revision_ = sets->back()->revision + 1;
    if (message->empty) {
      sub.skipped_since_sent_ = true;
      continue;
    }
    sub.last_sent_revision_ = message->last_revision;
    sub.skipped_since_sent_ = sets->back()->revision > message->last_revision;
    return message->bytes;
  }
  // Caught up (or done a bounded amount of skipping): Progress when revisions
  // were skipped, or as a heartbeat.
  const int64_t sent_through = sub.next_revision_ - 1;
  const absl::Duration quiet = Now() - sub.last_message_time_;
  if ((sub.skipped_since_sent_ &&
       quiet >= std::max(options_.batch_delay, options_.skip_progress_delay)) ||
      quiet >= options_.progress_interval) {
    sub.skipped_since_sent_ = false;
    sub.last_sent_revision_ = sent_through;
    v1::SubscribeResponse resp;
    resp.mutable_progress()->set_revision(sent_through);
    return Serialize(resp);
  }
  // Paced skip-Progress goes out on a periodic tick.
  return std::nullopt;
}

std::optional<std::shared_ptr<const StreamHub::CachedMessage>>
StreamHub::FromTouches(Subscription& sub, int64_t* latest) {
  // The latest revision first: a commit records its touches before it
  // publishes its revision, so every touch up to `latest` is in the list
  // (or was consumed, or is marked unrecorded).
  *latest = latest_revision();
  std::vector<int64_t> touches;
  bool rescan;
  {
    absl::MutexLock tl(&sub.touch_mu_);
    auto end =
        std::upper_bound(sub.touches_.begin(), sub.touches_.end(), *latest);
    touches.assign(sub.touches_.begin(), end);
    sub.touches_.erase(sub.touches_.begin(), end);
    rescan = sub.unrecorded_from_ <= *latest;
    if (rescan) {
      // This call scans through `latest`; what was not recorded after it
      // stays marked.
      if (sub.unrecorded_through_ > *latest) {
        sub.unrecorded_from_ = *latest + 1;
      } else {
        sub.unrecorded_from_ = Subscription::kNone;
        sub.unrecorded_through_ = 0;
      }
    }
  }
  touches.erase(
      touches.begin(),
      std::lower_bound(touches.begin(), touches.end(), sub.next_revision_));
  const bool complete = !rescan;
  std::vector<std::shared_ptr<const storage::ChangeSet>> sets;
  size_t changes = 0;
  if (!rescan) {
    absl::MutexLock l(&mu_);
    for (int64_t r : touches) {
      if (ring_.empty() || r < ring_first_revision_ ||
          r - ring_first_revision_ >= static_cast<int64_t>(ring_.size())) {
        rescan = true;  // off the ring: read the change log instead
        break;
      }
      const auto& set = ring_[r - ring_first_revision_];
      if (!sets.empty() &&
          (changes + set->changes.size() > options_.max_changes_per_message ||
           sets.size() >= options_.max_revisions_per_message)) {
        break;
      }
      changes += set->changes.size();
      sets.push_back(set);
    }
  }
  if (rescan) {
    if (complete && !touches.empty() && touches.front() > sub.next_revision_) {
      // Nothing before the first touch concerns the subscriber.
      sub.next_revision_ = touches.front();
      sub.skipped_since_sent_ = true;
    }
    // The caller scans from the position on; touches it passes are dropped
    // later, and if it stops before `latest` it asks for a rescan again.
    return std::nullopt;
  }
  if (sets.size() < touches.size()) {
    // Bounded message: the rest stays for the next one.
    absl::MutexLock tl(&sub.touch_mu_);
    sub.touches_.insert(sub.touches_.begin(), touches.begin() + sets.size(),
                        touches.end());
    sub.next_revision_ = sets.back()->revision + 1;
  } else {
    sub.next_revision_ = *latest + 1;
  }
  if (sets.empty()) return nullptr;
  return BuildUpdates(sets, sub.filter_, std::string());
}

absl::StatusOr<std::optional<grpc::ByteBuffer>> StreamHub::NextSnapshotMessage(
    Subscription& sub) {
  v1::SubscribeResponse resp;
  if (sub.phase_ == Subscription::Phase::kNeedSnapshot) {
    ILA_ASSIGN_OR_RETURN(sub.snapshot_, store_->OpenSnapshot());
    sub.phase_ = Subscription::Phase::kSnapshot;
    sub.snapshot_count_ = 0;
    sub.snapshot_done_ = false;
    ++sub.snapshots_sent_;
    resp.mutable_snapshot_begin()->set_revision(sub.snapshot_->revision());
    resp.mutable_snapshot_begin()->set_history(history_);
    return Serialize(resp);
  }
  const size_t chunk_size = options_.snapshot_chunk_mappings;
  auto* chunk = resp.mutable_snapshot_chunk();
  std::vector<storage::Mapping> batch;
  while (!sub.snapshot_done_ &&
         static_cast<size_t>(chunk->mappings_size()) < chunk_size) {
    batch.clear();
    ILA_ASSIGN_OR_RETURN(
        bool more,
        sub.snapshot_->ReadNext(chunk_size - chunk->mappings_size(), &batch));
    for (const auto& m : batch) {
      if (sub.filter_.Matches(m)) ToProto(m, chunk->add_mappings());
    }
    if (!more) sub.snapshot_done_ = true;
  }
  if (chunk->mappings_size() > 0) {
    sub.snapshot_count_ += chunk->mappings_size();
    return Serialize(resp);
  }
  const int64_t revision = sub.snapshot_->revision();
  resp.mutable_snapshot_end()->set_revision(revision);
  resp.mutable_snapshot_end()->set_mapping_count(sub.snapshot_count_);
  sub.snapshot_.reset();
  sub.phase_ = Subscription::Phase::kStreaming;
  sub.next_revision_ = revision + 1;
  sub.last_sent_revision_ = revision;
  sub.skipped_since_sent_ = false;
  return Serialize(resp);
}

absl::StatusOr<std::vector<std::shared_ptr<const storage::ChangeSet>>>
StreamHub::ChangesFrom(int64_t from) {
  std::vector<std::shared_ptr<const storage::ChangeSet>> out;
  size_t changes = 0;
  {
    absl::MutexLock l(&mu_);
    if (from > latest_revision_) return out;
    if (!ring_.empty() && from >= ring_first_revision_) {
      for (size_t i = static_cast<size_t>(from - ring_first_revision_);
           i < ring_.size() && out.size() < options_.max_revisions_per_message;
           ++i) {
        if (!out.empty() && changes + ring_[i]->changes.size() >
                                options_.max_changes_per_message) {
          break;
        }
        changes += ring_[i]->changes.size();
        out.push_back(ring_[i]);
      }
      return out;
    }
  }
  // Fell off the ring: the store's change log (OUT_OF_RANGE if compacted).
  ILA_ASSIGN_OR_RETURN(
      std::vector<storage::ChangeSet> sets,
      store_->ReadChanges(from - 1, options_.max_revisions_per_message));
  if (sets.empty() || sets.front().revision != from) {
    return absl::DataLossError(
        absl::StrCat("the change log has no revision ", from, " (it starts at ",
                     sets.empty() ? 0 : sets.front().revision, ")"));
  }
  for (auto& set : sets) {
    if (!out.empty() &&
        changes + set.changes.size() > options_.max_changes_per_message) {
      break;
    }
    changes += set.changes.size();
    out.push_back(std::make_shared<const storage::ChangeSet>(std::move(set)));
  }
  return out;
}

std::shared_ptr<const StreamHub::CachedMessage> StreamHub::BuildUpdates(
    const std::vector<std::shared_ptr<const storage::ChangeSet>>& sets,
    const StreamFilter& filter, const std::string& key) {
  v1::SubscribeResponse resp;
  auto* updates = resp.mutable_updates();
  for (const auto& set : sets) {
    v1::Update* u = updates->add_updates();
    if (!FilterChangeSet(*set, filter, u))
      updates->mutable_updates()->RemoveLast();
  }
  auto message = std::make_shared<CachedMessage>();
  message->empty = updates->updates_size() == 0;
  if (!message->empty) {
    message->last_revision =
        updates->updates(updates->updates_size() - 1).revision();
  }
  if (!message->empty) message->bytes = Serialize(resp);
  absl::MutexLock l(&mu_);
  ++stats_.updates_built;
  if (!key.empty() && cache_.emplace(key, message).second) {
    cache_order_.push_back(key);
    while (cache_order_.size() > options_.message_cache_entries) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
  }
  return message;
}

v1::ListSubscribersResponse StreamHub::ListSubscribers() {
  v1::ListSubscribersResponse resp;
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock l(&mu_);
    resp.set_revision(latest_revision_);
    for (auto& [id, s] : subscriptions_) subs.push_back(s);
  }
  const absl::Time now = Now();
  for (auto& s : subs) {
    absl::MutexLock sl(&s->mu_);
    v1::SubscriberInfo* info = resp.add_subscribers();
    info->set_id(s->id_);
    info->set_node(s->hello_.node());
    info->set_role(s->hello_.role());
    *info->mutable_filter() = s->hello_.filter();
    info->set_peer(s->peer_);
    SetTimestamp(s->connected_since_, info->mutable_connected_since());
    info->set_resume_revision(s->hello_.resume_revision());
    info->set_last_sent_revision(s->last_sent_revision_);
    info->set_last_acked_revision(s->last_acked_revision_);
    SetTimestamp(s->last_ack_time_, info->mutable_last_ack_time());
    info->set_last_nack_revision(s->last_nack_revision_);
    info->set_last_nack_error(s->last_nack_error_);
    SetTimestamp(s->last_nack_time_, info->mutable_last_nack_time());
    info->set_snapshots_sent(s->snapshots_sent_);
    info->set_messages_sent(s->messages_sent_);
    info->set_in_snapshot(s->phase_ != Subscription::Phase::kStreaming);
    int64_t acked = s->last_acked_revision_;
    if (!s->locators_.empty() && s->phase_ == Subscription::Phase::kStreaming &&
        acked >= s->last_sent_revision_) {
      // A host agent that acked all it was sent and has no revision of its
      // locators pending is current, however long ago its last Progress.
      absl::MutexLock tl(&s->touch_mu_);
      if (s->touches_.empty() && s->unrecorded_from_ > resp.revision()) {
        acked = resp.revision();
      }
    }
    const int64_t lag = std::max<int64_t>(0, resp.revision() - acked);
    info->set_lag_revisions(lag);
    double lag_seconds = 0;
    if (lag > 0) {
      absl::MutexLock l(&mu_);
      const int64_t first_unacked = acked + 1;
      if (!ring_.empty() && first_unacked >= ring_first_revision_ &&
          first_unacked - ring_first_revision_ <
              static_cast<int64_t>(ring_.size())) {
        lag_seconds = absl::ToDoubleSeconds(
            now - ring_[first_unacked - ring_first_revision_]->commit_time);
      } else {
        lag_seconds = -1;
      }
    }
    info->set_lag_seconds(lag_seconds);
  }
  return resp;
}

}  // namespace ila::server
