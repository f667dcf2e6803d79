#include "src/http/http.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <sys/resource.h>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "src/common/strings.hpp"
#include "src/http/request_parser.hpp"
#include "src/http/websocket_session.hpp"
#include "src/io/lanes.hpp"
#include "src/log/log.hpp"

namespace parley::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

/// The one metric of a family without labels.
template <typename Builder>
auto& unlabelled(Builder&& b, prometheus::Registry& reg, const char* name, const char* help) {
  return b.Name(name).Help(help).Register(reg).Add({});
}

/// The HTTP module's metrics. Counters per (route, status) are looked up once per
/// thread and cached, so the hot path is a relaxed atomic add.
class http_probe {
 public:
  explicit http_probe(prometheus::Registry& reg)
      : requests_(prometheus::BuildCounter()
                      .Name("parley_http_requests_total")
                      .Help("HTTP requests answered, by route and status code.")
                      .Register(reg)),
        duration_(prometheus::BuildHistogram()
                      .Name("parley_http_request_duration_seconds")
                      .Help("Time from a request read to its response written, by route.")
                      .Register(reg)),
        in_flight_(unlabelled(prometheus::BuildGauge(), reg, "parley_http_requests_in_flight",
                              "Requests read and not yet answered.")),
        connections_(unlabelled(prometheus::BuildCounter(), reg, "parley_http_connections_total",
                                "TCP connections accepted.")),
        open_(unlabelled(prometheus::BuildGauge(), reg, "parley_http_open_connections",
                         "TCP connections open now.")),
        refused_(prometheus::BuildCounter()
                     .Name("parley_http_connections_refused_total")
                     .Help("Connections closed by the server's limits: at accept past "
                           "max_connections or the per-address cap, or without a complete "
                           "first head within header_timeout_ms.")
                     .Register(reg)),
        refused_max_(refused_.Add({{"reason", "max_connections"}})),
        refused_address_(refused_.Add({{"reason", "per_address"}})),
        refused_header_(refused_.Add({{"reason", "header_timeout"}})) {}

  void request_started() { in_flight_.Increment(); }
  void connection_accepted() { connections_.Increment(); }
  void connection_opened() { open_.Increment(); }
  void connection_closed() { open_.Decrement(); }
  void refused_max_connections() { refused_max_.Increment(); }
  void refused_per_address() { refused_address_.Increment(); }
  void header_timed_out() { refused_header_.Increment(); }

  /// `route` must outlive the probe (routes live in the router, the fallback is static).
  void request_done(const std::string& route, int status, double seconds) {
    in_flight_.Decrement();
    auto& r = thread_cache()[&route];
    if (r.histogram == nullptr) r.histogram = &duration_.Add({{"route", route}}, buckets());
    prometheus::Counter* counter = nullptr;
    for (auto& [st, c] : r.counters)
      if (st == status) counter = c;
    if (counter == nullptr) {
      counter = &requests_.Add({{"route", route}, {"status", std::to_string(status)}});
      r.counters.emplace_back(status, counter);
    }
    counter->Increment();
    r.histogram->Observe(seconds);
  }

 private:
  struct route_metrics {
    prometheus::Histogram* histogram = nullptr;
    std::vector<std::pair<int, prometheus::Counter*>> counters;  // few statuses per route
  };
  using cache_t = std::unordered_map<const std::string*, route_metrics>;
  // One cache per (thread, probe): several servers may live in one process (tests).
  cache_t& thread_cache() {
    thread_local std::unordered_map<const http_probe*, cache_t> caches;
    return caches[this];
  }
  static const prometheus::Histogram::BucketBoundaries& buckets() {
    static const prometheus::Histogram::BucketBoundaries b = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    return b;
  }
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Gauge& in_flight_;
  prometheus::Counter& connections_;
  prometheus::Gauge& open_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Counter& refused_max_;
  prometheus::Counter& refused_address_;
  prometheus::Counter& refused_header_;
};

class session;

}  // namespace

const std::string* find_header(const header_list& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (common::iequals(k, name)) return &v;
  return nullptr;
}

response response::error(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":\"";
  common::append_json_escaped(body, code);
  body += "\",\"message\":\"";
  common::append_json_escaped(body, message);
  body += "\"}}";
  return json(status, std::move(body));
}

void router::add(std::string method, std::string path, handler h) {
  std::string route = path;
  entries_.push_back({std::move(method), std::move(path), std::move(route), false, std::move(h)});
}

void router::add_prefix(std::string method, std::string prefix, std::string route_label,
                        handler h) {
  entries_.push_back(
      {std::move(method), std::move(prefix), std::move(route_label), true, std::move(h)});
}

void router::wrap(const std::function<handler(handler)>& w) {
  for (auto& e : entries_) e.h = w(std::move(e.h));
}

void router::add_all(const router& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
  upgrades_.insert(upgrades_.end(), other.upgrades_.begin(), other.upgrades_.end());
}

void router::add_upgrade(std::string prefix, std::string route_label, upgrade_handler h) {
  upgrades_.push_back({std::move(prefix), std::move(route_label), std::move(h)});
}

router::upgrade_match router::find_upgrade(std::string_view path) const {
  upgrade_match m;
  std::size_t best = 0;
  for (const auto& u : upgrades_)
    if (path.substr(0, u.prefix.size()) == u.prefix && (m.h == nullptr || u.prefix.size() > best)) {
      m.h = &u.h;
      m.route = &u.route;
      best = u.prefix.size();
    }
  return m;
}

router::match router::find(std::string_view method, std::string_view path) const {
  match m;
  std::size_t best = 0;
  for (const auto& e : entries_) {
    bool hit = e.prefix ? path.substr(0, e.path.size()) == e.path : path == e.path;
    if (!hit) continue;
    m.path_known = true;
    if (e.method != method) continue;
    // Exact entries rank above every prefix; longer prefixes above shorter ones.
    std::size_t rank = e.prefix ? e.path.size() + 1 : std::string::npos;
    if (m.h == nullptr || rank > best) {
      m.h = &e.h;
      m.route = &e.route;
      best = rank;
    }
  }
  return m;
}

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(server_options o, router r, std::shared_ptr<prometheus::Registry> reg)
      : opts(std::move(o)),
        routes(std::move(r)),
        registry(std::move(reg)),
        probe(*registry),
        owned_iocs(opts.lanes != nullptr ? decltype(owned_iocs){}
                                         : make_iocs(std::max(1, opts.threads))),
        iocs(io_contexts(opts.lanes, owned_iocs)),
        acceptor(*iocs[0]),
        accept_timer(*iocs[0]),
        max_connections(opts.max_connections != 0 ? opts.max_connections
                                                  : default_max_connections()) {
    for (auto* ioc : iocs) io_threads.push_back(std::make_unique<io_thread>(*ioc));
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    id_prefix = buf;
  }

  static std::vector<std::unique_ptr<net::io_context>> make_iocs(int n) {
    std::vector<std::unique_ptr<net::io_context>> v;
    for (int k = 0; k < n; ++k) v.push_back(std::make_unique<net::io_context>(1));
    return v;
  }
  static std::vector<net::io_context*> io_contexts(
      io::lanes* lanes, const std::vector<std::unique_ptr<net::io_context>>& owned) {
    std::vector<net::io_context*> v;
    if (lanes != nullptr)
      for (std::size_t k = 0; k < lanes->size(); ++k) v.push_back(&lanes->at(k));
    else
      for (const auto& ioc : owned) v.push_back(ioc.get());
    return v;
  }
  /// Whether the I/O threads run (own threads started, or lanes).
  bool running() const { return !threads.empty() || (opts.lanes != nullptr && started); }

  /// The connections of one I/O thread and the timer that closes the overdue ones.
  /// Touched only on that thread.
  struct io_thread {
    explicit io_thread(net::io_context& ioc) : sweep_timer(ioc) {}
    net::steady_timer sweep_timer;
    std::vector<std::weak_ptr<session>> sessions;
  };

  void accept();
  /// After a failed accept: waits `accept_backoff` (doubling up to 1 s), then accepts
  /// again, so a full descriptor table does not spin the thread.
  void accept_later(const error_code& ec);
  /// Counts a connection from `address` in; false (and counted as refused) past a cap.
  bool admit(const std::string& address);
  /// Counts it out again; any thread.
  void release(const std::string& address);
  /// Arms thread `k`'s sweep: one timer per thread instead of one per connection and
  /// operation, so reads and writes carry no timer bookkeeping; a deadline is a
  /// time_point in the session that the sweep compares.
  void arm_sweep(std::size_t k);
  void sweep(std::size_t k);
  clock_type::duration sweep_period() const {
    // Deadlines are enforced at most one period late: a quarter of the idle timeout,
    // between 25 ms and 1 s.
    auto p = std::chrono::duration_cast<clock_type::duration>(
                 std::min(opts.idle_timeout, opts.header_timeout)) /
             4;
    return std::clamp<clock_type::duration>(p, std::chrono::milliseconds(25),
                                            std::chrono::seconds(1));
  }
  void request_started() {
    in_flight.fetch_add(1, std::memory_order_relaxed);
    probe.request_started();
  }
  void request_done(const std::string& route, int status, double seconds) {
    probe.request_done(route, status, seconds);
    if (in_flight.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping.load()) {
      std::lock_guard<std::mutex> lock(drain_mutex);
      drained.notify_all();
    }
  }
  std::string make_request_id() {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%s-%llx", id_prefix.c_str(),
                  static_cast<unsigned long long>(next_id.fetch_add(1, std::memory_order_relaxed)));
    return buf;
  }

  server_options opts;
  router routes;
  std::shared_ptr<prometheus::Registry> registry;
  http_probe probe;
  // One io_context per thread: a connection lives on one thread, so its handlers need
  // no strand and threads never hand work to each other (no lock or wake-up per
  // request). The work guards keep idle threads running until stop().
  std::vector<std::unique_ptr<net::io_context>> owned_iocs;  // without lanes
  std::vector<net::io_context*> iocs;                        // owned or the lanes'
  std::vector<std::unique_ptr<io_thread>> io_threads;        // one per io_context, same index
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::size_t next_ioc = 0;  // round robin of accepted connections; acceptor's thread only
  tcp::acceptor acceptor;
  net::steady_timer accept_timer;  // the backoff after a failed accept; acceptor's thread
  clock_type::duration accept_backoff{};
  const std::size_t max_connections;
  std::mutex connections_mutex;  // guards the counts below (once per connection)
  std::size_t open_connections = 0;
  std::unordered_map<std::string, std::size_t> per_address;
  log::rate_limited accept_failed_log;
  log::rate_limited refused_log;
  std::vector<std::thread> threads;
  uint16_t bound_port = 0;
  std::string id_prefix;
  std::atomic<uint64_t> next_id{1};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::mutex drain_mutex;
  std::condition_variable drained;
  int running_threads = 0;  // guarded by drain_mutex
  bool started = false;
};

namespace detail {
/// The link between a responder and its connection.
struct pending {
  std::shared_ptr<session> s;
  std::function<void(response)> to;  ///< instead of a session: responder::to
  std::atomic<bool> done{false};
  void deliver(response r);
  ~pending();
};

/// An upgrade request waiting for its handler's accept or reject.
struct upgrade_state {
  std::shared_ptr<session> s;
  request req;  ///< method, target and headers of the handshake
  std::atomic<bool> done{false};
  ~upgrade_state();
};
}  // namespace detail

namespace {

const std::string unmatched_route = "unmatched";

class session : public std::enable_shared_from_this<session> {
 public:
  /// `remote_address` was admitted by server::impl::admit(); released when the session ends.
  session(tcp::socket&& socket, std::shared_ptr<server::impl> srv, std::size_t thread,
          std::string remote_address)
      : socket_(std::move(socket)),
        srv_(std::move(srv)),
        thread_(thread),
        parser_(request_parser::limits{16 * 1024, srv_->opts.max_body_bytes}),
        remote_address_(std::move(remote_address)) {}
  ~session() { srv_->release(remote_address_); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void run() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->srv_->io_threads[self->thread_]->sessions.push_back(self);
      self->read(clock_type::now());
    });
  }

  /// Called from any thread, once per request.
  void deliver(response r) {
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), r = std::move(r)]() mutable {
      self->write(std::move(r));
    });
  }

  net::any_io_executor executor() { return socket_.get_executor(); }

  /// Hands the socket over to `ws` (an accepted upgrade), on the I/O thread. The
  /// request counts as answered with 101; the WebSocket holds this session (and so the
  /// connection's place in the caps) until it closes.
  void take_over(const std::shared_ptr<detail::ws_session>& ws, const request& req) {
    double seconds = std::chrono::duration<double>(clock_type::now() - started_).count();
    srv_->request_done(*route_, 101, seconds);
    ws_ = ws;
    if (!socket_.is_open() || srv_->stopping.load()) return detail::abort_ws_session(ws);
    detail::start_ws_session(ws, std::move(socket_), req, shared_from_this());
  }

  /// Any thread (the options never change).
  const std::string& server_header() const { return srv_->opts.server_header; }

  /// I/O thread only: true when a read or write outlived its deadline.
  bool overdue(clock_type::time_point now) const { return now >= deadline_; }

  /// I/O thread only: no complete head arrived yet on this connection.
  bool awaiting_first_head() const { return !head_seen_; }

  /// I/O thread only. Pending operations end with an error and drop their hold.
  void close() {
    if (auto ws = ws_.lock()) detail::abort_ws_session(ws);
    deadline_ = clock_type::time_point::max();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
  }

 private:
  static constexpr std::size_t initial_buffer = 4096;
  // A partial head line or chunk line must fit: the parser fails a head past 16 KiB.
  static constexpr std::size_t max_buffer = 32 * 1024;

  /// Starts the next request: parses what a pipelining client already sent, then reads.
  void read(clock_type::time_point now) {
    // Like Beast's read timer: the whole request must arrive within idle_timeout.
    read_started_ = now;
    deadline_ = now + (head_seen_ ? srv_->opts.idle_timeout
                                  : std::min(srv_->opts.idle_timeout, srv_->opts.header_timeout));
    parser_.reset();
    req_ = request{};
    parse_or_read();
  }

  void parse_or_read() {
    if (begin_ < end_) {
      begin_ += parser_.parse(std::string_view(buffer_.data() + begin_, end_ - begin_), req_);
      if (!head_seen_ && parser_.head_done()) {
        // The first head arrived within header_timeout: the body has the idle timeout.
        head_seen_ = true;
        deadline_ = read_started_ + srv_->opts.idle_timeout;
      }
      if (parser_.done()) return on_request();
      if (parser_.failed()) return on_bad_request();
    }
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      // Keep the unparsed tail (a partial line) at the front for the next read.
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.empty()) buffer_.resize(initial_buffer);
    if (end_ == buffer_.size()) {
      // The parser caps lines below max_buffer, so the limit is never reached.
      if (buffer_.size() >= max_buffer) return on_read_error(net::error::no_buffer_space);
      buffer_.resize(buffer_.size() * 2);
    }
    socket_.async_read_some(net::buffer(buffer_.data() + end_, buffer_.size() - end_),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              if (ec) return self->on_read_error(ec);
                              self->end_ += n;
                              self->parse_or_read();
                            });
  }

  void on_read_error(error_code ec) {
    // A close between requests, a timeout or a stop: no answer, like Beast's
    // end_of_stream and timeout. A request cut short gets a 400, like Beast's
    // partial_message.
    if (ec != net::error::eof || !parser_.started() || !socket_.is_open()) return close();
    begin_request();
    request_id_ = srv_->make_request_id();
    keep_alive_ = false;
    write(response::error(400, "bad_request", "malformed HTTP request: partial message"));
  }

  void begin_request() {
    // An answer to a request that never parsed still carries an id of its own, not
    // the previous request's (Beast's path reused it).
    request_id_.clear();
    started_ = clock_type::now();
    // No deadline while a handler works: the answer may take as long as it takes.
    deadline_ = clock_type::time_point::max();
    srv_->request_started();
    route_ = &unmatched_route;
  }

  void on_bad_request() {
    begin_request();
    request_id_ = srv_->make_request_id();
    keep_alive_ = false;
    write(response::error(parser_.error_status(), parser_.error_code(), parser_.error_message()));
  }

  void on_request() {
    begin_request();
    keep_alive_ = parser_.keep_alive() && !srv_->stopping.load(std::memory_order_relaxed);
    request req = std::move(req_);
    const std::string* rid = req.header("X-Request-Id");
    // A client's id is echoed in the response head: visible ASCII only.
    if (rid != nullptr && !rid->empty() && rid->size() <= 128 &&
        std::all_of(rid->begin(), rid->end(), [](char c) { return c > 0x20 && c < 0x7f; }))
      req.request_id = *rid;
    else
      req.request_id = srv_->make_request_id();
    request_id_ = req.request_id;
    req.remote_address = remote_address_;

    const std::string* upgrade_to = req.header("Upgrade");
    if (req.method == "GET" && upgrade_to != nullptr && common::iequals(*upgrade_to, "websocket")) {
      auto u = srv_->routes.find_upgrade(req.path);
      if (u.h != nullptr) {
        route_ = u.route;
        auto st = std::make_shared<detail::upgrade_state>();
        st->s = shared_from_this();
        st->req.method = req.method;
        st->req.target = req.target;
        st->req.headers = req.headers;
        try {
          (*u.h)(std::move(req), upgrade(std::move(st)));
        } catch (const std::exception& e) {
          log::error("http_handler_exception", {{"route", *route_}, {"what", e.what()}});
        }
        return;
      }
    }
    auto m = srv_->routes.find(req.method, req.path);
    if (m.h == nullptr) {
      if (m.path_known)
        return write(response::error(405, "method_not_allowed",
                                     req.method + " is not allowed on " + req.path));
      return write(response::error(404, "not_found", "no route for " + req.path));
    }
    route_ = m.route;
    auto p = std::make_shared<detail::pending>();
    p->s = shared_from_this();
    try {
      (*m.h)(std::move(req), responder(std::move(p)));
    } catch (const std::exception& e) {
      // A handler bug: the pending's destructor answers 500 if nothing was sent.
      log::error("http_handler_exception", {{"route", *route_}, {"what", e.what()}});
    }
  }

  /// Serializes the response by hand into one buffer and writes it with one
  /// async_write: Beast's serializer (a variant iterator over a chain of buffer
  /// sequences) cost more CPU than the system call it ends in.
  void write(response r) {
    status_ = r.status;
    auto& o = out_;
    o.clear();
    o.reserve(160 + request_id_.size() + r.body.size());
    o += "HTTP/1.1 ";
    o += std::to_string(r.status);
    o += ' ';
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    o.append(reason.data(), reason.size());
    o += "\r\nServer: ";
    o += srv_->opts.server_header;
    o += "\r\nContent-Type: ";
    o += r.content_type;
    o += "\r\nX-Request-Id: ";
    o += request_id_;
    for (const auto& [k, v] : r.headers) {
      o += "\r\n";
      o += k;
      o += ": ";
      o += v;
    }
    o += "\r\nContent-Length: ";
    o += std::to_string(r.body.size());
    if (!keep_alive_) o += "\r\nConnection: close";
    o += "\r\n\r\n";
    o += r.body;
    // A socket closed meanwhile (stop) fails the write at once; the deadline is
    // then left alone so the sweep does not close it again.
    if (socket_.is_open()) deadline_ = clock_type::now() + std::chrono::seconds(30);
    net::async_write(
        socket_, net::buffer(o),
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    auto now = clock_type::now();
    double seconds = std::chrono::duration<double>(now - started_).count();
    srv_->request_done(*route_, status_, seconds);
    if (out_.capacity() > 64 * 1024)
      std::string().swap(out_);  // a large answer's buffer is not kept
    if (ec || !keep_alive_ || srv_->stopping.load(std::memory_order_relaxed)) return close();
    read(now);
  }

  tcp::socket socket_;
  std::shared_ptr<server::impl> srv_;
  std::size_t thread_;  // index of the I/O thread that owns the connection
  request_parser parser_;
  request req_;               // the request being parsed
  std::vector<char> buffer_;  // bytes read; [begin_, end_) not parsed yet
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  clock_type::time_point read_started_;
  bool head_seen_ = false;  // a complete head arrived (the header deadline is over)
  std::string out_;         // the response being written
  clock_type::time_point started_;
  const std::string* route_ = &unmatched_route;
  std::string request_id_;
  std::string remote_address_;
  int status_ = 0;
  bool keep_alive_ = true;
  std::weak_ptr<detail::ws_session> ws_;  // after an accepted upgrade
};

}  // namespace

void detail::pending::deliver(response r) {
  if (s)
    s->deliver(std::move(r));
  else if (to)
    to(std::move(r));
}

detail::pending::~pending() {
  if (!done.exchange(true))
    deliver(response::error(500, "internal", "the request was dropped without an answer"));
}

void responder::operator()(response r) const {
  if (!p_ || p_->done.exchange(true)) return;
  p_->deliver(std::move(r));
}

detail::upgrade_state::~upgrade_state() {
  if (!done.exchange(true))
    s->deliver(response::error(500, "internal", "the upgrade was dropped without an answer"));
}

websocket upgrade::accept(websocket_handlers h) const {
  if (!s_ || s_->done.exchange(true)) return {};
  auto ws = detail::make_ws_session(s_->s->executor(), std::move(h), s_->s->server_header());
  // The state (and its request) lives until the hand-over ran.
  auto st = s_;
  net::dispatch(st->s->executor(), [st, ws] { st->s->take_over(ws, st->req); });
  return websocket(ws);
}

void upgrade::reject(response r) const {
  if (!s_ || s_->done.exchange(true)) return;
  s_->s->deliver(std::move(r));
}

responder responder::to(std::function<void(response)> f) {
  auto p = std::make_shared<detail::pending>();
  p->to = std::move(f);
  return responder(std::move(p));
}

std::size_t max_connections_for(std::size_t nofile) {
  std::size_t reserve = std::max<std::size_t>(256, nofile / 10);
  return nofile > reserve + 16 ? nofile - reserve : 16;
}

std::size_t default_max_connections() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return max_connections_for(1 << 20);
  return max_connections_for(static_cast<std::size_t>(rl.rlim_cur));
}

bool server::impl::admit(const std::string& address) {
  enum class refusal { none, max_connections, per_address } why = refusal::none;
  {
    std::lock_guard<std::mutex> lock(connections_mutex);
    if (open_connections >= max_connections) {
      why = refusal::max_connections;
    } else {
      auto& n = per_address[address];
      if (opts.max_connections_per_address != 0 && n >= opts.max_connections_per_address) {
        why = refusal::per_address;
      } else {
        ++n;
        ++open_connections;
      }
    }
  }
  switch (why) {
    case refusal::none:
      probe.connection_opened();
      return true;
    case refusal::max_connections:
      probe.refused_max_connections();
      refused_log.warn("http_connection_refused",
                       {{"reason", "max_connections"}, {"address", address}});
      return false;
    case refusal::per_address:
      probe.refused_per_address();
      refused_log.warn("http_connection_refused",
                       {{"reason", "per_address"}, {"address", address}});
      return false;
  }
  return false;
}

void server::impl::release(const std::string& address) {
  {
    std::lock_guard<std::mutex> lock(connections_mutex);
    --open_connections;
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
  }
  probe.connection_closed();
}

void server::impl::accept() {
  std::size_t k = next_ioc++ % iocs.size();
  acceptor.async_accept(*iocs[k], [self = shared_from_this(), k](error_code ec, tcp::socket s) {
    if (ec) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      return self->accept_later(ec);
    }
    self->accept_backoff = {};
    self->probe.connection_accepted();
    error_code ignored;
    // Once per connection, not per request (a getpeername system call each time).
    auto ep = s.remote_endpoint(ignored);
    std::string address = ignored ? std::string() : ep.address().to_string();
    if (!self->admit(address)) {
      // Refused early: closing at once frees the descriptor before it is needed again.
      s.close(ignored);
    } else {
      s.set_option(tcp::no_delay(true), ignored);
      std::make_shared<session>(std::move(s), self, k, std::move(address))->run();
    }
    self->accept();
  });
}

void server::impl::accept_later(const error_code& ec) {
  // EMFILE and ENFILE leave the connection in the backlog: accepting again at once
  // would fail again at once. Any other failure waits too, for a shorter time.
  accept_backoff =
      accept_backoff == clock_type::duration{}
          ? std::chrono::milliseconds(10)
          : std::min<clock_type::duration>(accept_backoff * 2, std::chrono::seconds(1));
  accept_failed_log.warn(
      "http_accept_failed",
      {{"error", ec.message()},
       {"retry_ms",
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(accept_backoff).count())}});
  accept_timer.expires_after(accept_backoff);
  accept_timer.async_wait([self = shared_from_this()](error_code e) {
    if (!e && self->acceptor.is_open()) self->accept();
  });
}

void server::impl::arm_sweep(std::size_t k) {
  auto& t = *io_threads[k];
  t.sweep_timer.expires_after(sweep_period());
  // `this` outlives the timer's handler: stop() cancels it and joins the thread.
  t.sweep_timer.async_wait([this, k](error_code ec) {
    if (!ec) sweep(k);
  });
}

void server::impl::sweep(std::size_t k) {
  auto& v = io_threads[k]->sessions;
  auto now = clock_type::now();
  for (std::size_t i = 0; i < v.size();) {
    auto s = v[i].lock();
    if (!s) {
      v[i] = std::move(v.back());
      v.pop_back();
      continue;
    }
    if (s->overdue(now)) {
      if (s->awaiting_first_head()) probe.header_timed_out();
      s->close();
    }
    ++i;
  }
  if (!stopping.load()) arm_sweep(k);
}

server::server(server_options options, router routes,
               std::shared_ptr<prometheus::Registry> registry)
    : impl_(std::make_shared<impl>(std::move(options), std::move(routes), std::move(registry))) {}

server::~server() { stop(std::chrono::milliseconds(0)); }

result<void> server::start() {
  auto& i = *impl_;
  error_code ec;
  auto addr = net::ip::make_address(i.opts.address, ec);
  if (ec)
    return make_error("http_bind", "http.address '" + i.opts.address + "' is not an IP address");
  tcp::endpoint ep(addr, i.opts.port);
  i.acceptor.open(ep.protocol(), ec);
  if (!ec) i.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(ep, ec);
  if (!ec) i.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error("http_bind", "cannot listen on " + i.opts.address + ":" +
                                       std::to_string(i.opts.port) + ": " + ec.message());
  i.bound_port = i.acceptor.local_endpoint().port();
  i.started = true;
  if (i.opts.lanes != nullptr) {
    // The lanes run already: everything starts on the thread that owns it.
    net::post(*i.iocs[0], [self = impl_] { self->accept(); });
    for (std::size_t k = 0; k < i.iocs.size(); ++k)
      net::post(*i.iocs[k], [self = impl_, k] { self->arm_sweep(k); });
    return {};
  }
  i.accept();
  i.running_threads = static_cast<int>(i.iocs.size());
  for (auto& ioc : i.iocs) i.guards.push_back(net::make_work_guard(*ioc));
  for (std::size_t k = 0; k < i.iocs.size(); ++k) i.arm_sweep(k);
  for (auto* ioc : i.iocs)
    i.threads.emplace_back([&i, ctx = ioc] {
      ctx->run();
      std::lock_guard<std::mutex> lock(i.drain_mutex);
      --i.running_threads;
      i.drained.notify_all();
    });
  return {};
}

uint16_t server::port() const { return impl_->bound_port; }

std::size_t server::in_flight() const { return impl_->in_flight.load(); }

void server::stop(std::chrono::milliseconds grace) {
  auto& i = *impl_;
  if (i.stopped.exchange(true)) return;
  i.stopping = true;
  // Close the acceptor on an I/O thread and wait for it, so no new connection is
  // accepted (and answered by nobody) once stop() moves on.
  if (i.running()) {
    auto closed = std::make_shared<std::promise<void>>();
    net::post(*i.iocs[0], [self = impl_, closed] {
      error_code ignored;
      self->acceptor.close(ignored);
      self->accept_timer.cancel();
      closed->set_value();
    });
    closed->get_future().wait_for(std::chrono::seconds(5));
  } else {
    error_code ignored;
    i.acceptor.close(ignored);
  }
  {
    std::unique_lock<std::mutex> lock(i.drain_mutex);
    i.drained.wait_for(lock, grace, [&i] { return i.in_flight.load() == 0; });
  }
  // Close every connection and the sweep timer on their thread; the I/O threads then
  // run out of work and return, which frees the sessions (they hold the server's
  // internals).
  if (i.opts.lanes != nullptr && i.started) {
    // The lanes outlive the server: wait until each has closed its connections and
    // run its cancelled sweep (whose handler points at this server), then leave.
    std::vector<std::future<void>> done;
    for (auto& t : i.io_threads) {
      auto p = std::make_shared<std::promise<void>>();
      done.push_back(p->get_future());
      net::post(t->sweep_timer.get_executor(), [t = t.get(), p] {
        t->sweep_timer.cancel();
        for (auto& w : t->sessions)
          if (auto s = w.lock()) s->close();
        // Behind the completions the cancel and the closes just queued.
        net::post(t->sweep_timer.get_executor(), [p] { p->set_value(); });
      });
    }
    for (auto& f : done) f.wait_for(std::chrono::seconds(5));
    return;
  }
  if (!i.threads.empty())
    for (auto& t : i.io_threads)
      net::post(t->sweep_timer.get_executor(), [t = t.get()] {
        t->sweep_timer.cancel();
        for (auto& w : t->sessions)
          if (auto s = w.lock()) s->close();
      });
  i.guards.clear();
  {
    std::unique_lock<std::mutex> lock(i.drain_mutex);
    if (!i.drained.wait_for(lock, std::chrono::seconds(2), [&i] { return i.running_threads == 0; }))
      for (auto& ioc : i.iocs) ioc->stop();  // a handler is stuck: stop hard
  }
  for (auto& t : i.threads)
    if (t.joinable()) t.join();
  i.threads.clear();
}

}  // namespace parley::http
