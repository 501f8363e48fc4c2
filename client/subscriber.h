// StreamSubscriber: the client side of MappingStream.Subscribe, used by
// router-sync, host agents, `ilactl watch` and the benchmarks.
//
// Keeps a local replica of the mappings its filter selects, applies the
// stream in order (snapshot, then updates), acks every applied revision, and
// after any disconnect reconnects (next server address, jittered exponential
// backoff) resuming from its last applied revision. It checks the protocol's
// promises as it goes (revisions strictly increase; progress never goes
// back) and counts violations; on one it drops the stream and resumes.
//
// Thread-safety: Start/Stop from one owner thread; the accessors are
// thread-safe. Listener callbacks run on the subscriber's own thread, in
// stream order, and should be quick.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ila/v1/stream.pb.h"

namespace grpc {
class ChannelCredentials;
class ClientContext;
class Channel;
}  // namespace grpc

namespace ila::client {

using Replica = absl::flat_hash_map<uint64_t, v1::Mapping>;  // by identifier

class SubscriberListener {
 public:
  virtual ~SubscriberListener() = default;
  // A snapshot replaced the replica (`replica` is the new state).
  virtual void OnSnapshot(int64_t revision, const Replica& replica) {}
  // One mapping changed in `revision`: before null = created, after null =
  // deleted (before null too when a delete names an unknown identifier, as
  // after resuming without state).
  virtual void OnChange(int64_t revision, uint64_t identifier,
                        const v1::Mapping* before, const v1::Mapping* after) {}
  // Everything up to `revision` is applied (after updates and progress).
  virtual void OnApplied(int64_t revision) {}
  virtual void OnDisconnect(const absl::Status& status) {}
};

struct SubscriberOptions {
  std::vector<std::string> servers;  // host:port, tried in turn
  std::string node;
  v1::NodeRole role = v1::NODE_ROLE_OBSERVER;
  v1::Filter filter;
  // Resume after this revision on the first connection (0: snapshot). The
  // caller must hold the state of that revision (the replica starts empty).
  int64_t resume_revision = 0;
  // The history of resume_revision (history() when it was saved); a server
  // with another history sends a snapshot. 0: unknown.
  uint64_t resume_history = 0;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration keepalive_time = absl::Seconds(30);
  // Subscribers in one process with the same group share a connection
  // (HTTP/2 streams); -1 = gRPC's default sharing. Tests and benchmarks use
  // groups to model many hosts on few sockets.
  int connection_group = -1;
  // TLS (common/tls.h ClientCredentials); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

struct SubscriberStats {
  int64_t connects = 0;
  int64_t snapshots = 0;
  int64_t updates = 0;     // revisions applied from Updates
  int64_t violations = 0;  // protocol promises broken by the server
  std::string last_violation;
};

class StreamSubscriber {
 public:
  // REQUIRES: `listener` (may be null) outlives the subscriber.
  StreamSubscriber(SubscriberOptions options, SubscriberListener* listener);
  ~StreamSubscriber();

  void Start();
  void Stop();  // returns after the subscriber's thread ended

  int64_t applied_revision();
  bool synced();  // a snapshot or resume point has been applied
  // The server history applied_revision() belongs to (from the last
  // snapshot, or resume_history); save it with the revision.
  uint64_t history();
  Replica CopyReplica();
  SubscriberStats stats();

  // Reports upstream that `revision` could not be fully applied (router-sync:
  // the kernel refused a route), as Nack{revision, error}. Call only from a
  // listener callback (the subscriber's thread); a no-op between streams.
  void Nack(int64_t revision, const std::string& error);

  // Waits until applied_revision() >= revision and the listener has been
  // told about it (its callbacks for that revision returned); false on
  // timeout.
  bool WaitForRevision(int64_t revision, absl::Duration timeout);

 private:
  void Run();
  absl::Status RunOnce(const std::string& server);
  void Notified(int64_t revision);
  void Violation(const std::string& what);

  const SubscriberOptions options_;
  SubscriberListener* const listener_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::thread thread_;
  // The open stream's writer while RunOnce runs (subscriber thread only).
  std::function<void(const v1::SubscribeRequest&)> write_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  Replica replica_ ABSL_GUARDED_BY(mu_);
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t history_ ABSL_GUARDED_BY(mu_) = 0;
  // The last revision whose listener callbacks returned (WaitForRevision).
  int64_t notified_ ABSL_GUARDED_BY(mu_) = 0;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  SubscriberStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ila::client
