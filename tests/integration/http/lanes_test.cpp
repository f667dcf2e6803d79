/// parley::http::server on io::lanes (server_options::lanes), as parleyd runs it: the
/// handlers run on the lanes, a stop closes the connections but leaves the lanes
/// running for whoever else uses them, and a responder called after the stop is
/// harmless.

#include "src/http/http.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include <prometheus/registry.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "src/io/lanes.hpp"

namespace parley::http {
namespace {

using namespace std::chrono_literals;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

/// Sends `req`, then reads until the response's body (Content-Length) is complete,
/// the server closes, or 5 s pass.
std::string exchange(int fd, const std::string& req) {
  EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string out;
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    auto head = out.find("\r\n\r\n");
    auto cl = out.find("Content-Length: ");
    if (head != std::string::npos && cl != std::string::npos &&
        out.size() >= head + 4 + std::stoul(out.substr(cl + 16)))
      return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out + "<closed>";
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool closed_by_peer(int fd) {
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[256];
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

TEST(http_server_on_lanes, HandlersRunOnTheLanesAndStopLeavesTheLanesRunning) {
  io::lanes lanes(2);
  lanes.start();
  responder parked;
  std::promise<void> parked_set;
  router r;
  r.add("GET", "/lane", [](request&&, responder respond) {
    respond(response::text(200, std::to_string(io::lanes::current())));
  });
  r.add("GET", "/later", [&](request&&, responder respond) {
    parked = respond;
    parked_set.set_value();
  });
  server_options o;
  o.lanes = &lanes;
  auto srv = std::make_unique<server>(o, std::move(r), std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(srv->start());

  // Connections are dealt to the lanes round robin; every handler runs on one.
  bool seen[2] = {false, false};
  for (int k = 0; k < 4; ++k) {
    int fd = connect_to(srv->port());
    auto res = exchange(fd, "GET /lane HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(res.find("200 OK"), std::string::npos) << res;
    auto lane = std::stoi(res.substr(res.find("\r\n\r\n") + 4));
    ASSERT_TRUE(lane == 0 || lane == 1) << res;
    seen[lane] = true;
    ::close(fd);
  }
  EXPECT_TRUE(seen[0] && seen[1]);

  // A request left unanswered, then the stop: the connection closes, the server goes.
  int fd = connect_to(srv->port());
  const std::string later = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, later.data(), later.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(later.size()));
  ASSERT_EQ(parked_set.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(srv->in_flight(), 1u);
  srv->stop(0ms);
  srv.reset();
  EXPECT_TRUE(closed_by_peer(fd));
  ::close(fd);
  parked(response::text(200, "too late"));  // after the stop: ignored, no crash

  // The lanes still run handlers for others.
  for (std::size_t k = 0; k < lanes.size(); ++k) {
    std::promise<int> ran;
    boost::asio::post(lanes.at(k), [&ran] { ran.set_value(io::lanes::current()); });
    auto f = ran.get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(f.get(), static_cast<int>(k));
  }
  lanes.stop();
}

}  // namespace
}  // namespace parley::http
