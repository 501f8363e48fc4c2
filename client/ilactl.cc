// ilactl: the operator CLI of the ILA control plane.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/format.h"
#include "client/ila_client.h"
#include "client/subscriber.h"
#include "common/address.h"
#include "common/runtime.h"
#include "common/version.h"
#include "ila/v1/backup.h"
#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "ila/v1/trace_hop.h"

namespace ila::client {
namespace {

struct Globals {
  std::string server;
  TlsFiles tls;
  std::shared_ptr<grpc::Channel> channel;
  std::string output = "table";
  double timeout_s = 10;
  bool json() const { return output == "json"; }
};

// A client context with the command's deadline.
std::unique_ptr<grpc::ClientContext> Context(const Globals& g) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(g.timeout_s * 1000)));
  return ctx;
}

// Prints an RPC failure to stderr; returns the exit code (1).
int Fail(const Globals& g, const grpc::Status& s) {
  absl::Status st = FromGrpc(s);
  std::string code(absl::StatusCodeToString(st.code()));
  if (st.code() == absl::StatusCode::kUnavailable ||
      st.code() == absl::StatusCode::kDeadlineExceeded) {
    std::cerr << "ilactl: " << code << ": cannot reach ila-server at "
              << g.server << ": " << st.message() << "\n";
  } else {
    std::cerr << "ilactl: " << code << ": " << st.message() << "\n";
  }
  return 1;
}

int Usage(const std::string& message) {
  std::cerr << "ilactl: " << message << "\n";
  return 2;
}

void PrintMappings(const Globals& g, const std::vector<v1::Mapping>& ms) {
  if (g.json()) {
    for (const auto& m : ms) std::cout << MappingJson(m) << "\n";
  } else {
    std::cout << MappingTable(ms);
  }
}

struct RegisterArgs {
  std::string task, locator, identifier, sir_prefix, csum_mode;
};

int DoRegister(const Globals& g, v1::MappingService::Stub& stub,
               const RegisterArgs& a) {
  v1::RegisterTaskRequest req;
  req.set_task(a.task);
  req.set_locator(a.locator);
  req.set_identifier(a.identifier);
  req.set_sir_prefix(a.sir_prefix);
  if (!a.csum_mode.empty()) {
    auto mode = ParseChecksumMode(a.csum_mode);
    if (!mode.ok())
      return Usage(absl::StrCat("--csum-mode: ", mode.status().message()));
    static constexpr v1::ChecksumMode kModes[] = {
        v1::CHECKSUM_MODE_ADJ_TRANSPORT, v1::CHECKSUM_MODE_NEUTRAL_MAP,
        v1::CHECKSUM_MODE_NO_ACTION, v1::CHECKSUM_MODE_NEUTRAL_MAP_AUTO};
    req.set_checksum_mode(kModes[static_cast<int>(*mode)]);
  }
  v1::RegisterTaskResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub.RegisterTask(ctx.get(), req, &resp);
  if (!s.ok()) return Fail(g, s);
  if (g.json()) {
    std::cout << MappingJson(resp.mapping(),
                             absl::StrCat(",\"revision\":", resp.revision(),
                                          ",\"created\":",
                                          resp.created() ? "true" : "false"))
              << "\n";
  } else {
    std::cout << (resp.created() ? "registered " : "already registered ")
              << a.task << ": identifier "
              << FormatGroups(resp.mapping().identifier()) << ", SIR address "
              << resp.sir_address() << ", locator "
              << FormatGroups(resp.mapping().locator()) << " (revision "
              << resp.revision() << ")\n";
  }
  return 0;
}

int DoMove(const Globals& g, v1::MappingService::Stub& stub,
           const std::string& task, const std::string& locator,
           int64_t expect) {
  v1::MoveTaskRequest req;
  req.set_task(task);
  req.set_locator(locator);
  if (expect != 0) req.set_expected_mod_revision(expect);
  v1::MoveTaskResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub.MoveTask(ctx.get(), req, &resp);
  if (!s.ok()) return Fail(g, s);
  if (g.json()) {
    std::cout << MappingJson(resp.mapping(),
                             absl::StrCat(",\"revision\":", resp.revision(),
                                          ",\"changed\":",
                                          resp.changed() ? "true" : "false"))
              << "\n";
  } else if (resp.changed()) {
    std::cout << "moved " << task << " from locator "
              << FormatGroups(resp.previous_locator()) << " to "
              << FormatGroups(resp.mapping().locator()) << " (revision "
              << resp.revision() << ")\n";
  } else {
    std::cout << task << " already at locator "
              << FormatGroups(resp.mapping().locator()) << " (revision "
              << resp.revision() << ")\n";
  }
  return 0;
}

int DoRemove(const Globals& g, v1::MappingService::Stub& stub,
             const std::string& task, int64_t expect) {
  v1::UnregisterTaskRequest req;
  req.set_task(task);
  if (expect != 0) req.set_expected_mod_revision(expect);
  v1::UnregisterTaskResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub.UnregisterTask(ctx.get(), req, &resp);
  if (!s.ok()) return Fail(g, s);
  if (g.json()) {
    std::cout << MappingJson(resp.mapping(),
                             absl::StrCat(",\"revision\":", resp.revision()))
              << "\n";
  } else {
    std::cout << "unregistered " << task << " (identifier "
              << FormatGroups(resp.mapping().identifier()) << ", revision "
              << resp.revision() << ")\n";
  }
  return 0;
}

int DoGet(const Globals& g, v1::MappingService::Stub& stub,
          const std::string& key, const std::string& by) {
  v1::LookupRequest req;
  KeyKind kind = ClassifyKey(key);
  if (by == "task") kind = KeyKind::kTask;
  if (by == "identifier") kind = KeyKind::kIdentifier;
  if (by == "address") kind = KeyKind::kSirAddress;
  switch (kind) {
    case KeyKind::kTask:
      req.set_task(key);
      break;
    case KeyKind::kIdentifier:
      req.set_identifier(key);
      break;
    case KeyKind::kSirAddress:
      req.set_sir_address(key);
      break;
  }
  v1::LookupResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub.Lookup(ctx.get(), req, &resp);
  if (!s.ok()) return Fail(g, s);
  PrintMappings(g, {resp.mapping()});
  return 0;
}

int DoList(const Globals& g, v1::MappingService::Stub& stub,
           const std::string& locator, const std::string& sir_prefix,
           int page_size) {
  v1::ListRequest req;
  req.set_locator(locator);
  req.set_sir_prefix(sir_prefix);
  req.set_page_size(page_size);
  std::vector<v1::Mapping> all;
  for (;;) {
    v1::ListResponse resp;
    auto ctx = Context(g);
    grpc::Status s = stub.List(ctx.get(), req, &resp);
    if (!s.ok()) return Fail(g, s);
    if (g.json()) {
      // Stream JSON lines page by page: constant memory for any table size.
      for (const auto& m : resp.mappings()) std::cout << MappingJson(m) << "\n";
    } else {
      all.insert(all.end(), resp.mappings().begin(), resp.mappings().end());
    }
    if (resp.next_page_token().empty()) {
      if (!g.json()) {
        std::cout << MappingTable(all);
        std::cout << all.size() << (all.size() == 1 ? " mapping" : " mappings")
                  << " at revision " << resp.revision() << "\n";
      }
      break;
    }
    req.set_page_token(resp.next_page_token());
  }
  return 0;
}

int DoStatus(const Globals& g, v1::MappingService::Stub& stub) {
  v1::StatusResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub.Status(ctx.get(), v1::StatusRequest(), &resp);
  if (!s.ok()) return Fail(g, s);
  std::cout << (g.json() ? StatusJson(resp) + "\n" : StatusText(resp));
  return 0;
}

int DoSubscribers(const Globals& g) {
  auto stub = v1::Diagnostics::NewStub(g.channel);
  v1::ListSubscribersResponse resp;
  auto ctx = Context(g);
  grpc::Status s = stub->ListSubscribers(ctx.get(), {}, &resp);
  if (!s.ok()) return Fail(g, s);
  if (g.json()) {
    for (const auto& sub : resp.subscribers()) {
      std::cout << SubscriberJson(sub, resp.revision()) << "\n";
    }
  } else {
    std::cout << SubscribersTable(resp, absl::Now());
  }
  return 0;
}

struct TraceArgs {
  std::string target;
  std::string proto = "udp";
  int max_hops = 30;
  int queries = 3;
  int port = 0;
  int wait_ms = 2000;
};

// Prints the hops as their probes finish, in order (like traceroute), then
// whatever the summary adds; with -o json, the summary as one object.
int DoTrace(const Globals& g, const TraceArgs& a) {
  auto channel = g.channel;
  // Connect first, so that the time printed at the end is the trace's.
  channel->WaitForConnected(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(g.timeout_s * 1000)));
  auto stub = v1::Diagnostics::NewStub(channel);
  v1::TraceRequest req;
  req.set_target(a.target);
  req.set_protocol(a.proto == "icmp"  ? v1::PROBE_PROTOCOL_ICMP
                   : a.proto == "tcp" ? v1::PROBE_PROTOCOL_TCP
                                      : v1::PROBE_PROTOCOL_UDP);
  req.set_max_hops(a.max_hops);
  req.set_queries(a.queries);
  req.set_port(static_cast<uint32_t>(a.port));
  req.set_wait_ms(a.wait_ms);
  grpc::ClientContext ctx;
  // Bounded: every probe waits at most wait_ms, and some run in parallel.
  const double bound_s =
      g.timeout_s + a.max_hops * a.queries * (a.wait_ms / 1000.0);
  ctx.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(bound_s * 1000)));
  const absl::Time started = absl::Now();
  auto reader = stub->Trace(&ctx, req);
  std::map<int, v1::TraceHop> hops;
  std::map<int, int> finished;
  int next = 1;
  bool header = false, done = false;
  v1::TraceEvent event;
  while (reader->Read(&event)) {
    if (event.has_probe()) {
      const v1::ProbeEvent& p = event.probe();
      if (!header && !g.json()) {
        std::cout << "trace to " << a.target << ", " << a.proto << ", "
                  << a.max_hops << " hops max\n";
        header = true;
      }
      AddProbeToHop(p, &hops[p.ttl()]);
      ++finished[p.ttl()];
      while (!g.json() && !done && finished[next] == a.queries) {
        std::cout << TraceHopLine(hops[next], a.queries) << std::endl;
        done = hops[next].reached();
        ++next;
      }
    } else if (event.has_summary()) {
      const v1::TraceSummary& s = event.summary();
      if (g.json()) {
        std::cout << TraceJson(s) << std::endl;
        continue;
      }
      for (const v1::TraceHop& h : s.hops()) {
        if (h.ttl() >= next) std::cout << TraceHopLine(h, a.queries) << "\n";
      }
      if (!s.limitations().empty()) {
        std::cout << "note: " << s.limitations() << "\n";
      }
      std::cout << (s.reached() ? "reached " : "did not reach ")
                << s.destination()
                << (s.task().empty() ? "" : " (task " + s.task() + ")")
                << " in "
                << absl::StrFormat("%.0f ms", absl::ToDoubleMilliseconds(
                                                  absl::Now() - started))
                << std::endl;
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return Fail(g, st);
  return 0;
}

// Prints the stream as it arrives, one line (or JSON object) per change,
// flushed at once.
class WatchPrinter : public SubscriberListener {
 public:
  WatchPrinter(bool json, int64_t max_changes)
      : json_(json), max_changes_(max_changes) {}

  void OnSnapshot(int64_t revision, const Replica& replica) override {
    if (json_) {
      std::cout << "{\"type\":\"snapshot\",\"revision\":" << revision
                << ",\"mappings\":" << replica.size() << "}" << std::endl;
    } else {
      std::cout << "snapshot at revision " << revision << ": " << replica.size()
                << " mappings" << std::endl;
    }
  }

  void OnChange(int64_t revision, uint64_t identifier,
                const v1::Mapping* before, const v1::Mapping* after) override {
    if (Done()) return;
    if (json_) {
      if (after != nullptr) {
        std::cout << MappingJson(*after,
                                 absl::StrCat(",\"revision\":", revision,
                                              ",\"type\":\"upsert\""))
                  << std::endl;
      } else {
        std::cout << "{\"revision\":" << revision
                  << ",\"type\":\"delete\",\"identifier\":"
                  << JsonQuote(FormatGroups(identifier)) << ",\"task\":"
                  << (before ? JsonQuote(before->task()) : "null") << "}"
                  << std::endl;
      }
    } else if (after != nullptr) {
      std::cout << "revision " << revision << "  upsert  " << after->task()
                << "  " << FormatGroups(identifier) << " -> locator "
                << FormatGroups(after->locator()) << std::endl;
    } else {
      std::cout << "revision " << revision << "  delete  "
                << (before ? before->task() : "?") << "  "
                << FormatGroups(identifier) << std::endl;
    }
    absl::MutexLock l(&mu_);
    ++changes_;
  }

  void OnDisconnect(const absl::Status& status) override {
    std::cerr << "ilactl: watch: stream ended (" << status << "); reconnecting"
              << std::endl;
  }

  bool Done() {
    absl::MutexLock l(&mu_);
    return max_changes_ > 0 && changes_ >= max_changes_;
  }
  // Waits until max_changes were printed or `stop` turns true.
  void Wait(const bool* stop) {
    absl::MutexLock l(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return *stop || (max_changes_ > 0 && changes_ >= max_changes_);
    };
    mu_.Await(absl::Condition(&done));
  }
  absl::Mutex* mu() { return &mu_; }

 private:
  const bool json_;
  const int64_t max_changes_;
  absl::Mutex mu_;
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
};

struct WatchArgs {
  int64_t from_revision = 0;
  std::vector<std::string> locators;
  std::string sir_prefix;
  int64_t count = 0;
  std::string node;
};

// A backup is the stream's snapshot: one consistent revision, read as an
// observer, checked (begin and end revisions, count), then written whole.
int DoSnapshotSave(const Globals& g, const std::string& file) {
  char host[256] = "ilactl";
  gethostname(host, sizeof(host) - 1);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(
                       std::max(g.timeout_s, 600.0) * 1000)));
  auto stream = v1::MappingStream::NewStub(g.channel)->Subscribe(&ctx);
  v1::SubscribeRequest hello;
  hello.mutable_hello()->set_node(absl::StrCat("ilactl-backup@", host));
  hello.mutable_hello()->set_role(v1::NODE_ROLE_OBSERVER);
  stream->Write(hello);
  v1::Backup backup;
  bool begun = false, ended = false;
  v1::SubscribeResponse resp;
  while (!ended && stream->Read(&resp)) {
    if (resp.has_snapshot_begin()) {
      begun = true;
      backup.revision = resp.snapshot_begin().revision();
      backup.mappings.clear();
    } else if (resp.has_snapshot_chunk() && begun) {
      for (auto& m : *resp.mutable_snapshot_chunk()->mutable_mappings()) {
        backup.mappings.push_back(std::move(m));
      }
    } else if (resp.has_snapshot_end() && begun) {
      if (resp.snapshot_end().revision() != backup.revision ||
          resp.snapshot_end().mapping_count() !=
              static_cast<int64_t>(backup.mappings.size())) {
        std::cerr << "ilactl: the server's snapshot was inconsistent (end "
                  << resp.snapshot_end().ShortDebugString() << " after "
                  << backup.mappings.size() << " mappings at revision "
                  << backup.revision << "); nothing written\n";
        return 1;
      }
      ended = true;
    }
  }
  ctx.TryCancel();
  grpc::Status s = stream->Finish();
  if (!ended) {
    if (s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) {
      std::cerr << "ilactl: the stream ended before the snapshot did; "
                   "nothing written\n";
      return 1;
    }
    return Fail(g, s);
  }
  if (absl::Status w = v1::WriteBackup(file, backup); !w.ok()) {
    std::cerr << "ilactl: " << w.message() << "\n";
    return 1;
  }
  std::cout << "saved " << backup.mappings.size() << " mappings at revision "
            << backup.revision << " to " << file << "\n";
  return 0;
}

int DoWatch(const Globals& g, const WatchArgs& a) {
  // SIGINT/SIGTERM end the watch: taken by a thread with sigwait().
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  for (const auto& l : a.locators) {
    if (auto parsed = ParseLocator(l); !parsed.ok()) {
      return Usage(absl::StrCat("--locator: ", parsed.status().message()));
    }
  }
  SubscriberOptions o;
  o.servers = {g.server};
  auto credentials = ClientCredentials(g.tls);
  if (!credentials.ok())
    return Usage(std::string(credentials.status().message()));
  o.credentials = *credentials;
  char host[256] = "ilactl";
  gethostname(host, sizeof(host) - 1);
  o.node = a.node.empty() ? absl::StrCat("ilactl-watch@", host) : a.node;
  o.role = v1::NODE_ROLE_OBSERVER;
  for (const auto& l : a.locators) o.filter.add_locators(l);
  o.filter.set_sir_prefix(a.sir_prefix);
  o.resume_revision = a.from_revision;
  // Both live until the process exits: the signal thread may outlive this
  // function.
  static WatchPrinter* printer = new WatchPrinter(g.json(), a.count);
  static bool* stop = new bool(false);
  StreamSubscriber sub(o, printer);
  std::thread([signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    absl::MutexLock l(printer->mu());
    *stop = true;
  }).detach();
  sub.Start();
  printer->Wait(stop);
  sub.Stop();
  return 0;
}

int Main(int argc, char** argv) {
  ila::InitRuntime();
  CLI::App app{"ilactl: operate the ILA control plane"};
  app.set_version_flag("--version", std::string(Version()));
  app.require_subcommand(1);
  // Global options are accepted after the subcommand too (ilactl list -o json).
  app.fallthrough();
  Globals g;
  app.add_option("--server", g.server,
                 "ila-server address host:port (env ILA_SERVER; default "
                 "localhost:50051)");
  app.add_option("--ca", g.tls.ca,
                 "TLS: the CA that signs ila-server's certificate (PEM)");
  app.add_option("--cert", g.tls.cert, "TLS: this client's certificate (PEM)");
  app.add_option("--key", g.tls.key, "TLS: this client's private key (PEM)");
  app.add_option("-o,--output", g.output, "table|json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_option("--timeout", g.timeout_s, "seconds per RPC")
      ->check(CLI::Range(0.001, 3600.0));

  auto* task = app.add_subcommand("task", "register, move or remove a task");
  task->require_subcommand(1);
  RegisterArgs reg;
  auto* reg_cmd = task->add_subcommand("register", "map a task to a locator");
  reg_cmd->add_option("NAME", reg.task, "task name")->required();
  reg_cmd->add_option("--locator", reg.locator, "e.g. 2001:db8:100:0")
      ->required();
  reg_cmd->add_option("--identifier", reg.identifier,
                      "e.g. 2000:0:0:42 or 0x2000000000000042 (default: "
                      "allocated)");
  reg_cmd->add_option("--sir-prefix", reg.sir_prefix,
                      "e.g. fd00:0:0:0 (default: the server's)");
  reg_cmd->add_option("--csum-mode", reg.csum_mode,
                      "adj-transport|neutral-map|neutral-map-auto|no-action");

  std::string mv_task, mv_locator;
  int64_t mv_expect = 0;
  auto* mv_cmd = task->add_subcommand("move", "point a task at a new locator");
  mv_cmd->add_option("NAME", mv_task, "task name")->required();
  mv_cmd->add_option("--locator", mv_locator, "new locator")->required();
  mv_cmd
      ->add_option("--expect-revision", mv_expect,
                   "move only if the mapping's mod_revision is this")
      ->check(CLI::PositiveNumber);

  std::string rm_task;
  int64_t rm_expect = 0;
  auto* rm_cmd = task->add_subcommand("rm", "unregister a task");
  rm_cmd->add_option("NAME", rm_task, "task name")->required();
  rm_cmd
      ->add_option("--expect-revision", rm_expect,
                   "remove only if the mapping's mod_revision is this")
      ->check(CLI::PositiveNumber);

  std::string get_key, get_by;
  auto* get_cmd = app.add_subcommand(
      "get", "show one mapping by task name, identifier or SIR address");
  get_cmd->add_option("KEY", get_key, "task name, identifier or SIR address")
      ->required();
  get_cmd
      ->add_option("--by", get_by,
                   "how to read KEY (default: guessed): "
                   "task|identifier|address")
      ->check(CLI::IsMember({"task", "identifier", "address"}));

  std::string list_locator, list_prefix;
  int list_page = 1000;
  auto* list_cmd = app.add_subcommand("list", "list mappings");
  list_cmd->add_option("--locator", list_locator, "only this locator");
  list_cmd->add_option("--sir-prefix", list_prefix, "only this SIR prefix");
  list_cmd->add_option("--page-size", list_page, "mappings per RPC")
      ->check(CLI::Range(1, 10000));

  auto* status_cmd = app.add_subcommand("status", "show the server's state");

  auto* subs_cmd = app.add_subcommand(
      "subscribers",
      "show connected routers, hosts and watchers with their lag");

  WatchArgs watch;
  auto* watch_cmd =
      app.add_subcommand("watch", "print mapping changes as they happen");
  watch_cmd
      ->add_option("--from-revision", watch.from_revision,
                   "print the changes after this revision (default: "
                   "from now, after a snapshot)")
      ->check(CLI::NonNegativeNumber);
  watch_cmd->add_option("--locator", watch.locators,
                        "only mappings at this locator (repeatable)");
  watch_cmd->add_option("--sir-prefix", watch.sir_prefix,
                        "only mappings under this SIR prefix");
  watch_cmd->add_option("--count", watch.count, "exit after this many changes")
      ->check(CLI::NonNegativeNumber);
  watch_cmd->add_option("--node", watch.node,
                        "name shown in `ilactl subscribers`");

  auto* snapshot_cmd =
      app.add_subcommand("snapshot", "back up the mappings (admin role)");
  snapshot_cmd->require_subcommand(1);
  std::string snapshot_file;
  auto* save_cmd = snapshot_cmd->add_subcommand(
      "save",
      "write every mapping of one revision to FILE (restore: ila-server "
      "--restore FILE --data-dir NEW_DIR)");
  save_cmd->add_option("FILE", snapshot_file, "the backup file")->required();

  TraceArgs trace;
  auto* trace_cmd = app.add_subcommand(
      "trace",
      "traceroute from ila-server's host that sees through ILA translation");
  trace_cmd
      ->add_option("target", trace.target,
                   "task name, identifier, SIR address or IPv6 address")
      ->required();
  trace_cmd->add_option("--proto", trace.proto, "udp, icmp or tcp")
      ->check(CLI::IsMember({"udp", "icmp", "tcp"}))
      ->capture_default_str();
  trace_cmd->add_option("--max-hops", trace.max_hops, "last hop limit")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  trace_cmd->add_option("--queries", trace.queries, "probes per hop")
      ->check(CLI::Range(1, 10))
      ->capture_default_str();
  trace_cmd
      ->add_option("--port", trace.port,
                   "UDP: first destination port; TCP: destination port "
                   "(default 33434 / 80)")
      ->check(CLI::Range(1, 65535));
  trace_cmd->add_option("--wait-ms", trace.wait_ms, "wait for each answer")
      ->check(CLI::Range(100, 10000))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  g.server = ResolveServerAddress(g.server);
  auto channel = Dial(g.server, g.tls);
  if (!channel.ok()) {
    std::cerr << "ilactl: " << channel.status().message() << "\n";
    return 2;
  }
  g.channel = *channel;
  auto stub = v1::MappingService::NewStub(g.channel);
  if (*reg_cmd) return DoRegister(g, *stub, reg);
  if (*mv_cmd) return DoMove(g, *stub, mv_task, mv_locator, mv_expect);
  if (*rm_cmd) return DoRemove(g, *stub, rm_task, rm_expect);
  if (*get_cmd) return DoGet(g, *stub, get_key, get_by);
  if (*list_cmd) return DoList(g, *stub, list_locator, list_prefix, list_page);
  if (*status_cmd) return DoStatus(g, *stub);
  if (*subs_cmd) return DoSubscribers(g);
  if (*watch_cmd) return DoWatch(g, watch);
  if (*trace_cmd) return DoTrace(g, trace);
  if (*save_cmd) return DoSnapshotSave(g, snapshot_file);
  return Usage("no command given; see --help");
}

}  // namespace
}  // namespace ila::client

int main(int argc, char** argv) { return ila::client::Main(argc, argv); }
