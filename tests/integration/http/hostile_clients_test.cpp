/// parley::http::server against clients that try to exhaust it, as an attacker would:
/// idle connections past the per-address cap and the connection cap, a connection that
/// never finishes its head. Real loopback sockets, port 0; clients bind 127.0.0.1 or
/// 127.0.0.2 (both loopback) to look like two hosts.

#include "src/http/http.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/registry.h>

namespace parley::http {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// Sends stdout (where the log lines go) to a file while it lives.
class stdout_capture {
 public:
  stdout_capture() : path_(testing::TempDir() + "hostile_clients_log.txt") {
    std::fflush(stdout);
    saved_ = ::dup(1);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::close(fd);
  }
  ~stdout_capture() { restore(); }
  /// Restores stdout and returns the log lines written meanwhile (events named http_*).
  std::vector<std::string> http_lines() {
    restore();
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
      if (l.find("\"event\":\"http_") != std::string::npos) lines.push_back(l);
    return lines;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

class hostile_clients : public ::testing::Test {
 protected:
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    if (srv_) srv_->stop(0ms);
  }

  void start(server_options o) {
    router r;
    r.add("GET", "/readyz", [](request&&, responder respond) {
      respond(response::json(200, "{\"status\":\"ready\"}"));
    });
    o.threads = 2;
    registry_ = std::make_shared<prometheus::Registry>();
    srv_ = std::make_unique<server>(o, std::move(r), registry_);
    ASSERT_TRUE(srv_->start());
  }

  static sockaddr_in ipv4(const char* ip, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
  }
  /// Connects `fd` to the server; true when it worked.
  bool connect_to_server(int fd) {
    auto to = ipv4("127.0.0.1", srv_->port());
    return ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  /// A client socket bound to `from` (e.g. "127.0.0.2") and connected to the server.
  int connect_from(const char* from) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    fds_.push_back(fd);
    auto local = ipv4(from, 0);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
    EXPECT_TRUE(connect_to_server(fd));
    return fd;
  }

  /// Sends one GET /readyz and reads the answer's head; "" when the server closed.
  static std::string readyz(int fd) {
    std::string req = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return "";
    std::string out;
    auto end = clock_type::now() + 5s;
    while (out.find("\"ready\"}") == std::string::npos && clock_type::now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[1024];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return "";
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  /// Waits until `count` of `fds` were closed by the server (EOF or reset), at most 5 s.
  static int await_closed(const std::vector<int>& fds, int count) {
    std::vector<bool> closed(fds.size(), false);
    int n = 0;
    auto end = clock_type::now() + 5s;
    while (n < count && clock_type::now() < end) {
      std::vector<pollfd> p;
      for (int fd : fds) p.push_back(pollfd{fd, POLLIN | POLLRDHUP, 0});
      if (::poll(p.data(), p.size(), 100) <= 0) continue;
      for (std::size_t k = 0; k < p.size(); ++k) {
        if (closed[k] || p[k].revents == 0) continue;
        char c;
        if (::recv(fds[k], &c, 1, MSG_DONTWAIT) <= 0) {
          closed[k] = true;
          ++n;
        }
      }
    }
    return n;
  }

  double metric(const std::string& family, const std::string& reason = "") {
    for (const auto& f : registry_->Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        bool match = reason.empty();
        for (const auto& l : m.label)
          if (l.name == "reason" && l.value == reason) match = true;
        if (!match) continue;
        return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
      }
    }
    return -1;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<server> srv_;
  std::vector<int> fds_;
};

TEST_F(hostile_clients, OneAddressPastItsCapLeavesOthersServed) {
  stdout_capture log;
  auto began = clock_type::now();
  server_options o;
  o.max_connections_per_address = 4;
  start(o);
  // 127.0.0.1 holds 3 x the cap of idle connections: the cap's worth stays open, the rest
  // is closed at once.
  std::vector<int> idle;
  for (int k = 0; k < 12; ++k) idle.push_back(connect_from("127.0.0.1"));
  EXPECT_EQ(await_closed(idle, 8), 8);
  EXPECT_EQ(metric("parley_http_connections_refused_total", "per_address"), 8);
  EXPECT_EQ(metric("parley_http_open_connections"), 4);

  // Meanwhile another address is answered at once, on new connections (below its own
  // cap: fewer than 4 open at a time) and on a kept-alive one.
  for (int k = 0; k < 3; ++k) {
    auto t0 = clock_type::now();
    int fd = connect_from("127.0.0.2");
    auto answer = readyz(fd);
    auto took = clock_type::now() - t0;
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_LT(took, 50ms);
    t0 = clock_type::now();
    answer = readyz(fd);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_LT(clock_type::now() - t0, 50ms);
  }
  // 127.0.0.1's idle connections still count against it: a new one is refused too.
  int more = connect_from("127.0.0.1");
  EXPECT_EQ(readyz(more), "");
  EXPECT_EQ(metric("parley_http_connections_refused_total", "per_address"), 9);

  srv_->stop(0ms);
  auto seconds = std::chrono::duration<double>(clock_type::now() - began).count();
  auto lines = log.http_lines();
  // Nine refusals, logged at most once a second.
  EXPECT_LE(static_cast<double>(lines.size()), 1 + seconds) << lines.size() << " lines";
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("http_connection_refused"), std::string::npos) << lines[0];
}

TEST_F(hostile_clients, PastTheConnectionCapNewConnectionsCloseAtOnce) {
  server_options o;
  o.max_connections = 3;
  o.max_connections_per_address = 0;
  start(o);
  for (int k = 0; k < 3; ++k) {
    int fd = connect_from("127.0.0.1");
    EXPECT_EQ(readyz(fd).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);  // open and kept alive
  }
  int fourth = connect_from("127.0.0.2");
  EXPECT_EQ(await_closed({fourth}, 1), 1);
  EXPECT_EQ(metric("parley_http_connections_refused_total", "max_connections"), 1);
  EXPECT_EQ(metric("parley_http_open_connections"), 3);
  EXPECT_EQ(metric("parley_http_connections_total"), 4);
}

TEST_F(hostile_clients, AConnectionWithoutAHeadInTimeIsClosed) {
  server_options o;
  o.header_timeout = 200ms;
  start(o);
  int slow = connect_from("127.0.0.1");
  ASSERT_EQ(::send(slow, "GET /readyz HT", 14, MSG_NOSIGNAL), 14);
  // A connection that sent its head in time keeps the (60 s) idle timeout.
  int quick = connect_from("127.0.0.1");
  EXPECT_EQ(readyz(quick).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);

  auto t0 = clock_type::now();
  EXPECT_EQ(await_closed({slow}, 1), 1);
  auto took = clock_type::now() - t0;
  EXPECT_LT(took, 2s);
  EXPECT_EQ(metric("parley_http_connections_refused_total", "header_timeout"), 1);
  EXPECT_EQ(readyz(quick).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(metric("parley_http_open_connections"), 1);
}

/// Lowers RLIMIT_NOFILE so that no new descriptor can be made while it lives.
class descriptors_exhausted {
 public:
  descriptors_exhausted() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int lowest_free = ::dup(0);  // descriptors are made lowest first
    ::close(lowest_free);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(lowest_free);
    ::setrlimit(RLIMIT_NOFILE, &low);
  }
  ~descriptors_exhausted() { restore(); }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

TEST_F(hostile_clients, AcceptBacksOffWhileDescriptorsRunOut) {
  stdout_capture log;
  start(server_options{});
  // The client's socket exists before the limit drops: connect needs no new descriptor,
  // the server's accept does (EMFILE).
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  fds_.push_back(client);
  {
    descriptors_exhausted exhausted;
    ASSERT_TRUE(connect_to_server(client));
    // A little over a second of failing accepts: the backoff (10 ms doubling) retries
    // about seven times, where a spinning loop would fail hundreds of thousands of times.
    pollfd p{client, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 1300), 0);  // nothing accepted, nothing answered
  }
  // Descriptors back: the next retry (at most a second later) accepts the connection.
  EXPECT_EQ(readyz(client).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  srv_->stop(0ms);
  auto lines = log.http_lines();
  std::vector<std::string> failed;
  for (const auto& l : lines)
    if (l.find("http_accept_failed") != std::string::npos) failed.push_back(l);
  ASSERT_GE(failed.size(), 1u);
  EXPECT_LE(failed.size(), 3u);  // once a second at most
  EXPECT_NE(failed[0].find("retry_ms"), std::string::npos) << failed[0];
  if (failed.size() >= 2) {
    auto at = failed[1].find("\"suppressed\":\"");
    ASSERT_NE(at, std::string::npos) << failed[1];
    EXPECT_LE(std::stoi(failed[1].substr(at + 14)), 20) << failed[1];
  }
}

TEST(max_connections_for, LeavesRoomForOtherDescriptors) {
  EXPECT_EQ(max_connections_for(20000), 18000u);
  EXPECT_EQ(max_connections_for(1024), 768u);
  EXPECT_EQ(max_connections_for(100), 16u);
  EXPECT_LT(default_max_connections(), 1u << 20);
}

}  // namespace
}  // namespace parley::http
