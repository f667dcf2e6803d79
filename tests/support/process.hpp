#pragma once
/// A child process for tests: started with posix_spawn with extra environment
/// variables, its stdout read line by line through a pipe, stopped by PID.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace parley::testing {

class child_process {
 public:
  /// Starts `argv[0]` with the parent's environment plus `env` (which wins).
  /// stdout and stderr both go to the pipe read by read_line().
  child_process(std::vector<std::string> argv, const std::map<std::string, std::string>& env) {
    std::map<std::string, std::string> merged;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : env) merged[k] = v;
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    for (auto& s : argv) args.push_back(s.data());
    args.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    if (::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
  }

  ~child_process() {
    kill(SIGKILL);
    wait_exit(std::chrono::seconds(10));
    if (out_ >= 0) ::close(out_);
  }

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  /// Every line read so far.
  const std::vector<std::string>& lines() const { return lines_; }

  /// Reads lines until one satisfies `pred` (returned) or `deadline` passes / EOF.
  std::optional<std::string> wait_for_line(
      const std::function<bool(const std::string&)>& pred,
      std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    for (std::size_t i = scanned_; i < lines_.size(); ++i) {
      if (pred(lines_[i])) {
        scanned_ = i + 1;
        return lines_[i];
      }
    }
    scanned_ = lines_.size();
    if (eof_) return std::nullopt;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
      char buf[4096];
      auto n = ::read(out_, buf, sizeof buf);
      if (n <= 0) {  // EOF: the process closed its output
        eof_ = true;
        return std::nullopt;
      }
      partial_.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = partial_.find('\n')) != std::string::npos) {
        lines_.push_back(partial_.substr(0, nl));
        partial_.erase(0, nl + 1);
        if (pred(lines_.back())) {
          scanned_ = lines_.size();
          return lines_.back();
        }
      }
      scanned_ = lines_.size();
    }
    return std::nullopt;
  }

  /// Reads the rest of the output until EOF (or the deadline).
  void drain(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    wait_for_line([](const std::string&) { return false; }, deadline);
  }

  void kill(int sig) {
    if (pid_ > 0 && !exited_) ::kill(pid_, sig);
  }

  /// Waits for the process to end; returns its exit code, 128+signal when killed,
  /// or nullopt when it did not end in time.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline) {
    if (pid_ <= 0) return std::nullopt;
    if (exited_) return code_;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return code_;
      }
      if (std::chrono::steady_clock::now() >= end) return std::nullopt;
      // Reading the pipe keeps a chatty child from blocking on a full pipe.
      if (eof_)
        ::usleep(5000);
      else
        wait_for_line([](const std::string&) { return false; }, std::chrono::milliseconds(20));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string partial_;
  std::vector<std::string> lines_;
  std::size_t scanned_ = 0;
  bool exited_ = false;
  bool eof_ = false;
  int code_ = 0;
};

/// What a program run to its end printed and returned.
struct finished_run {
  std::optional<int> code;  ///< nullopt: it did not end in time (and was killed)
  std::string output;       ///< stdout and stderr, one line per line
};

/// Runs `argv` (with `env` over the parent's environment) until it ends, reading its
/// output for at most `deadline`, then up to 10 s more for its exit: a client script of
/// an e2e test.
inline finished_run run_to_end(std::vector<std::string> argv,
                               const std::map<std::string, std::string>& env,
                               std::chrono::milliseconds deadline) {
  child_process p(std::move(argv), env);
  p.drain(deadline);
  finished_run r;
  r.code = p.wait_exit(std::chrono::seconds(10));
  for (const auto& l : p.lines()) r.output += l + "\n";
  return r;
}

}  // namespace parley::testing
