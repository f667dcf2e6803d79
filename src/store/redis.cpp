#include "src/store/redis.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace parley::store {

namespace {

using clock = std::chrono::steady_clock;

/// The URL with the password of its userinfo (if any) replaced by "***".
std::string redact(std::string_view url) {
  std::string out(url);
  auto scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  auto start = scheme + 3;
  auto at = out.find('@', start);
  if (at == std::string::npos || at > out.find('/', start)) return out;
  auto colon = out.find(':', start);
  auto from = colon != std::string::npos && colon < at ? colon + 1 : start;
  out.replace(from, at - from, "***");
  return out;
}

error bad_url(std::string_view url, const std::string& what) {
  return make_error("bad_redis_url", "Redis URL '" + redact(url) + "': " + what);
}

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

redis_reply convert(const redisReply* r) {
  redis_reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = redis_reply::kind::nil;
  }
  return out;
}

/// A top-level error reply becomes a failed result; nested ones (EXEC) stay.
result<redis_reply> to_result(redis_reply r) {
  if (r.type == redis_reply::kind::error)
    return make_error("redis_error", "Redis replied: " + r.str);
  return r;
}

/// One submission: a single command or a pipeline, with its callback.
struct request {
  std::vector<std::vector<std::string>> cmds;
  redis_callback one;            // set for command()
  redis_pipeline_callback many;  // set for pipeline()
};

}  // namespace

result<redis_endpoint> parse_redis_url(std::string_view url) {
  redis_endpoint ep;
  constexpr std::string_view unix_scheme = "unix://";
  constexpr std::string_view redis_scheme = "redis://";
  if (url.substr(0, unix_scheme.size()) == unix_scheme) {
    auto rest = url.substr(unix_scheme.size());
    auto q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path.front() != '/')
      return bad_url(url, "the socket path must be absolute (unix:///path/to.sock)");
    ep.unix_path = std::string(path);
    if (q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      constexpr std::string_view db_key = "db=";
      if (query.substr(0, db_key.size()) != db_key)
        return bad_url(url, "unknown query '" + std::string(query) + "' (only db=N is supported)");
      auto db = parse_int(query.substr(db_key.size()));
      if (!db || *db < 0)
        return bad_url(url, "database '" + std::string(query.substr(db_key.size())) +
                                "' is not a non-negative number");
      ep.db = *db;
    }
    return ep;
  }
  if (url.substr(0, redis_scheme.size()) != redis_scheme) {
    auto colon = url.find("://");
    return bad_url(url, colon == std::string_view::npos
                            ? std::string("missing scheme (expected redis:// or unix://)")
                            : "unsupported scheme '" + std::string(url.substr(0, colon)) +
                                  "' (expected redis:// or unix://)");
  }
  auto rest = url.substr(redis_scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      ep.password = std::string(userinfo);  // redis://secret@host, as redis-cli accepts
    } else {
      ep.username = std::string(userinfo.substr(0, colon));
      ep.password = std::string(userinfo.substr(colon + 1));
    }
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad_url(url, "unterminated IPv6 host '" + std::string(authority) + "'");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return bad_url(url, "unexpected '" + std::string(after) + "' after the host");
      auto port = parse_int(after.substr(1));
      if (!port || *port <= 0 || *port > 65535)
        return bad_url(url,
                       "port '" + std::string(after.substr(1)) + "' is not a number in 1..65535");
      ep.port = *port;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    auto port = parse_int(authority.substr(colon + 1));
    if (!port || *port <= 0 || *port > 65535)
      return bad_url(url, "port '" + std::string(authority.substr(colon + 1)) +
                              "' is not a number in 1..65535");
    ep.port = *port;
  }
  if (host.empty()) return bad_url(url, "missing host");
  ep.host = std::string(host);
  if (slash != std::string_view::npos) {
    auto db_part = rest.substr(slash + 1);
    if (!db_part.empty()) {
      auto db = parse_int(db_part);
      if (!db || *db < 0)
        return bad_url(url, "database '" + std::string(db_part) + "' is not a non-negative number");
      ep.db = *db;
    }
  }
  return ep;
}

struct redis_client::impl {
  redis_options opts;
  redis_endpoint ep;
  std::string shown_url;  // opts.url without the password, for messages

  std::mutex mtx;
  std::deque<request> queue;  // guarded by mtx
  bool stopping = false;      // guarded by mtx
  int wake_fd = -1;

  std::atomic<bool> is_connected{false};
  std::atomic<std::uint64_t> round_trips{0};
  std::atomic<std::uint64_t> commands_sent{0};
  std::thread io;
  std::thread::id io_id;

  // Owned by the I/O thread only.
  redisContext* ctx = nullptr;
  clock::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  std::string last_error = "not connected yet";

  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void wake() {
    uint64_t one = 1;
    // A full eventfd counter still wakes the reader, so a failed write is harmless.
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  void submit(request req) {
    {
      std::lock_guard<std::mutex> lock(mtx);
      queue.push_back(std::move(req));
    }
    wake();
  }

  void drop_connection(const std::string& why) {
    if (ctx != nullptr) {
      redisFree(ctx);
      ctx = nullptr;
    }
    is_connected.store(false);
    last_error = why;
    backoff = opts.reconnect_min;
    // Retry soon: a dropped connection is often a restarted server.
    next_attempt = clock::now() + backoff;
  }

  void schedule_retry(const std::string& why) {
    last_error = why;
    backoff = backoff.count() == 0 ? opts.reconnect_min : std::min(backoff * 2, opts.reconnect_max);
    next_attempt = clock::now() + backoff;
  }

  /// Runs one command on the fresh connection during the handshake.
  bool handshake(redisContext* c, std::vector<std::string> args, std::string& why) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      why = c->errstr;
      return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) why = args[0] + " failed: " + std::string(r->str, r->len);
    freeReplyObject(r);
    return ok;
  }

  void try_connect() {
    auto tv = to_timeval(opts.connect_timeout);
    redisContext* c = ep.unix_path.empty() ? redisConnectWithTimeout(ep.host.c_str(), ep.port, tv)
                                           : redisConnectUnixWithTimeout(ep.unix_path.c_str(), tv);
    if (c == nullptr) {
      schedule_retry("cannot allocate a Redis context");
      return;
    }
    if (c->err != 0) {
      std::string why = c->errstr;
      redisFree(c);
      schedule_retry(why);
      return;
    }
    redisSetTimeout(c, to_timeval(opts.command_timeout));
    std::string why;
    bool ok = true;
    if (!ep.password.empty()) {
      ok = ep.username.empty() ? handshake(c, {"AUTH", ep.password}, why)
                               : handshake(c, {"AUTH", ep.username, ep.password}, why);
    }
    if (ok && ep.db != 0) ok = handshake(c, {"SELECT", std::to_string(ep.db)}, why);
    if (!ok) {
      redisFree(c);
      schedule_retry(why);
      return;
    }
    ctx = c;
    backoff = std::chrono::milliseconds{0};
    last_error.clear();
    is_connected.store(true);
  }

  error unavailable() const {
    return make_error("redis_unavailable",
                      "Redis at " + shown_url + " is unavailable: " + last_error);
  }

  static void complete(request& req, std::vector<result<redis_reply>> replies) {
    if (req.one) {
      req.one(std::move(replies.front()));
    } else {
      req.many(std::move(replies));
    }
  }

  void fail_all(std::vector<request>& batch, const error& e) {
    for (auto& req : batch) {
      std::vector<result<redis_reply>> replies(req.cmds.size(), result<redis_reply>(e));
      complete(req, std::move(replies));
    }
  }

  /// Writes every command of the batch, then reads every reply: one round trip.
  void execute(std::vector<request>& batch) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    std::vector<std::vector<bool>> sent(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      for (auto& cmd : batch[i].cmds) {
        bool ok = !cmd.empty();
        if (ok) {
          argv.clear();
          lens.clear();
          for (auto& a : cmd) {
            argv.push_back(a.data());
            lens.push_back(a.size());
          }
          ok = redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(),
                                      lens.data()) == REDIS_OK;
          // Append only fails when out of memory: an internal failure, not Redis'.
          if (!ok) std::abort();
        }
        sent[i].push_back(ok);
      }
    }
    std::uint64_t appended = 0;
    for (auto& s : sent)
      appended += static_cast<std::uint64_t>(std::count(s.begin(), s.end(), true));
    if (appended > 0) {
      round_trips.fetch_add(1);
      commands_sent.fetch_add(appended);
    }
    std::optional<error> broken;
    for (size_t i = 0; i < batch.size(); ++i) {
      std::vector<result<redis_reply>> replies;
      replies.reserve(batch[i].cmds.size());
      for (size_t j = 0; j < batch[i].cmds.size(); ++j) {
        if (!sent[i][j]) {
          replies.emplace_back(
              make_error("redis_bad_command", "a Redis command needs at least one argument"));
          continue;
        }
        if (broken) {
          replies.emplace_back(*broken);
          continue;
        }
        void* raw = nullptr;
        if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
          int saved_errno = errno;
          bool timed_out =
              ctx->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
          std::string why = ctx->errstr;
          if (timed_out) {
            broken = make_error("redis_timeout",
                                "Redis at " + shown_url + " did not answer within " +
                                    std::to_string(opts.command_timeout.count()) + " ms");
            drop_connection("previous command timed out");
          } else {
            drop_connection(why);
            broken = unavailable();
          }
          replies.emplace_back(*broken);
          continue;
        }
        auto* r = static_cast<redisReply*>(raw);
        replies.emplace_back(to_result(convert(r)));
        freeReplyObject(r);
      }
      complete(batch[i], std::move(replies));
    }
  }

  /// Called on the idle connection when its socket turns readable: Redis never
  /// speaks unasked here, so it is an EOF (server gone) or a protocol error.
  void check_idle_socket() {
    if (redisBufferRead(ctx) != REDIS_OK) {
      drop_connection(ctx->errstr);
      return;
    }
    drop_connection("Redis sent data nobody asked for");
  }

  void run() {
    try_connect();
    for (;;) {
      std::vector<request> batch;
      bool stop = false;
      {
        std::lock_guard<std::mutex> lock(mtx);
        stop = stopping;
        size_t n = 0;
        while (!queue.empty() && (n == 0 || n + queue.front().cmds.size() <= opts.max_batch)) {
          n += queue.front().cmds.size();
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      if (!batch.empty()) {
        if (stop) {
          fail_all(batch, make_error("redis_unavailable",
                                     "Redis client for " + shown_url + " is shutting down"));
          continue;
        }
        if (ctx == nullptr && clock::now() >= next_attempt) try_connect();
        if (ctx == nullptr) {
          fail_all(batch, unavailable());
        } else {
          execute(batch);
        }
        continue;
      }
      if (stop) break;

      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {-1, POLLIN, 0}};
      int timeout_ms = -1;
      if (ctx != nullptr) {
        fds[1].fd = ctx->fd;
      } else {
        auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt - clock::now());
        timeout_ms = static_cast<int>(std::max<long long>(0, wait.count() + 1));
      }
      int n = ::poll(fds, ctx != nullptr ? 2 : 1, timeout_ms);
      if (n < 0 && errno != EINTR) std::abort();  // poll on our own fds cannot fail otherwise
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(wake_fd, &count, sizeof count);
      }
      if (ctx != nullptr && n > 0 && fds[1].revents != 0) check_idle_socket();
      if (ctx == nullptr && clock::now() >= next_attempt) {
        std::lock_guard<std::mutex> lock(mtx);
        if (stopping) continue;
      }
      if (ctx == nullptr && clock::now() >= next_attempt) try_connect();
    }
    if (ctx != nullptr) {
      redisFree(ctx);
      ctx = nullptr;
    }
    is_connected.store(false);
  }
};

result<std::unique_ptr<redis_client>> redis_client::create(redis_options options) {
  auto ep = parse_redis_url(options.url);
  if (!ep) return ep.err();
  if (options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0)
    return make_error("bad_redis_url", "Redis timeouts must be positive");
  if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min)
    return make_error("bad_redis_url", "Redis reconnect backoff must be positive with min <= max");
  if (options.max_batch == 0) options.max_batch = 1;
  auto p = std::make_unique<impl>();
  p->opts = std::move(options);
  p->ep = std::move(*ep);
  p->shown_url = redact(p->opts.url);
  p->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake_fd < 0)
    return make_error("redis_unavailable", "cannot create an eventfd for the Redis client");
  auto* raw = p.get();
  p->io = std::thread([raw] { raw->run(); });
  p->io_id = p->io.get_id();
  return std::unique_ptr<redis_client>(new redis_client(std::move(p)));
}

redis_client::redis_client(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

redis_client::~redis_client() {
  // Joining the I/O thread from itself would deadlock: a caller bug.
  if (std::this_thread::get_id() == impl_->io_id) std::abort();
  {
    std::lock_guard<std::mutex> lock(impl_->mtx);
    impl_->stopping = true;
  }
  impl_->wake();
  impl_->io.join();
}

void redis_client::command(std::vector<std::string> args, redis_callback done) {
  request req;
  req.cmds.push_back(std::move(args));
  req.one = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::pipeline(std::vector<std::vector<std::string>> cmds,
                            redis_pipeline_callback done) {
  if (cmds.empty()) {
    // Keep the contract (callback on the I/O thread) even for an empty pipeline.
    command({"PING"}, [done = std::move(done)](result<redis_reply>) { done({}); });
    return;
  }
  request req;
  req.cmds = std::move(cmds);
  req.many = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::ping(std::function<void(result<void>)> done) {
  command({"PING"}, [done = std::move(done)](result<redis_reply> r) {
    if (!r) {
      done(r.err());
    } else {
      done(result<void>());
    }
  });
}

result<redis_reply> redis_client::command_sync(std::vector<std::string> args) {
  if (std::this_thread::get_id() == impl_->io_id)
    return make_error("redis_misuse", "command_sync called from the Redis client's own I/O thread");
  std::promise<result<redis_reply>> p;
  auto f = p.get_future();
  command(std::move(args), [&p](result<redis_reply> r) { p.set_value(std::move(r)); });
  return f.get();
}

bool redis_client::connected() const { return impl_->is_connected.load(); }

redis_client::stats_snapshot redis_client::stats() const {
  return {impl_->round_trips.load(), impl_->commands_sent.load()};
}

const std::string& redis_client::url() const { return impl_->shown_url; }

}  // namespace parley::store
