#include "router-sync/agent.h"

#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/logging.h"
#include "ila/v1/mapping.pb.h"
#include "ila/v1/stream.pb.h"

namespace ila::router_sync {
namespace {

constexpr char kStateFile[] = "state.pb";

class NetlinkBackend final : public KernelBackend {
 public:
  NetlinkBackend(std::unique_ptr<RtNetlink> rt, std::unique_ptr<IlaGenl> genl,
                 uint32_t table, uint8_t protocol)
      : rt_(std::move(rt)),
        genl_(std::move(genl)),
        table_(table),
        protocol_(protocol) {}
  absl::StatusOr<std::vector<IlaRoute>> DumpRoutes() override {
    return rt_->DumpRoutes(table_, protocol_);
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyRoutes(
      const RoutePlan& plan) override {
    return rt_->Apply(plan, table_, protocol_);
  }
  absl::StatusOr<std::vector<IlaXlatEntry>> DumpXlat() override {
    if (genl_ == nullptr) return std::vector<IlaXlatEntry>{};
    return genl_->Dump();
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyXlat(
      const XlatPlan& plan) override {
    if (genl_ == nullptr) {
      return absl::FailedPreconditionError(
          "no \"ila\" generic netlink socket (router role)");
    }
    return genl_->Apply(plan);
  }

 private:
  std::unique_ptr<RtNetlink> rt_;
  std::unique_ptr<IlaGenl> genl_;
  const uint32_t table_;
  const uint8_t protocol_;
};

class DryRunBackend final : public KernelBackend {
 public:
  DryRunBackend(std::ostream* out, uint32_t table, uint8_t protocol)
      : out_(out), table_(table), protocol_(protocol) {}
  absl::StatusOr<std::vector<IlaRoute>> DumpRoutes() override {
    std::vector<IlaRoute> out;
    for (const auto& [d, r] : routes_) out.push_back(r);
    return out;
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyRoutes(
      const RoutePlan& plan) override {
    std::vector<NetlinkResult> results;
    for (const IlaRoute& r : plan.replace) {
      results.push_back({RouteReplaceCommand(r), absl::OkStatus()});
      routes_[r.destination] = r;
    }
    for (const SirAddress& d : plan.remove) {
      results.push_back(
          {RouteDeleteCommand(d, table_, protocol_), absl::OkStatus()});
      routes_.erase(d);
    }
    return Print(std::move(results));
  }
  absl::StatusOr<std::vector<IlaXlatEntry>> DumpXlat() override {
    std::vector<IlaXlatEntry> out;
    for (const auto& [key, e] : xlat_) out.push_back(e);
    return out;
  }
  absl::StatusOr<std::vector<NetlinkResult>> ApplyXlat(
      const XlatPlan& plan) override {
    std::vector<NetlinkResult> results;
    for (const IlaXlatEntry& e : plan.remove) {
      results.push_back(
          {XlatDeleteCommand(e.locator_match, e.ifindex), absl::OkStatus()});
      xlat_.erase({e.locator_match.value, e.ifindex});
    }
    for (const IlaXlatEntry& e : plan.add) {
      results.push_back({XlatAddCommand(e), absl::OkStatus()});
      xlat_[{e.locator_match.value, e.ifindex}] = e;
    }
    return Print(std::move(results));
  }

 private:
  std::vector<NetlinkResult> Print(std::vector<NetlinkResult> results) {
    for (const auto& r : results) *out_ << r.operation << "\n";
    out_->flush();
    return results;
  }

  std::ostream* out_;
  const uint32_t table_;
  const uint8_t protocol_;
  DesiredRoutes routes_;
  absl::btree_map<std::pair<uint64_t, int32_t>, IlaXlatEntry> xlat_;
};

std::string Summary(const std::vector<std::string>& errors) {
  std::string out =
      absl::StrCat(errors.size(), " change(s) not applied; ", errors.front());
  if (errors.size() > 1) absl::StrAppend(&out, " (and more)");
  return out;
}

bool SameSubscription(const v1::Hello& a, const v1::Hello& b) {
  return a.role() == b.role() &&
         a.filter().SerializeAsString() == b.filter().SerializeAsString();
}

}  // namespace

std::unique_ptr<KernelBackend> MakeNetlinkBackend(std::unique_ptr<RtNetlink> rt,
                                                  std::unique_ptr<IlaGenl> genl,
                                                  uint32_t table,
                                                  uint8_t protocol) {
  return std::make_unique<NetlinkBackend>(std::move(rt), std::move(genl), table,
                                          protocol);
}

std::unique_ptr<KernelBackend> MakeDryRunBackend(std::ostream* out,
                                                 uint32_t table,
                                                 uint8_t protocol) {
  return std::make_unique<DryRunBackend>(out, table, protocol);
}

SyncAgent::SyncAgent(AgentOptions options,
                     std::unique_ptr<KernelBackend> backend)
    : options_(std::move(options)),
      routes_enabled_(options_.role == AgentRole::kRouter || options_.direct),
      xlat_enabled_(options_.role == AgentRole::kHost),
      backend_(std::move(backend)) {
  absl::MutexLock l(&mu_);
  backoff_ = options_.retry_initial;
}

SyncAgent::~SyncAgent() { Stop(); }

v1::Hello SyncAgent::MakeHello() const {
  v1::Hello hello;
  hello.set_node(options_.name);
  if (options_.role == AgentRole::kRouter) {
    hello.set_role(v1::NODE_ROLE_ROUTER);
    if (options_.shard_count > 0) {
      hello.mutable_filter()->set_shard_index(options_.shard_index);
      hello.mutable_filter()->set_shard_count(options_.shard_count);
    }
  } else {
    hello.set_role(v1::NODE_ROLE_HOST);
    // With --direct the host routes to every task: the whole table.
    if (!options_.direct) {
      for (uint64_t l : options_.locators) {
        hello.mutable_filter()->add_locators(FormatLocator(Locator{l}));
      }
    }
  }
  return hello;
}

absl::Status SyncAgent::LoadState() {
  if (options_.state_dir.empty()) return absl::OkStatus();
  const std::string path = absl::StrCat(options_.state_dir, "/", kStateFile);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // first start
  std::stringstream buf;
  buf << in.rdbuf();
  v1::SubscriberState state;
  if (!state.ParseFromString(buf.str()) || state.revision() <= 0) {
    return absl::DataLossError(absl::StrCat(path, " is not a saved state (",
                                            buf.str().size(), " bytes)"));
  }
  if (!SameSubscription(state.hello(), MakeHello())) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " was saved with another role or filter (",
                     state.hello().ShortDebugString(), ")"));
  }
  absl::MutexLock l(&mu_);
  for (const auto& m : state.mappings()) {
    mappings_[m.identifier()] = m;
    Want(m);
  }
  RebuildDesiredLocked();
  revision_ = saved_revision_ = state.revision();
  history_ = state.history();
  have_state_ = true;
  stats_.applied_revision = revision_;
  ILA_LOG_INFO("loaded {} mappings at revision {} from {}", mappings_.size(),
               revision_, path);
  return absl::OkStatus();
}

absl::Status SyncAgent::Start() {
  absl::Status loaded = LoadState();
  if (!loaded.ok()) {
    ILA_LOG_WARN("{}; starting from a snapshot", loaded.message());
  }
  client::SubscriberOptions so;
  so.servers = options_.servers;
  so.credentials = options_.credentials;
  so.node = options_.name;
  const v1::Hello hello = MakeHello();
  so.role = hello.role();
  so.filter = hello.filter();
  {
    absl::MutexLock l(&mu_);
    if (have_state_) {
      // The saved state is complete: make the kernel match it now.
      std::vector<std::string> errors = ReconcileLocked();
      errors.insert(errors.end(), invalid_.begin(), invalid_.end());
      invalid_.clear();
      if (!errors.empty()) ILA_LOG_WARN("{}", Summary(errors));
    }
    so.resume_revision = revision_;
    so.resume_history = history_;
  }
  subscriber_ = std::make_unique<client::StreamSubscriber>(so, this);
  subscriber_->Start();
  reconciler_ = std::thread([this] { ReconcileLoop(); });
  return absl::OkStatus();
}

void SyncAgent::Stop() {
  if (subscriber_ != nullptr) subscriber_->Stop();
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (reconciler_.joinable()) reconciler_.join();
  absl::MutexLock l(&mu_);
  SaveLocked(/*force=*/true);
}

AgentStats SyncAgent::stats() {
  absl::MutexLock l(&mu_);
  AgentStats s = stats_;
  s.routes = static_cast<int64_t>(desired_.size());
  s.xlat_entries = static_cast<int64_t>(desired_xlat_.size());
  return s;
}

void SyncAgent::Want(const v1::Mapping& m) {
  const bool local = xlat_enabled_ && IsLocal(m);
  if (routes_enabled_ && !local) {
    auto r = RouteForMapping(m, options_.route);
    if (!r.ok()) {
      invalid_.push_back(std::string(r.status().message()));
    } else {
      touched_routes_.insert(r->destination);
      desired_[r->destination] = *std::move(r);
    }
  }
  if (local) {
    auto mode = MappingChecksumMode(m, options_.xlat.csum_mode);
    if (!mode.ok()) {
      invalid_.push_back(std::string(mode.status().message()));
      return;
    }
    ++local_tasks_[m.locator()][{m.sir_prefix(), *mode}];
    touched_locators_.insert(m.locator());
  }
}

void SyncAgent::Forget(const v1::Mapping& m) {
  const bool local = xlat_enabled_ && IsLocal(m);
  if (routes_enabled_ && !local) {
    const SirAddress dst{SirPrefix{m.sir_prefix()}, Identifier{m.identifier()}};
    if (desired_.erase(dst) > 0) touched_routes_.insert(dst);
  }
  if (local) {
    auto mode = MappingChecksumMode(m, options_.xlat.csum_mode);
    if (!mode.ok()) return;  // never counted
    auto loc = local_tasks_.find(m.locator());
    if (loc == local_tasks_.end()) return;
    auto group = loc->second.find({m.sir_prefix(), *mode});
    if (group != loc->second.end() && --group->second <= 0) {
      loc->second.erase(group);
    }
    if (loc->second.empty()) local_tasks_.erase(loc);
    touched_locators_.insert(m.locator());
  }
}

void SyncAgent::RebuildDesiredLocked() {
  // A full reconcile follows: nothing is pending incrementally.
  touched_routes_.clear();
  touched_locators_.clear();
  desired_xlat_.clear();
  for (const auto& [locator, tasks] : local_tasks_) {
    if (auto e =
            XlatForLocator(Locator{locator}, tasks, options_.xlat, &invalid_)) {
      desired_xlat_[locator] = *e;
    }
  }
}

void SyncAgent::OnSnapshot(int64_t revision, const client::Replica& replica) {
  std::vector<std::string> errors;
  // The subscriber set its history before telling us (its thread).
  const uint64_t history = subscriber_->history();
  {
    absl::MutexLock l(&mu_);
    history_ = history;
    mappings_.clear();
    desired_.clear();
    local_tasks_.clear();
    desired_xlat_.clear();
    invalid_.clear();
    for (const auto& [id, m] : replica) {
      mappings_[id] = m;
      Want(m);  // the reconcile below programs it
    }
    RebuildDesiredLocked();
    revision_ = revision;
    have_state_ = true;
    errors = ReconcileLocked();
    errors.insert(errors.end(), invalid_.begin(), invalid_.end());
    invalid_.clear();
    stats_.applied_revision = revision;
    SaveLocked(/*force=*/true);
    ILA_LOG_INFO("snapshot at revision {}: {} routes, {} translation entries",
                 revision, desired_.size(), desired_xlat_.size());
  }
  if (!errors.empty()) subscriber_->Nack(revision, Summary(errors));
}

void SyncAgent::OnChange(int64_t revision, uint64_t identifier,
                         const v1::Mapping* before, const v1::Mapping* after) {
  absl::MutexLock l(&mu_);
  auto it = mappings_.find(identifier);
  if (it != mappings_.end()) Forget(it->second);
  if (after != nullptr) {
    mappings_[identifier] = *after;
    Want(*after);
  } else {
    mappings_.erase(identifier);
  }
}

void SyncAgent::OnApplied(int64_t revision) {
  std::vector<std::string> errors;
  {
    absl::MutexLock l(&mu_);
    errors = ApplyTouchedLocked();
    errors.insert(errors.end(), invalid_.begin(), invalid_.end());
    invalid_.clear();
    revision_ = revision;
    stats_.applied_revision = revision;
    SaveLocked(/*force=*/false);
  }
  // The subscriber acks `revision` after this returns: the kernel has it.
  if (!errors.empty()) subscriber_->Nack(revision, Summary(errors));
}

void SyncAgent::OnDisconnect(const absl::Status& status) {
  ILA_LOG_WARN("stream from ila-server ended: {}; reconnecting",
               status.ToString());
}

std::vector<std::string> SyncAgent::ApplyTouchedLocked() {
  std::vector<std::string> errors;
  RoutePlan routes;
  for (const SirAddress& dst : touched_routes_) {
    auto it = desired_.find(dst);
    if (it != desired_.end()) {
      routes.replace.push_back(it->second);
    } else {
      routes.remove.push_back(dst);
    }
  }
  touched_routes_.clear();
  XlatPlan xlat;
  for (uint64_t locator : touched_locators_) {
    std::optional<IlaXlatEntry> want;
    if (auto t = local_tasks_.find(locator); t != local_tasks_.end()) {
      want =
          XlatForLocator(Locator{locator}, t->second, options_.xlat, &invalid_);
    }
    auto have = desired_xlat_.find(locator);
    const bool had = have != desired_xlat_.end();
    if (had && want && have->second == *want) continue;
    if (had) {
      xlat.remove.push_back(have->second);
      desired_xlat_.erase(have);
    }
    if (want) {
      xlat.add.push_back(*want);
      desired_xlat_[locator] = *want;
    }
  }
  touched_locators_.clear();
  if (!routes.empty()) {
    CountResults(backend_->ApplyRoutes(routes),
                 routes.replace.size() + routes.remove.size(), &errors);
  }
  if (!xlat.empty()) {
    CountResults(backend_->ApplyXlat(xlat),
                 xlat.add.size() + xlat.remove.size(), &errors);
  }
  stats_.failed = static_cast<int64_t>(errors.size());
  return errors;
}

void SyncAgent::CountResults(
    const absl::StatusOr<std::vector<NetlinkResult>>& results,
    size_t operations, std::vector<std::string>* errors) {
  stats_.operations += static_cast<int64_t>(operations);
  const size_t before = errors->size();
  if (!results.ok()) {
    errors->push_back(std::string(results.status().message()));
  } else {
    for (const auto& r : *results) {
      if (!r.status.ok()) errors->push_back(std::string(r.status.message()));
    }
  }
  if (errors->size() > before) {
    std::vector<std::string> mine(errors->begin() + before, errors->end());
    ILA_LOG_WARN("{}; retrying", Summary(mine));
    retry_ = true;
  }
}

std::vector<std::string> SyncAgent::ReconcileLocked() {
  if (!have_state_) return {};
  ++stats_.reconciles;
  std::vector<std::string> errors;
  // Routes in every role: a host without --direct owns none, so stale ones
  // of an earlier --direct run are removed.
  auto kernel = backend_->DumpRoutes();
  if (!kernel.ok()) {
    ILA_LOG_WARN("reading the kernel's routes: {}", kernel.status().message());
    errors.push_back(std::string(kernel.status().message()));
    retry_ = true;
  } else {
    RoutePlan plan = PlanRoutes(desired_, *kernel, options_.route.table,
                                options_.route.protocol);
    if (!plan.empty()) {
      ILA_LOG_INFO(
          "reconcile routes: {} to replace, {} to remove, {} unchanged",
          plan.replace.size(), plan.remove.size(), plan.unchanged);
      CountResults(backend_->ApplyRoutes(plan),
                   plan.replace.size() + plan.remove.size(), &errors);
    }
  }
  if (xlat_enabled_) {
    auto entries = backend_->DumpXlat();
    if (!entries.ok()) {
      ILA_LOG_WARN("reading the kernel's ILA translation entries: {}",
                   entries.status().message());
      errors.push_back(std::string(entries.status().message()));
      retry_ = true;
    } else {
      XlatPlan plan = PlanXlat(desired_xlat_, *entries, options_.locators);
      if (!plan.empty()) {
        ILA_LOG_INFO(
            "reconcile translation entries: {} to remove, {} to add, {} "
            "unchanged",
            plan.remove.size(), plan.add.size(), plan.unchanged);
        CountResults(backend_->ApplyXlat(plan),
                     plan.remove.size() + plan.add.size(), &errors);
      }
    }
  }
  stats_.failed = static_cast<int64_t>(errors.size());
  if (errors.empty()) {
    retry_ = false;
    backoff_ = options_.retry_initial;
  }
  return errors;
}

void SyncAgent::SaveLocked(bool force) {
  if (options_.state_dir.empty() || !have_state_) return;
  if (revision_ == saved_revision_) return;
  const absl::Time now = absl::Now();
  if (!force && now - last_save_ < options_.save_interval) return;
  v1::SubscriberState state;
  state.set_revision(revision_);
  state.set_history(history_);
  *state.mutable_hello() = MakeHello();
  for (const auto& [id, m] : mappings_) *state.add_mappings() = m;
  absl::Status s =
      WriteFileAtomically(absl::StrCat(options_.state_dir, "/", kStateFile),
                          state.SerializeAsString());
  last_save_ = now;
  if (!s.ok()) {
    ILA_LOG_WARN("saving the state: {}", s.message());
    return;
  }
  saved_revision_ = revision_;
}

void SyncAgent::ReconcileLoop() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    // A failure reported while waiting (retry_ set by the stream's thread)
    // restarts the wait with the backoff, not the reconcile interval.
    const bool retrying = retry_;
    const absl::Duration wait = retrying ? backoff_
                                         : std::min(options_.reconcile_interval,
                                                    options_.save_interval);
    auto wake = [this, retrying]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (retry_ && !retrying);
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&wake), wait)) {
      if (stopping_) break;
      continue;  // a new failure: wait the backoff first
    }
    SaveLocked(/*force=*/false);
    const bool due =
        retry_ || absl::Now() - last_reconcile_ >= options_.reconcile_interval;
    if (!due) continue;
    last_reconcile_ = absl::Now();
    std::vector<std::string> errors = ReconcileLocked();
    if (!errors.empty() && retrying) {
      backoff_ = std::min(backoff_ * 2, options_.retry_max);
    }
  }
}

}  // namespace ila::router_sync
