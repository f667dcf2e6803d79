#include "src/store/redis.hpp"

// hiredis 0.14's sds.h has no extern "C" of its own (hiredis.h includes it
// before opening one); included first, its include guard keeps this linkage.
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "src/io/lanes.hpp"

namespace parley::store {

namespace {

using clock = std::chrono::steady_clock;
namespace net = boost::asio;

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

// hiredis' reader builds each reply through these functions (its "reply
// object functions"), straight into redis_reply: its own tree would cost two
// allocations and two frees per reply plus a copy into redis_reply. The root
// of every reply is the I/O thread's reusable slot (the task's privdata); the
// elements of an array live in its `elements`, sized when its header is read,
// so their addresses stay valid while the reader fills them.

redis_reply* reply_object(const redisReadTask* task) {
  if (task->parent == nullptr) {
    auto* root = static_cast<redis_reply*>(task->privdata);
    *root = redis_reply{};  // the previous reply was moved out, or abandoned on an error
    return root;
  }
  auto* parent = static_cast<redis_reply*>(task->parent->obj);
  return &parent->elements[static_cast<std::size_t>(task->idx)];
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  auto* r = reply_object(task);
  r->type = task->type == REDIS_REPLY_ERROR    ? redis_reply::kind::error
            : task->type == REDIS_REPLY_STATUS ? redis_reply::kind::status
                                               : redis_reply::kind::string;
  r->str.assign(str, len);
  return r;
}

void* create_array(const redisReadTask* task, int elements) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::array;
  r->elements.resize(static_cast<std::size_t>(elements));
  return r;
}

void* create_integer(const redisReadTask* task, long long value) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::integer;
  r->integer = value;
  return r;
}

void* create_nil(const redisReadTask* task) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::nil;
  return r;
}

// Nothing to free: every object is the slot or inside it.
void free_object(void*) {}

redisReplyObjectFunctions reply_functions = {create_string, create_array, create_integer,
                                             create_nil, free_object};

std::size_t decimal_digits(std::size_t n) {
  std::size_t d = 1;
  for (; n >= 10; n /= 10) ++d;
  return d;
}

/// Bytes of `*N\r\n` or `$N\r\n`.
std::size_t header_size(std::size_t n) { return 1 + decimal_digits(n) + 2; }

/// `Args`: a container of std::string or std::string_view.
template <class Args>
std::size_t wire_size(const Args& args) {
  std::size_t n = header_size(args.size());
  for (auto& a : args) n += header_size(a.size()) + a.size() + 2;
  return n;
}

char* put_header(char* at, char kind, std::size_t n) {
  *at++ = kind;
  // The caller sized the buffer with header_size, so the digits always fit.
  at = std::to_chars(at, at + 20, n).ptr;
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

/// Appends `args` in Redis' wire format (RESP), the bytes redisAppendCommandArgv
/// would produce, without its sds formatting and temporary buffer. Writes
/// through a pointer into storage sized once: appending piece by piece costs
/// more than the copy of the value itself.
template <class Args>
void append_wire(std::string& out, const Args& args) {
  auto old = out.size();
  out.resize(old + wire_size(args));
  char* at = put_header(out.data() + old, '*', args.size());
  for (auto& a : args) {
    at = put_header(at, '$', a.size());
    std::memcpy(at, a.data(), a.size());
    at += a.size();
    *at++ = '\r';
    *at++ = '\n';
  }
}

/// One submission: a single command or a pipeline, with its callback. The
/// commands are serialized on the submitting thread, so the I/O thread (the
/// one thread every command of the process goes through) only copies bytes.
struct request {
  std::string wire;                  // the well-formed commands, in RESP, in order
  std::uint32_t count = 0;           // commands submitted, empty ones included
  std::vector<std::uint32_t> empty;  // indexes of empty commands, ascending; rare
  redis_callback one;                // set for command()
  redis_pipeline_callback many;      // set for pipeline()
};

/// The failures both kinds of connection (the I/O thread's and a lane's) report.
error bad_command_error() {
  return make_error("redis_bad_command", "a Redis command needs at least one argument");
}
error unavailable_error(const std::string& shown_url, const std::string& why) {
  return make_error("redis_unavailable", "Redis at " + shown_url + " is unavailable: " + why);
}
error shutting_down_error(const std::string& shown_url) {
  return make_error("redis_unavailable", "Redis client for " + shown_url + " is shutting down");
}
error timeout_error(const std::string& shown_url, std::chrono::milliseconds timeout) {
  return make_error("redis_timeout", "Redis at " + shown_url + " did not answer within " +
                                         std::to_string(timeout.count()) + " ms");
}

/// A reply as a command's result: a top-level error reply becomes a failed result;
/// nested ones (EXEC) stay.
result<redis_reply> command_result(redis_reply&& r) {
  if (r.type == redis_reply::kind::error)
    return make_error("redis_error", "Redis replied: " + r.str);
  return std::move(r);
}

/// What a fresh connection sends before any other command: AUTH when the URL has a
/// password, SELECT when it names a database other than 0.
std::vector<std::vector<std::string>> handshake_commands(const redis_endpoint& ep) {
  std::vector<std::vector<std::string>> cmds;
  if (!ep.password.empty()) {
    if (ep.username.empty())
      cmds.push_back({"AUTH", ep.password});
    else
      cmds.push_back({"AUTH", ep.username, ep.password});
  }
  if (ep.db != 0) cmds.push_back({"SELECT", std::to_string(ep.db)});
  return cmds;
}

/// One command queued on a lane connection.
struct lane_entry {
  redis_callback done;
  clock::time_point deadline;
  bool bad = false;  // empty argument list: fails with redis_bad_command in its turn
};

/// The connection of one lane (lanes mode). Every member but the counters is
/// touched only by handlers of the lane's io_context, so nothing is locked.
/// Handlers hold a shared_ptr to it and the generation they were started in:
/// after a reconnect or the client's shutdown (which bump `gen`) the aborted
/// operations of the old socket complete into handlers that do nothing.
class lane_conn : public std::enable_shared_from_this<lane_conn> {
  /// Output buffers larger than this are freed once written.
  static constexpr std::size_t max_kept_buffer = 64 * 1024;

 public:
  lane_conn(net::io_context& ioc, const redis_options& opts, const redis_endpoint& ep,
            const std::string& shown_url)
      : ioc_(ioc),
        opts_(opts),
        ep_(ep),
        shown_url_(shown_url),
        sock_(ioc),
        resolver_(ioc),
        deadline_timer_(ioc),
        retry_timer_(ioc) {}

  ~lane_conn() {
    if (reader_ != nullptr) redisReaderFree(reader_);
  }

  net::io_context& context() { return ioc_; }

  /// Queues a command whose RESP bytes `append` adds to the output buffer
  /// (nothing for a bad command). Runs on the lane.
  template <class Append>
  void enqueue(bool bad, redis_callback done, Append&& append) {
    if (st_ == state::stopped) {
      // Only a command posted from another thread just before the destructor.
      done(shutting_down());
      return;
    }
    pending_.push_back({std::move(done), clock::now() + opts_.command_timeout, bad});
    ++unsent_;
    if (!bad) {
      append(out_);
      ++out_cmds_;
    }
    if (!flush_posted_) {
      // Posted behind the handlers already queued on the lane, so the commands
      // they issue join this batch: one write and one round trip for all.
      flush_posted_ = true;
      net::post(ioc_, [self = shared_from_this()] { self->flush(); });
    }
  }

  /// First connection attempt; posted to the lane by create().
  void start() { start_connect(); }

  /// Closes the connection for good and fails what is outstanding. On the lane.
  void shutdown() {
    st_ = state::stopped;
    ++gen_;
    boost::system::error_code ec;
    sock_.close(ec);
    resolver_.cancel();
    deadline_timer_.cancel();
    retry_timer_.cancel();
    out_.clear();
    writing_.clear();
    auto failed = std::move(pending_);
    pending_.clear();
    unsent_ = 0;
    auto e = shutting_down();
    for (auto& entry : failed) entry.done(entry.bad ? bad_command() : e);
  }

  std::atomic<std::uint64_t> round_trips{0};
  std::atomic<std::uint64_t> commands{0};

 private:
  enum class state { down, connecting, handshaking, up, stopped };

  static error bad_command() { return bad_command_error(); }
  error shutting_down() const { return shutting_down_error(shown_url_); }
  error unavailable() const { return unavailable_error(shown_url_, last_error_); }

  void pop_front() {
    pending_.pop_front();
    unsent_ = std::min(unsent_, pending_.size());
  }

  /// Completes the bad commands at the head of the queue: they wait for no reply.
  void drain_bad() {
    while (!pending_.empty() && pending_.front().bad) {
      auto entry = std::move(pending_.front());
      pop_front();
      entry.done(bad_command());
    }
  }

  void flush() {
    flush_posted_ = false;
    switch (st_) {
      case state::stopped:
        return;
      case state::down:
        // Fail fast while the lane waits to reconnect.
        fail_pending(std::nullopt);
        return;
      case state::connecting:
      case state::handshaking:
        drain_bad();  // the rest is written once the handshake is done
        return;
      case state::up:
        write_out();
        drain_bad();
        arm_deadline();
        return;
    }
  }

  /// Writes the output buffer unless a write is in flight (its completion
  /// writes what was appended meanwhile).
  void write_out() {
    if (write_busy_ || out_.empty()) return;
    std::swap(out_, writing_);
    unsent_ = 0;
    round_trips.fetch_add(1, std::memory_order_relaxed);
    commands.fetch_add(std::exchange(out_cmds_, 0), std::memory_order_relaxed);
    write_busy_ = true;
    net::async_write(sock_, net::buffer(writing_),
                     [self = shared_from_this(), g = gen_](
                         boost::system::error_code ec, std::size_t) { self->on_written(g, ec); });
  }

  void on_written(std::uint64_t g, boost::system::error_code ec) {
    if (g != gen_) return;
    write_busy_ = false;
    // A burst's batch (thousands of snapshots) is not kept: the buffer's capacity would
    // stay with the lane for good.
    if (writing_.capacity() > max_kept_buffer)
      std::string().swap(writing_);
    else
      writing_.clear();
    if (ec) {
      drop(ec.message(), std::nullopt);
      return;
    }
    if (st_ == state::up) write_out();
  }

  void start_read() {
    sock_.async_read_some(net::buffer(rbuf_), [self = shared_from_this(), g = gen_](
                                                  boost::system::error_code ec, std::size_t n) {
      self->on_read(g, ec, n);
    });
  }

  void on_read(std::uint64_t g, boost::system::error_code ec, std::size_t n) {
    if (g != gen_) return;
    if (ec) {
      drop(ec == net::error::eof ? std::string("connection closed by Redis") : ec.message(),
           std::nullopt);
      return;
    }
    if (redisReaderFeed(reader_, rbuf_.data(), n) != REDIS_OK) std::abort();  // out of memory
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        drop(std::string("protocol error: ") + reader_->errstr, std::nullopt);
        return;
      }
      if (raw == nullptr) break;
      on_reply(*static_cast<redis_reply*>(raw));  // slot_, see reply_functions
      // A failed handshake drops the connection.
      if (g != gen_) return;
    }
    start_read();
  }

  void on_reply(redis_reply& r) {
    if (handshake_left_ > 0) {
      --handshake_left_;
      if (r.type == redis_reply::kind::error) {
        drop("handshake failed: " + r.str, std::nullopt);
        return;
      }
      if (handshake_left_ == 0) on_ready();
      return;
    }
    drain_bad();
    if (pending_.size() == unsent_) {
      // Redis never speaks unasked: the stream cannot be trusted any more.
      drop("Redis sent data nobody asked for", std::nullopt);
      return;
    }
    auto entry = std::move(pending_.front());
    pop_front();
    entry.done(command_result(std::move(r)));
    drain_bad();
  }

  void start_connect() {
    ++gen_;
    st_ = state::connecting;
    if (reader_ != nullptr) redisReaderFree(reader_);
    reader_ = redisReaderCreateWithFunctions(&reply_functions);
    if (reader_ == nullptr) std::abort();  // out of memory
    reader_->privdata = &slot_;
    handshake_left_ = 0;
    connect_deadline_ = clock::now() + opts_.connect_timeout;
    deadline_armed_ = false;
    arm_timer(connect_deadline_);
    auto g = gen_;
    if (!ep_.unix_path.empty()) {
      net::local::stream_protocol::endpoint target(ep_.unix_path);
      sock_.async_connect(net::generic::stream_protocol::endpoint(target),
                          [self = shared_from_this(), g](boost::system::error_code ec) {
                            self->on_connected(g, ec);
                          });
      return;
    }
    resolver_.async_resolve(
        ep_.host, std::to_string(ep_.port),
        [self = shared_from_this(), g](boost::system::error_code ec,
                                       net::ip::tcp::resolver::results_type results) {
          if (g != self->gen_) return;
          if (ec) {
            self->drop("cannot resolve " + self->ep_.host + ": " + ec.message(), std::nullopt);
            return;
          }
          std::vector<net::generic::stream_protocol::endpoint> targets;
          for (auto& entry : results) targets.emplace_back(entry.endpoint());
          net::async_connect(self->sock_, targets,
                             [self, g](boost::system::error_code ec2,
                                       const net::generic::stream_protocol::endpoint&) {
                               self->on_connected(g, ec2);
                             });
        });
  }

  void on_connected(std::uint64_t g, boost::system::error_code ec) {
    if (g != gen_) return;
    if (ec) {
      drop(ec.message(), std::nullopt);
      return;
    }
    if (ep_.unix_path.empty()) {
      // Replies are small and awaited: Nagle would hold every batch back.
      boost::system::error_code ignored;
      sock_.set_option(net::ip::tcp::no_delay(true), ignored);
    }
    std::string hello;
    for (const auto& cmd : handshake_commands(ep_)) {
      ++handshake_left_;
      append_wire(hello, cmd);
    }
    start_read();
    if (handshake_left_ == 0) {
      on_ready();
      return;
    }
    // The commands queued meanwhile wait in out_ until the handshake answered:
    // written before it, they could run unauthenticated or in the wrong db.
    st_ = state::handshaking;
    writing_ = std::move(hello);
    write_busy_ = true;
    net::async_write(sock_, net::buffer(writing_),
                     [self = shared_from_this(), g](boost::system::error_code ec2, std::size_t) {
                       self->on_written(g, ec2);
                     });
  }

  void on_ready() {
    st_ = state::up;
    backoff_ = std::chrono::milliseconds{0};
    last_error_.clear();
    // The timer still waits for the connect deadline, later than the commands'.
    deadline_timer_.cancel();
    deadline_armed_ = false;
    write_out();
    drain_bad();
    arm_deadline();
  }

  void arm_timer(clock::time_point at) {
    deadline_armed_ = true;
    deadline_timer_.expires_at(at);
    deadline_timer_.async_wait([self = shared_from_this(), g = gen_](boost::system::error_code ec) {
      // Cancelled only by on_ready, which re-arms, or with a new generation.
      if (ec != net::error::operation_aborted) self->on_deadline(g);
    });
  }

  /// One timer per connection, armed while commands are outstanding at the
  /// oldest one's deadline; when it fires early it re-arms for the new oldest,
  /// so queueing a command never touches the timer queue.
  void arm_deadline() {
    if (!deadline_armed_ && st_ == state::up && !pending_.empty())
      arm_timer(pending_.front().deadline);
  }

  void on_deadline(std::uint64_t g) {
    if (g != gen_) return;
    deadline_armed_ = false;
    auto now = clock::now();
    if (st_ == state::connecting || st_ == state::handshaking) {
      if (now < connect_deadline_) {
        arm_timer(connect_deadline_);
        return;
      }
      drop("no connection within " + std::to_string(opts_.connect_timeout.count()) + " ms",
           std::nullopt);
      return;
    }
    if (st_ != state::up || pending_.empty()) return;
    if (pending_.front().deadline > now) {
      arm_timer(pending_.front().deadline);
      return;
    }
    // The reply stream can no longer be trusted: rebuild the connection.
    drop("previous command timed out", timeout_error(shown_url_, opts_.command_timeout));
  }

  /// Fails every queued command: the written ones with `written_error` if
  /// given, the rest (and all when not given) with redis_unavailable.
  void fail_pending(const std::optional<error>& written_error) {
    auto written = pending_.size() - unsent_;
    auto failed = std::move(pending_);
    pending_.clear();
    unsent_ = 0;
    out_.clear();
    out_cmds_ = 0;
    // Callbacks may queue more commands on this lane: they find the state set.
    auto e = unavailable();
    for (std::size_t i = 0; i < failed.size(); ++i) {
      auto& entry = failed[i];
      if (entry.bad) {
        entry.done(bad_command());
      } else if (i < written && written_error) {
        entry.done(*written_error);
      } else {
        entry.done(e);
      }
    }
  }

  /// Closes the connection (or abandons the attempt), fails what is queued and
  /// schedules the next attempt: soon after losing a working connection (often
  /// a restarted server), with doubling backoff after a failed attempt.
  void drop(const std::string& why, const std::optional<error>& written_error) {
    bool was_up = st_ == state::up;
    ++gen_;
    st_ = state::down;
    boost::system::error_code ignored;
    sock_.close(ignored);
    resolver_.cancel();
    deadline_timer_.cancel();
    deadline_armed_ = false;
    write_busy_ = false;
    writing_.clear();
    handshake_left_ = 0;
    last_error_ = why;
    if (was_up || backoff_.count() == 0) {
      backoff_ = opts_.reconnect_min;
    } else {
      backoff_ = std::min(backoff_ * 2, opts_.reconnect_max);
    }
    retry_timer_.expires_after(backoff_);
    retry_timer_.async_wait([self = shared_from_this(), g = gen_](boost::system::error_code ec) {
      if (ec || g != self->gen_) return;
      self->start_connect();
    });
    fail_pending(written_error);
  }

  net::io_context& ioc_;
  const redis_options opts_;
  const redis_endpoint ep_;
  const std::string shown_url_;
  state st_ = state::connecting;  // commands queued before the first attempt wait for it
  std::uint64_t gen_ = 0;
  net::generic::stream_protocol::socket sock_;
  net::ip::tcp::resolver resolver_;
  net::steady_timer deadline_timer_;
  bool deadline_armed_ = false;
  clock::time_point connect_deadline_{};
  net::steady_timer retry_timer_;
  std::chrono::milliseconds backoff_{0};
  std::string last_error_ = "not connected yet";

  std::deque<lane_entry> pending_;  // outstanding commands, oldest first
  std::size_t unsent_ = 0;          // the newest pending_ entries not yet handed to a write
  std::string out_;                 // RESP of the unsent commands
  std::size_t out_cmds_ = 0;        // commands in out_
  std::string writing_;             // the bytes of the write in flight
  bool write_busy_ = false;
  bool flush_posted_ = false;
  int handshake_left_ = 0;  // AUTH/SELECT replies still awaited

  redisReader* reader_ = nullptr;
  redis_reply slot_;  // the reply being read, see reply_functions
  std::array<char, 16 * 1024> rbuf_{};
};

}  // namespace

result<redis_endpoint> parse_redis_url(std::string_view url) {
  redis_endpoint ep;
  constexpr std::string_view unix_scheme = "unix://";
  constexpr std::string_view redis_scheme = "redis://";
  if (url.substr(0, unix_scheme.size()) == unix_scheme) {
    auto rest = url.substr(unix_scheme.size());
    // unix://[[username:]password@]/path: the userinfo ends where the path begins.
    if (auto at = rest.find("@/");
        !rest.empty() && rest.front() != '/' && at != std::string_view::npos) {
      auto userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
      auto colon = userinfo.find(':');
      if (colon == std::string_view::npos) {
        ep.password = std::string(userinfo);
      } else {
        ep.username = std::string(userinfo.substr(0, colon));
        ep.password = std::string(userinfo.substr(colon + 1));
      }
    }
    auto q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path.front() != '/')
      return bad_url(url,
                     "the socket path must be absolute (unix:///path/to.sock, or "
                     "unix://[user:]password@/path/to.sock)");
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
  // A vector rather than a deque: the I/O thread swaps it with its (empty)
  // batch, so both keep their capacity and queueing allocates nothing.
  std::vector<request> queue;   // guarded by mtx
  std::size_t queued_cmds = 0;  // commands in `queue`; guarded by mtx
  bool stopping = false;        // guarded by mtx
  // Set by the I/O thread when it found the queue empty and is about to poll;
  // the first submitter after that clears it and writes wake_fd. While the I/O
  // thread is busy it re-checks the queue before sleeping, so submitters skip
  // the eventfd write (a syscall and a wake-up per command otherwise).
  bool io_idle = false;  // guarded by mtx
  int wake_fd = -1;

  // Lanes mode: one connection per lane, index = lane. Shared with the
  // handlers in flight on the lanes, which may outlive the client by a little.
  std::vector<std::shared_ptr<lane_conn>> lanes;

  std::atomic<bool> is_connected{false};
  std::atomic<std::uint64_t> round_trips{0};
  std::atomic<std::uint64_t> commands_sent{0};
  std::thread io;
  std::thread::id io_id;

  static constexpr std::size_t kept_capacity = 1024;  // requests, see run()

  // Owned by the I/O thread only.
  std::vector<request> batch;  // the requests of the round trip in progress
  redis_reply reply_slot;      // the reply being read, see reply_functions
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
    bool sleeping = false;
    {
      std::lock_guard<std::mutex> lock(mtx);
      queued_cmds += req.count;
      queue.push_back(std::move(req));
      sleeping = std::exchange(io_idle, false);
    }
    // No lost wake-up: io_idle is set under mtx only after the I/O thread saw
    // the queue empty, so this push either is seen by that check or finds
    // io_idle set and makes the coming (or current) poll return.
    if (sleeping) wake();
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
  bool handshake(redisContext* c, const std::vector<std::string>& args, std::string& why) {
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
    for (const auto& cmd : handshake_commands(ep))
      if (!(ok = handshake(c, cmd, why))) break;
    if (!ok) {
      redisFree(c);
      schedule_retry(why);
      return;
    }
    // After the handshake, whose redisCommandArgv needs hiredis' own reply objects.
    c->reader->fn = &reply_functions;
    c->reader->privdata = &reply_slot;
    ctx = c;
    backoff = std::chrono::milliseconds{0};
    last_error.clear();
    is_connected.store(true);
  }

  error unavailable() const { return unavailable_error(shown_url, last_error); }
  static error bad_command() { return bad_command_error(); }

  void fail_all(std::vector<request>& reqs, const error& e) {
    for (auto& req : reqs) {
      if (req.one) {
        req.one(e);
      } else {
        req.many(std::vector<result<redis_reply>>(req.count, result<redis_reply>(e)));
      }
    }
  }

  /// Reads the next reply; on failure drops the connection and sets `broken`
  /// (every later command of the batch then fails the same way).
  result<redis_reply> read_reply(std::optional<error>& broken) {
    if (broken) return *broken;
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
      int saved_errno = errno;
      bool timed_out =
          ctx->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
      std::string why = ctx->errstr;
      if (timed_out) {
        broken = timeout_error(shown_url, opts.command_timeout);
        drop_connection("previous command timed out");
      } else {
        drop_connection(why);
        broken = unavailable();
      }
      return *broken;
    }
    return command_result(
        std::move(*static_cast<redis_reply*>(raw)));  // reply_slot, see reply_functions
  }

  /// Writes every command of the batch, then reads every reply: one round trip.
  void execute(std::vector<request>& reqs) {
    std::size_t bytes = 0;
    std::uint64_t appended = 0;
    for (auto& req : reqs) {
      bytes += req.wire.size();
      appended += req.count - req.empty.size();
    }
    if (appended > 0) {
      // One allocation for the whole batch instead of regrowing hiredis' output
      // buffer while appending (it frees the buffer after every full write).
      ctx->obuf = sdsMakeRoomFor(ctx->obuf, bytes);
      if (ctx->obuf == nullptr) std::abort();  // out of memory: an internal failure
      for (auto& req : reqs) {
        if (req.wire.empty()) continue;
        // Append only fails when out of memory: an internal failure, not Redis'.
        if (redisAppendFormattedCommand(ctx, req.wire.data(), req.wire.size()) != REDIS_OK)
          std::abort();
      }
      round_trips.fetch_add(1, std::memory_order_relaxed);
      commands_sent.fetch_add(appended, std::memory_order_relaxed);
    }
    std::optional<error> broken;
    for (auto& req : reqs) {
      if (req.one) {
        req.one(req.empty.empty() ? read_reply(broken) : result<redis_reply>(bad_command()));
        continue;
      }
      std::vector<result<redis_reply>> replies;
      replies.reserve(req.count);
      auto next_empty = req.empty.begin();
      for (std::uint32_t j = 0; j < req.count; ++j) {
        if (next_empty != req.empty.end() && *next_empty == j) {
          ++next_empty;
          replies.emplace_back(bad_command());
        } else {
          replies.push_back(read_reply(broken));
        }
      }
      req.many(std::move(replies));
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

  /// Moves up to max_batch commands (at least one request) from the queue
  /// into `batch`, which is empty. Called with mtx held.
  void take_batch() {
    if (queued_cmds <= opts.max_batch) {
      std::swap(batch, queue);
      queued_cmds = 0;
      return;
    }
    std::size_t n = 0;
    std::size_t taken = 0;
    for (; taken < queue.size(); ++taken) {
      auto c = queue[taken].count;
      if (taken > 0 && n + c > opts.max_batch) break;
      n += c;
    }
    batch.insert(batch.end(), std::make_move_iterator(queue.begin()),
                 std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(taken)));
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(taken));
    queued_cmds -= n;
  }

  void run() {
    try_connect();
    for (;;) {
      // Runs the callbacks' destructors (captured state) outside the lock.
      batch.clear();
      // The queue and the batch swap roles, so a burst (or an outage) would pin
      // its peak capacity in both for good; keep what steady load needs.
      if (batch.capacity() > kept_capacity) batch.shrink_to_fit();
      bool stop = false;
      {
        std::lock_guard<std::mutex> lock(mtx);
        stop = stopping;
        take_batch();
        io_idle = batch.empty() && !stop;
      }
      if (!batch.empty()) {
        if (stop) {
          fail_all(batch, shutting_down_error(shown_url));
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
  if (p->opts.lanes != nullptr) {
    auto& l = *p->opts.lanes;
    for (std::size_t i = 0; i < l.size(); ++i) {
      auto conn = std::make_shared<lane_conn>(l.at(i), p->opts, p->ep, p->shown_url);
      net::post(l.at(i), [conn] { conn->start(); });
      p->lanes.push_back(std::move(conn));
    }
  }
  auto* raw = p.get();
  p->io = std::thread([raw] { raw->run(); });
  p->io_id = p->io.get_id();
  return std::unique_ptr<redis_client>(new redis_client(std::move(p)));
}

redis_client::redis_client(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

redis_client::~redis_client() {
  // Joining the I/O thread from itself would deadlock: a caller bug.
  if (std::this_thread::get_id() == impl_->io_id) std::abort();
  // Waiting for a lane from that lane would never return: a caller bug.
  for (auto& conn : impl_->lanes)
    if (conn->context().get_executor().running_in_this_thread()) std::abort();
  std::vector<std::future<void>> lanes_done;
  for (auto& conn : impl_->lanes) {
    auto done = std::make_shared<std::promise<void>>();
    lanes_done.push_back(done->get_future());
    net::post(conn->context(), [conn, done] {
      conn->shutdown();
      done->set_value();
    });
  }
  for (auto& f : lanes_done) f.wait();
  {
    std::lock_guard<std::mutex> lock(impl_->mtx);
    impl_->stopping = true;
  }
  impl_->wake();
  impl_->io.join();
}

namespace {

template <class Args>
request single_command(const Args& args, redis_callback done) {
  request req;
  req.count = 1;
  if (args.size() == 0) {
    req.empty.push_back(0);
  } else {
    append_wire(req.wire, args);
  }
  req.one = std::move(done);
  return req;
}

}  // namespace

void redis_client::command(std::vector<std::string> args, redis_callback done) {
  impl_->submit(single_command(args, std::move(done)));
}

void redis_client::command(std::initializer_list<std::string_view> args, redis_callback done) {
  impl_->submit(single_command(args, std::move(done)));
}

void redis_client::command_on(std::size_t lane, std::initializer_list<std::string_view> args,
                              redis_callback done) {
  if (impl_->lanes.empty()) {
    command(args, std::move(done));
    return;
  }
  if (lane >= impl_->lanes.size()) std::abort();  // no such lane: a caller bug
  auto& conn = impl_->lanes[lane];
  bool bad = args.size() == 0;
  if (conn->context().get_executor().running_in_this_thread()) {
    // Serialized straight into the lane's output buffer: no copy, no lock.
    conn->enqueue(bad, std::move(done), [&](std::string& out) { append_wire(out, args); });
    return;
  }
  std::string wire;
  if (!bad) append_wire(wire, args);
  net::post(conn->context(), [conn, bad, wire = std::move(wire), done = std::move(done)]() mutable {
    conn->enqueue(bad, std::move(done), [&](std::string& out) { out += wire; });
  });
}

void redis_client::pipeline(std::vector<std::vector<std::string>> cmds,
                            redis_pipeline_callback done) {
  if (cmds.empty()) {
    // Keep the contract (callback on the I/O thread) even for an empty pipeline.
    command({"PING"}, [done = std::move(done)](result<redis_reply>) { done({}); });
    return;
  }
  request req;
  req.count = static_cast<std::uint32_t>(cmds.size());
  std::size_t bytes = 0;
  for (auto& c : cmds) bytes += c.empty() ? 0 : wire_size(c);
  req.wire.reserve(bytes);
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    if (cmds[i].empty()) {
      req.empty.push_back(static_cast<std::uint32_t>(i));
    } else {
      append_wire(req.wire, cmds[i]);
    }
  }
  req.many = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::ping(std::function<void(result<void>)> done) {
  // The I/O thread's connection and, in lanes mode, every lane's: the first failure
  // wins (naming its lane), `done` runs once the last answer is in.
  struct gather {
    std::mutex m;
    std::size_t left = 0;
    std::optional<error> failed;
    std::function<void(result<void>)> done;
  };
  auto g = std::make_shared<gather>();
  g->left = impl_->lanes.size() + 1;
  g->done = std::move(done);
  auto answer = [g](result<redis_reply> r, std::string where) {
    std::unique_lock<std::mutex> lock(g->m);
    if (!r && !g->failed) {
      auto e = r.err();
      if (!where.empty()) e.message = where + ": " + e.message;
      g->failed = e;
    }
    if (--g->left > 0) return;
    auto failed = std::move(g->failed);
    lock.unlock();
    if (failed)
      g->done(*failed);
    else
      g->done(result<void>());
  };
  command({"PING"}, [answer](result<redis_reply> r) { answer(std::move(r), std::string()); });
  for (std::size_t i = 0; i < impl_->lanes.size(); ++i)
    command_on(i, {"PING"}, [answer, i](result<redis_reply> r) {
      answer(std::move(r), "lane connection " + std::to_string(i));
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
  stats_snapshot s{impl_->round_trips.load(), impl_->commands_sent.load()};
  for (auto& conn : impl_->lanes) {
    s.round_trips += conn->round_trips.load(std::memory_order_relaxed);
    s.commands += conn->commands.load(std::memory_order_relaxed);
  }
  return s;
}

const std::string& redis_client::url() const { return impl_->shown_url; }

}  // namespace parley::store
