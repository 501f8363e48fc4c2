// SyncAgent: ila-router-sync. Subscribes to ila-server
// (client/subscriber.h) and makes the kernel's ILA state equal to the
// mappings, in one of two roles:
//
// - router: one /128 ILA route per mapping (of its identifier shard), with
//   the agent's protocol in its table;
// - host (--locator L...): one translation entry per local locator, locator
//   -> the SIR prefix of the mappings on it, so that packets addressed to a
//   task's ILA address are rewritten back to its SIR address; with --direct
//   also the /128 routes of the tasks on other hosts (the whole table is
//   streamed) so that this host sends to them without a router hop.
//
// In both roles:
// - nothing touches the kernel before the first complete state (a snapshot,
//   or the state saved in --state-dir by an earlier run with the same role
//   and filter);
// - after every snapshot, periodically, and after failures (with backoff): a
//   full reconcile (dump, pure plan, apply);
// - in between, each stream message's changes are applied as one batch and
//   the revision is acknowledged after the kernel answered; what the kernel
//   refused (or what cannot be programmed) is reported as Nack{revision,
//   error} and retried by the next reconcile;
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
#include "absl/container/btree_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/subscriber.h"
#include "router-sync/reconcile.h"
#include "router-sync/rtnetlink.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace ila::router_sync {

// Where the agent's kernel state goes: the kernel (netlink) or, for
// --dry-run, a printout.
class KernelBackend {
 public:
  virtual ~KernelBackend() = default;
  virtual absl::StatusOr<std::vector<IlaRoute>> DumpRoutes() = 0;
  virtual absl::StatusOr<std::vector<NetlinkResult>> ApplyRoutes(
      const RoutePlan& plan) = 0;
  virtual absl::StatusOr<std::vector<IlaXlatEntry>> DumpXlat() = 0;
  virtual absl::StatusOr<std::vector<NetlinkResult>> ApplyXlat(
      const XlatPlan& plan) = 0;
};

// The kernel through netlink: routes in one table with one protocol;
// translation entries through `genl` (null in the router role: none).
std::unique_ptr<KernelBackend> MakeNetlinkBackend(std::unique_ptr<RtNetlink> rt,
                                                  std::unique_ptr<IlaGenl> genl,
                                                  uint32_t table,
                                                  uint8_t protocol);
// Prints each operation as an `ip` command on `out` (flushed per batch) and
// remembers the result, as a kernel that accepts everything would.
std::unique_ptr<KernelBackend> MakeDryRunBackend(std::ostream* out,
                                                 uint32_t table,
                                                 uint8_t protocol);

enum class AgentRole { kRouter, kHost };

struct AgentOptions {
  std::vector<std::string> servers;
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string name;
  AgentRole role = AgentRole::kRouter;
  RouteTemplate route;
  // Router: identifier shard (--shard I/N), so that N routers split the
  // table. shard_count 0: the whole table.
  uint32_t shard_index = 0;
  uint32_t shard_count = 0;
  // Host: its locators (--locator), how it translates them back, and
  // whether it also routes to the tasks of other hosts (--direct).
  absl::btree_set<uint64_t> locators;
  XlatTemplate xlat;
  bool direct = false;
  std::string state_dir;  // empty: no saved state (snapshot on every start)
  absl::Duration reconcile_interval = absl::Seconds(60);
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  absl::Duration save_interval = absl::Seconds(10);
};

struct AgentStats {
  int64_t applied_revision = 0;
  int64_t reconciles = 0;
  int64_t routes = 0;        // desired routes
  int64_t xlat_entries = 0;  // desired translation entries
  int64_t failed = 0;        // refused by the kernel at the last attempt
  int64_t operations = 0;    // netlink changes sent
};

class SyncAgent final : public client::SubscriberListener {
 public:
  SyncAgent(AgentOptions options, std::unique_ptr<KernelBackend> backend);
  ~SyncAgent() override;

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
  // The Hello this agent subscribes with (and saves with its state).
  v1::Hello MakeHello() const;
  bool IsLocal(const v1::Mapping& m) const {
    return options_.locators.contains(m.locator());
  }
  // Adds a mapping to / removes it from the desired state, noting what it
  // touched for the next incremental apply.
  void Want(const v1::Mapping& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const v1::Mapping& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After loading all mappings (state file or snapshot): the translation
  // entries of every local locator; nothing is pending incrementally.
  void RebuildDesiredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the touched routes and entries (incremental); returns errors.
  std::vector<std::string> ApplyTouchedLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Full reconcile; returns the errors of refused changes.
  std::vector<std::string> ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountResults(const absl::StatusOr<std::vector<NetlinkResult>>& results,
                    size_t operations, std::vector<std::string>* errors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadState();
  void ReconcileLoop();

  const AgentOptions options_;
  const bool routes_enabled_;  // router, or host with --direct
  const bool xlat_enabled_;    // host
  std::unique_ptr<KernelBackend> backend_;
  std::unique_ptr<client::StreamSubscriber> subscriber_;
  std::thread reconciler_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool have_state_ ABSL_GUARDED_BY(mu_) = false;  // kernel may be touched
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;     // of mappings_
  absl::btree_map<uint64_t, v1::Mapping> mappings_ ABSL_GUARDED_BY(mu_);
  DesiredRoutes desired_ ABSL_GUARDED_BY(mu_);
  // Host: the mappings on each local locator, and the entries they need.
  absl::btree_map<uint64_t, LocatorTasks> local_tasks_ ABSL_GUARDED_BY(mu_);
  DesiredXlat desired_xlat_ ABSL_GUARDED_BY(mu_);
  // Touched by the current stream message: applied at its end.
  absl::btree_set<SirAddress> touched_routes_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<uint64_t> touched_locators_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> invalid_ ABSL_GUARDED_BY(mu_);  // since last Nack
  bool retry_ ABSL_GUARDED_BY(mu_) = false;  // a reconcile is due early
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Time last_save_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_reconcile_ ABSL_GUARDED_BY(mu_) = absl::Now();
  int64_t saved_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t history_ ABSL_GUARDED_BY(mu_) = 0;  // of revision_
  AgentStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ila::router_sync
