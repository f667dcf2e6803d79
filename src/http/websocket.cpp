// WebSocket sessions (Beast) behind http::websocket: one per upgraded connection,
// touched only on its connection's I/O thread.

#include <atomic>
#include <deque>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket.hpp>

#include "src/http/websocket_session.hpp"

namespace parley::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bws = boost::beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace detail {

class ws_session : public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(net::any_io_executor ex, websocket_handlers h, std::string server_header)
      : ex_(std::move(ex)), h_(std::move(h)), server_header_(std::move(server_header)) {}

  void send(std::string text) {
    net::dispatch(ex_, [self = shared_from_this(), text = std::move(text)]() mutable {
      if (self->closing_ || self->closed_) return;
      self->queue_.push_back(std::move(text));
      self->flush();
    });
  }

  void close() {
    net::dispatch(ex_, [self = shared_from_this()] {
      if (self->closed_) return;
      self->closing_ = true;
      if (!self->ws_) return;  // closed once the hand-over happens
      if (!self->handshaken_) return self->finish();
      self->flush();
    });
  }

  bool open() const { return open_.load(std::memory_order_acquire); }

  void start(tcp::socket&& socket, const request& req, std::shared_ptr<void> hold) {
    hold_ = std::move(hold);
    if (closed_ || closing_) {
      error_code ignored;
      socket.close(ignored);
      return finish();
    }
    ws_.emplace(std::move(socket));
    ws_->set_option(bws::stream_base::timeout::suggested(beast::role_type::server));
    ws_->set_option(bws::stream_base::decorator(
        [server = server_header_](bws::response_type& res) { res.set("Server", server); }));
    handshake_.method_string(req.method);
    handshake_.target(req.target);
    handshake_.version(11);
    for (const auto& [k, v] : req.headers) handshake_.insert(k, v);
    ws_->async_accept(handshake_, [self = shared_from_this()](error_code ec) {
      if (ec || self->closed_) return self->finish();
      self->handshaken_ = true;
      self->read();
      self->flush();
    });
  }

  void abort() {
    if (ws_) {
      error_code ignored;
      beast::get_lowest_layer(*ws_).close(ignored);
    }
    finish();
  }

 private:
  void read() {
    ws_->async_read(in_, [self = shared_from_this()](error_code ec, std::size_t) {
      // closed_: a read that completed after the socket closed (its stream may be gone).
      if (ec || self->closed_) return self->finish();
      std::string m = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      if (self->h_.on_message) self->h_.on_message(std::move(m));
      // The handler may have closed it.
      if (!self->closed_) self->read();
    });
  }

  void flush() {
    if (!handshaken_ || writing_ || closed_) return;
    if (queue_.empty()) {
      if (closing_ && !close_sent_) {
        close_sent_ = true;
        // The pending read ends once the client answers the close (or times out).
        ws_->async_close(bws::close_code::normal, [self = shared_from_this()](error_code ec) {
          if (ec) self->finish();
        });
      }
      return;
    }
    writing_ = true;
    ws_->text(true);
    ws_->async_write(net::buffer(queue_.front()),
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       self->writing_ = false;
                       // A write that completed after the socket closed: finish() has
                       // emptied the queue already.
                       if (ec || self->closed_) return self->finish();
                       self->queue_.pop_front();
                       self->flush();
                     });
  }

  void finish() {
    if (closed_) return;
    closed_ = true;
    open_.store(false, std::memory_order_release);
    queue_.clear();
    if (ws_) {
      error_code ignored;
      beast::get_lowest_layer(*ws_).close(ignored);
      // The stream goes now, on its thread, while its io_context lives: a handle the
      // application keeps may outlive the server. Not inline: this may run inside one of
      // the stream's own completions (Beast's operations outlive it safely, aborted).
      net::post(ex_, [self = shared_from_this()] { self->ws_.reset(); });
    }
    auto on_close = std::move(h_.on_close);
    h_ = {};
    hold_.reset();
    if (on_close) on_close();
  }

  net::any_io_executor ex_;
  websocket_handlers h_;
  std::string server_header_;
  std::optional<bws::stream<tcp::socket>> ws_;
  beast::http::request<beast::http::empty_body> handshake_;
  beast::flat_buffer in_;
  std::deque<std::string> queue_;
  std::shared_ptr<void> hold_;
  std::atomic<bool> open_{true};
  bool handshaken_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool closed_ = false;
};

std::shared_ptr<ws_session> make_ws_session(net::any_io_executor ex, websocket_handlers h,
                                            std::string server_header) {
  return std::make_shared<ws_session>(std::move(ex), std::move(h), std::move(server_header));
}

void start_ws_session(const std::shared_ptr<ws_session>& s, tcp::socket&& socket,
                      const request& req, std::shared_ptr<void> hold) {
  s->start(std::move(socket), req, std::move(hold));
}

void abort_ws_session(const std::shared_ptr<ws_session>& s) { s->abort(); }

}  // namespace detail

void websocket::send_text(std::string text) const {
  if (s_) s_->send(std::move(text));
}

void websocket::close() const {
  if (s_) s_->close();
}

bool websocket::open() const { return s_ && s_->open(); }

}  // namespace parley::http
