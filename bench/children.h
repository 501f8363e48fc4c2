// Child processes the benchmarks start and stop: ila-server (the built
// binary) and etcd (Debian's etcd-server), each on loopback with a data
// directory of its own; killed when destroyed.
//
// Thread-safety: one owner thread each.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace ila::bench {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Resident memory of a process, in bytes (0 when unknown).
inline int64_t RssOf(pid_t pid) {
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      int64_t kb = 0;
      (void)absl::SimpleAtoi(
          absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kb);
      return kb * 1024;
    }
  }
  return 0;
}

// CPU time (user + system) a process has used so far, in seconds; 0 when
// unknown. `pid` 0: this process.
inline double CpuSecondsOf(pid_t pid) {
  const std::string stat = ReadFile(
      pid == 0 ? "/proc/self/stat" : absl::StrCat("/proc/", pid, "/stat"));
  // Fields after the command name (which may hold spaces), from "state":
  // utime and stime are the 12th and 13th.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<absl::string_view> f = absl::StrSplit(
      absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
  int64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// CPU used by a server process and by this process (the load generator)
// between construction and Stop(), per operation, in microseconds.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server)
      : server_(server),
        server_start_(CpuSecondsOf(server)),
        self_start_(CpuSecondsOf(0)) {}
  struct PerOp {
    double server_us = 0, generator_us = 0;
  };
  PerOp Stop(double operations) const {
    if (operations <= 0) return {};
    return {(CpuSecondsOf(server_) - server_start_) * 1e6 / operations,
            (CpuSecondsOf(0) - self_start_) * 1e6 / operations};
  }

 private:
  pid_t server_;
  double server_start_, self_start_;
};

// ila-server as a child process; killed when destroyed. `extra` flags
// are appended.
class Server {
 public:
  Server(const std::string& bin, const std::string& dir,
         const std::vector<std::string>& extra = {}) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string port_file = dir + "/port";
    std::cout.flush();
    fflush(nullptr);  // the child must not inherit unwritten output
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
      freopen((dir + "/server.log").c_str(), "w", stderr);
      freopen("/dev/null", "w", stdout);
      std::vector<std::string> args = {bin,           "--listen",
                                       "127.0.0.1:0", "--data-dir",
                                       dir + "/db",   "--port-file",
                                       port_file,     "--log-level",
                                       "warn",        "--max-apply-operations",
                                       "10000"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline && port_ == 0) {
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(port_file)),
                             &port_);
      if (port_ == 0) absl::SleepFor(absl::Milliseconds(10));
    }
    if (port_ == 0) {
      std::cerr << "bench: ila-server did not start: "
                << ReadFile(dir + "/server.log") << "\n";
      exit(1);
    }
  }
  ~Server() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // Resident memory in bytes.
  int64_t Rss() const { return RssOf(pid_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A free loopback TCP port (bound and released: another process could
// take it in between, which the caller then sees as a failed start).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

// etcd (a single member, as shipped: durable writes) on loopback ports of
// its own with a data directory of its own.
class Etcd {
 public:
  Etcd(const std::string& bin, const std::string& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    client_port_ = FreePort();
    const int peer_port = FreePort();
    const std::string client = absl::StrCat("http://127.0.0.1:", client_port_);
    const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port);
    std::cout.flush();
    fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
      freopen((dir + "/etcd.log").c_str(), "w", stderr);
      freopen("/dev/null", "w", stdout);
      execl(bin.c_str(), bin.c_str(), "--name", "bench", "--data-dir",
            (dir + "/data").c_str(), "--listen-client-urls", client.c_str(),
            "--advertise-client-urls", client.c_str(), "--listen-peer-urls",
            peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(),
            "--initial-cluster", ("bench=" + peer).c_str(), "--log-level",
            "warn", static_cast<char*>(nullptr));
      _exit(127);
    }
    log_ = dir + "/etcd.log";
  }
  ~Etcd() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string address() const {
    return absl::StrCat("127.0.0.1:", client_port_);
  }
  std::string log() const { return ReadFile(log_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int client_port_ = 0;
  std::string log_;
};

}  // namespace ila::bench
