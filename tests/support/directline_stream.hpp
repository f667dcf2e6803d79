#pragma once
/// A blocking client of a Direct Line conversation's WebSocket stream (Beast) for the
/// tests: reads a frame at a time, each with a deadline.

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace parley::test {

/// A blocking WebSocket client of the stream (Beast), reading with a deadline.
class stream_client {
 public:
  explicit stream_client(const std::string& url) {
    // ws://host:port/path?query
    auto rest = url.substr(std::string("ws://").size());
    auto slash = rest.find('/');
    auto hostport = rest.substr(0, slash);
    target_ = rest.substr(slash);
    auto colon = hostport.find(':');
    boost::asio::ip::tcp::resolver resolver(ioc_);
    auto eps = resolver.resolve(hostport.substr(0, colon), hostport.substr(colon + 1));
    boost::asio::connect(ws_.next_layer(), eps);
    ws_.handshake(hostport, target_);
  }

  /// The next non-empty frame as JSON; null after `deadline` or when the socket closed.
  nlohmann::json next(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    boost::beast::flat_buffer buf;
    boost::system::error_code ec;
    bool done = false;
    ws_.async_read(buf, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(deadline);
    if (!done) {
      // Cancel the read and let its handler run before the buffer goes.
      ws_.next_layer().cancel();
      ioc_.restart();
      ioc_.run_for(std::chrono::seconds(1));
      closed_ = true;
      return nullptr;
    }
    if (ec) {
      closed_ = true;
      return nullptr;
    }
    auto text = boost::beast::buffers_to_string(buf.data());
    if (text.empty()) return next(deadline);
    return nlohmann::json::parse(text, nullptr, false);
  }

  /// Activities until `pred` holds for one (returned) or the deadline passes.
  nlohmann::json until(const std::function<bool(const nlohmann::json&)>& pred,
                       std::vector<nlohmann::json>* all = nullptr) {
    for (;;) {
      auto set = next();
      if (set.is_null()) return nullptr;
      for (const auto& a : set["activities"]) {
        if (all != nullptr) all->push_back(a);
        if (pred(a)) return a;
      }
    }
  }

  bool closed() const { return closed_; }
  void send(const std::string& text) { ws_.write(boost::asio::buffer(text)); }

 private:
  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_{ioc_};
  std::string target_;
  bool closed_ = false;
};

}  // namespace parley::test
