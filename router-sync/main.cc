// ila-router-sync: makes the kernel's ILA state on a router or host equal to
// the mappings in ila-server (design.md §7; docs/router-sync.md).
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "common/tls.h"
#include "common/version.h"
#include "router-sync/agent.h"
#include "router-sync/checks.h"

namespace {

int Fail(const absl::Status& s) {
  std::cerr << "ila-router-sync: " << s.message() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ila::router_sync;
  ila::InitRuntime();
  CLI::App app{
      "ila-router-sync: programs the kernel's ILA routes (router) or "
      "translation entries (host) from ila-server"};
  app.set_version_flag("--version", std::string(ila::Version()));
  std::vector<std::string> servers = {"localhost:50051"};
  std::string role = "router";
  std::vector<std::string> locators;
  uint32_t table = kMainTable;
  std::string via, dev, csum_mode, state_dir, log_level = "info";
  bool dry_run = false, direct = false;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::string name = host;
  int reconcile_s = 60;
  std::string shard;
  app.add_option("--server", servers,
                 "ila-server address host:port (repeatable; tried in turn)")
      ->capture_default_str();
  ila::TlsFiles tls;
  app.add_option("--ca", tls.ca, "TLS: the CA that signs ila-server (PEM)");
  app.add_option("--cert", tls.cert,
                 "TLS: this agent's certificate, role router or host (PEM)");
  app.add_option("--key", tls.key, "TLS: this agent's private key (PEM)");
  app.add_option("--role", role, "router or host")
      ->check(CLI::IsMember({"router", "host"}))
      ->capture_default_str();
  app.add_option("--locator", locators,
                 "host role: a locator of this host (repeatable); packets to "
                 "it are translated back to the SIR prefix of its tasks");
  app.add_flag("--direct", direct,
               "host role: also program /128 ILA routes to the tasks of "
               "other hosts (no router hop)");
  app.add_option("--table", table, "routing table for the ILA routes")
      ->check(CLI::Range(1u, 0xffffffffu))
      ->capture_default_str();
  app.add_option("--via", via,
                 "next hop (IPv6 address) for translated packets");
  app.add_option("--dev", dev,
                 "interface for translated packets; host role: translate "
                 "only packets received on it (default: any)");
  app.add_option("--csum-mode", csum_mode,
                 "override each mapping's checksum mode: adj-transport, "
                 "neutral-map, neutral-map-auto or no-action");
  app.add_option("--state-dir", state_dir,
                 "directory for the last applied state (resume after a "
                 "restart with the changes since)");
  app.add_flag("--dry-run", dry_run,
               "print the operations as `ip` commands, touch nothing");
  app.add_option("--name", name, "node name shown by `ilactl subscribers`")
      ->capture_default_str();
  app.add_option("--reconcile-interval-seconds", reconcile_s,
                 "full reconcile against the kernel at least this often")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--shard", shard,
                 "I/N: program only the mappings of identifier shard I of N "
                 "(N routers split the table)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  ila::logging::LogToStderr();
  if (absl::Status s = ila::logging::SetLevel(log_level); !s.ok()) {
    return Fail(s);
  }
  // Flag values, each checked with an error naming the flag.
  AgentOptions o;
  o.servers = servers;
  auto credentials = ila::ClientCredentials(tls);
  if (!credentials.ok()) return Fail(credentials.status());
  o.credentials = *credentials;
  o.name = name;
  o.state_dir = state_dir;
  o.reconcile_interval = absl::Seconds(reconcile_s);
  o.route.table = table;
  if (!via.empty()) {
    Ipv6Bytes gw;
    if (inet_pton(AF_INET6, via.c_str(), gw.data()) != 1) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--via: \"", via, "\" is not an IPv6 address")));
    }
    o.route.via = gw;
  }
  if (!dev.empty()) {
    o.route.oif = if_nametoindex(dev.c_str());
    if (o.route.oif == 0) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--dev: no interface \"", dev, "\"")));
    }
  }
  if (!csum_mode.empty()) {
    auto m = ila::ParseChecksumMode(csum_mode);
    if (!m.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--csum-mode: ", m.status().message())));
    }
    o.route.csum_mode = *m;
    o.xlat.csum_mode = *m;
  }
  if (!shard.empty()) {
    std::vector<std::string> parts = absl::StrSplit(shard, '/');
    uint32_t index = 0, count = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &index) ||
        !absl::SimpleAtoi(parts[1], &count) || count == 0 || index >= count) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--shard: \"", shard, "\" is not I/N with 0 <= I < N")));
    }
    o.shard_index = index;
    o.shard_count = count;
  }
  o.role = role == "host" ? AgentRole::kHost : AgentRole::kRouter;
  o.direct = direct;
  o.xlat.ifindex = static_cast<int32_t>(o.route.oif);
  for (const std::string& text : locators) {
    auto l = ila::ParseLocator(text);
    if (!l.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--locator: ", l.status().message())));
    }
    o.locators.insert(l->value);
  }
  if (o.role == AgentRole::kRouter) {
    for (const auto& [flag, set] : {std::pair{"--locator", !locators.empty()},
                                    std::pair{"--direct", direct}}) {
      if (set) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(flag, ": only for --role host")));
      }
    }
  } else {
    if (o.locators.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--locator: the host role needs at least one locator of this "
          "host"));
    }
    if (o.shard_count > 0) {
      return Fail(
          absl::InvalidArgumentError("--shard: only for --role router"));
    }
  }
  if (o.role == AgentRole::kRouter || direct) {
    if (!o.route.via && o.route.oif == 0) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--via or --dev: ",
                       o.role == AgentRole::kRouter ? "the router" : "--direct",
                       " needs a next hop for translated packets")));
    }
  }

  // Startup checks before anything else (none in --dry-run).
  std::unique_ptr<KernelBackend> backend;
  if (dry_run) {
    backend = MakeDryRunBackend(&std::cout, o.route.table, o.route.protocol);
  } else {
    if (absl::Status s = CheckNetAdmin(); !s.ok()) return Fail(s);
    if (absl::Status s = CheckIlaSupport(); !s.ok()) return Fail(s);
    auto rt = RtNetlink::Open();
    if (!rt.ok()) return Fail(rt.status());
    std::unique_ptr<IlaGenl> genl;
    if (o.role == AgentRole::kHost) {
      auto g = IlaGenl::Open();
      if (!g.ok()) return Fail(g.status());
      genl = *std::move(g);
    }
    backend = MakeNetlinkBackend(*std::move(rt), std::move(genl), o.route.table,
                                 o.route.protocol);
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SyncAgent agent(o, std::move(backend));
  if (absl::Status s = agent.Start(); !s.ok()) return Fail(s);
  ILA_LOG_INFO("ila-router-sync {} as {} ({}) for {}", ila::Version(), name,
               role, servers.front());
  int sig = 0;
  sigwait(&signals, &sig);
  ILA_LOG_INFO("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  agent.Stop();
  return 0;
}
