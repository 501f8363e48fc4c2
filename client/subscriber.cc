#include "client/subscriber.h"

#include <grpcpp/grpcpp.h>

#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "client/ila_client.h"
#include "ila/v1/stream.grpc.pb.h"

namespace ila::client {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& server,
                                           const SubscriberOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.max_backoff)));
  if (o.connection_group >= 0)
    args.SetInt("ila.connection_group", o.connection_group);
  return grpc::CreateCustomChannel(server,
                                   o.credentials != nullptr
                                       ? o.credentials
                                       : grpc::InsecureChannelCredentials(),
                                   args);
}

}  // namespace

StreamSubscriber::StreamSubscriber(SubscriberOptions options,
                                   SubscriberListener* listener)
    : options_(std::move(options)), listener_(listener) {
  for (const auto& s : options_.servers) {
    channels_.push_back(MakeChannel(s, options_));
  }
  absl::MutexLock l(&mu_);
  applied_ = options_.resume_revision;
  notified_ = options_.resume_revision;
  history_ = options_.resume_history;
  synced_ = options_.resume_revision > 0;
}

StreamSubscriber::~StreamSubscriber() { Stop(); }

void StreamSubscriber::Start() {
  thread_ = std::thread([this] { Run(); });
}

void StreamSubscriber::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

int64_t StreamSubscriber::applied_revision() {
  absl::MutexLock l(&mu_);
  return applied_;
}

bool StreamSubscriber::synced() {
  absl::MutexLock l(&mu_);
  return synced_;
}

Replica StreamSubscriber::CopyReplica() {
  absl::MutexLock l(&mu_);
  return replica_;
}

SubscriberStats StreamSubscriber::stats() {
  absl::MutexLock l(&mu_);
  return stats_;
}

uint64_t StreamSubscriber::history() {
  absl::MutexLock l(&mu_);
  return history_;
}

bool StreamSubscriber::WaitForRevision(int64_t revision,
                                       absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return synced_ && notified_ >= revision;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

void StreamSubscriber::Notified(int64_t revision) {
  absl::MutexLock l(&mu_);
  notified_ = std::max(notified_, revision);
}

void StreamSubscriber::Violation(const std::string& what) {
  absl::MutexLock l(&mu_);
  ++stats_.violations;
  stats_.last_violation = what;
}

void StreamSubscriber::Nack(int64_t revision, const std::string& error) {
  if (!write_) return;
  v1::SubscribeRequest req;
  req.mutable_nack()->set_revision(revision);
  req.mutable_nack()->set_error(error.substr(0, 1024));
  write_(req);
}

void StreamSubscriber::Run() {
  if (channels_.empty()) return;
  std::mt19937_64 rng(std::random_device{}());
  int failures = 0;
  for (size_t attempt = 0;; ++attempt) {
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
    }
    const size_t index = attempt % channels_.size();
    const int64_t before = stats().updates + stats().snapshots;
    absl::Status status = RunOnce(options_.servers[index]);
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
    }
    if (listener_ != nullptr) listener_->OnDisconnect(status);
    // Progress made on that connection resets the backoff.
    failures = stats().updates + stats().snapshots > before ? 0 : failures + 1;
    absl::Duration backoff = options_.initial_backoff;
    for (int i = 0; i < failures && backoff < options_.max_backoff; ++i) {
      backoff *= 2;
    }
    backoff = std::min(backoff, options_.max_backoff);
    backoff *= std::uniform_real_distribution<double>(0.5, 1.5)(rng);
    absl::MutexLock l(&mu_);
    auto stop = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
  }
}

absl::Status StreamSubscriber::RunOnce(const std::string& server) {
  size_t index = 0;
  while (options_.servers[index] != server) ++index;
  auto stub = v1::MappingStream::NewStub(channels_[index]);
  grpc::ClientContext ctx;
  v1::SubscribeRequest hello;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    context_ = &ctx;
    ++stats_.connects;
    auto* h = hello.mutable_hello();
    h->set_node(options_.node);
    h->set_role(options_.role);
    *h->mutable_filter() = options_.filter;
    h->set_resume_revision(synced_ ? applied_ : 0);
    if (synced_) h->set_resume_history(history_);
  }
  auto stream = stub->Subscribe(&ctx);
  absl::Status violation;
  auto fail = [&](const std::string& what) {
    Violation(what);
    violation = absl::DataLossError(absl::StrCat("protocol violation: ", what));
    ctx.TryCancel();
  };
  write_ = [&](const v1::SubscribeRequest& req) { stream->Write(req); };
  auto ack = [&](int64_t revision) {
    v1::SubscribeRequest req;
    req.mutable_ack()->set_applied_revision(revision);
    stream->Write(req);
  };

  if (stream->Write(hello)) {
    v1::SubscribeResponse resp;
    Replica staging;
    bool in_snapshot = false;
    int64_t snapshot_revision = 0;
    uint64_t snapshot_history = 0;
    std::vector<std::pair<uint64_t, std::optional<v1::Mapping>>> befores;
    while (violation.ok() && stream->Read(&resp)) {
      switch (resp.message_case()) {
        case v1::SubscribeResponse::kSnapshotBegin:
          in_snapshot = true;
          staging.clear();
          snapshot_revision = resp.snapshot_begin().revision();
          snapshot_history = resp.snapshot_begin().history();
          break;
        case v1::SubscribeResponse::kSnapshotChunk:
          if (!in_snapshot) {
            fail("snapshot chunk outside a snapshot");
            break;
          }
          for (auto& m : *resp.mutable_snapshot_chunk()->mutable_mappings()) {
            const uint64_t id = m.identifier();
            staging[id] = std::move(m);
          }
          break;
        case v1::SubscribeResponse::kSnapshotEnd: {
          const int64_t r = resp.snapshot_end().revision();
          if (!in_snapshot || r != snapshot_revision) {
            fail(absl::StrCat("snapshot end at ", r, " for a snapshot at ",
                              snapshot_revision));
            break;
          }
          in_snapshot = false;
          {
            absl::MutexLock l(&mu_);
            replica_.swap(staging);
            applied_ = r;
            history_ = snapshot_history;
            synced_ = true;
            ++stats_.snapshots;
          }
          staging.clear();
          // Only this thread writes replica_: reading it unlocked is safe.
          if (listener_ != nullptr) {
            listener_->OnSnapshot(r, replica_);
            listener_->OnApplied(r);
          }
          Notified(r);
          ack(r);
          break;
        }
        case v1::SubscribeResponse::kUpdates: {
          if (in_snapshot) {
            fail("updates inside a snapshot");
            break;
          }
          int64_t last = 0;
          for (auto& u : *resp.mutable_updates()->mutable_updates()) {
            befores.clear();
            {
              absl::MutexLock l(&mu_);
              if (!synced_ || u.revision() <= applied_) {
                ++stats_.violations;
                stats_.last_violation =
                    absl::StrCat("update for revision ", u.revision(),
                                 " after revision ", applied_);
                violation = absl::DataLossError(stats_.last_violation);
                ctx.TryCancel();
                break;
              }
              for (auto& m : *u.mutable_upserts()) {
                auto it = replica_.find(m.identifier());
                if (listener_ != nullptr) {
                  befores.emplace_back(m.identifier(),
                                       it == replica_.end()
                                           ? std::nullopt
                                           : std::optional(it->second));
                  replica_[m.identifier()] = m;  // `m` goes to the listener
                } else if (it != replica_.end()) {
                  it->second.Swap(&m);
                } else {
                  const uint64_t id = m.identifier();
                  replica_[id].Swap(&m);
                }
              }
              for (uint64_t id : u.deletes()) {
                auto it = replica_.find(id);
                if (listener_ != nullptr) {
                  befores.emplace_back(id, it == replica_.end()
                                               ? std::nullopt
                                               : std::optional(it->second));
                }
                if (it != replica_.end()) replica_.erase(it);
              }
              applied_ = last = u.revision();
              ++stats_.updates;
            }
            if (listener_ != nullptr) {
              size_t i = 0;
              for (const auto& m : u.upserts()) {
                const auto& b = befores[i++].second;
                listener_->OnChange(u.revision(), m.identifier(),
                                    b ? &*b : nullptr, &m);
              }
              for (uint64_t id : u.deletes()) {
                const auto& b = befores[i++].second;
                listener_->OnChange(u.revision(), id, b ? &*b : nullptr,
                                    nullptr);
              }
              listener_->OnApplied(u.revision());
            }
            Notified(u.revision());
          }
          if (violation.ok() && last > 0) ack(last);
          break;
        }
        case v1::SubscribeResponse::kProgress: {
          const int64_t r = resp.progress().revision();
          bool advanced = false;
          {
            absl::MutexLock l(&mu_);
            if (!synced_ || in_snapshot || r < applied_) {
              ++stats_.violations;
              stats_.last_violation = absl::StrCat(
                  "progress ", r, " behind applied revision ", applied_);
              violation = absl::DataLossError(stats_.last_violation);
              ctx.TryCancel();
              break;
            }
            advanced = r > applied_;
            applied_ = r;
          }
          if (advanced && listener_ != nullptr) listener_->OnApplied(r);
          Notified(r);
          ack(r);
          break;
        }
        case v1::SubscribeResponse::MESSAGE_NOT_SET:
          fail("empty message");
          break;
      }
    }
  }
  write_ = nullptr;
  grpc::Status status = stream->Finish();
  {
    absl::MutexLock l(&mu_);
    context_ = nullptr;
  }
  if (!violation.ok()) return violation;
  return FromGrpc(status);
}

}  // namespace ila::client
