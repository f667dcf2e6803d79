// parley_outbound_bench [requests] [concurrency]: the outbound client's requests per
// second to a local HTTP server on loopback, over keep-alive connections and with a
// fresh connection per request (the server closes each after its answer, as the
// blocking client that actions used before did on its side). Prints one line per mode.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "src/http/outbound.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

/// A blocking Beast server, a thread per connection; `close_each` closes after every answer.
class server {
 public:
  explicit server(bool close_each)
      : close_each_(close_each), acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        tcp::socket s(ioc_);
        beast::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        conns_.emplace_back([this, s = std::move(s)]() mutable { serve(std::move(s)); });
      }
    });
  }
  ~server() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket s(ioc_);
    s.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  void serve(tcp::socket s) {
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(s, buf, req, ec);
      if (ec) break;
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"status":"shipped","tracking":"1Z999"})";
      res.keep_alive(!close_each_ && req.keep_alive());
      res.prepare_payload();
      bhttp::write(s, res, ec);
      if (ec || close_each_) break;
    }
    beast::error_code ec;
    s.shutdown(tcp::socket::shutdown_both, ec);
  }
  bool close_each_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::list<std::thread> conns_;
};

void run(bool close_each, int total, int concurrency) {
  server srv(close_each);
  parley::http::outbound_options o;
  o.egress = *parley::http::egress_policy::make({"127.0.0.1"});
  o.max_connections_per_host = static_cast<std::size_t>(concurrency);
  auto made = parley::http::outbound_client::make(std::move(o), nullptr);
  auto client = std::move(*made);
  std::string url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/v1/orders/AB123456";
  std::mutex m;
  std::condition_variable cv;
  int sent = 0, done = 0, failed = 0;
  std::function<void()> next;
  next = [&] {
    parley::http::outbound_request r;
    r.url = url;
    r.timeout = std::chrono::seconds(10);
    client->send(std::move(r), [&](parley::result<parley::http::client_response> res) {
      std::lock_guard<std::mutex> lock(m);
      ++done;
      if (!res) ++failed;
      if (sent < total) {
        ++sent;
        next();
      }
      if (done == total) cv.notify_all();
    });
  };
  auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(m);
    for (int i = 0; i < concurrency && sent < total; ++i) {
      ++sent;
      next();
    }
  }
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done == total; });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%-28s requests %d  concurrency %d  failed %d  %.0f requests/s  %.1f us/request  connections "
      "%zu\n",
      close_each ? "fresh connection each" : "keep-alive", total, concurrency, failed, total / s,
      s * 1e6 / total, client->connections_opened());
}

}  // namespace

int main(int argc, char** argv) {
  int total = argc > 1 ? std::atoi(argv[1]) : 20000;
  int concurrency = argc > 2 ? std::atoi(argv[2]) : 1;
  run(false, total, concurrency);
  run(true, total, concurrency);
}
