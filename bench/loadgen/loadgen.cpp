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
// Output: a human summary, then one JSON line (the last line) for scripts. Exit
// code 1 when more than 1% of the turns failed (transport error or non-2xx), 2
// on bad options.
//
// Threads: --threads io_contexts (default 1), each running its own users and
// samples; nothing is shared between them until the end. Every wait is bounded:
// the run stops issuing at warmup + duration and waits at most --drain for the
// turns in flight.

#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

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
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out;
}

/// Extracts the string value of `"sessionId"` from a start response without a
/// JSON parser (the load generator shares the CPU with the server it measures).
std::string session_id_of(const std::string& body) {
  auto k = body.find("\"sessionId\"");
  if (k == std::string::npos) return {};
  auto colon = body.find(':', k);
  if (colon == std::string::npos) return {};
  auto q1 = body.find('"', colon);
  if (q1 == std::string::npos) return {};
  auto q2 = body.find('"', q1 + 1);
  if (q2 == std::string::npos) return {};
  return body.substr(q1 + 1, q2 - q1 - 1);
}

/// What one io thread measured. Merged at the end.
struct tally {
  std::vector<uint32_t> latency_us;  // measured turns only
  std::vector<uint32_t> second;      // with --timeline: the second of the run each sample was due in
  uint64_t ok = 0;                   // measured 2xx turns
  uint64_t starts = 0;               // measured 2xx session starts
  std::map<int, uint64_t> errors;    // measured failures by HTTP status; 0: transport
  uint64_t late_dropped = 0;         // rate mode: due turns never sent before the end
};

class worker;

/// One virtual user: one connection, one conversation at a time.
class user : public std::enable_shared_from_this<user> {
 public:
  user(worker& w, int id);
  void go(clock_type::time_point intended);
  bool idle() const { return idle_; }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void connect();
  void send();
  void on_read(beast::error_code ec);
  void finish(int status);

  worker& w_;
  int id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  std::unique_ptr<http::response<http::string_body>> res_;
  bool connected_ = false;
  bool idle_ = true;
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
      : opts(o), endpoints(std::move(endpoints)), index(index), timer_(io), t0_(t0), rate_(rate) {
    measure_from = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.warmup_s));
    stop_at = measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration_s));
    for (int i = 0; i < users; ++i) users_.push_back(std::make_shared<user>(*this, index * 1000000 + i));
    t.latency_us.reserve(1 << 20);
  }

  void run() {
    asio::post(io, [this] {
      if (rate_ <= 0) {
        for (auto& u : users_) u->go(clock_type::now());
      } else {
        pace();
      }
    });
    // Bounded: the pacer stops issuing at stop_at; users stop at stop_at; whatever
    // is still in flight after the drain is abandoned.
    auto deadline = stop_at + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opts.drain_s));
    while (clock_type::now() < deadline) {
      io.run_for(50ms);
      if (io.stopped()) io.restart();
      if (clock_type::now() >= stop_at && in_flight == 0) break;
    }
    for (auto due : pending_)
      if (due >= measure_from) ++t.late_dropped;
    for (auto& u : users_) u->close();
    io.run_for(100ms);
  }

  /// A user finished a turn; in rate mode it takes the next due turn, if any.
  void user_idle(const std::shared_ptr<user>& u) {
    if (rate_ <= 0) {
      if (clock_type::now() < stop_at) u->go(clock_type::now());
      return;
    }
    if (!pending_.empty() && clock_type::now() < stop_at) {
      auto due = pending_.front();
      pending_.pop_front();
      u->go(due);
    }
  }

  void record(clock_type::time_point intended, clock_type::time_point done, int status, bool start) {
    if (intended < measure_from || intended >= stop_at) return;
    if (status >= 200 && status < 300) {
      ++t.ok;
      if (start) ++t.starts;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - intended).count();
      t.latency_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      if (opts.timeline)
        t.second.push_back(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(intended - measure_from).count()));
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

 private:
  /// Rate mode: turn i of this worker is due at t0 + i / rate.
  void pace() {
    auto now = clock_type::now();
    if (now >= stop_at) return;
    for (;;) {
      auto due = t0_ + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(next_ / rate_));
      if (due > now || due >= stop_at) {
        timer_.expires_at(due);
        timer_.async_wait([this](beast::error_code ec) {
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

  asio::steady_timer timer_;
  clock_type::time_point t0_;
  double rate_;
  uint64_t next_ = 0;
  std::deque<clock_type::time_point> pending_;
  std::vector<std::shared_ptr<user>> users_;
};

user::user(worker& w, int id) : w_(w), id_(id), stream_(w.io) {
  text_ix_ = static_cast<std::size_t>(id);
}

void user::go(clock_type::time_point intended) {
  idle_ = false;
  intended_ = intended;
  ++w_.in_flight;
  if (!connected_) return connect();
  send();
}

void user::connect() {
  stream_.expires_after(5s);
  stream_.async_connect(w_.endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return self->finish(0);
    self->connected_ = true;
    self->stream_.socket().set_option(tcp::no_delay(true));
    self->send();
  });
}

void user::send() {
  const auto& o = w_.opts;
  req_ = {};
  req_.version(11);
  req_.method(http::verb::post);
  req_.set(http::field::host, o.host + ":" + o.port);
  req_.set(http::field::content_type, "application/json");
  req_.set("X-Org-Id", o.tenant);
  req_.set(http::field::authorization, "Bearer " + o.key);
  if (session_.empty() || seq_ >= o.turns_per_session) {
    session_.clear();
    seq_ = 0;
    req_.target("/v5.3.0/bots/" + o.bot + "/sessions");
    req_.body() = "{\"externalSessionKey\":\"lg-" + std::to_string(id_) + "-" + std::to_string(++sessions_) +
                  "\",\"forceConfig\":{\"endpoint\":\"http://127.0.0.1/\"}}";
  } else {
    ++seq_;
    const auto& text = o.texts[text_ix_++ % o.texts.size()];
    req_.target("/v5.3.0/sessions/" + session_ + "/messages");
    req_.body() = "{\"message\":{\"type\":\"text\",\"sequenceId\":" + std::to_string(seq_) + ",\"text\":\"" +
                  json_escape(text) + "\"}}";
  }
  req_.prepare_payload();
  req_.keep_alive(true);
  if (intended_ > clock_type::now() + 1s) intended_ = clock_type::now();  // never in the future
  stream_.expires_after(10s);
  http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return self->on_read(ec);
    self->res_ = std::make_unique<http::response<http::string_body>>();
    http::async_read(self->stream_, self->buf_, *self->res_,
                     [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
  });
}

void user::on_read(beast::error_code ec) {
  if (ec) {
    connected_ = false;
    beast::error_code ignore;
    stream_.socket().close(ignore);
    buf_.clear();
    return finish(0);
  }
  int status = static_cast<int>(res_->result_int());
  bool start = session_.empty();
  if (start && status >= 200 && status < 300) {
    session_ = session_id_of(res_->body());
    if (session_.empty()) status = 599;  // a success without a session: count as an error
  }
  if (!res_->keep_alive()) {
    connected_ = false;
    beast::error_code ignore;
    stream_.socket().close(ignore);
    buf_.clear();
  }
  if (status < 200 || status >= 300) session_.clear();  // start over with a fresh session
  w_.record(intended_, clock_type::now(), status, start);
  --w_.in_flight;
  idle_ = true;
  w_.user_idle(shared_from_this());
}

void user::finish(int status) {
  bool start = session_.empty();
  session_.clear();
  w_.record(intended_, clock_type::now(), status, start);
  --w_.in_flight;
  idle_ = true;
  // A transport failure: back off briefly before the user tries again, so a dead
  // server does not turn the loop into a busy spin.
  auto t = std::make_shared<asio::steady_timer>(w_.io, 20ms);
  t->async_wait([self = shared_from_this(), t](beast::error_code) { self->w_.user_idle(self); });
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
  CLI::App app{"parley_loadgen: concurrent multi-turn Bot API conversations against a running node"};
  app.add_option("--url", o.url, "node base URL (http://host:port)")->capture_default_str();
  app.add_option("--tenant", o.tenant, "X-Org-Id")->capture_default_str();
  app.add_option("--key", o.key, "API key of the tenant (Authorization: Bearer)")->required();
  app.add_option("--bot", o.bot, "bot id to start sessions with")->capture_default_str();
  app.add_option("--connections", o.connections, "virtual users, one keep-alive connection each")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--duration", o.duration_s, "measured seconds")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", o.warmup_s, "seconds run before measuring")->capture_default_str()->check(CLI::Range(0.0, 600.0));
  app.add_option("--turns-per-session", o.turns_per_session, "text turns per session before starting over")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--rate", o.rate, "fixed rate in turns/s (open loop); 0: closed loop")->capture_default_str();
  app.add_option("--threads", o.threads, "I/O threads of the load generator")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--drain", o.drain_s, "seconds to wait for turns in flight at the end")->capture_default_str();
  app.add_flag("--timeline", o.timeline, "also print turns, p50, p99 and max for every measured second");
  app.add_option("--texts", o.texts, "texts the users send, cycled")->expected(1, 1000);
  CLI11_PARSE(app, argc, argv);
  if (!parse_url(o)) {
    std::fprintf(stderr, "parley_loadgen: --url: expected http://host:port, got %s\n", o.url.c_str());
    return 2;
  }
  if (o.rate < 0) {
    std::fprintf(stderr, "parley_loadgen: --rate must be >= 0\n");
    return 2;
  }

  asio::io_context resolve_io;
  tcp::resolver resolver(resolve_io);
  beast::error_code ec;
  auto endpoints = resolver.resolve(o.host, o.port, ec);
  if (ec) {
    std::fprintf(stderr, "parley_loadgen: cannot resolve %s:%s: %s\n", o.host.c_str(), o.port.c_str(),
                 ec.message().c_str());
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
      for (std::size_t i = 0; i < w->t.second.size(); ++i) by_second[w->t.second[i]].push_back(w->t.latency_us[i]);
    for (auto& [sec, v] : by_second) {
      std::sort(v.begin(), v.end());
      std::printf("second %3u  %7zu turns  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", sec, v.size(),
                  percentile(v, 50), percentile(v, 99), v.back() / 1000.0);
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
  std::printf("mode      %s, %d connections, %d thread(s), %d text turns per session, warmup %.1fs, measured %.1fs\n",
              closed ? "closed loop" : ("fixed rate " + std::to_string(static_cast<long>(o.rate)) + " turns/s").c_str(),
              o.connections, threads, o.turns_per_session, o.warmup_s, o.duration_s);
  std::printf("turns     %llu ok (%llu session starts), %.0f turns/s\n", static_cast<unsigned long long>(all.ok),
              static_cast<unsigned long long>(all.starts), rps);
  std::printf("latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms%s\n", p50, p90, p99, p999,
              pmax, closed ? "" : " (from the intended send time)");
  std::string errs;
  for (auto& [k, v] : all.errors) {
    if (!errs.empty()) errs += ",";
    errs += "\"" + (k == 0 ? std::string("transport") : std::to_string(k)) + "\":" + std::to_string(v);
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
  std::printf("errors    %llu (%.3f%%)%s%s\n", static_cast<unsigned long long>(failed), err_rate * 100,
              errs.empty() ? "" : " by status: ", errs.c_str());
  std::printf(
      "{\"mode\":\"%s\",\"rate\":%.0f,\"connections\":%d,\"threads\":%d,\"turns_per_session\":%d,\"duration_s\":%.1f,"
      "\"turns\":%llu,\"starts\":%llu,\"turns_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"loadgen_cpu_s\":%.2f,\"errors\":%llu,\"error_rate\":%.5f,\"errors_by_status\":{%s}}\n",
      closed ? "closed" : "rate", o.rate, o.connections, threads, o.turns_per_session, o.duration_s,
      static_cast<unsigned long long>(all.ok), static_cast<unsigned long long>(all.starts), rps, p50, p90, p99, p999,
      pmax, cpu_s, static_cast<unsigned long long>(failed), err_rate, errs.c_str());
  return err_rate > 0.01 ? 1 : 0;
}
