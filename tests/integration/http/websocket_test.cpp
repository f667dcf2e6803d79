/// The HTTP server's upgrade routes over loopback with Beast's WebSocket client: an
/// accepted socket echoes, frames sent before the handshake completes wait for it,
/// a rejected upgrade gets its HTTP answer, other requests on the prefix take the plain
/// routes, a server-side close reaches the client, and stop() closes open sockets
/// (on_close runs) on own threads and on io::lanes.

#include "src/http/http.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/registry.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "src/http/client.hpp"
#include "src/io/lanes.hpp"

namespace parley::http {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
namespace bws = boost::beast::websocket;

/// What the server side saw.
struct events {
  std::mutex m;
  std::condition_variable cv;
  int closed = 0;
  websocket last;
  void on_close() {
    std::lock_guard<std::mutex> lock(m);
    ++closed;
    cv.notify_all();
  }
  bool wait_closed(int n) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, 10s, [&] { return closed >= n; });
  }
};

router routes(const std::shared_ptr<events>& ev) {
  router r;
  r.add_prefix("GET", "/ws/", "/ws/{x}", [](request&& req, responder reply) {
    reply(response::text(200, "plain " + req.path));
  });
  r.add_upgrade("/ws/", "/ws/{x}", [ev](request&& req, upgrade up) {
    if (req.path == "/ws/refuse") return up.reject(response::error(403, "forbidden", "no"));
    websocket_handlers h;
    auto holder = std::make_shared<websocket>();
    h.on_message = [holder](std::string m) {
      if (m == "close") return holder->close();
      holder->send_text("echo:" + m);
    };
    h.on_close = [ev, holder] {
      *holder = websocket();  // breaks the cycle handle -> handlers -> handle
      ev->on_close();
    };
    *holder = up.accept(std::move(h));
    holder->send_text("hello");  // before the handshake has completed
    std::lock_guard<std::mutex> lock(ev->m);
    ev->last = *holder;
  });
  return r;
}

class client {
 public:
  explicit client(uint16_t port, const std::string& target = "/ws/a") {
    net::ip::tcp::resolver resolver(ioc_);
    net::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.handshake("127.0.0.1", target);
  }
  /// The next message; empty with `closed()` after the server closed.
  std::string read() {
    boost::beast::flat_buffer buf;
    boost::system::error_code ec;
    ws_.read(buf, ec);
    if (ec) {
      closed_ = true;
      return {};
    }
    return boost::beast::buffers_to_string(buf.data());
  }
  void write(const std::string& s) { ws_.write(net::buffer(s)); }
  bool closed() const { return closed_; }

 private:
  net::io_context ioc_;
  bws::stream<net::ip::tcp::socket> ws_{ioc_};
  bool closed_ = false;
};

TEST(HttpWebSocket, AcceptedSocketsEchoAndCloseAndRejectedOnesGetTheirAnswer) {
  auto ev = std::make_shared<events>();
  server srv(server_options{}, routes(ev), std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(srv.start());

  client c(srv.port());
  EXPECT_EQ(c.read(), "hello");
  c.write("");
  EXPECT_EQ(c.read(), "echo:");
  c.write("ping");
  EXPECT_EQ(c.read(), "echo:ping");
  c.write("close");
  EXPECT_EQ(c.read(), "");
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(ev->wait_closed(1));
  {
    std::lock_guard<std::mutex> lock(ev->m);
    EXPECT_FALSE(ev->last.open());
  }

  // A rejected upgrade is an HTTP answer; a request without Upgrade takes the plain route.
  EXPECT_THROW(client(srv.port(), "/ws/refuse"), boost::system::system_error);
  client_request plain;
  plain.url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/ws/x";
  auto res = fetch(plain);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "plain /ws/x");
  srv.stop(1s);
}

/// Opens two sockets, stops the server, and checks both closed promptly on both sides.
void stop_closes_open_sockets(bool lanes) {
  std::unique_ptr<io::lanes> l;  // outlives what runs on it
  auto ev = std::make_shared<events>();
  server_options o;
  if (lanes) {
    l = std::make_unique<io::lanes>(2);
    l->start();
    o.lanes = l.get();
  }
  auto srv = std::make_unique<server>(o, routes(ev), std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(srv->start());
  client a(srv->port()), b(srv->port());
  EXPECT_EQ(a.read(), "hello");
  EXPECT_EQ(b.read(), "hello");
  auto t0 = std::chrono::steady_clock::now();
  srv->stop(100ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "no hard stop needed";
  EXPECT_TRUE(ev->wait_closed(2));
  EXPECT_EQ(a.read(), "");
  EXPECT_TRUE(a.closed());
  srv.reset();
  ev.reset();
  if (l) l->stop();
}

TEST(HttpWebSocket, StopClosesOpenSocketsOnOwnThreads) { stop_closes_open_sockets(false); }

TEST(HttpWebSocket, StopClosesOpenSocketsOnLanes) { stop_closes_open_sockets(true); }

}  // namespace
}  // namespace parley::http
