#pragma once
/// Helpers for integration tests: environment lookup that fails
/// loudly, polling with a deadline, and a private redis-server process.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace parley::store::testing {

/// The value of `name`, or "" after recording a failure that says how to run
/// the tests with servers. Callers then stop the test (ASSERT on non-empty).
inline std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << name << " is not set: integration tests need the Redis and Postgres "
                  << "servers that scripts/test starts. Run them with scripts/test.";
    return {};
  }
  return v;
}

/// Polls `cond` every few milliseconds until it holds or `deadline` passes.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

/// A unique scratch name for this process and test ("store_<pid>_<n>").
inline std::string unique_name(const std::string& stem) {
  // The pid alone repeats across runs against a long-lived database (pids wrap), so
  // the process's start time (microseconds, hex) is part of the name too.
  static const std::string process = [] {
    char buf[32];
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    std::snprintf(buf, sizeof buf, "%x_%llx", static_cast<unsigned>(::getpid()),
                  static_cast<unsigned long long>(us));
    return std::string(buf);
  }();
  static std::atomic<int> counter{0};
  return stem + "_" + process + "_" + std::to_string(++counter);
}

/// A temp folder removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "parley-store-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A redis-server child process on a Unix socket inside `dir`, started with
/// posix_spawn and stopped by its PID.
class redis_process {
 public:
  /// `extra`: more redis-server options, e.g. {"--requirepass", "secret"}.
  explicit redis_process(std::filesystem::path dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {}
  ~redis_process() { stop(); }

  std::string socket_path() const { return (dir_ / "redis.sock").string(); }
  std::string url() const { return "unix://" + socket_path(); }

  /// Starts the server and waits (with a deadline) until its socket accepts.
  bool start() {
    std::string sock = socket_path();
    std::string dir = dir_.string();
    std::string log = (dir_ / "redis.log").string();
    std::vector<const char*> argv = {"redis-server", "--port",           "0",        "--unixsocket",
                                     sock.c_str(),   "--unixsocketperm", "700",      "--dir",
                                     dir.c_str(),    "--save",           "",         "--appendonly",
                                     "no",           "--logfile",        log.c_str()};
    for (const auto& e : extra_) argv.push_back(e.c_str());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, const_cast<char**>(argv.data()),
                       environ) != 0) {
      pid_ = -1;
      return false;
    }
    return eventually([&] { return accepts(); });
  }

  /// SIGTERM, then reap the child; returns once the process is gone.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  bool accepts() const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string sock = socket_path();
    if (sock.size() >= sizeof addr.sun_path) std::abort();
    sock.copy(addr.sun_path, sock.size());
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  std::filesystem::path dir_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

/// A private PostgreSQL cluster in `dir` (initdb once, then pg_ctl start and
/// stop), listening only on a Unix socket in `dir`. As root it runs the server
/// through `runuser -u postgres`, since PostgreSQL refuses to run as root.
class postgres_process {
 public:
  explicit postgres_process(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~postgres_process() { stop(); }

  std::string url() const {
    return "postgresql:///postgres?host=" + dir_.string() + "&user=postgres";
  }

  /// Initialises the cluster on first use and starts the server; pg_ctl -w
  /// returns once it accepts connections. Output goes to files in `dir`.
  bool start() {
    if (!initialised_) {
      std::filesystem::permissions(dir_, std::filesystem::perms::owner_all |
                                             std::filesystem::perms::group_exec |
                                             std::filesystem::perms::others_exec);
      if (::geteuid() == 0 && !sh("chown postgres:postgres '" + dir_.string() + "'")) return false;
      if (!sh(as_postgres() + "'" + bin() + "/initdb' -D '" + data() +
              "' -A trust -U postgres --no-sync -E UTF8 >'" + dir_.string() + "/initdb.log' 2>&1"))
        return false;
      initialised_ = true;
    }
    running_ = sh(as_postgres() + "'" + bin() + "/pg_ctl' -D '" + data() + "' -l '" +
                  dir_.string() + "/postgres.log' -w -t 60 -o \"-k " + dir_.string() +
                  " -c listen_addresses='' -c fsync=off\" start >/dev/null 2>&1");
    return running_;
  }

  /// Fast shutdown: the server closes every client connection and exits.
  void stop() {
    if (!running_) return;
    sh(as_postgres() + "'" + bin() + "/pg_ctl' -D '" + data() +
       "' -m fast -w stop >/dev/null 2>&1");
    running_ = false;
  }

 private:
  static bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
  static std::string as_postgres() { return ::geteuid() == 0 ? "runuser -u postgres -- " : ""; }
  std::string data() const { return (dir_ / "data").string(); }
  /// The newest /usr/lib/postgresql/<version>/bin.
  static std::string bin() {
    std::string best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      int v = std::atoi(e.path().filename().c_str());
      if (v > best_version && std::filesystem::exists(e.path() / "bin" / "pg_ctl")) {
        best_version = v;
        best = (e.path() / "bin").string();
      }
    }
    return best;
  }

  std::filesystem::path dir_;
  bool initialised_ = false;
  bool running_ = false;
};

}  // namespace parley::store::testing
