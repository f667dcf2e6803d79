#pragma once
/// Helpers for the store integration tests: environment lookup that fails
/// loudly, polling with a deadline, and a private redis-server process.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

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
  static int counter = 0;
  return stem + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

/// A temp folder removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "parley-store-test-XXXXXX").string();
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
  explicit redis_process(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~redis_process() { stop(); }

  std::string socket_path() const { return (dir_ / "redis.sock").string(); }
  std::string url() const { return "unix://" + socket_path(); }

  /// Starts the server and waits (with a deadline) until its socket accepts.
  bool start() {
    std::string sock = socket_path();
    std::string dir = dir_.string();
    std::string log = (dir_ / "redis.log").string();
    const char* argv[] = {"redis-server", "--port", "0", "--unixsocket", sock.c_str(),
                          "--unixsocketperm", "700", "--dir", dir.c_str(), "--save", "",
                          "--appendonly", "no", "--logfile", log.c_str(), nullptr};
    if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
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
  pid_t pid_ = -1;
};

}  // namespace parley::store::testing
