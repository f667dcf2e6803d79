#pragma once
/// Parley's HTTP/1.1 server, free of Beast in its public face.
///
/// Threads: the server runs its own Asio threads (`server_options::threads`). A handler
/// is called on the connection's I/O thread and must not block: it either answers at once
/// or hands the request to an actor and answers later through the `responder`, from
/// any thread. The responder posts the answer back to the connection's I/O thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/common/result.hpp"

namespace prometheus {
class Registry;
}
namespace parley::io {
class lanes;
}

namespace parley::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// Case-insensitive header lookup; nullptr when absent.
const std::string* find_header(const header_list& headers, std::string_view name);

struct request {
  std::string method;   ///< "GET", "POST", ...
  std::string target;   ///< as received: path and query
  std::string path;     ///< target up to '?'
  std::string query;    ///< after '?', raw
  header_list headers;  ///< names as received
  std::string body;
  std::string request_id;  ///< X-Request-Id received, or one made up
  std::string remote_address;
  const std::string* header(std::string_view name) const { return find_header(headers, name); }
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  header_list headers;
  std::string body;

  static response json(int status, std::string body) {
    return response{status, "application/json", {}, std::move(body)};
  }
  static response text(int status, std::string body) {
    return response{status, "text/plain; charset=utf-8", {}, std::move(body)};
  }
  /// `{"error":{"code":code,"message":message}}` with `status`.
  static response error(int status, std::string_view code, std::string_view message);
};

namespace detail {
struct pending;
}

/// Delivers the one response to one request. Copyable and thread-safe: the first call
/// wins, later calls are ignored. If every copy is dropped without a call, the client
/// gets a 500 (a handler that loses a request is a bug, never a hang).
class responder {
 public:
  responder() = default;  ///< empty: calling it does nothing (for containers and messages)
  explicit responder(std::shared_ptr<detail::pending> p) : p_(std::move(p)) {}
  void operator()(response r) const;
  /// A responder that hands the response to `f` (once, on the answering thread), for a
  /// request that came through no connection of this server: one a node of another
  /// region forwarded (cluster/region).
  static responder to(std::function<void(response)> f);

 private:
  std::shared_ptr<detail::pending> p_;
};

using handler = std::function<void(request&&, responder)>;

namespace detail {
class ws_session;
struct upgrade_state;
}  // namespace detail

/// An open WebSocket (RFC 6455) a route accepted: an opaque handle, copyable,
/// thread-safe. Beast stays inside src/http. The socket lives on the I/O thread of the
/// HTTP connection it came from; every callback runs there.
class websocket {
 public:
  websocket() = default;  ///< empty: sends nothing
  explicit websocket(std::shared_ptr<detail::ws_session> s) : s_(std::move(s)) {}
  /// Queues one text frame (any thread); frames go out in the order queued. After a
  /// close (either side) it does nothing.
  void send_text(std::string text) const;
  /// Starts a normal close (any thread); `on_close` follows once the socket is gone.
  void close() const;
  /// False once the socket closed (or for an empty handle).
  bool open() const;
  /// Whether two handles name the same socket.
  bool same(const websocket& o) const { return s_ == o.s_; }
  explicit operator bool() const { return s_ != nullptr; }

 private:
  std::shared_ptr<detail::ws_session> s_;
};

/// What an accepted WebSocket calls, on its connection's I/O thread; both optional.
struct websocket_handlers {
  /// One text or binary message from the client (empty ones included).
  std::function<void(std::string message)> on_message;
  /// Once, when the socket is closed (by either side, an error, or the server's stop).
  std::function<void()> on_close;
};

/// Given to an upgrade route's handler with the request: exactly one of accept and
/// reject should be called, from any thread; dropping it unanswered answers 500.
class upgrade {
 public:
  upgrade() = default;
  explicit upgrade(std::shared_ptr<detail::upgrade_state> s) : s_(std::move(s)) {}
  /// Completes the handshake (101) and returns the socket's handle, usable at once
  /// (frames sent before the handshake completes wait for it). A failed handshake
  /// closes the socket: `on_close` runs.
  websocket accept(websocket_handlers h) const;
  /// Answers the request with `r` instead (a 401, 403, 404...).
  void reject(response r) const;

 private:
  std::shared_ptr<detail::upgrade_state> s_;
};

/// A handler of GET requests asking for a WebSocket (`Upgrade: websocket`).
using upgrade_handler = std::function<void(request&&, upgrade)>;

/// Maps method and path to a handler. Exact paths win over prefixes; the longest
/// prefix wins among prefixes. Not thread-safe to modify once the server started.
class router {
 public:
  /// `path` must match exactly; metrics label the route with `path`.
  void add(std::string method, std::string path, handler h);
  /// Paths starting with `prefix`; metrics label the route with `route_label`.
  void add_prefix(std::string method, std::string prefix, std::string route_label, handler h);

  struct match {
    const handler* h = nullptr;  ///< null: no route (404) or wrong method (405)
    const std::string* route = nullptr;
    bool path_known = false;  ///< the path exists for another method
  };
  match find(std::string_view method, std::string_view path) const;

  /// GET requests with `Upgrade: websocket` on paths starting with `prefix` go to `h`
  /// (metrics label them `route_label`, with status 101 once accepted; the longest
  /// prefix wins); other requests on those paths take the routes above. `wrap` leaves
  /// these routes alone; `add_all` copies them.
  void add_upgrade(std::string prefix, std::string route_label, upgrade_handler h);
  struct upgrade_match {
    const upgrade_handler* h = nullptr;
    const std::string* route = nullptr;
  };
  upgrade_match find_upgrade(std::string_view path) const;

  /// Puts a filter in front of every route added so far: each handler h becomes w(h).
  void wrap(const std::function<handler(handler)>& w);
  /// Adds every route of `other` (its handlers copied).
  void add_all(const router& other);

 private:
  struct entry {
    std::string method;
    std::string path;
    std::string route;
    bool prefix;
    handler h;
  };
  std::vector<entry> entries_;
  struct upgrade_entry {
    std::string prefix;
    std::string route;
    upgrade_handler h;
  };
  std::vector<upgrade_entry> upgrades_;
};

struct server_options {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  ///< 0: the kernel picks; see server::port()
  int threads = 2;    ///< own I/O threads, when `lanes` is null
  /// Serve on these event-loop threads (one connection per lane, round robin) instead
  /// of own threads. Not owned; started by the caller, stopped after the server.
  io::lanes* lanes = nullptr;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds idle_timeout{60000};
  /// A new connection must send its first complete head within this, or it is closed
  /// (counted as refused, reason `header_timeout`): idle sockets cannot pile up.
  std::chrono::milliseconds header_timeout{10000};
  /// Open connections at most; past it a new one is closed at once (reason
  /// `max_connections`). 0: derived from RLIMIT_NOFILE, see default_max_connections().
  std::size_t max_connections = 0;
  /// Open connections per client address at most (reason `per_address`); 0: no cap.
  std::size_t max_connections_per_address = 256;
  std::string server_header = "parley";
};

/// The connection cap for a descriptor limit of `nofile`: what is left after a reserve
/// of a tenth (at least 256) for Redis, Postgres, bot actions and files; at least 16.
std::size_t max_connections_for(std::size_t nofile);

/// max_connections_for() the process's RLIMIT_NOFILE (soft) limit.
std::size_t default_max_connections();

/// An HTTP/1.1 server with keep-alive. Records `parley_http_requests_total{route,status}`,
/// `parley_http_request_duration_seconds{route}`, `parley_http_requests_in_flight`,
/// `parley_http_connections_total`, `parley_http_open_connections` and
/// `parley_http_connections_refused_total{reason}` in `registry`.
///
/// Against hostile clients: the connection caps above, the header deadline, a backoff
/// (10 ms doubling to 1 s) when accept fails (EMFILE, ENFILE), and refusals and accept
/// failures logged at most once a second with a count of the lines held back.
class server {
 public:
  server(server_options options, router routes, std::shared_ptr<prometheus::Registry> registry);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, listens and starts the threads. Fails with `http_bind` naming the address.
  result<void> start();

  /// The bound port (after start).
  uint16_t port() const;

  /// Stops accepting, waits up to `grace` for requests in flight to be answered and
  /// written, then closes every connection and joins the threads. Idempotent.
  void stop(std::chrono::milliseconds grace);

  /// Requests read but not yet answered and written.
  std::size_t in_flight() const;

  struct impl;  ///< implementation detail, shared with connections

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::http
