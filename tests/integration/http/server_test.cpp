/// parley::http::server over loopback sockets with a raw client, for what the parser
/// unit tests cannot see: pipelining across reads, error answers and the connection
/// closing after them, idle timeouts, in-flight counting.

#include "src/http/http.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <prometheus/registry.h>

namespace parley::http {
namespace {

using namespace std::chrono_literals;

class http_server : public ::testing::Test {
 protected:
  void SetUp() override { start(60000ms); }
  void TearDown() override { stop(); }

  void start(std::chrono::milliseconds idle) {
    router r;
    r.add("POST", "/echo", [](request&& req, responder respond) {
      respond(response::text(200, req.method + " " + req.target + " " + req.body));
    });
    r.add("GET", "/hello",
          [](request&&, responder respond) { respond(response::text(200, "hi")); });
    r.add("GET", "/later", [this](request&&, responder respond) {
      std::lock_guard<std::mutex> lock(parked_mutex_);
      parked_ = respond;
    });
    server_options o;
    o.threads = 2;
    o.max_body_bytes = 64;
    o.idle_timeout = idle;
    srv_ = std::make_unique<server>(o, std::move(r), std::make_shared<prometheus::Registry>());
    ASSERT_TRUE(srv_->start());
  }
  void stop() {
    if (srv_) srv_->stop(0ms);
    srv_.reset();
  }

  int connect_client() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(srv_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  static void send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      off += static_cast<std::size_t>(n);
    }
  }
  /// Everything the server sends until it closes, or until `deadline`.
  static std::string read_until_close(int fd, std::chrono::milliseconds deadline = 5000ms) {
    std::string out;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return out + "<closed>";
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  /// Reads until `count` responses (each with Content-Length) arrived.
  static std::string read_responses(int fd, int count) {
    std::string out;
    auto complete = [&] {
      std::size_t pos = 0;
      for (int k = 0; k < count; ++k) {
        auto head_end = out.find("\r\n\r\n", pos);
        if (head_end == std::string::npos) return false;
        auto cl = out.find("Content-Length: ", pos);
        if (cl == std::string::npos || cl > head_end) return false;
        pos = head_end + 4 + std::stoul(out.substr(cl + 16));
        if (pos > out.size()) return false;
      }
      return true;
    };
    auto end = std::chrono::steady_clock::now() + 5s;
    while (!complete() && std::chrono::steady_clock::now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  static int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
  }

  std::unique_ptr<server> srv_;
  std::mutex parked_mutex_;
  responder parked_;  // guarded by parked_mutex_
};

TEST_F(http_server, PipelinedRequestsAreAnsweredInOrder) {
  int fd = connect_client();
  send_all(fd,
           "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
           "GET /hello HTTP/1.1\r\n\r\n"
           "POST /echo?q=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\ntwo\r\n0\r\nT: "
           "1\r\n\r\n");
  auto out = read_responses(fd, 3);
  auto a = out.find("POST /echo one");
  auto b = out.find("\r\n\r\nhi");
  auto c = out.find("POST /echo?q=1 two");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(c, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(count(out, "Connection: close"), 0);
  // Split across writes, byte by byte at the start: still one request.
  send_all(fd, "P");
  std::this_thread::sleep_for(20ms);
  send_all(fd, "OST /echo HTTP/1.1\r\nContent-");
  std::this_thread::sleep_for(20ms);
  send_all(fd, "Length: 4\r\n\r\nfour");
  EXPECT_NE(read_responses(fd, 1).find("POST /echo four"), std::string::npos);
  ::close(fd);
}

TEST_F(http_server, MalformedRequestsGetTheirStatusAndTheConnectionCloses) {
  struct bad_case {
    std::string input, status, body;
  };
  const bad_case cases[] = {
      {"POST /echo HTTP/1.1\r\nContent-Length: 65\r\n\r\n", "HTTP/1.1 413 Payload Too Large",
       R"({"error":{"code":"body_too_large","message":"request body exceeds 64 bytes"}})"},
      // Exactly 16 KiB and no line end: the server reads every byte before it fails,
      // so its close sends FIN, not RST (unread data would reset the answer away).
      {"GET /hello HTTP/1.1\r\nX: " + std::string(16384 - 21 - 3, 'a'),
       "HTTP/1.1 431 Request Header Fields Too Large",
       R"({"error":{"code":"headers_too_large","message":"request headers exceed 16 KiB"}})"},
      {"GET /hello HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 400 Bad Request",
       R"({"error":{"code":"bad_request","message":"malformed HTTP request: bad obs-fold"}})"},
      {"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       "HTTP/1.1 400 Bad Request",
       R"({"error":{"code":"bad_request","message":"malformed HTTP request: bad Content-Length"}})"},
      {"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 Not Implemented",
       R"x({"error":{"code":"not_implemented","message":"Transfer-Encoding 'gzip' is not supported (only chunked)"}})x"},
      {"GET /nowhere HTTP/1.0\r\n\r\n", "HTTP/1.1 404 Not Found",
       R"({"error":{"code":"not_found","message":"no route for /nowhere"}})"},
  };
  for (const auto& c : cases) {
    int fd = connect_client();
    send_all(fd, c.input);
    auto out = read_until_close(fd);
    EXPECT_EQ(out.substr(0, c.status.size()), c.status) << out.substr(0, 200);
    EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos) << out.substr(0, 200);
    EXPECT_EQ(out.find("X-Request-Id: \r\n"), std::string::npos) << out.substr(0, 200);
    EXPECT_NE(out.find("\r\n\r\n" + c.body + "<closed>"), std::string::npos) << out.substr(0, 300);
    ::close(fd);
  }
}

TEST_F(http_server, ARequestCutShortGets400) {
  int fd = connect_client();
  send_all(fd, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  ::shutdown(fd, SHUT_WR);
  auto out = read_until_close(fd);
  EXPECT_NE(out.find("400 Bad Request"), std::string::npos) << out;
  EXPECT_NE(out.find("malformed HTTP request: partial message"), std::string::npos) << out;
  ::close(fd);
}

TEST_F(http_server, IdleConnectionsCloseAfterTheIdleTimeout) {
  stop();
  start(200ms);
  int fd = connect_client();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(read_until_close(fd), "<closed>");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 3s);
  ::close(fd);

  // After a request, the keep-alive wait is the same.
  fd = connect_client();
  send_all(fd, "GET /hello HTTP/1.1\r\n\r\n");
  auto out = read_until_close(fd);
  EXPECT_NE(out.find("\r\n\r\nhi<closed>"), std::string::npos) << out;
  ::close(fd);
}

TEST_F(http_server, AParkedRequestIsInFlightAndNotTimedOut) {
  stop();
  start(200ms);
  int fd = connect_client();
  send_all(fd, "GET /later HTTP/1.1\r\n\r\n");
  auto end = std::chrono::steady_clock::now() + 5s;
  while (srv_->in_flight() == 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(srv_->in_flight(), 1u);
  // Longer than the idle timeout: a handler's work has no deadline.
  std::this_thread::sleep_for(500ms);
  {
    std::lock_guard<std::mutex> lock(parked_mutex_);
    parked_(response::text(200, "late"));
  }
  EXPECT_NE(read_responses(fd, 1).find("\r\n\r\nlate"), std::string::npos);
  end = std::chrono::steady_clock::now() + 5s;
  while (srv_->in_flight() != 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(srv_->in_flight(), 0u);
  ::close(fd);
}

}  // namespace
}  // namespace parley::http
