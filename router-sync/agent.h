// RouterAgent: ila-router-sync in the router role. Subscribes to
// ila-server (client/subscriber.h) and makes the kernel's ILA routes with
// the agent's protocol in its table equal to one /128 route per mapping:
//
// - nothing touches the kernel before the first complete state (a snapshot,
//   or the state saved in --state-dir by an earlier run);
// - after every snapshot, periodically, and after failures (with backoff): a
//   full reconcile (dump, pure plan, apply);
// - in between, each stream message's changes are applied as one batch and
//   the revision is acknowledged after the kernel answered; routes the
//   kernel refused are reported as Nack{revision, kernel error} and retried
//   by the next reconcile;
// - the mappings and their revision are saved in --state-dir (atomically)
//   after snapshots and at most every `save_interval`, so a restart resumes
//   with the changes since then instead of a full snapshot.
//
// The kernel side is an interface so that --dry-run (print `ip` commands)
// runs the same logic.
//
// Thread-safety: Start/Stop from one owner thread; the rest is internal
// (subscriber thread and reconcile thread, serialized by one mutex).
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/subscriber.h"
#include "router-sync/reconcile.h"
#include "router-sync/rtnetlink.h"

namespace ila::router_sync {

// Where routes go: the kernel (RtNetlink) or, for --dry-run, a printout.
class RouteBackend {
 public:
  virtual ~RouteBackend() = default;
  virtual absl::StatusOr<std::vector<IlaRoute>> Dump() = 0;
  virtual absl::StatusOr<std::vector<RtNetlink::Result>> Apply(
      const RoutePlan& plan) = 0;
};

// The kernel through netlink, for one table and protocol.
std::unique_ptr<RouteBackend> MakeKernelBackend(std::unique_ptr<RtNetlink> nl,
                                                uint32_t table,
                                                uint8_t protocol);
// Prints each operation as an `ip` command on `out` (flushed per batch) and
// remembers the result, as a kernel that accepts everything would.
std::unique_ptr<RouteBackend> MakeDryRunBackend(std::ostream* out,
                                                uint32_t table,
                                                uint8_t protocol);

struct AgentOptions {
  std::vector<std::string> servers;
  std::string name;
  RouteTemplate route;
  // Identifier shard (--shard I/N): only mappings of shard I of N, so that
  // N routers split the table. shard_count 0: the whole table.
  uint32_t shard_index = 0;
  uint32_t shard_count = 0;
  std::string state_dir;  // empty: no saved state (snapshot on every start)
  absl::Duration reconcile_interval = absl::Seconds(60);
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  absl::Duration save_interval = absl::Seconds(10);
};

struct AgentStats {
  int64_t applied_revision = 0;
  int64_t reconciles = 0;
  int64_t routes = 0;          // desired routes
  int64_t failed_routes = 0;   // refused by the kernel at the last attempt
  int64_t routes_written = 0;  // replace + remove operations sent
};

class RouterAgent final : public client::SubscriberListener {
 public:
  RouterAgent(AgentOptions options, std::unique_ptr<RouteBackend> backend);
  ~RouterAgent() override;

  // Loads the saved state (if any) and starts streaming and reconciling.
  absl::Status Start();
  void Stop();
  AgentStats stats();

  // SubscriberListener (the subscriber's thread).
  void OnSnapshot(int64_t revision, const client::Replica& replica) override;
  void OnChange(int64_t revision, uint64_t identifier,
                const v1::Mapping* before, const v1::Mapping* after) override;
  void OnApplied(int64_t revision) override;
  void OnDisconnect(const absl::Status& status) override;

 private:
  // Sets the desired route for a mapping and returns it, or records why it
  // cannot be and returns null.
  const IlaRoute* Want(const v1::Mapping& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unwant(uint64_t identifier) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Full reconcile; returns the errors of refused routes.
  std::vector<std::string> ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> ApplyLocked(const RoutePlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadState();
  void ReconcileLoop();

  const AgentOptions options_;
  std::unique_ptr<RouteBackend> backend_;
  std::unique_ptr<client::StreamSubscriber> subscriber_;
  std::thread reconciler_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool have_state_ ABSL_GUARDED_BY(mu_) = false;  // kernel may be touched
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;     // of mappings_
  absl::btree_map<uint64_t, v1::Mapping> mappings_ ABSL_GUARDED_BY(mu_);
  DesiredRoutes desired_ ABSL_GUARDED_BY(mu_);
  RoutePlan pending_ ABSL_GUARDED_BY(mu_);  // changes of the current message
  std::vector<std::string> invalid_ ABSL_GUARDED_BY(mu_);  // since last Nack
  bool retry_ ABSL_GUARDED_BY(mu_) = false;  // a reconcile is due early
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Time last_save_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_reconcile_ ABSL_GUARDED_BY(mu_) = absl::Now();
  int64_t saved_revision_ ABSL_GUARDED_BY(mu_) = 0;
  AgentStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ila::router_sync
