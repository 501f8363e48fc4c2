// Subprocess: starts a program with fork/exec, its stdout and stderr sent to
// files, and stops it (SIGKILL) when destroyed if it still runs. RunCommand
// runs a program to completion and returns its exit code and output.
//
// Thread-safety: one owner per Subprocess.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ila::testing {

inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Subprocess {
 public:
  // Starts argv[0] (a path) with `argv`; output goes to `out_path`/`err_path`.
  Subprocess(std::vector<std::string> argv, const std::string& out_path,
             const std::string& err_path)
      : out_path_(out_path), err_path_(err_path) {
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0) _exit(126);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Subprocess() {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (exited_ || pid_ <= 0) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = status;
    }
    return !exited_;
  }
  void Signal(int sig) {
    if (running()) kill(pid_, sig);
  }
  // Waits for exit; returns the raw wait status.
  int Wait() {
    if (!exited_ && pid_ > 0) {
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exited_ = true;
      status_ = status;
    }
    return status_;
  }
  std::string out() const { return ReadFileOrEmpty(out_path_); }
  std::string err() const { return ReadFileOrEmpty(err_path_); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_path_, err_path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};

// Runs `argv` to completion; `scratch` is a directory for its output files.
inline CommandResult RunCommand(std::vector<std::string> argv,
                                const std::string& scratch) {
  Subprocess p(std::move(argv), scratch + "/cmd.out", scratch + "/cmd.err");
  int status = p.Wait();
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = p.out();
  r.err = p.err();
  return r;
}

// Runs a shell command line and returns its standard output.
inline std::string ShellOutput(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  return out;
}

}  // namespace ila::testing
