#include "server/trace_service.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/address.h"
#include "common/logging.h"
#include "ila/v1/trace_hop.h"
#include "server/mapping_service.h"
#include "trace/rewrite.h"

namespace ila::server {
namespace {

std::atomic<int> active_traces{0};

trace::Ipv6Bytes ToBytes(const SirAddress& a) {
  in6_addr in = ToIn6Addr(a.prefix.value, a.identifier.value);
  trace::Ipv6Bytes out;
  std::memcpy(out.data(), &in, 16);
  return out;
}

}  // namespace

absl::Status TraceSession::Prepare(const v1::TraceRequest& r) {
  request_ = r;
  auto range = [](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v == 0 || (v >= lo && v <= hi)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", v, " is out of range (", lo, "..", hi, ", or 0)"));
  };
  for (const absl::Status& s :
       {range("max_hops", r.max_hops(), 1, 64),
        range("queries", r.queries(), 1, 10), range("port", r.port(), 1, 65535),
        range("wait_ms", r.wait_ms(), 100, 10000)}) {
    if (!s.ok()) return s;
  }
  switch (r.protocol()) {
    case v1::PROBE_PROTOCOL_UNSPECIFIED:
    case v1::PROBE_PROTOCOL_UDP:
      options_.protocol = trace::ProbeProtocol::kUdp;
      break;
    case v1::PROBE_PROTOCOL_ICMP:
      options_.protocol = trace::ProbeProtocol::kIcmp;
      break;
    case v1::PROBE_PROTOCOL_TCP:
      options_.protocol = trace::ProbeProtocol::kTcp;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("protocol: unknown value ", r.protocol()));
  }
  if (r.max_hops() != 0) options_.max_hops = r.max_hops();
  if (r.queries() != 0) options_.queries = r.queries();
  options_.port = static_cast<uint16_t>(r.port());
  if (r.wait_ms() != 0) options_.wait = absl::Milliseconds(r.wait_ms());

  // The target: an IPv6 address (a task's SIR address or any), else an
  // identifier, else a task name.
  const std::string& t = r.target();
  if (t.empty()) return absl::InvalidArgumentError("target: empty");
  in6_addr addr;
  if (inet_pton(AF_INET6, t.c_str(), &addr) == 1) {
    std::memcpy(options_.destination.data(), &addr, 16);
    const SirAddress a = FromIn6Addr(addr);
    auto m = store_->LookupIdentifier(a.identifier);
    if (m.ok() && m->mapping.sir_prefix == a.prefix) task_ = m->mapping.task;
  } else {
    absl::StatusOr<storage::LookupResult> m;
    if (auto id = ParseIdentifier(t); id.ok()) {
      m = store_->LookupIdentifier(*id);
    } else if (ValidateTaskName(t).ok()) {
      m = store_->LookupTask(t);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "target: \"", t,
          "\" is neither an IPv6 address, an identifier nor a task name"));
    }
    if (!m.ok()) {
      return absl::Status(m.status().code(),
                          absl::StrCat("target: ", m.status().message()));
    }
    task_ = m->mapping.task;
    options_.destination =
        ToBytes({m->mapping.sir_prefix, m->mapping.identifier});
  }
  // Which host agent announced which locator (their stream filters).
  const v1::ListSubscribersResponse subscribers = hub_->ListSubscribers();
  for (const auto& s : subscribers.subscribers()) {
    if (s.role() != v1::NODE_ROLE_HOST) continue;
    for (const std::string& text : s.filter().locators()) {
      auto l = ParseLocator(text);
      if (!l.ok()) continue;
      std::string& host = hosts_[l->value];
      if (host.find(s.node()) == std::string::npos) {
        host = host.empty() ? s.node() : absl::StrCat(host, ",", s.node());
      }
    }
  }
  return absl::OkStatus();
}

v1::IlaRewrite TraceSession::Explain(const trace::Ipv6Bytes& quoted) {
  if (auto it = explained_.find(quoted); it != explained_.end()) {
    return it->second;
  }
  v1::IlaRewrite rw;
  rw.set_translated(true);
  const Locator locator{trace::High64(quoted)};
  const SirPrefix prefix{trace::High64(options_.destination)};
  rw.set_locator(FormatLocator(locator));
  if (auto h = hosts_.find(locator.value); h != hosts_.end()) {
    rw.set_host(h->second);
  }
  const auto candidates = trace::UndoChecksumNeutral(
      locator, Identifier{trace::Low64(quoted)}, prefix);
  rw.set_identifier(FormatIdentifier(candidates.front()));
  for (const Identifier& id : candidates) {
    auto m = store_->LookupIdentifier(id);
    if (!m.ok() || m->mapping.sir_prefix != prefix) continue;
    rw.set_identifier(FormatIdentifier(id));
    rw.set_task(m->mapping.task);
    if (m->mapping.locator != locator) {
      rw.set_stale(true);
      rw.set_expected_locator(FormatLocator(m->mapping.locator));
    }
    break;
  }
  explained_[quoted] = rw;
  return rw;
}

v1::ProbeEvent TraceSession::Annotate(const trace::ProbeResult& r) {
  v1::ProbeEvent e;
  e.set_ttl(r.ttl);
  e.set_query(r.query);
  if (r.from) {
    e.set_address(trace::FormatAddress(*r.from));
    e.set_rtt_ms(absl::ToDoubleMilliseconds(r.rtt));
  }
  e.set_icmp_type(r.icmp_type);
  e.set_icmp_code(r.icmp_code);
  e.set_reached(r.reached);
  if (r.quoted) {
    e.set_quoted_destination(trace::FormatAddress(r.quoted->destination));
    if (r.quoted->destination != options_.destination) {
      *e.mutable_ila() = Explain(r.quoted->destination);
    }
  }
  events_[r.ttl].push_back(e);
  return e;
}

v1::TraceSummary TraceSession::Summary() const {
  v1::TraceSummary s;
  s.set_target(request_.target());
  s.set_destination(trace::FormatAddress(options_.destination));
  s.set_protocol(request_.protocol() == v1::PROBE_PROTOCOL_UNSPECIFIED
                     ? v1::PROBE_PROTOCOL_UDP
                     : request_.protocol());
  s.set_task(task_);
  s.set_limitations(limitations_);
  int last = options_.max_hops;
  for (const auto& [ttl, events] : events_) {
    for (const auto& e : events) {
      if (e.reached()) last = std::min(last, ttl);
    }
  }
  for (int ttl = options_.first_hop; ttl <= last; ++ttl) {
    v1::TraceHop* hop = s.add_hops();
    hop->set_ttl(ttl);
    auto it = events_.find(ttl);
    if (it == events_.end()) continue;
    for (const v1::ProbeEvent& e : it->second) AddProbeToHop(e, hop);
    if (hop->reached()) s.set_reached(true);
  }
  return s;
}

namespace {

class TraceReactor final : public grpc::ServerWriteReactor<v1::TraceEvent> {
 public:
  TraceReactor(std::unique_ptr<TraceSession> session,
               std::unique_ptr<trace::Prober> prober)
      : session_(std::move(session)), prober_(std::move(prober)) {
    thread_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!ok) cancel_ = true;  // the client is gone: stop probing
    MaybeWriteLocked();
  }
  void OnCancel() override { cancel_ = true; }
  void OnDone() override {
    cancel_ = true;
    thread_.join();  // already finished: Finish comes from it
    active_traces.fetch_sub(1);
    delete this;
  }

 private:
  void Run() {
    const absl::Time start = absl::Now();
    absl::Status s = prober_->Run(
        session_->options(),
        [this](const trace::ProbeResult& r) {
          v1::TraceEvent e;
          *e.mutable_probe() = session_->Annotate(r);
          Push(std::move(e));
        },
        &cancel_);
    if (s.ok()) {
      v1::TraceEvent e;
      *e.mutable_summary() = session_->Summary();
      ILA_LOG_INFO("trace to {}: {} hops, {}, probing took {:.1f} ms",
                   e.summary().target(), e.summary().hops_size(),
                   e.summary().reached() ? "reached" : "not reached",
                   absl::ToDoubleMilliseconds(absl::Now() - start));
      Push(std::move(e));
    }
    absl::MutexLock l(&mu_);
    status_ = s;
    done_ = true;
    MaybeWriteLocked();
  }
  void Push(v1::TraceEvent e) {
    absl::MutexLock l(&mu_);
    queue_.push_back(std::move(e));
    MaybeWriteLocked();
  }
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty() && !cancel_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (done_) {
      finished_ = true;
      Finish(ToGrpcStatus(status_));
    }
  }

  std::unique_ptr<TraceSession> session_;
  std::unique_ptr<trace::Prober> prober_;
  std::atomic<bool> cancel_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<v1::TraceEvent> queue_ ABSL_GUARDED_BY(mu_);
  v1::TraceEvent current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

class FailedReactor final : public grpc::ServerWriteReactor<v1::TraceEvent> {
 public:
  explicit FailedReactor(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::TraceEvent>* StartTrace(
    grpc::CallbackServerContext* ctx, const v1::TraceRequest* request,
    storage::MappingStore* store, StreamHub* hub, absl::Status refused) {
  if (!refused.ok()) return new FailedReactor(refused);
  auto session = std::make_unique<TraceSession>(store, hub);
  if (absl::Status s = session->Prepare(*request); !s.ok()) {
    return new FailedReactor(s);
  }
  if (active_traces.fetch_add(1) >= kMaxConcurrentTraces) {
    active_traces.fetch_sub(1);
    return new FailedReactor(absl::ResourceExhaustedError(absl::StrCat(
        "trace: ", kMaxConcurrentTraces, " traces are running; try again")));
  }
  auto prober = trace::Prober::Open();
  if (prober.ok()) session->set_limitations((*prober)->Limitations());
  if (!prober.ok()) {
    active_traces.fetch_sub(1);
    return new FailedReactor(absl::FailedPreconditionError(absl::StrCat(
        "trace: ila-server cannot probe: ", prober.status().message())));
  }
  ILA_LOG_INFO("trace to {} ({}) for {}", request->target(),
               trace::FormatAddress(session->options().destination),
               ctx->peer());
  return new TraceReactor(std::move(session), *std::move(prober));
}

}  // namespace ila::server
