#include "router-sync/agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "ila/v1/mapping.pb.h"

namespace ila::router_sync {
namespace {

constexpr char kStateFile[] = "state.pb";

class KernelBackend final : public RouteBackend {
 public:
  KernelBackend(std::unique_ptr<RtNetlink> nl, uint32_t table, uint8_t protocol)
      : nl_(std::move(nl)), table_(table), protocol_(protocol) {}
  absl::StatusOr<std::vector<IlaRoute>> Dump() override {
    return nl_->DumpRoutes(table_, protocol_);
  }
  absl::StatusOr<std::vector<RtNetlink::Result>> Apply(
      const RoutePlan& plan) override {
    return nl_->Apply(plan, table_, protocol_);
  }

 private:
  std::unique_ptr<RtNetlink> nl_;
  const uint32_t table_;
  const uint8_t protocol_;
};

class DryRunBackend final : public RouteBackend {
 public:
  DryRunBackend(std::ostream* out, uint32_t table, uint8_t protocol)
      : out_(out), table_(table), protocol_(protocol) {}
  absl::StatusOr<std::vector<IlaRoute>> Dump() override {
    std::vector<IlaRoute> out;
    for (const auto& [d, r] : routes_) out.push_back(r);
    return out;
  }
  absl::StatusOr<std::vector<RtNetlink::Result>> Apply(
      const RoutePlan& plan) override {
    std::vector<RtNetlink::Result> results;
    for (const IlaRoute& r : plan.replace) {
      results.push_back({RouteReplaceCommand(r), absl::OkStatus()});
      routes_[r.destination] = r;
    }
    for (const SirAddress& d : plan.remove) {
      results.push_back(
          {RouteDeleteCommand(d, table_, protocol_), absl::OkStatus()});
      routes_.erase(d);
    }
    for (const auto& r : results) *out_ << r.operation << "\n";
    out_->flush();
    return results;
  }

 private:
  std::ostream* out_;
  const uint32_t table_;
  const uint8_t protocol_;
  DesiredRoutes routes_;
};

// Writes `data` to dir/name atomically: a temporary file, fsync, rename,
// fsync of the directory.
absl::Status WriteFileAtomically(const std::string& dir,
                                 const std::string& name,
                                 const std::string& data) {
  const std::string path = absl::StrCat(dir, "/", name);
  const std::string tmp = path + ".tmp";
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("creating ", tmp, ": ", strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(
          absl::StrCat("writing ", tmp, ": ", strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    return absl::UnavailableError(
        absl::StrCat("syncing ", tmp, ": ", strerror(errno)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("renaming ", tmp, " to ", path, ": ", strerror(errno)));
  }
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

std::string Summary(const std::vector<std::string>& errors) {
  std::string out =
      absl::StrCat(errors.size(), " route(s) not applied; ", errors.front());
  if (errors.size() > 1) absl::StrAppend(&out, " (and more)");
  return out;
}

}  // namespace

std::unique_ptr<RouteBackend> MakeKernelBackend(std::unique_ptr<RtNetlink> nl,
                                                uint32_t table,
                                                uint8_t protocol) {
  return std::make_unique<KernelBackend>(std::move(nl), table, protocol);
}

std::unique_ptr<RouteBackend> MakeDryRunBackend(std::ostream* out,
                                                uint32_t table,
                                                uint8_t protocol) {
  return std::make_unique<DryRunBackend>(out, table, protocol);
}

RouterAgent::RouterAgent(AgentOptions options,
                         std::unique_ptr<RouteBackend> backend)
    : options_(std::move(options)), backend_(std::move(backend)) {
  absl::MutexLock l(&mu_);
  backoff_ = options_.retry_initial;
}

RouterAgent::~RouterAgent() { Stop(); }

absl::Status RouterAgent::LoadState() {
  if (options_.state_dir.empty()) return absl::OkStatus();
  const std::string path = absl::StrCat(options_.state_dir, "/", kStateFile);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // first start
  std::stringstream buf;
  buf << in.rdbuf();
  v1::ListResponse state;
  if (!state.ParseFromString(buf.str()) || state.revision() <= 0) {
    return absl::DataLossError(absl::StrCat(path, " is not a saved state (",
                                            buf.str().size(), " bytes)"));
  }
  absl::MutexLock l(&mu_);
  for (const auto& m : state.mappings()) {
    mappings_[m.identifier()] = m;
    auto r = RouteForMapping(m, options_.route);
    if (r.ok()) desired_[r->destination] = *r;
  }
  revision_ = saved_revision_ = state.revision();
  have_state_ = true;
  stats_.applied_revision = revision_;
  ILA_LOG_INFO("loaded {} mappings at revision {} from {}", mappings_.size(),
               revision_, path);
  return absl::OkStatus();
}

absl::Status RouterAgent::Start() {
  absl::Status loaded = LoadState();
  if (!loaded.ok()) {
    ILA_LOG_WARN("{}; starting from a snapshot", loaded.message());
  }
  client::SubscriberOptions so;
  so.servers = options_.servers;
  so.node = options_.name;
  so.role = v1::NODE_ROLE_ROUTER;
  if (options_.shard_count > 0) {
    so.filter.set_shard_index(options_.shard_index);
    so.filter.set_shard_count(options_.shard_count);
  }
  {
    absl::MutexLock l(&mu_);
    if (have_state_) {
      // The saved state is complete: make the kernel match it now.
      std::vector<std::string> errors = ReconcileLocked();
      if (!errors.empty()) ILA_LOG_WARN("{}", Summary(errors));
    }
    so.resume_revision = revision_;
  }
  subscriber_ = std::make_unique<client::StreamSubscriber>(so, this);
  subscriber_->Start();
  reconciler_ = std::thread([this] { ReconcileLoop(); });
  return absl::OkStatus();
}

void RouterAgent::Stop() {
  if (subscriber_ != nullptr) subscriber_->Stop();
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (reconciler_.joinable()) reconciler_.join();
  absl::MutexLock l(&mu_);
  SaveLocked(/*force=*/true);
}

AgentStats RouterAgent::stats() {
  absl::MutexLock l(&mu_);
  AgentStats s = stats_;
  s.routes = static_cast<int64_t>(desired_.size());
  return s;
}

const IlaRoute* RouterAgent::Want(const v1::Mapping& m) {
  auto r = RouteForMapping(m, options_.route);
  if (!r.ok()) {
    invalid_.push_back(std::string(r.status().message()));
    return nullptr;
  }
  IlaRoute& route = desired_[r->destination];
  route = *std::move(r);
  return &route;
}

void RouterAgent::Unwant(uint64_t identifier) {
  auto it = mappings_.find(identifier);
  if (it == mappings_.end()) return;
  const SirAddress dst{SirPrefix{it->second.sir_prefix()},
                       Identifier{identifier}};
  if (desired_.erase(dst) > 0) pending_.remove.push_back(dst);
}

void RouterAgent::OnSnapshot(int64_t revision, const client::Replica& replica) {
  std::vector<std::string> errors;
  {
    absl::MutexLock l(&mu_);
    mappings_.clear();
    desired_.clear();
    invalid_.clear();
    for (const auto& [id, m] : replica) {
      mappings_[id] = m;
      Want(m);  // the reconcile below programs it
    }
    pending_ = {};
    revision_ = revision;
    have_state_ = true;
    errors = ReconcileLocked();
    errors.insert(errors.end(), invalid_.begin(), invalid_.end());
    invalid_.clear();
    stats_.applied_revision = revision;
    SaveLocked(/*force=*/true);
    ILA_LOG_INFO("snapshot at revision {}: {} routes", revision,
                 desired_.size());
  }
  if (!errors.empty()) subscriber_->Nack(revision, Summary(errors));
}

void RouterAgent::OnChange(int64_t revision, uint64_t identifier,
                           const v1::Mapping* before,
                           const v1::Mapping* after) {
  absl::MutexLock l(&mu_);
  auto it = mappings_.find(identifier);
  if (it != mappings_.end() &&
      (after == nullptr || it->second.sir_prefix() != after->sir_prefix())) {
    Unwant(identifier);
  }
  if (after != nullptr) {
    mappings_[identifier] = *after;
    if (const IlaRoute* r = Want(*after)) pending_.replace.push_back(*r);
  } else {
    mappings_.erase(identifier);
  }
}

void RouterAgent::OnApplied(int64_t revision) {
  std::vector<std::string> errors;
  {
    absl::MutexLock l(&mu_);
    if (!pending_.empty()) errors = ApplyLocked(pending_);
    pending_ = {};
    errors.insert(errors.end(), invalid_.begin(), invalid_.end());
    invalid_.clear();
    revision_ = revision;
    stats_.applied_revision = revision;
    SaveLocked(/*force=*/false);
  }
  // The subscriber acks `revision` after this returns: the kernel has it.
  if (!errors.empty()) subscriber_->Nack(revision, Summary(errors));
}

void RouterAgent::OnDisconnect(const absl::Status& status) {
  ILA_LOG_WARN("stream from ila-server ended: {}; reconnecting",
               status.ToString());
}

std::vector<std::string> RouterAgent::ApplyLocked(const RoutePlan& plan) {
  std::vector<std::string> errors;
  auto results = backend_->Apply(plan);
  stats_.routes_written +=
      static_cast<int64_t>(plan.replace.size() + plan.remove.size());
  if (!results.ok()) {
    errors.push_back(std::string(results.status().message()));
  } else {
    for (const auto& r : *results) {
      if (!r.status.ok()) errors.push_back(std::string(r.status.message()));
    }
  }
  stats_.failed_routes = static_cast<int64_t>(errors.size());
  if (!errors.empty()) {
    ILA_LOG_WARN("{}; retrying", Summary(errors));
    retry_ = true;
  }
  return errors;
}

std::vector<std::string> RouterAgent::ReconcileLocked() {
  if (!have_state_) return {};
  ++stats_.reconciles;
  auto kernel = backend_->Dump();
  if (!kernel.ok()) {
    retry_ = true;
    ILA_LOG_WARN("reading the kernel's routes: {}", kernel.status().message());
    return {std::string(kernel.status().message())};
  }
  RoutePlan plan = PlanRoutes(desired_, *kernel, options_.route.table,
                              options_.route.protocol);
  if (!plan.empty()) {
    ILA_LOG_INFO("reconcile: {} to replace, {} to remove, {} unchanged",
                 plan.replace.size(), plan.remove.size(), plan.unchanged);
  }
  std::vector<std::string> errors =
      plan.empty() ? std::vector<std::string>{} : ApplyLocked(plan);
  if (errors.empty()) {
    retry_ = false;
    backoff_ = options_.retry_initial;
    stats_.failed_routes = 0;
  }
  return errors;
}

void RouterAgent::SaveLocked(bool force) {
  if (options_.state_dir.empty() || !have_state_) return;
  if (revision_ == saved_revision_) return;
  const absl::Time now = absl::Now();
  if (!force && now - last_save_ < options_.save_interval) return;
  v1::ListResponse state;
  state.set_revision(revision_);
  for (const auto& [id, m] : mappings_) *state.add_mappings() = m;
  absl::Status s = WriteFileAtomically(options_.state_dir, kStateFile,
                                       state.SerializeAsString());
  last_save_ = now;
  if (!s.ok()) {
    ILA_LOG_WARN("saving the state: {}", s.message());
    return;
  }
  saved_revision_ = revision_;
}

void RouterAgent::ReconcileLoop() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    const absl::Duration wait =
        retry_ ? backoff_
               : std::min(options_.reconcile_interval, options_.save_interval);
    auto stop = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), wait)) break;
    SaveLocked(/*force=*/false);
    const bool due =
        retry_ || absl::Now() - last_reconcile_ >= options_.reconcile_interval;
    if (!due) continue;
    last_reconcile_ = absl::Now();
    const bool retrying = retry_;
    std::vector<std::string> errors = ReconcileLocked();
    if (!errors.empty() && retrying) {
      backoff_ = std::min(backoff_ * 2, options_.retry_max);
    }
  }
}

}  // namespace ila::router_sync
