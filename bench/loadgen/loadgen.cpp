// parley_loadgen: many concurrent multi-turn conversations through the Bot API
// (Einstein Bots API v5.3 shape) against one running node.
//
// Each virtual user owns one keep-alive HTTP/1.1 connection and loops: start a
// session (POST /v5.3.0/bots/{bot}/sessions), send K text turns with increasing
// sequenceId (POST /v5.3.0/sessions/{id}/messages), start over. Every request is
// one committed turn on the server (the start runs the welcome dialog), so "turns"
// counts both.
//
// Modes:
//   closed loop (default): every user sends its next turn as soon as the previous
//     answer arrives; latency is send -> answer.
//   fixed rate (--rate R): turns are due at R per second on a fixed schedule,
//     whatever the server does (open loop). A due turn goes to the next idle
//     user; when none is idle it waits in a queue. Latency is measured from the
//     turn's intended send time, so queueing behind a slow server shows up in
//     the percentiles instead of being hidden (coordinated omission).
//
// Prepared requests (--requests FILE): instead of Bot API conversations, every turn
// is the next request of a file made beforehand, each sent once (so a webhook
// bench sends each signed message once: a repeat would be a cheap duplicate). One
// request a line, fields separated by tabs: the target, then header lines
// ("Name: value"), and the body last; the method is POST. Worker i of n takes the
// lines k with k % n == i; a worker that runs out starts its share again.
//
// Output: a human summary, then one JSON line (the last line) for scripts. Exit
// code 1 when more than 1% of the turns failed (transport error or non-2xx), 2
// on bad options.
//
// Threads: --threads io_contexts (default 1), each running its own users and
// samples; nothing is shared between them until the end. Every wait is bounded:
// the run stops issuing at warmup + duration and waits at most --drain for the
// turns in flight; a connect or turn that takes longer than its timeout (5 s,
// 10 s) counts as a transport error and the user reconnects.
//
// Cost: the load generator runs on the machine it measures, so every CPU
// microsecond it spends per turn is taken from the server. It therefore speaks
// HTTP/1.1 itself over plain asio sockets instead of using an HTTP library:
// requests are assembled into a reused per-user string from a header block
// formatted once, responses are parsed in place in a reused per-user buffer
// (status line, Content-Length, Connection), there is no timer per operation
// (one periodic check per thread finds stalled users), and a turn allocates
// nothing once the buffers have grown to size.

#include <sys/resource.h>

#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include "src/common/strings.hpp"

namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto connect_timeout = 5s;
constexpr auto turn_timeout = 10s;         // request written + answer read
constexpr auto stall_check_every = 500ms;  // how often a worker looks for stalled users
constexpr auto transport_backoff = 20ms;   // pause before a user retries after a transport error
constexpr std::size_t initial_buffer = 8 * 1024;
constexpr std::size_t max_head_bytes = 64 * 1024;  // status line + headers
constexpr std::size_t max_body_bytes = 64 * 1024 * 1024;

struct options {
  std::string url = "http://127.0.0.1:8080";
  std::string host = "127.0.0.1";
  std::string port = "8080";
  std::string tenant = "bench";
  std::string key;
  std::string bot = "bench";
  int connections = 64;
  double duration_s = 10;
  double warmup_s = 2;
  int turns_per_session = 8;
  double rate = 0;  // 0: closed loop
  int threads = 1;
  double drain_s = 5;
  bool timeline = false;
  std::string requests_file;  // --requests: prepared requests instead of conversations
  std::vector<std::string> texts = {"when are you open", "how much does it cost", "a blue widget",
                                    "something else entirely"};
};

bool parse_url(options& o) {
  std::string u = o.url;
  const std::string scheme = "http://";
  if (u.compare(0, scheme.size(), scheme) != 0) return false;
  u = u.substr(scheme.size());
  auto slash = u.find('/');
  if (slash != std::string::npos) u = u.substr(0, slash);
  auto colon = u.rfind(':');
  if (colon == std::string::npos) {
    o.host = u;
    o.port = "80";
  } else {
    o.host = u.substr(0, colon);
    o.port = u.substr(colon + 1);
  }
  return !o.host.empty() && !o.port.empty();
}

std::string json_escape(const std::string& s) {
  std::string out;
  parley::common::append_json_escaped(out, s);
  return out;
}

/// Appends the decimal form of an integer without a temporary string.
template <typename Int>
void append_int(std::string& out, Int v) {
  static_assert(std::is_integral_v<Int>);
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  out.append(b, r.ptr);
}

/// Extracts the string value of `"sessionId"` from a start response without a
/// JSON parser (the load generator shares the CPU with the server it measures).
std::string_view session_id_of(std::string_view body) {
  auto k = body.find("\"sessionId\"");
  if (k == std::string_view::npos) return {};
  auto colon = body.find(':', k);
  if (colon == std::string_view::npos) return {};
  auto q1 = body.find('"', colon);
  if (q1 == std::string_view::npos) return {};
  auto q2 = body.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return {};
  return body.substr(q1 + 1, q2 - q1 - 1);
}

// ---------------------------------------------------------------------------
// HTTP/1.1 responses, parsed by hand.
//
// A response is a status line ("HTTP/1.1 200 OK"), header lines ("Name: value"),
// an empty line, then the body; every line ends in CRLF. How long the body is
// (RFC 9112 section 6.3), in the order checked:
//   1. 1xx, 204 and 304 answers have no body;
//   2. Transfer-Encoding (chunked): not supported; parleyd never sends it (its
//      server sets Content-Length on every answer), so seeing it is a protocol
//      error, counted as a transport error;
//   3. Content-Length: exactly that many bytes;
//   4. otherwise the body runs until the server closes the connection.
// The connection stays open for the next request unless the server says
// "Connection: close" (HTTP/1.1) or does not say "Connection: keep-alive"
// (HTTP/1.0).

using parley::common::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// True when the comma-separated header value lists `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

/// What the status line and headers of one response say.
struct response_head {
  int status = 0;
  std::size_t head_bytes = 0;  // status line, headers and the empty line
  enum class framing { none, length, until_close, chunked } body = framing::none;
  std::size_t content_length = 0;  // framing::length
  bool keep_alive = true;
};

/// Parses `head`: everything up to and including the CRLF CRLF that ends the
/// headers. False when it is not an HTTP/1.x response.
bool parse_head(std::string_view head, response_head& h) {
  h = response_head{};
  h.head_bytes = head.size();
  // Status line: "HTTP/1.x SSS reason".
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') return false;
  bool http10 = line[7] == '0';
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
    h.status = h.status * 10 + (line[i] - '0');
  }
  bool have_length = false, chunked = false, says_close = false, says_keep_alive = false;
  // Header lines, up to the empty line.
  for (std::size_t pos = eol + 2; pos < head.size();) {
    auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    line = head.substr(pos, end - pos);
    pos = end + 2;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      auto r = std::from_chars(value.data(), value.data() + value.size(), h.content_length);
      if (r.ec != std::errc{} || r.ptr != value.data() + value.size()) return false;
      have_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = true;
    } else if (iequals(name, "connection")) {
      says_close = says_close || has_token(value, "close");
      says_keep_alive = says_keep_alive || has_token(value, "keep-alive");
    }
  }
  h.keep_alive = http10 ? says_keep_alive && !says_close : !says_close;
  if (h.status < 200 || h.status == 204 || h.status == 304) {
    h.body = response_head::framing::none;
  } else if (chunked) {
    h.body = response_head::framing::chunked;
  } else if (have_length) {
    h.body = response_head::framing::length;
  } else {
    h.body = response_head::framing::until_close;
    h.keep_alive = false;
  }
  return true;
}

// ---------------------------------------------------------------------------

/// What one io thread measured. Merged at the end.
struct tally {
  std::vector<uint32_t> latency_us;  // measured turns only
  std::vector<uint32_t> second;    // with --timeline: the second of the run each sample was due in
  uint64_t ok = 0;                 // measured 2xx turns
  uint64_t starts = 0;             // measured 2xx session starts
  std::map<int, uint64_t> errors;  // measured failures by HTTP status; 0: transport
  uint64_t late_dropped = 0;       // rate mode: due turns never sent before the end
};

class worker;

/// One virtual user: one connection, one conversation at a time.
///
/// A turn: [connect] -> write the request -> read until the response is
/// complete -> record. Handlers capture the raw `this`: users live in their
/// worker until after its io_context has stopped running.
class user {
 public:
  user(worker& w, int id);
  user(const user&) = delete;
  user& operator=(const user&) = delete;

  void go(clock_type::time_point intended);
  /// Idle: no turn in flight and not backing off after a transport error.
  bool idle() const { return state_ == state::idle; }
  /// Called by the worker's periodic check: a connect or turn past its deadline
  /// is cut off by closing the socket, which fails the pending operation.
  void check_stalled(clock_type::time_point now) {
    if (state_ == state::busy && now > deadline_) cut_off();
  }
  /// End of the run: closes the connection; whatever is in flight fails.
  void close() {
    cut_off();
    backoff_.cancel();
  }

 private:
  enum class state { idle, busy, backoff };

  void connect();
  void send();
  void build_request();
  void read();
  void on_read(const error_code& ec, std::size_t n);
  void on_response(std::string_view body, bool keep_alive);
  void fail();
  void disconnect();
  void cut_off();

  worker& w_;
  int id_;
  tcp::socket socket_;
  asio::steady_timer backoff_;  // used only after a transport error
  bool connected_ = false;
  state state_ = state::idle;
  clock_type::time_point deadline_ = clock_type::time_point::max();

  // Request under way, rebuilt in place every turn (the capacity stays).
  std::string req_;
  std::string body_;
  // Response under way: bytes received so far in buf_[0, filled_).
  std::vector<char> buf_;
  std::size_t filled_ = 0;
  std::size_t scanned_ = 0;  // bytes of buf_ already searched for the end of the headers
  bool have_head_ = false;
  response_head head_;

  std::string session_;
  int64_t seq_ = 0;  // text turns sent in this session
  uint64_t sessions_ = 0;
  std::size_t text_ix_ = 0;
  clock_type::time_point intended_;
};

class worker {
 public:
  worker(const options& o, tcp::resolver::results_type endpoints, int index, int users, double rate,
         clock_type::time_point t0)
      : opts(o),
        endpoints(std::move(endpoints)),
        index(index),
        timer_(io),
        stall_timer_(io),
        t0_(t0),
        rate_(rate) {
    measure_from = t0 + std::chrono::duration_cast<clock_type::duration>(
                            std::chrono::duration<double>(o.warmup_s));
    stop_at = measure_from + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(o.duration_s));
    // The same for every request: formatted once here, copied into each request.
    header_block = "Host: " + o.host + ":" + o.port +
                   "\r\nContent-Type: application/json\r\nX-Org-Id: " + o.tenant +
                   "\r\nAuthorization: Bearer " + o.key + "\r\n";
    start_target = "/v5.3.0/bots/" + o.bot + "/sessions";
    // Each run's keys are its own: a start with a key an earlier run used would land on
    // that run's session (a retried start; the key maps to it for the session timeout).
    session_key_prefix = "{\"externalSessionKey\":\"lg-" +
                         std::to_string(std::chrono::system_clock::now().time_since_epoch() /
                                        std::chrono::microseconds(1)) +
                         "-";
    for (const auto& text : o.texts) texts_json.push_back(json_escape(text));
    if (!o.requests_file.empty()) load_requests(o, threads_total(o));
    for (int i = 0; i < users; ++i)
      users_.push_back(std::make_unique<user>(*this, index * 1000000 + i));
    t.latency_us.reserve(1 << 20);
    if (o.timeline) t.second.reserve(1 << 20);
  }

  void run() {
    asio::post(io, [this] {
      if (rate_ <= 0) {
        for (auto& u : users_) u->go(clock_type::now());
      } else {
        pace();
      }
    });
    check_stalled();
    // Bounded: the pacer stops issuing at stop_at; users stop at stop_at; whatever
    // is still in flight after the drain is abandoned.
    auto deadline = stop_at + std::chrono::duration_cast<clock_type::duration>(
                                  std::chrono::duration<double>(opts.drain_s));
    while (clock_type::now() < deadline) {
      io.run_for(50ms);
      if (io.stopped()) io.restart();
      if (clock_type::now() >= stop_at && in_flight == 0) break;
    }
    stall_timer_.cancel();
    timer_.cancel();
    for (auto due : pending_)
      if (due >= measure_from) ++t.late_dropped;
    for (auto& u : users_) u->close();
    io.run_for(100ms);
  }

  /// A user finished a turn; in rate mode it takes the next due turn, if any.
  void user_idle(user& u) {
    if (rate_ <= 0) {
      if (clock_type::now() < stop_at) u.go(clock_type::now());
      return;
    }
    if (!pending_.empty() && clock_type::now() < stop_at) {
      auto due = pending_.front();
      pending_.pop_front();
      u.go(due);
    }
  }

  void record(clock_type::time_point intended, clock_type::time_point done, int status,
              bool start) {
    if (intended < measure_from || intended >= stop_at) return;
    if (status >= 200 && status < 300) {
      ++t.ok;
      if (start) ++t.starts;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - intended).count();
      t.latency_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      if (opts.timeline)
        t.second.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::seconds>(intended - measure_from).count()));
    } else {
      ++t.errors[status];
    }
  }

  const options& opts;
  tcp::resolver::results_type endpoints;
  int index;
  asio::io_context io{1};
  clock_type::time_point measure_from, stop_at;
  int in_flight = 0;
  tally t;
  std::string header_block;             // Host ... Authorization, each line ending in CRLF
  std::string start_target;             // /v5.3.0/bots/{bot}/sessions
  std::string session_key_prefix;       // {"externalSessionKey":"lg-<this run>-
  std::vector<std::string> texts_json;  // --texts, escaped for a JSON string
  std::vector<std::string> requests;    // --requests: this worker's share, each complete
  std::size_t next_request = 0;

  static int threads_total(const options& o) { return std::min(o.threads, o.connections); }

 private:
  /// --requests: reads this worker's share of the file into complete requests.
  void load_requests(const options& o, int workers) {
    FILE* f = std::fopen(o.requests_file.c_str(), "r");
    if (!f) {
      std::fprintf(stderr, "parley_loadgen: --requests: cannot open %s\n", o.requests_file.c_str());
      std::exit(2);
    }
    std::string line;
    char chunk[4096];
    std::size_t k = 0;
    auto take = [&] {
      if (line.empty()) return;
      if (k++ % static_cast<std::size_t>(workers) != static_cast<std::size_t>(index)) return;
      std::vector<std::string_view> fields;
      std::string_view rest(line);
      for (auto tab = rest.find('\t'); tab != std::string_view::npos; tab = rest.find('\t')) {
        fields.push_back(rest.substr(0, tab));
        rest.remove_prefix(tab + 1);
      }
      fields.push_back(rest);
      if (fields.size() < 2) {
        std::fprintf(stderr, "parley_loadgen: --requests: line %zu has no tab\n", k);
        std::exit(2);
      }
      std::string r = "POST ";
      r += fields.front();
      r += " HTTP/1.1\r\nHost: " + o.host + ":" + o.port + "\r\n";
      for (std::size_t i = 1; i + 1 < fields.size(); ++i) {
        r += fields[i];
        r += "\r\n";
      }
      r += "Content-Length: ";
      append_int(r, fields.back().size());
      r += "\r\n\r\n";
      r += fields.back();
      requests.push_back(std::move(r));
    };
    while (std::fgets(chunk, sizeof chunk, f)) {
      line += chunk;
      if (!line.empty() && line.back() == '\n') {
        line.pop_back();
        take();
        line.clear();
      }
    }
    take();
    std::fclose(f);
    if (requests.empty()) {
      std::fprintf(stderr, "parley_loadgen: --requests: no request for worker %d in %s\n", index,
                   o.requests_file.c_str());
      std::exit(2);
    }
  }

  /// Rate mode: the pacer's shortest sleep.
  static constexpr std::chrono::microseconds pace_tick{250};
  /// Rate mode: turn i of this worker is due at t0 + i / rate.
  void pace() {
    auto now = clock_type::now();
    if (now >= stop_at) return;
    for (;;) {
      auto due = t0_ + std::chrono::duration_cast<clock_type::duration>(
                           std::chrono::duration<double>(next_ / rate_));
      if (due > now || due >= stop_at) {
        // At most one wake-up per tick: a timer per turn cost the load generator about
        // 20 us of CPU per turn at 24,000 turns/s (a sleep and a wake each), taken from
        // the server it measures. A turn sent up to one tick late still counts its
        // latency from its due time.
        timer_.expires_at(std::max(due, now + pace_tick));
        timer_.async_wait([this](const error_code& ec) {
          if (!ec) pace();
        });
        break;
      }
      ++next_;
      pending_.push_back(due);
    }
    for (auto& u : users_) {
      if (pending_.empty()) break;
      if (u->idle()) {
        auto due = pending_.front();
        pending_.pop_front();
        u->go(due);
      }
    }
  }

  /// The one timer that bounds every connect and turn of this worker's users.
  void check_stalled() {
    stall_timer_.expires_after(stall_check_every);
    stall_timer_.async_wait([this](const error_code& ec) {
      if (ec) return;
      auto now = clock_type::now();
      for (auto& u : users_) u->check_stalled(now);
      check_stalled();
    });
  }

  asio::steady_timer timer_;
  asio::steady_timer stall_timer_;
  clock_type::time_point t0_;
  double rate_;
  uint64_t next_ = 0;
  std::deque<clock_type::time_point> pending_;
  std::vector<std::unique_ptr<user>> users_;  // destroyed before io (declared after it)
};

user::user(worker& w, int id) : w_(w), id_(id), socket_(w.io), backoff_(w.io) {
  text_ix_ = static_cast<std::size_t>(id);
  buf_.resize(initial_buffer);
  req_.reserve(512);
  body_.reserve(256);
}

void user::go(clock_type::time_point intended) {
  state_ = state::busy;
  intended_ = intended;
  ++w_.in_flight;
  if (!connected_) return connect();
  send();
}

void user::connect() {
  deadline_ = clock_type::now() + connect_timeout;
  asio::async_connect(socket_, w_.endpoints, [this](const error_code& ec, const tcp::endpoint&) {
    if (ec) return fail();
    connected_ = true;
    error_code ignore;
    socket_.set_option(tcp::no_delay(true), ignore);
    // Non-blocking so that send() can try the write right away (below).
    socket_.non_blocking(true, ignore);
    send();
  });
}

/// The request, byte for byte:
///   POST {target} HTTP/1.1\r\n
///   Host: {host}:{port}\r\n  Content-Type: application/json\r\n
///   X-Org-Id: {tenant}\r\n  Authorization: Bearer {key}\r\n      (header_block)
///   Content-Length: {n}\r\n
///   \r\n
///   {body}
/// No Connection header: HTTP/1.1 connections are keep-alive by default.
void user::build_request() {
  const auto& o = w_.opts;
  if (!w_.requests.empty()) {
    req_ = w_.requests[w_.next_request++ % w_.requests.size()];
    return;
  }
  req_.clear();
  body_.clear();
  req_ += "POST ";
  if (session_.empty() || seq_ >= o.turns_per_session) {
    // Session start: the welcome dialog is this turn.
    session_.clear();
    seq_ = 0;
    req_ += w_.start_target;
    body_ += w_.session_key_prefix;
    append_int(body_, id_);
    body_ += '-';
    append_int(body_, ++sessions_);
    body_ += "\",\"forceConfig\":{\"endpoint\":\"http://127.0.0.1/\"}}";
  } else {
    ++seq_;
    req_ += "/v5.3.0/sessions/";
    req_ += session_;
    req_ += "/messages";
    body_ += "{\"message\":{\"type\":\"text\",\"sequenceId\":";
    append_int(body_, seq_);
    body_ += ",\"text\":\"";
    body_ += w_.texts_json[text_ix_++ % w_.texts_json.size()];
    body_ += "\"}}";
  }
  req_ += " HTTP/1.1\r\n";
  req_ += w_.header_block;
  req_ += "Content-Length: ";
  append_int(req_, body_.size());
  req_ += "\r\n\r\n";
  req_ += body_;
}

void user::send() {
  auto now = clock_type::now();
  if (intended_ > now + 1s) intended_ = now;  // never in the future
  deadline_ = now + turn_timeout;
  build_request();
  // A request of a few hundred bytes nearly always fits in the socket buffer at
  // once: write it here and go straight to reading; only a partial write (or
  // EAGAIN) waits for the socket with async_write.
  error_code ec;
  std::size_t n = socket_.write_some(asio::buffer(req_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    n = 0;
    ec = {};
  }
  if (ec) return fail();
  if (n == req_.size()) return read();
  asio::async_write(socket_, asio::buffer(req_.data() + n, req_.size() - n),
                    [this](const error_code& ec, std::size_t) {
                      if (ec) return fail();
                      read();
                    });
}

/// Reads more of the response into buf_ after the filled_ bytes, growing buf_
/// when it is full. (asio tries the recv at once only when the socket was not
/// known to be drained, so a turn costs one send, one recv and its share of an
/// epoll_wait.)
void user::read() {
  if (filled_ == buf_.size()) buf_.resize(buf_.size() * 2);
  socket_.async_read_some(asio::buffer(buf_.data() + filled_, buf_.size() - filled_),
                          [this](const error_code& ec, std::size_t n) { on_read(ec, n); });
}

void user::on_read(const error_code& ec, std::size_t n) {
  using framing = response_head::framing;
  if (ec == asio::error::eof && have_head_ && head_.body == framing::until_close) {
    // The body was delimited by the server closing the connection.
    return on_response(std::string_view(buf_.data() + head_.head_bytes, filled_ - head_.head_bytes),
                       false);
  }
  if (ec) return fail();
  filled_ += n;

  if (!have_head_) {
    // Look for the empty line that ends the headers; resume where the last
    // search stopped (minus 3 bytes: the CRLF CRLF may straddle two reads).
    std::string_view data(buf_.data(), filled_);
    auto end = data.find("\r\n\r\n", scanned_);
    if (end == std::string_view::npos) {
      scanned_ = filled_ < 3 ? 0 : filled_ - 3;
      if (filled_ >= max_head_bytes) return fail();  // not an HTTP response we understand
      return read();
    }
    if (!parse_head(data.substr(0, end + 4), head_) || head_.body == framing::chunked)
      return fail();
    have_head_ = true;
    if (head_.body == framing::length) {
      if (head_.content_length > max_body_bytes) return fail();
      std::size_t total = head_.head_bytes + head_.content_length;
      if (buf_.size() < total) buf_.resize(total);
    }
  }

  switch (head_.body) {
    case framing::none:
      return on_response({}, head_.keep_alive && filled_ == head_.head_bytes);
    case framing::length: {
      std::size_t total = head_.head_bytes + head_.content_length;
      if (filled_ < total) return read();
      // Bytes beyond this response were never asked for: do not trust the
      // connection with the next request.
      return on_response(std::string_view(buf_.data() + head_.head_bytes, head_.content_length),
                         head_.keep_alive && filled_ == total);
    }
    case framing::until_close:
      if (filled_ - head_.head_bytes > max_body_bytes) return fail();
      return read();
    case framing::chunked:
      break;
  }
  fail();
}

/// A complete response in buf_: records the turn and hands the user back.
void user::on_response(std::string_view body, bool keep_alive) {
  int status = head_.status;
  bool start = session_.empty() && w_.requests.empty();
  if (start && status >= 200 && status < 300) {
    session_.assign(session_id_of(body));
    if (session_.empty()) status = 599;  // a success without a session: count as an error
  }
  if (!keep_alive) disconnect();
  filled_ = 0;
  scanned_ = 0;
  have_head_ = false;
  if (status < 200 || status >= 300) session_.clear();  // start over with a fresh session
  w_.record(intended_, clock_type::now(), status, start);
  --w_.in_flight;
  state_ = state::idle;
  deadline_ = clock_type::time_point::max();
  w_.user_idle(*this);
}

/// A transport error (connect, write or read failed, timed out, or the answer
/// was not HTTP we understand): counted as status 0, the connection is dropped.
void user::fail() {
  disconnect();
  bool start = session_.empty() && w_.requests.empty();
  session_.clear();
  w_.record(intended_, clock_type::now(), 0, start);
  --w_.in_flight;
  deadline_ = clock_type::time_point::max();
  // Back off briefly before the user tries again, so a dead server does not
  // turn the loop into a busy spin. Not idle meanwhile: the rate-mode pacer
  // must not hand it a turn.
  state_ = state::backoff;
  backoff_.expires_after(transport_backoff);
  backoff_.async_wait([this](const error_code&) {
    state_ = state::idle;
    w_.user_idle(*this);
  });
}

/// Closes the socket from outside the turn's own handlers (stall check, end of
/// the run): the pending operation then completes with an error and fails the
/// turn through the usual path. The response state is left to that path.
void user::cut_off() {
  connected_ = false;
  error_code ignore;
  socket_.shutdown(tcp::socket::shutdown_both, ignore);
  socket_.close(ignore);
}

void user::disconnect() {
  connected_ = false;
  filled_ = 0;
  scanned_ = 0;
  have_head_ = false;
  error_code ignore;
  socket_.shutdown(tcp::socket::shutdown_both, ignore);
  socket_.close(ignore);
}

double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  if (i > 0) --i;
  return sorted[std::min(i, sorted.size() - 1)] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{
      "parley_loadgen: concurrent multi-turn Bot API conversations against a running node"};
  app.add_option("--url", o.url, "node base URL (http://host:port)")->capture_default_str();
  app.add_option("--tenant", o.tenant, "X-Org-Id")->capture_default_str();
  app.add_option("--key", o.key, "API key of the tenant (Authorization: Bearer)");
  app.add_option("--requests", o.requests_file,
                 "prepared requests, one a line (target TAB headers... TAB body), instead of "
                 "Bot API conversations");
  app.add_option("--bot", o.bot, "bot id to start sessions with")->capture_default_str();
  app.add_option("--connections", o.connections, "virtual users, one keep-alive connection each")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--duration", o.duration_s, "measured seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", o.warmup_s, "seconds run before measuring")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--turns-per-session", o.turns_per_session,
                 "text turns per session before starting over")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--rate", o.rate, "fixed rate in turns/s (open loop); 0: closed loop")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "I/O threads of the load generator")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  app.add_option("--drain", o.drain_s, "seconds to wait for turns in flight at the end")
      ->capture_default_str();
  app.add_flag("--timeline", o.timeline,
               "also print turns, p50, p99 and max for every measured second");
  app.add_option("--texts", o.texts, "texts the users send, cycled")->expected(1, 1000);
  CLI11_PARSE(app, argc, argv);
  if (!parse_url(o)) {
    std::fprintf(stderr, "parley_loadgen: --url: expected http://host:port, got %s\n",
                 o.url.c_str());
    return 2;
  }
  if (o.key.empty() && o.requests_file.empty()) {
    std::fprintf(stderr, "parley_loadgen: --key is required (or --requests)\n");
    return 2;
  }
  if (o.rate < 0) {
    std::fprintf(stderr, "parley_loadgen: --rate must be >= 0\n");
    return 2;
  }

  asio::io_context resolve_io;
  tcp::resolver resolver(resolve_io);
  error_code ec;
  auto endpoints = resolver.resolve(o.host, o.port, ec);
  if (ec) {
    std::fprintf(stderr, "parley_loadgen: cannot resolve %s:%s: %s\n", o.host.c_str(),
                 o.port.c_str(), ec.message().c_str());
    return 2;
  }

  int threads = std::min(o.threads, o.connections);
  auto t0 = clock_type::now() + 20ms;
  std::vector<std::unique_ptr<worker>> workers;
  for (int i = 0; i < threads; ++i) {
    int users = o.connections / threads + (i < o.connections % threads ? 1 : 0);
    workers.push_back(std::make_unique<worker>(o, endpoints, i, users, o.rate / threads, t0));
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->run(); });
  for (auto& th : running) th.join();

  tally all;
  for (auto& w : workers) {
    all.latency_us.insert(all.latency_us.end(), w->t.latency_us.begin(), w->t.latency_us.end());
    all.ok += w->t.ok;
    all.starts += w->t.starts;
    all.late_dropped += w->t.late_dropped;
    for (auto& [k, v] : w->t.errors) all.errors[k] += v;
  }
  if (o.timeline) {
    std::map<uint32_t, std::vector<uint32_t>> by_second;
    for (auto& w : workers)
      for (std::size_t i = 0; i < w->t.second.size(); ++i)
        by_second[w->t.second[i]].push_back(w->t.latency_us[i]);
    for (auto& [sec, v] : by_second) {
      std::sort(v.begin(), v.end());
      std::printf("second %3u  %7zu turns  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", sec,
                  v.size(), percentile(v, 50), percentile(v, 99), v.back() / 1000.0);
    }
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  uint64_t failed = all.late_dropped;
  for (auto& [k, v] : all.errors) failed += v;
  uint64_t total = all.ok + failed;
  double rps = static_cast<double>(all.ok) / o.duration_s;
  double err_rate = total ? static_cast<double>(failed) / static_cast<double>(total) : 1.0;
  double p50 = percentile(all.latency_us, 50), p90 = percentile(all.latency_us, 90),
         p99 = percentile(all.latency_us, 99), p999 = percentile(all.latency_us, 99.9),
         pmax = all.latency_us.empty() ? 0 : all.latency_us.back() / 1000.0;

  bool closed = o.rate <= 0;
  std::printf(
      "mode      %s, %d connections, %d thread(s), %d text turns per session, warmup %.1fs, "
      "measured %.1fs\n",
      closed ? "closed loop"
             : ("fixed rate " + std::to_string(static_cast<long>(o.rate)) + " turns/s").c_str(),
      o.connections, threads, o.turns_per_session, o.warmup_s, o.duration_s);
  std::printf("turns     %llu ok (%llu session starts), %.0f turns/s\n",
              static_cast<unsigned long long>(all.ok), static_cast<unsigned long long>(all.starts),
              rps);
  std::printf("latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms%s\n",
              p50, p90, p99, p999, pmax, closed ? "" : " (from the intended send time)");
  std::string errs;
  for (auto& [k, v] : all.errors) {
    if (!errs.empty()) errs += ",";
    errs +=
        "\"" + (k == 0 ? std::string("transport") : std::to_string(k)) + "\":" + std::to_string(v);
  }
  if (all.late_dropped > 0) {
    if (!errs.empty()) errs += ",";
    errs += "\"not_sent\":" + std::to_string(all.late_dropped);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("loadgen   %.1f CPU seconds used by the load generator itself\n", cpu_s);
  std::printf("errors    %llu (%.3f%%)%s%s\n", static_cast<unsigned long long>(failed),
              err_rate * 100, errs.empty() ? "" : " by status: ", errs.c_str());
  std::printf(
      "{\"mode\":\"%s\",\"rate\":%.0f,\"connections\":%d,\"threads\":%d,\"turns_per_session\":%d,"
      "\"duration_s\":%.1f,"
      "\"turns\":%llu,\"starts\":%llu,\"turns_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_"
      "ms\":%.3f,"
      "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"loadgen_cpu_s\":%.2f,\"errors\":%llu,\"error_rate\":%.5f,"
      "\"errors_by_status\":{%s}}\n",
      closed ? "closed" : "rate", o.rate, o.connections, threads, o.turns_per_session, o.duration_s,
      static_cast<unsigned long long>(all.ok), static_cast<unsigned long long>(all.starts), rps,
      p50, p90, p99, p999, pmax, cpu_s, static_cast<unsigned long long>(failed), err_rate,
      errs.c_str());
  return err_rate > 0.01 ? 1 : 0;
}
