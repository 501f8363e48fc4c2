// End-to-end tests of the ila-server and ilactl binaries, including a crash
// test: SIGKILL during a stream of acknowledged writes, restart, and every
// acknowledged write is there.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/convert.h"
#include "server/stream_filter.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace ila {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::Subprocess;

const std::string kBin = ILA_BIN_DIR;

// ila-server as a child process on 127.0.0.1 with an ephemeral port.
class ServerProcess {
 public:
  ServerProcess(const testing::TempDir& dir, const std::string& data_dir,
                std::vector<std::string> extra = {},
                const std::string& listen = "127.0.0.1:0") {
    port_file_ = dir.Sub("port");
    std::filesystem::remove(port_file_);
    std::vector<std::string> argv = {
        kBin + "/ila-server", "--listen", listen, "--data-dir", data_dir,
        "--port-file",        port_file_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Subprocess>(argv, dir.Sub("server.out"),
                                         dir.Sub("server.err"));
  }

  // Waits (bounded) until the server wrote its port file; false if it died
  // or the deadline passed.
  bool WaitReady(absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline && proc_->running()) {
      std::string text = testing::ReadFileOrEmpty(port_file_);
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_) &&
          port_ > 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));  // polling another process
    }
    return false;
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  Subprocess& proc() { return *proc_; }

 private:
  std::string port_file_;
  int port_ = 0;
  std::unique_ptr<Subprocess> proc_;
};

testing::CommandResult Ilactl(const testing::TempDir& dir,
                              const std::string& server,
                              std::vector<std::string> args) {
  std::vector<std::string> argv = {kBin + "/ilactl", "--server", server};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, dir.path());
}

TEST(EndToEnd, IlactlDrivesTheServerAndSigtermStopsCleanly) {
  testing::TempDir dir;
  ServerProcess server(dir, dir.Sub("db"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  const std::string addr = server.address();

  auto r = Ilactl(dir, addr,
                  {"task", "register", "web/1", "--locator", "2001:db8:100:0",
                   "--identifier", "2000:0:0:42", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"task\":\"web/1\""));
  EXPECT_THAT(r.out, HasSubstr("\"identifier\":\"2000:0:0:42\""));
  EXPECT_THAT(r.out, HasSubstr("\"sir_address\":\"fd00::2000:0:0:42\""));
  EXPECT_THAT(r.out, HasSubstr("\"create_revision\":1"));

  r = Ilactl(dir, addr,
             {"task", "register", "web/2", "--locator", "0x20010db802000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("registered web/2: identifier 2000:0:0:1"));

  r = Ilactl(dir, addr,
             {"task", "move", "web/1", "--locator", "2001:db8:300:0",
              "--expect-revision", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("moved web/1 from locator 2001:db8:100:0 to "
                               "2001:db8:300:0 (revision 3)"));

  r = Ilactl(dir, addr,
             {"task", "move", "web/1", "--locator", "2001:db8:400:0",
              "--expect-revision", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));

  for (const std::string key : {"web/1", "2000:0:0:42", "fd00::2000:0:0:42"}) {
    r = Ilactl(dir, addr, {"get", key});
    ASSERT_EQ(r.exit_code, 0) << key << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("web/1  2000:0:0:42  2001:db8:300:0")) << key;
  }

  r = Ilactl(dir, addr, {"list", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0);
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 2u);
  for (const auto& line : lines) {
    for (const char* key :
         {"\"task\"", "\"identifier\"", "\"locator\"", "\"sir_prefix\"",
          "\"sir_address\"", "\"create_revision\"", "\"mod_revision\""}) {
      EXPECT_THAT(line, HasSubstr(key));
    }
  }
  r = Ilactl(dir, addr, {"list", "--locator", "2001:db8:200:0"});
  EXPECT_THAT(r.out, HasSubstr("web/2"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("web/1")));

  // ILA_SERVER picks the server when --server is absent.
  setenv("ILA_SERVER", addr.c_str(), 1);
  r = RunCommand({kBin + "/ilactl", "get", "web/2"}, dir.path());
  unsetenv("ILA_SERVER");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("web/2"));

  r = Ilactl(dir, addr, {"task", "rm", "web/2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ilactl(dir, addr, {"status", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("\"revision\":4,\"mapping_count\":1"));

  // Errors: stderr, non-zero exit, the field and value named.
  r = Ilactl(dir, addr,
             {"task", "register", "x", "--locator", "2001:db8:zz:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: locator: \"2001:db8:zz:0\""));
  EXPECT_TRUE(r.out.empty());
  r = Ilactl(dir, addr, {"get", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  r = Ilactl(dir, addr, {"task", "register", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--locator is required"));

  server.proc().Signal(SIGTERM);
  int status = server.proc().Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THAT(server.proc().err(),
              HasSubstr("mapping store closed at revision 4"));

  // The data survives the restart.
  ServerProcess again(dir, dir.Sub("db"));
  ASSERT_TRUE(again.WaitReady()) << again.proc().err();
  r = Ilactl(dir, again.address(), {"get", "web/1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"locator\":\"2001:db8:300:0\""));
}

TEST(EndToEnd, ServerRejectsBadFlagsWithAClearMessage) {
  testing::TempDir dir;
  auto r = RunCommand({kBin + "/ila-server", "--sync", "sometimes",
                       "--data-dir", dir.Sub("db")},
                      dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--sync: sync mode \"sometimes\""));
  r = RunCommand({kBin + "/ila-server", "--sir-prefix", "0:0:0:0", "--data-dir",
                  dir.Sub("db")},
                 dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--sir-prefix"));
}

TEST(EndToEnd, ExampleConfigurationIsAccepted) {
  testing::TempDir dir;
  // Flags on the command line (listen, data dir) win over the file.
  ServerProcess server(
      dir, dir.Sub("db"),
      {"--config", std::string(ILA_SOURCE_DIR) + "/deploy/ila-server.toml"});
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  auto r = Ilactl(dir, server.address(), {"status", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"sync_mode\":\"always\""));

  std::ofstream(dir.Sub("bad.toml")) << "sync = \"sometimes\"\n";
  auto bad = RunCommand({kBin + "/ila-server", "--config", dir.Sub("bad.toml"),
                         "--data-dir", dir.Sub("db2")},
                        dir.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--sync: sync mode \"sometimes\""));
}

// What a writer thread had acknowledged for one task.
struct Acked {
  uint64_t identifier = 0;
  uint64_t locator = 0;        // last acknowledged locator
  uint64_t maybe_locator = 0;  // an unacknowledged move in flight, or 0
};

}  // namespace
}  // namespace ila

namespace ila {
namespace {

// A loopback port that was free a moment ago (the kill test restarts the
// server on the same address, as a real restart would).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(EndToEnd, WatchAndSubscribersShowTheStream) {
  testing::TempDir dir;
  ServerProcess server(dir, dir.Sub("db"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  const std::string addr = server.address();
  ASSERT_EQ(
      Ilactl(dir, addr, {"task", "register", "a", "--locator", "2001:db8:1::"})
          .exit_code,
      0);
  // Changes after revision 1, whenever the watch connects.
  Subprocess watch(
      {kBin + "/ilactl", "--server", addr, "watch", "--from-revision", "1",
       "--count", "2", "-o", "json", "--node", "e2e-watch"},
      dir.Sub("watch.out"), dir.Sub("watch.err"));
  // It shows up in `ilactl subscribers` (bounded wait for it to connect).
  bool listed = false;
  testing::TempDir scratch;
  for (int i = 0; i < 300 && !listed; ++i) {
    auto r = Ilactl(scratch, addr, {"subscribers", "-o", "json"});
    listed = r.exit_code == 0 &&
             r.out.find("\"node\":\"e2e-watch\"") != std::string::npos;
    if (!listed) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(listed);
  auto table = Ilactl(scratch, addr, {"subscribers"});
  EXPECT_THAT(table.out, HasSubstr("e2e-watch"));
  EXPECT_THAT(table.out, HasSubstr("observer"));
  ASSERT_EQ(
      Ilactl(dir, addr, {"task", "register", "b", "--locator", "2001:db8:2::"})
          .exit_code,
      0);
  ASSERT_EQ(Ilactl(dir, addr, {"task", "rm", "a"}).exit_code, 0);
  int status = watch.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << watch.err();
  std::vector<std::string> lines =
      absl::StrSplit(watch.out(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << watch.out();
  EXPECT_THAT(lines[0], HasSubstr("\"task\":\"b\""));
  EXPECT_THAT(lines[0], HasSubstr("\"revision\":2,\"type\":\"upsert\""));
  EXPECT_THAT(lines[1], HasSubstr("\"revision\":3,\"type\":\"delete\""));
  // Resumed without state, the watch cannot name the deleted task.
  EXPECT_THAT(lines[1], HasSubstr("\"task\":null"));
}

// SIGKILL the server under 24 subscribers and concurrent writers; restart it
// on the same address. Every subscriber reconnects, resumes, and ends with
// exactly the server's state for its filter, having seen no revision twice
// or out of order.
TEST(EndToEnd, SubscribersConvergeAcrossServerKill) {
  testing::TempDir dir;
  const std::string listen = absl::StrCat("127.0.0.1:", FreePort());
  const char* kLocs[] = {"2001:db8:1::", "2001:db8:2::", "2001:db8:3::"};
  auto server = std::make_unique<ServerProcess>(
      dir, dir.Sub("db"), std::vector<std::string>{"--log-level", "warn"},
      listen);
  ASSERT_TRUE(server->WaitReady()) << server->proc().err();

  std::vector<std::unique_ptr<client::StreamSubscriber>> subs;
  std::vector<v1::Filter> filters;
  for (int i = 0; i < 24; ++i) {
    client::SubscriberOptions o;
    o.servers = {listen};
    o.node = absl::StrCat("n", i);
    o.initial_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(300);
    if (i % 3 == 1) o.filter.add_locators(kLocs[i % 3]);
    if (i % 3 == 2) {
      o.filter.set_shard_index(i % 4);
      o.filter.set_shard_count(4);
    }
    filters.push_back(o.filter);
    subs.push_back(std::make_unique<client::StreamSubscriber>(o, nullptr));
    subs.back()->Start();
  }

  ASSERT_TRUE(subs.back()->WaitForRevision(0, absl::Seconds(30)));
  ASSERT_TRUE(server->proc().running()) << server->proc().err();
  auto channel =
      grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
  auto stub = v1::MappingService::NewStub(channel);
  std::mt19937 rng(7);
  // Operations retried until they get an answer: an unanswered one may or
  // may not have committed; retrying register/move is idempotent and a
  // retried unregister may find the task gone.
  auto run = [&](int n) {
    const std::string task = absl::StrCat("t", rng() % 200);
    const char* loc = kLocs[rng() % 3];
    const int kind = rng() % 3;
    grpc::Status last;
    for (int attempt = 0; attempt < 200; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(2));
      grpc::Status s;
      if (kind == 0) {
        v1::RegisterTaskRequest req;
        req.set_task(task);
        req.set_locator(loc);
        v1::RegisterTaskResponse resp;
        s = stub->RegisterTask(&ctx, req, &resp);
        if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) return;
      } else if (kind == 1) {
        v1::MoveTaskRequest req;
        req.set_task(task);
        req.set_locator(loc);
        v1::MoveTaskResponse resp;
        s = stub->MoveTask(&ctx, req, &resp);
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) return;
      } else {
        v1::UnregisterTaskRequest req;
        req.set_task(task);
        v1::UnregisterTaskResponse resp;
        s = stub->UnregisterTask(&ctx, req, &resp);
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) return;
      }
      if (s.ok()) return;
      last = s;
      absl::SleepFor(absl::Milliseconds(20));  // server restarting: retry
    }
    ADD_FAILURE() << "operation " << n
                  << " never answered: " << last.error_code() << " "
                  << last.error_message();
  };
  for (int n = 0; n < 1500; ++n) {
    run(n);
    if (n == 700) {
      server->proc().Signal(SIGKILL);
      server->proc().Wait();
      server = std::make_unique<ServerProcess>(
          dir, dir.Sub("db"), std::vector<std::string>{"--log-level", "warn"},
          listen);
      ASSERT_TRUE(server->WaitReady()) << server->proc().err();
    }
  }

  // The final state, and every subscriber's replica against it.
  std::vector<v1::Mapping> state;
  v1::ListRequest lr;
  int64_t revision = 0;
  for (;;) {
    v1::ListResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->List(&ctx, lr, &resp).ok());
    revision = resp.revision();
    state.insert(state.end(), resp.mappings().begin(), resp.mappings().end());
    if (resp.next_page_token().empty()) break;
    lr.set_page_token(resp.next_page_token());
  }
  for (size_t i = 0; i < subs.size(); ++i) {
    ASSERT_TRUE(subs[i]->WaitForRevision(revision, absl::Seconds(60)))
        << "subscriber " << i << " at " << subs[i]->applied_revision() << " of "
        << revision;
    EXPECT_EQ(subs[i]->stats().violations, 0)
        << subs[i]->stats().last_violation;
    EXPECT_GE(subs[i]->stats().connects, 2) << "subscriber " << i;
    auto filter = server::ParseFilter(filters[i]);
    ASSERT_TRUE(filter.ok());
    client::Replica replica = subs[i]->CopyReplica();
    size_t expected = 0;
    for (const auto& m : state) {
      auto dm = server::FromProto(m);
      ASSERT_TRUE(dm.ok());
      if (!filter->Matches(*dm)) continue;
      ++expected;
      auto it = replica.find(m.identifier());
      ASSERT_NE(it, replica.end())
          << "subscriber " << i << " lacks " << m.task();
      EXPECT_EQ(it->second.SerializeAsString(), m.SerializeAsString());
    }
    EXPECT_EQ(replica.size(), expected) << "subscriber " << i;
  }
  for (auto& s : subs) s->Stop();
}

}  // namespace
}  // namespace ila

namespace ila {
namespace {

// The routes ila-router-sync --dry-run has printed so far, replayed:
// SIR address -> locator.
std::map<std::string, std::string> DryRunRoutes(const std::string& out) {
  std::map<std::string, std::string> routes;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.size() >= 8 && w[3] == "replace" && w[5] == "encap") {
      routes[std::string(absl::StripSuffix(w[4], "/128"))] = w[7];
    } else if (w.size() >= 5 && w[3] == "del") {
      routes.erase(std::string(absl::StripSuffix(w[4], "/128")));
    }
  }
  return routes;
}

// SIR address -> locator, from `ilactl list -o json`.
std::map<std::string, std::string> ServerRoutes(const testing::TempDir& dir,
                                                const std::string& addr) {
  std::map<std::string, std::string> routes;
  auto r = Ilactl(dir, addr, {"list", "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (absl::string_view line :
       absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    auto field = [&](absl::string_view key) {
      const std::string k = absl::StrCat("\"", key, "\":\"");
      size_t at = line.find(k);
      if (at == absl::string_view::npos) return std::string();
      at += k.size();
      return std::string(line.substr(at, line.find('"', at) - at));
    };
    routes[field("sir_address")] = field("locator");
  }
  return routes;
}

// Waits (bounded) until the agent's printed routes equal the server's.
bool Converges(const testing::TempDir& dir, const std::string& addr,
               Subprocess& agent) {
  const auto want = ServerRoutes(dir, addr);
  for (int i = 0; i < 500; ++i) {
    if (DryRunRoutes(agent.out()) == want) return true;
    if (!agent.running()) return false;
    absl::SleepFor(absl::Milliseconds(20));  // polling another process
  }
  return false;
}

// ila-router-sync --dry-run: every mapping becomes an `ip -6 route replace`,
// a move a new one, an unregister an `ip -6 route del`; after a restart with
// its --state-dir it resumes (no snapshot) and still converges.
TEST(EndToEnd, RouterSyncDryRunFollowsTheMappingsAcrossRestart) {
  testing::TempDir dir;
  ServerProcess server(dir, dir.Sub("db"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  const std::string addr = server.address();
  for (const char* t : {"a", "b", "c"}) {
    ASSERT_EQ(
        Ilactl(dir, addr, {"task", "register", t, "--locator", "2001:db8:1::"})
            .exit_code,
        0);
  }
  const std::vector<std::string> argv = {kBin + "/ila-router-sync",
                                         "--dry-run",
                                         "--server",
                                         addr,
                                         "--via",
                                         "2001:db8::1",
                                         "--state-dir",
                                         dir.path(),
                                         "--name",
                                         "e2e-router"};
  {
    Subprocess agent(argv, dir.Sub("agent1.out"), dir.Sub("agent1.err"));
    ASSERT_TRUE(Converges(dir, addr, agent)) << agent.out() << agent.err();
    EXPECT_THAT(agent.out(),
                HasSubstr("encap ila 2001:db8:1:0 csum-mode adj-transport "
                          "ident-type luid hook-type output via 2001:db8::1 "
                          "proto 73 table 254"));
    ASSERT_EQ(
        Ilactl(dir, addr, {"task", "move", "a", "--locator", "2001:db8:2::"})
            .exit_code,
        0);
    ASSERT_EQ(Ilactl(dir, addr, {"task", "rm", "b"}).exit_code, 0);
    ASSERT_TRUE(Converges(dir, addr, agent)) << agent.out();
    EXPECT_THAT(agent.out(), HasSubstr("ip -6 route del "));
    // It shows up as a router that acknowledged the latest revision.
    auto subs = Ilactl(dir, addr, {"subscribers", "-o", "json"});
    EXPECT_THAT(subs.out, HasSubstr("\"node\":\"e2e-router\""));
    agent.Signal(SIGTERM);
    const int status = agent.Wait();
    ASSERT_TRUE(WIFEXITED(status)) << agent.err();
    EXPECT_EQ(WEXITSTATUS(status), 0) << agent.err();
  }
  // Changes while it is down.
  ASSERT_EQ(Ilactl(dir, addr, {"task", "rm", "c"}).exit_code, 0);
  ASSERT_EQ(
      Ilactl(dir, addr, {"task", "register", "d", "--locator", "2001:db8:3::"})
          .exit_code,
      0);
  Subprocess agent(argv, dir.Sub("agent2.out"), dir.Sub("agent2.err"));
  ASSERT_TRUE(Converges(dir, addr, agent)) << agent.out() << agent.err();
  EXPECT_THAT(agent.err(), HasSubstr("loaded 2 mappings at revision 5"));
  agent.Signal(SIGTERM);
  EXPECT_TRUE(WIFEXITED(agent.Wait())) << agent.err();
}

// Two routers with --shard 0/2 and 1/2 split the table: together exactly
// the mappings, no route on both.
TEST(EndToEnd, RouterSyncShardsSplitTheTable) {
  testing::TempDir dir;
  ServerProcess server(dir, dir.Sub("db"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  const std::string addr = server.address();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Ilactl(dir, addr,
                     {"task", "register", absl::StrCat("t", i), "--locator",
                      "2001:db8:1::"})
                  .exit_code,
              0);
  }
  const auto want = ServerRoutes(dir, addr);
  std::vector<std::unique_ptr<Subprocess>> agents;
  for (const char* shard : {"0/2", "1/2"}) {
    agents.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{kBin + "/ila-router-sync", "--dry-run",
                                 "--server", addr, "--via", "2001:db8::1",
                                 "--shard", shard},
        dir.Sub(absl::StrCat("shard", agents.size(), ".out")),
        dir.Sub(absl::StrCat("shard", agents.size(), ".err"))));
  }
  std::map<std::string, std::string> a, b, both;
  for (int i = 0; i < 500; ++i) {
    a = DryRunRoutes(agents[0]->out());
    b = DryRunRoutes(agents[1]->out());
    both = a;
    both.insert(b.begin(), b.end());
    if (both == want && a.size() + b.size() == want.size()) break;
    absl::SleepFor(absl::Milliseconds(20));  // polling other processes
  }
  EXPECT_EQ(both, want);
  EXPECT_EQ(a.size() + b.size(), want.size()) << "a route on both shards";
  EXPECT_FALSE(a.empty());
  EXPECT_FALSE(b.empty());
  for (auto& agent : agents) {
    agent->Signal(SIGTERM);
    EXPECT_TRUE(WIFEXITED(agent->Wait())) << agent->err();
  }
}

TEST(EndToEnd, RouterSyncRejectsBadFlagsNamingThem) {
  testing::TempDir dir;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), kBin + "/ila-router-sync");
    return RunCommand(args, dir.path());
  };
  EXPECT_THAT(run({"--dry-run", "--via", "zz"}).err,
              HasSubstr("--via: \"zz\" is not an IPv6 address"));
  EXPECT_THAT(run({"--dry-run", "--dev", "no-such-if0"}).err,
              HasSubstr("--dev: no interface \"no-such-if0\""));
  EXPECT_THAT(
      run({"--dry-run", "--via", "2001:db8::1", "--csum-mode", "x"}).err,
      HasSubstr("--csum-mode"));
  EXPECT_THAT(run({"--dry-run"}).err, HasSubstr("--via or --dev"));
  EXPECT_THAT(run({"--dry-run", "--via", "2001:db8::1", "--shard", "2/2"}).err,
              HasSubstr("--shard: \"2/2\" is not I/N"));
  EXPECT_NE(run({"--role", "switch"}).exit_code, 0);
  EXPECT_THAT(run({"--dry-run", "--role", "host"}).err,
              HasSubstr("--locator: the host role needs at least one"));
  EXPECT_THAT(run({"--dry-run", "--role", "host", "--locator", "zz"}).err,
              HasSubstr("--locator: "));
  EXPECT_THAT(run({"--dry-run", "--role", "host", "--locator",
                   "2001:db8:1::", "--direct"})
                  .err,
              HasSubstr("--via or --dev: --direct needs a next hop"));
  EXPECT_THAT(run({"--dry-run", "--via", "2001:db8::1", "--direct"}).err,
              HasSubstr("--direct: only for --role host"));
  EXPECT_THAT(run({"--dry-run", "--role", "host", "--locator",
                   "2001:db8:1::", "--shard", "0/2"})
                  .err,
              HasSubstr("--shard: only for --role router"));
}

// ila-router-sync --role host --dry-run: the host's locator gets its
// translation entry when a task lands on it and loses it when the last one
// leaves; no routes without --direct.
TEST(EndToEnd, RouterSyncHostRoleTranslatesItsLocator) {
  testing::TempDir dir;
  ServerProcess server(dir, dir.Sub("db"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  const std::string addr = server.address();
  Subprocess agent(
      {kBin + "/ila-router-sync", "--dry-run", "--server", addr, "--role",
       "host", "--locator", "2001:db8:1::", "--name", "e2e-host"},
      dir.Sub("host.out"), dir.Sub("host.err"));
  auto wait_for = [&](const std::string& text) {
    for (int i = 0; i < 500 && agent.running(); ++i) {
      if (agent.out().find(text) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));  // polling another process
    }
    return false;
  };
  ASSERT_EQ(Ilactl(dir, addr,
                   {"task", "register", "a", "--locator",
                    "2001:db8:1::", "--sir-prefix", "fd00:1::"})
                .exit_code,
            0);
  EXPECT_TRUE(
      wait_for("ip ila add loc_match 2001:db8:1:0 loc fd00:1:0:0 "
               "csum-mode adj-transport ident-type luid\n"))
      << agent.out() << agent.err();
  ASSERT_EQ(
      Ilactl(dir, addr, {"task", "move", "a", "--locator", "2001:db8:2::"})
          .exit_code,
      0);
  EXPECT_TRUE(wait_for("ip ila del loc_match 2001:db8:1:0\n")) << agent.out();
  EXPECT_THAT(agent.out(), Not(HasSubstr("route")));
  auto subs = Ilactl(dir, addr, {"subscribers"});
  EXPECT_THAT(subs.out, HasSubstr("e2e-host"));
  agent.Signal(SIGTERM);
  const int status = agent.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << agent.err();
  EXPECT_EQ(WEXITSTATUS(status), 0) << agent.err();
}

// mTLS with the binaries (docs/security.md): plaintext refused on a
// non-loopback address; with certificates from deploy/make-test-certs.sh a
// scheduler writes, an operator may not, a client without certificates
// cannot connect, and a host agent streams its own locator over TLS.
TEST(EndToEnd, MutualTlsWithTheBinaries) {
  testing::TempDir dir;
  ASSERT_EQ(
      RunCommand({std::string(ILA_SOURCE_DIR) + "/deploy/make-test-certs.sh",
                  dir.Sub("certs")},
                 dir.path())
          .exit_code,
      0);
  auto tls = [&](const std::string& who) {
    return std::vector<std::string>{"--ca",   dir.Sub("certs/ca.pem"),
                                    "--cert", dir.Sub("certs/" + who + ".pem"),
                                    "--key",  dir.Sub("certs/" + who + ".key")};
  };
  {
    ServerProcess plain(dir, dir.Sub("db0"), {}, "[::]:0");
    EXPECT_FALSE(plain.WaitReady());
    const int status = plain.proc().Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    EXPECT_THAT(plain.proc().err(),
                HasSubstr("refusing plaintext gRPC on non-loopback address"));
  }
  ServerProcess server(dir, dir.Sub("db"), tls("server"));
  ASSERT_TRUE(server.WaitReady()) << server.proc().err();
  // The server's certificate names localhost and 127.0.0.1.
  const std::string addr = server.address();
  auto as = [&](const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> all = tls(who);
    all.insert(all.end(), args.begin(), args.end());
    return Ilactl(dir, addr, all);
  };
  auto r =
      as("scheduler", {"task", "register", "a", "--locator", "2001:db8:1::"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = as("operator", {"task", "register", "b", "--locator", "2001:db8:1::"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(r.err, HasSubstr("role operator may not write mappings"));
  r = as("operator", {"list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2001:db8:1:0"));
  r = Ilactl(dir, addr, {"list"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  r = Ilactl(dir, addr, {"--ca", dir.Sub("certs/ca.pem"), "list"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--ca, --cert and --key go together"));

  std::vector<std::string> agent_argv = {kBin + "/ila-router-sync",
                                         "--dry-run",
                                         "--server",
                                         addr,
                                         "--role",
                                         "host",
                                         "--locator",
                                         "2001:db8:1::",
                                         "--name",
                                         "tls-host"};
  for (const auto& a : tls("host")) agent_argv.push_back(a);
  Subprocess agent(agent_argv, dir.Sub("host.out"), dir.Sub("host.err"));
  bool seen = false;
  for (int i = 0; i < 500 && agent.running() && !seen; ++i) {
    seen = agent.out().find("ip ila add loc_match 2001:db8:1:0") !=
           std::string::npos;
    if (!seen) absl::SleepFor(absl::Milliseconds(20));  // another process
  }
  EXPECT_TRUE(seen) << agent.out() << agent.err();
  agent.Signal(SIGTERM);
  agent.Wait();
}

// Backup and restore round trip (docs/reliability.md): `ilactl snapshot
// save` at one revision, `ila-server --restore` into a new data directory,
// and the restored server has exactly those mappings at that revision, goes
// on allocating identifiers without reusing one, and streams from there.
// Damaged backups and non-empty directories are refused.
TEST(EndToEnd, SnapshotSaveAndRestoreRoundTrip) {
  testing::TempDir dir;
  std::string before_list;
  {
    ServerProcess server(dir, dir.Sub("db"));
    ASSERT_TRUE(server.WaitReady()) << server.proc().err();
    const std::string addr = server.address();
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(Ilactl(dir, addr,
                       {"task", "register", absl::StrCat("t", i), "--locator",
                        absl::StrCat("2001:db8:", i % 3 + 1, "::")})
                    .exit_code,
                0);
    }
    ASSERT_EQ(Ilactl(dir, addr, {"task", "rm", "t7"}).exit_code, 0);
    ASSERT_EQ(
        Ilactl(dir, addr, {"task", "move", "t8", "--locator", "2001:db8:9::"})
            .exit_code,
        0);
    auto r = Ilactl(dir, addr, {"snapshot", "save", dir.Sub("backup")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("saved 49 mappings at revision 52"));
    before_list = Ilactl(dir, addr, {"list", "-o", "json"}).out;
    // Written after the backup: not in it.
    ASSERT_EQ(Ilactl(dir, addr,
                     {"task", "register", "later", "--locator", "2001:db8:1::"})
                  .exit_code,
              0);
    server.proc().Signal(SIGTERM);
    server.proc().Wait();
  }
  auto restore = [&](const std::string& file, const std::string& data) {
    return RunCommand({kBin + "/ila-server", "--restore", file, "--data-dir",
                       data, "--log-level", "warn"},
                      dir.path());
  };
  // Refused: into the old (non-empty) directory, a truncated file, a
  // changed byte.
  auto r = restore(dir.Sub("backup"), dir.Sub("db"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is not empty"));
  const std::string bytes = testing::ReadFileOrEmpty(dir.Sub("backup"));
  ASSERT_GT(bytes.size(), 100u);
  {
    std::ofstream(dir.Sub("cut")) << bytes.substr(0, bytes.size() / 2);
    r = restore(dir.Sub("cut"), dir.Sub("db-cut"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr("truncated"));
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x01;
    std::ofstream(dir.Sub("flipped")) << flipped;
    r = restore(dir.Sub("flipped"), dir.Sub("db-flipped"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr("backup"));
  }
  r = restore(dir.Sub("backup"), dir.Sub("db2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  ServerProcess restored(dir, dir.Sub("db2"));
  ASSERT_TRUE(restored.WaitReady()) << restored.proc().err();
  const std::string addr = restored.address();
  EXPECT_EQ(Ilactl(dir, addr, {"list", "-o", "json"}).out, before_list);
  auto status = Ilactl(dir, addr, {"status", "-o", "json"});
  EXPECT_THAT(status.out, HasSubstr("\"revision\":52"));
  EXPECT_THAT(status.out, HasSubstr("\"mapping_count\":49"));
  // t7's identifier was the 8th allocated; a new task gets the 51st.
  r = Ilactl(
      dir, addr,
      {"task", "register", "new", "--locator", "2001:db8:1::", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"identifier\":\"2000:0:0:33\""));
  EXPECT_THAT(r.out, HasSubstr("\"create_revision\":53"));
  restored.proc().Signal(SIGTERM);
  EXPECT_EQ(WEXITSTATUS(restored.proc().Wait()), 0);
}

// The crash loop (docs/reliability.md): 50 rounds of SIGKILL at a random
// point of concurrent writes, while a router's stream follows across the
// restarts and the change log is compacted (300 revisions kept, so some
// resumes need a snapshot). After each restart every acknowledged write is
// there, the revision never goes back, and the subscriber never saw a gap,
// a repeat or a regression (its protocol checks count violations).
TEST(EndToEnd, CrashLoopLosesNoAcknowledgedWrite) {
  constexpr int kRounds = 50, kThreads = 8, kMaxOpsPerThread = 3000;
  constexpr uint64_t kLocA = 0x20010db801000000, kLocB = 0x20010db802000000;
  testing::TempDir dir;
  const std::string data = dir.Sub("db");
  std::mt19937 rng(12345);
  absl::flat_hash_map<std::string, Acked> acked;  // across rounds
  int64_t max_acked_revision = 0;
  const std::string listen = absl::StrCat("127.0.0.1:", FreePort());
  client::SubscriberOptions so;
  so.servers = {listen};
  so.node = "crash-loop-router";
  so.role = v1::NODE_ROLE_ROUTER;
  so.initial_backoff = absl::Milliseconds(20);
  so.max_backoff = absl::Milliseconds(200);
  client::StreamSubscriber sub(so, nullptr);
  sub.Start();

  for (int round = 0; round < kRounds; ++round) {
    ServerProcess server(dir, data,
                         {"--log-level", "error", "--retain-revisions", "300"},
                         listen);
    ASSERT_TRUE(server.WaitReady()) << server.proc().err();
    auto stub = v1::MappingService::NewStub(grpc::CreateChannel(
        server.address(), grpc::InsecureChannelCredentials()));

    // Everything acknowledged before the restart is there (one paged List).
    absl::flat_hash_map<std::string, v1::Mapping> now;
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      v1::ListRequest req;
      req.set_page_size(10000);
      req.set_page_token(token);
      v1::ListResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub->List(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const auto& m : resp.mappings()) now[m.task()] = m;
      token = resp.next_page_token();
      if (token.empty()) break;
    }
    for (const auto& [task, a] : acked) {
      auto it = now.find(task);
      ASSERT_TRUE(it != now.end())
          << "round " << round << ": acknowledged task " << task << " lost";
      const v1::Mapping& m = it->second;
      EXPECT_EQ(m.identifier(), a.identifier) << task;
      if (a.maybe_locator != 0) {
        EXPECT_TRUE(m.locator() == a.locator || m.locator() == a.maybe_locator)
            << task;
      } else {
        EXPECT_EQ(m.locator(), a.locator) << task;
      }
    }
    {
      v1::StatusResponse st;
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub->Status(&ctx, v1::StatusRequest(), &st).ok());
      EXPECT_GE(st.revision(), max_acked_revision);
      EXPECT_GE(st.mapping_count(), static_cast<int64_t>(acked.size()));
    }

    // Concurrent writers; SIGKILL after a random number of acknowledgements.
    const int kill_after = std::uniform_int_distribution<int>(50, 600)(rng);
    absl::Mutex mu;
    int acks = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kMaxOpsPerThread; ++i) {
          const std::string task = absl::StrCat("r", round, "/t", t, "/", i);
          v1::RegisterTaskRequest reg;
          reg.set_task(task);
          reg.set_locator("2001:db8:100:0");
          v1::RegisterTaskResponse rr;
          grpc::ClientContext c1;
          if (!stub->RegisterTask(&c1, reg, &rr).ok()) return;
          {
            absl::MutexLock l(&mu);
            acked[task] = Acked{rr.mapping().identifier(), kLocA, 0};
            max_acked_revision = std::max(max_acked_revision, rr.revision());
            ++acks;
          }
          v1::MoveTaskRequest mv;
          mv.set_task(task);
          mv.set_locator("2001:db8:200:0");
          v1::MoveTaskResponse mr;
          grpc::ClientContext c2;
          grpc::Status s = stub->MoveTask(&c2, mv, &mr);
          absl::MutexLock l(&mu);
          if (!s.ok()) {
            acked[task].maybe_locator = kLocB;
            return;
          }
          acked[task].locator = kLocB;
          max_acked_revision = std::max(max_acked_revision, mr.revision());
          ++acks;
        }
      });
    }
    {
      absl::MutexLock l(&mu);
      auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return acks >= kill_after;
      };
      mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    }
    server.proc().Signal(SIGKILL);
    server.proc().Wait();
    for (auto& th : threads) th.join();
  }
  // Once more up: the stream followed every restart without a protocol
  // violation and reaches the last acknowledged revision.
  ServerProcess last(dir, data, {"--log-level", "error"}, listen);
  ASSERT_TRUE(last.WaitReady()) << last.proc().err();
  EXPECT_TRUE(sub.WaitForRevision(max_acked_revision, absl::Seconds(60)));
  sub.Stop();
  last.proc().Signal(SIGTERM);
  last.proc().Wait();
  EXPECT_EQ(sub.stats().violations, 0) << sub.stats().last_violation;
  EXPECT_GE(sub.stats().connects, kRounds);
  EXPECT_GT(acked.size(), 2000u);
}

}  // namespace
}  // namespace ila
