#include "src/http/outbound.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

#include <prometheus/gauge.h>

#include "src/common/strings.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"

namespace parley::http {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_head_bytes = 64 * 1024;
constexpr std::size_t max_header_value = 8 * 1024;

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

/// Headers the client writes itself: a caller's copy would break the framing.
bool framing_header(std::string_view name) {
  for (const char* h : {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                        "te", "trailer", "upgrade", "proxy-connection"})
    if (common::iequals(name, h)) return true;
  return false;
}

}  // namespace

std::optional<error> check_header(const std::string& name, const std::string& value) {
  std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
  for (auto& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (!is_token(name))
    return make_error("bad_header", "header name '" + shown + "' is not a valid HTTP token");
  if (name.size() > 256)
    return make_error("bad_header", "header name '" + shown + "' is longer than 256 bytes");
  if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos)
    return make_error("bad_header", "header '" + shown + "': the value contains CR, LF or NUL");
  if (value.size() > max_header_value)
    return make_error("bad_header", "header '" + shown + "': the value has " +
                                        std::to_string(value.size()) + " bytes, over the " +
                                        std::to_string(max_header_value) + " allowed");
  if (framing_header(name))
    return make_error("bad_header", "header '" + shown + "' is set by the HTTP client itself");
  return std::nullopt;
}

namespace {

struct pool;

/// One connection to one destination. Lives on its shard's thread.
struct connection {
  connection(net::io_context& ioc, pool* p) : idle_timer(ioc), owner(p) {}
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  net::steady_timer idle_timer;
  pool* owner;             ///< valid while `open`: a pool outlives its open connections
  bool open = true;        ///< holds a slot of its pool (connecting or connected)
  bool connected = false;  ///< counted in open_connections()
  bool idle = false;
  uint64_t idle_generation = 0;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  template <class F>
  void with_stream(F&& f) {
    if (tls)
      f(*tls);
    else
      f(*plain);
  }
};
using connection_ptr = std::shared_ptr<connection>;

struct exchange;
using exchange_ptr = std::shared_ptr<exchange>;

/// Requests and connections of one destination (scheme, host, port).
struct pool {
  std::string key;
  url_parts where;
  std::size_t open = 0;  ///< connections open or being opened
  std::deque<connection_ptr> idle;
  std::deque<exchange_ptr> waiting;
};

/// One request from `send` to `done`.
struct exchange {
  exchange(net::io_context& ioc) : timer(ioc) {}
  outbound_request req;
  url_parts url;
  std::string key;
  std::string name;  ///< scheme://host:port, for messages: never the path or query
  outbound_client::callback done;
  bhttp::request<bhttp::string_body> msg;
  net::steady_timer timer;
  connection_ptr conn;
  std::unique_ptr<tcp::resolver> resolver;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  const char* phase = "waiting for a connection";
  bool finished = false;
  bool waiting = false;
  bool reused = false;
  bool retried = false;
  bool fresh_only = false;
  std::size_t written = 0;
};

/// One I/O thread with its io_context and the pools of the destinations hashed to it.
/// Everything in it is touched only on that thread.
struct shard_state {
  explicit shard_state(outbound_client::impl& c) : client(c), work(net::make_work_guard(ioc)) {}
  outbound_client::impl& client;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::map<std::string, std::unique_ptr<pool>> pools;
  std::unordered_map<exchange*, exchange_ptr> live;
  std::thread thread;
};

}  // namespace

struct outbound_client::impl {
  outbound_options opts;
  ssl::context tls{ssl::context::tls_client};
  std::vector<std::unique_ptr<shard_state>> shards;
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> opened{0};
  prometheus::Gauge* gauge = nullptr;
};

namespace {

using shard = shard_state;

void acquire(shard& s, exchange_ptr x);
void open_new(shard& s, exchange_ptr x, pool& p);
void use(shard& s, exchange_ptr x, connection_ptr c);

void finish(shard& s, exchange_ptr x, result<client_response> r) {
  if (x->finished) return;
  x->finished = true;
  x->timer.cancel();
  s.live.erase(x.get());
  auto done = std::move(x->done);
  try {
    if (done) done(std::move(r));
  } catch (const std::exception& e) {
    log::error("outbound_callback_threw", {{"error", e.what()}});
  } catch (...) {
    log::error("outbound_callback_threw", {{"error", "unknown exception"}});
  }
}

void fail(shard& s, const exchange_ptr& x, std::string code, std::string message) {
  finish(s, x, make_error(std::move(code), std::move(message)));
}

/// Hands a freed connection slot or connection of `p` to the next waiting request.
void serve_waiters(shard& s, pool& p) {
  while (!p.waiting.empty() && p.open < s.client.opts.max_connections_per_host) {
    auto w = std::move(p.waiting.front());
    p.waiting.pop_front();
    w->waiting = false;
    if (w->finished) continue;
    ++p.open;
    open_new(s, w, p);
  }
}

void erase_if_unused(shard& s, pool& p) {
  if (p.open == 0 && p.waiting.empty() && p.idle.empty()) s.pools.erase(p.key);
}

/// Closes `c` and frees its slot. Idempotent.
void discard(shard& s, const connection_ptr& c) {
  if (!c || !c->open) return;
  c->open = false;
  beast::error_code ec;
  c->lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
  c->lowest().socket().close(ec);
  c->idle_timer.cancel();
  pool& p = *c->owner;
  if (c->idle) {
    c->idle = false;
    p.idle.erase(std::remove(p.idle.begin(), p.idle.end(), c), p.idle.end());
  }
  --p.open;
  if (c->connected) {
    s.client.open.fetch_sub(1);
    if (s.client.gauge) s.client.gauge->Decrement();
  }
  serve_waiters(s, p);
  erase_if_unused(s, p);
}

/// A finished exchange's connection goes to the next waiter or to the idle list.
void release(shard& s, const connection_ptr& c) {
  if (!c->open) return;
  pool& p = *c->owner;
  while (!p.waiting.empty()) {
    auto w = std::move(p.waiting.front());
    p.waiting.pop_front();
    w->waiting = false;
    if (w->finished) continue;
    w->reused = true;
    return use(s, std::move(w), c);
  }
  c->idle = true;
  uint64_t gen = ++c->idle_generation;
  p.idle.push_back(c);
  c->idle_timer.expires_after(s.client.opts.idle_timeout);
  c->idle_timer.async_wait([&s, c, gen](beast::error_code ec) {
    if (ec || !c->idle || c->idle_generation != gen) return;
    discard(s, c);
  });
}

std::string head_name(const url_parts& u) { return u.scheme + "://" + u.host + ":" + u.port; }

bool is_ip_literal(const std::string& host) { return parse_ip(host).has_value(); }

ip_address to_ip(const net::ip::address& a) {
  ip_address out;
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.bytes.begin());
  } else {
    out.v6 = true;
    auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.bytes.begin());
  }
  return out;
}

void on_deadline(shard& s, const exchange_ptr& x) {
  if (x->finished) return;
  if (x->waiting) {
    auto it = s.pools.find(x->key);
    if (it != s.pools.end()) {
      auto& w = it->second->waiting;
      w.erase(std::remove(w.begin(), w.end(), x), w.end());
    }
    x->waiting = false;
  }
  if (x->resolver) x->resolver->cancel();
  std::string phase = x->phase;
  auto c = std::move(x->conn);
  discard(s, c);
  fail(s, x, "http_timeout",
       "no answer from " + x->name + " within " + std::to_string(x->req.timeout.count()) + " ms (" +
           phase + ")");
}

/// A transport error on connection `c` while serving `x`.
void on_failure(shard& s, const exchange_ptr& x, const connection_ptr& c, beast::error_code ec,
                const char* what) {
  x->conn.reset();
  discard(s, c);
  bool nothing_back = !x->parser || !x->parser->got_some();
  if (x->reused && !x->retried && nothing_back && (idempotent(x->req.method) || x->written == 0)) {
    // The server closed the pooled connection before reading this request: a fresh
    // connection is the expected cure, once.
    x->retried = true;
    x->reused = false;
    x->fresh_only = true;
    x->phase = "waiting for a connection";
    return acquire(s, x);
  }
  fail(s, x, "http_io", std::string(what) + " " + x->name + " failed: " + ec.message());
}

template <class F>
auto guarded(shard& s, exchange_ptr x, F f) {
  return [&s, x = std::move(x), f = std::move(f)](auto&&... args) mutable {
    try {
      f(std::forward<decltype(args)>(args)...);
    } catch (const std::exception& e) {
      log::error("outbound_internal_error", {{"error", e.what()}, {"destination", x->name}});
      auto c = std::move(x->conn);
      discard(s, c);
      fail(s, x, "http_internal", "internal error calling " + x->name + ": " + e.what());
    }
  };
}

void fail_too_large(shard& s, const exchange_ptr& x, const connection_ptr& c, bool head) {
  x->conn.reset();
  discard(s, c);
  if (head)
    return fail(s, x, "http_too_large",
                "the response head from " + x->name + " exceeds " +
                    std::to_string(max_head_bytes / 1024) + " KiB");
  fail(s, x, "http_too_large",
       "the response body from " + x->name + " exceeds " +
           std::to_string(s.client.opts.max_response_bytes) + " bytes");
}

void new_parser(shard& s, exchange& x) {
  x.parser.emplace();
  x.parser->header_limit(max_head_bytes);
  x.parser->body_limit(s.client.opts.max_response_bytes);
  if (x.req.method == "HEAD") x.parser->skip(true);
}

/// The whole response is in: the connection goes back to the pool (or closes) before
/// the caller hears of it, so what the caller sees next (metrics, the next request)
/// already counts it.
void complete(shard& s, const exchange_ptr& x, const connection_ptr& c) {
  auto& m = x->parser->get();
  client_response out;
  out.status = static_cast<int>(m.result_int());
  for (const auto& f : m)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  bool keep = m.keep_alive() && !x->parser->need_eof() && out.status != 101;
  out.body = std::move(m.body());
  x->parser.reset();
  x->conn.reset();
  if (keep)
    release(s, c);
  else
    discard(s, c);
  finish(s, x, std::move(out));
}

void on_body(shard& s, const exchange_ptr& x, const connection_ptr& c, beast::error_code ec) {
  if (x->finished) return discard(s, c);
  if (ec == bhttp::error::body_limit) return fail_too_large(s, x, c, false);
  if (ec) return on_failure(s, x, c, ec, "reading the response from");
  complete(s, x, c);
}

void read_head(shard& s, const exchange_ptr& x, const connection_ptr& c);

void on_head(shard& s, const exchange_ptr& x, const connection_ptr& c, beast::error_code ec) {
  if (x->finished) return discard(s, c);
  if (ec == bhttp::error::header_limit) return fail_too_large(s, x, c, true);
  if (ec == bhttp::error::body_limit) return fail_too_large(s, x, c, false);
  if (ec) return on_failure(s, x, c, ec, "reading the response from");
  int status = static_cast<int>(x->parser->get().result_int());
  if (status >= 100 && status < 200 && status != 101) {
    // An interim answer (100 Continue, 103 Early Hints): the final one follows.
    new_parser(s, *x);
    return read_head(s, x, c);
  }
  // Beast 1.74 misses body_limit for a Content-Length body parsed eagerly with its
  // head: the declared length is checked here instead. Chunked and read-to-close
  // bodies are bounded by body_limit as they arrive.
  auto length = x->parser->content_length();
  if (length && *length > s.client.opts.max_response_bytes) return fail_too_large(s, x, c, false);
  if (x->parser->is_done()) return complete(s, x, c);
  c->with_stream([&](auto& stream) {
    bhttp::async_read(
        stream, c->buffer, *x->parser,
        guarded(s, x, [&s, x, c](beast::error_code e, std::size_t) { on_body(s, x, c, e); }));
  });
}

void read_head(shard& s, const exchange_ptr& x, const connection_ptr& c) {
  c->with_stream([&](auto& stream) {
    bhttp::async_read_header(
        stream, c->buffer, *x->parser,
        guarded(s, x, [&s, x, c](beast::error_code e, std::size_t) { on_head(s, x, c, e); }));
  });
}

void use(shard& s, exchange_ptr x, connection_ptr c) {
  x->conn = c;
  x->written = 0;
  x->phase = "sending the request";
  new_parser(s, *x);
  c->with_stream([&](auto& stream) {
    bhttp::async_write(stream, x->msg,
                       guarded(s, x, [&s, x, c](beast::error_code ec, std::size_t n) {
                         if (x->finished) return discard(s, c);
                         x->written = n;
                         if (ec) return on_failure(s, x, c, ec, "sending the request to");
                         x->phase = "waiting for the response";
                         read_head(s, x, c);
                       }));
  });
}

std::string tls_failure(connection& c, beast::error_code ec) {
  std::string why = ec.message();
  long v = SSL_get_verify_result(c.tls->native_handle());
  if (v != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(v)) + ")";
  return why;
}

void open_new(shard& s, exchange_ptr x, pool& p) {
  auto c = std::make_shared<connection>(s.ioc, &p);
  const auto& u = x->url;
  if (u.scheme == "https") {
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(s.ioc, s.client.tls);
    SSL* ssl = c->tls->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip_literal(u.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, u.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, u.host.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, u.host.c_str(), 0);
    }
  } else {
    c->plain = std::make_unique<beast::tcp_stream>(s.ioc);
  }
  x->conn = c;
  x->phase = "resolving the host name";
  x->resolver = std::make_unique<tcp::resolver>(s.ioc);
  x->resolver->async_resolve(
      u.host, u.port,
      guarded(s, x, [&s, x, c](beast::error_code ec, tcp::resolver::results_type results) {
        x->resolver.reset();
        if (x->finished) return discard(s, c);
        if (ec) {
          x->conn.reset();
          discard(s, c);
          return fail(s, x, "http_connect", "cannot resolve " + x->url.host + ": " + ec.message());
        }
        for (const auto& entry : results) {
          auto ep = entry.endpoint();
          if (auto why = s.client.opts.egress.check(x->url.host, to_ip(ep.address()), ep.port())) {
            x->conn.reset();
            discard(s, c);
            return fail(s, x, "egress_refused", *why);
          }
        }
        x->phase = "connecting";
        c->lowest().async_connect(
            results, guarded(s, x, [&s, x, c](beast::error_code e, const tcp::endpoint&) {
              if (x->finished) return discard(s, c);
              if (e) {
                x->conn.reset();
                discard(s, c);
                return fail(s, x, "http_connect",
                            "cannot connect to " + x->name + ": " + e.message());
              }
              c->connected = true;
              s.client.opened.fetch_add(1);
              s.client.open.fetch_add(1);
              if (s.client.gauge) s.client.gauge->Increment();
              if (!c->tls) return use(s, x, c);
              x->phase = "TLS handshake";
              c->tls->async_handshake(
                  ssl::stream_base::client, guarded(s, x, [&s, x, c](beast::error_code he) {
                    if (x->finished) return discard(s, c);
                    if (he) {
                      std::string why = tls_failure(*c, he);
                      x->conn.reset();
                      discard(s, c);
                      return fail(s, x, "http_tls",
                                  "TLS handshake with " + x->name + " failed: " + why);
                    }
                    use(s, x, c);
                  }));
            }));
      }));
}

pool& pool_for(shard& s, const exchange& x) {
  auto& slot = s.pools[x.key];
  if (!slot) {
    slot = std::make_unique<pool>();
    slot->key = x.key;
    slot->where = x.url;
  }
  return *slot;
}

void acquire(shard& s, exchange_ptr x) {
  pool& p = pool_for(s, *x);
  if (!x->fresh_only) {
    while (!p.idle.empty()) {
      auto c = std::move(p.idle.back());
      p.idle.pop_back();
      c->idle = false;
      c->idle_timer.cancel();
      if (!c->open) continue;
      x->reused = true;
      return use(s, std::move(x), std::move(c));
    }
  }
  if (p.open < s.client.opts.max_connections_per_host) {
    ++p.open;
    return open_new(s, std::move(x), p);
  }
  x->waiting = true;
  x->phase = "waiting for a connection";
  p.waiting.push_back(std::move(x));
}

/// Builds the request message; an error names what is wrong.
std::optional<error> prepare(exchange& x) {
  auto& r = x.req;
  if (!is_token(r.method))
    return make_error("bad_request", "HTTP method '" + r.method.substr(0, 32) + "' is not a token");
  for (char c : x.url.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return make_error("bad_url", "the URL to " + x.name +
                                       " has a space or control character in its path or query");
  for (char c : x.url.host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':')
      return make_error("bad_url",
                        "the URL's host has a character other than letters, digits, "
                        "'.', '-', '_' (or ':' in brackets)");
  for (const auto& [k, v] : r.headers)
    if (auto e = check_header(k, v)) return e;
  auto& m = x.msg;
  m.method_string(r.method);
  m.target(x.url.target);
  m.version(11);
  bool default_port = (x.url.scheme == "https" && x.url.port == "443") ||
                      (x.url.scheme == "http" && x.url.port == "80");
  std::string host =
      x.url.host.find(':') != std::string::npos ? "[" + x.url.host + "]" : x.url.host;
  m.set(bhttp::field::host, default_port ? host : host + ":" + x.url.port);
  if (find_header(r.headers, "User-Agent") == nullptr) m.set(bhttp::field::user_agent, "parley");
  for (const auto& [k, v] : r.headers) m.insert(k, v);
  m.body() = std::move(r.body);
  m.keep_alive(true);
  m.prepare_payload();
  return std::nullopt;
}

void start(shard& s, exchange_ptr x) {
  s.live.emplace(x.get(), x);
  x->timer.expires_after(x->req.timeout);
  x->timer.async_wait([&s, x](beast::error_code ec) {
    if (ec) return;
    try {
      on_deadline(s, x);
    } catch (const std::exception& e) {
      log::error("outbound_internal_error", {{"error", e.what()}, {"destination", x->name}});
    }
  });
  std::optional<error> bad;
  try {
    bad = prepare(*x);
  } catch (const std::exception& e) {
    bad = make_error("bad_request", "the request to " + x->name + " cannot be built: " + e.what());
  }
  if (bad) return finish(s, x, std::move(*bad));
  acquire(s, std::move(x));
}

void shut_down(shard& s) {
  std::vector<exchange_ptr> live;
  for (auto& [_, x] : s.live) live.push_back(x);
  for (auto& x : live) {
    if (x->resolver) x->resolver->cancel();
    auto c = std::move(x->conn);
    discard(s, c);
    fail(s, x, "http_shutdown", "the HTTP client stopped before " + x->name + " answered");
  }
  std::vector<connection_ptr> idle;
  for (auto& [_, p] : s.pools)
    for (auto& c : p->idle) idle.push_back(c);
  for (auto& c : idle) discard(s, c);
  s.ioc.stop();
}

}  // namespace

outbound_client::outbound_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

result<std::unique_ptr<outbound_client>> outbound_client::make(outbound_options options,
                                                               prometheus::Registry* registry) {
  auto p = std::make_unique<impl>();
  p->opts = std::move(options);
  if (p->opts.threads < 1) p->opts.threads = 1;
  if (p->opts.max_connections_per_host < 1) p->opts.max_connections_per_host = 1;
  beast::error_code ec;
  p->tls.set_verify_mode(ssl::verify_peer, ec);
  SSL_CTX_set_min_proto_version(p->tls.native_handle(), TLS1_2_VERSION);
  if (!p->opts.ca_file.empty()) {
    p->tls.load_verify_file(p->opts.ca_file, ec);
    if (ec)
      return make_error("bad_config", "ca_file '" + p->opts.ca_file +
                                          "': cannot load certificates: " + ec.message());
  } else {
    p->tls.set_default_verify_paths(ec);
    if (ec)
      return make_error(
          "bad_config",
          "ca_file is empty and the system's certificate store cannot be loaded: " + ec.message());
  }
  if (registry != nullptr)
    p->gauge = &metrics::gauge(*registry, p->opts.metrics_prefix + "_open_connections",
                               "Outbound HTTP connections open (idle and busy).");
  for (int i = 0; i < p->opts.threads; ++i) p->shards.push_back(std::make_unique<shard>(*p));
  for (auto& sh : p->shards) {
    shard* s = sh.get();
    s->thread = std::thread([s] {
      for (;;) {
        try {
          s->ioc.run();
          return;
        } catch (const std::exception& e) {
          // Handlers catch their own; this is the last line, so the thread lives on.
          log::error("outbound_internal_error", {{"error", e.what()}});
        }
      }
    });
  }
  return std::unique_ptr<outbound_client>(new outbound_client(std::move(p)));
}

outbound_client::~outbound_client() {
  for (auto& sh : impl_->shards) {
    shard* s = sh.get();
    net::post(s->ioc, [s] { shut_down(*s); });
  }
  for (auto& sh : impl_->shards) sh->thread.join();
}

void outbound_client::send(outbound_request request, callback done) {
  auto parts = parse_url(request.url);
  std::size_t index = 0;
  if (parts && impl_->shards.size() > 1)
    index = std::hash<std::string>{}(head_name(*parts)) % impl_->shards.size();
  shard* s = impl_->shards[index].get();
  net::post(s->ioc, [s, parts = std::move(parts), request = std::move(request),
                     done = std::move(done)]() mutable {
    auto x = std::make_shared<exchange>(s->ioc);
    x->done = std::move(done);
    if (!parts) return finish(*s, x, parts.err());
    x->url = *parts;
    x->key = head_name(*parts);
    x->name = x->key;
    x->req = std::move(request);
    try {
      start(*s, std::move(x));
    } catch (const std::exception& e) {
      log::error("outbound_internal_error", {{"error", e.what()}});
    }
  });
}

std::size_t outbound_client::open_connections() const { return impl_->open.load(); }
std::size_t outbound_client::connections_opened() const { return impl_->opened.load(); }
egress_policy& outbound_client::egress() { return impl_->opts.egress; }

}  // namespace parley::http
