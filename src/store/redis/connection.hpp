#pragma once
/// The one Redis connection engine of parley::store's Redis client: a connection driven
/// entirely by one io_context (an io::lanes lane, or the client's own loop), with its
/// own connect, AUTH/SELECT/SCRIPT LOAD handshake, group commit, command deadline,
/// reconnect backoff and fail-outstanding logic. Internal to src/store/redis/.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "src/store/redis.hpp"
#include "src/store/redis/wire.hpp"

struct redisReader;

namespace parley::store {
class redis_probe;
}

namespace parley::store::detail {

/// Every member but the atomics is touched only by handlers of the connection's
/// io_context, so nothing is locked. Handlers hold a shared_ptr to it and the
/// generation they were started in: after a reconnect or the shutdown (which bump the
/// generation) the aborted operations of the old socket complete into handlers that do
/// nothing.
///
/// Commands queued while the io_context runs other handlers are written together by
/// one flush handler posted with the first of them (group commit), at most
/// `max_batch` commands per write. Commands already written when the connection
/// breaks fail (with `redis_timeout` when a deadline broke it, `redis_unavailable`
/// otherwise) and are not resent; while the connection is down commands fail fast.
class connection : public std::enable_shared_from_this<connection> {
 public:
  using clock = std::chrono::steady_clock;

  /// `opts`, `ep` and `shown_url` are copied. `probe` (may be null) counts the writes
  /// and, when `reports_connected`, this connection's state.
  ///
  /// `stop_and_wait`: write nothing while replies are outstanding, so everything queued
  /// meanwhile goes in the next write (the client's own loop, which commands from many
  /// threads reach: fewer, larger round trips). Lane connections write at once.
  connection(boost::asio::io_context& ioc, const redis_options& opts, const redis_endpoint& ep,
             const std::string& shown_url, redis_probe* probe, bool reports_connected,
             bool stop_and_wait);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  boost::asio::io_context& context() { return ioc_; }

  /// Queues a command whose RESP bytes `append(std::string&)` adds to the output buffer
  /// (nothing for a `bad` one, which fails with redis_bad_command in its turn). On the
  /// connection's io_context only; `done` runs there, in queueing order.
  template <class Append>
  void enqueue(bool bad, redis_callback done, Append&& append) {
    if (st_ == state::stopped) {
      // Only a command posted from another thread just before the shutdown.
      done(shutting_down_error(shown_url_));
      return;
    }
    std::size_t before = out_.size();
    if (!bad) {
      append(out_);
      ++out_cmds_;
    }
    pending_.push_back({std::move(done), clock::now() + opts_.command_timeout,
                        static_cast<std::uint32_t>(out_.size() - before), bad});
    ++unsent_;
    if (!flush_posted_ && !batching_) {
      // Posted behind the handlers already queued, so the commands they issue join
      // this batch: one write and one round trip for all.
      flush_posted_ = true;
      boost::asio::post(ioc_, [self = shared_from_this()] { self->flush(); });
    }
  }

  /// Between these two calls (one handler on the io_context) enqueue posts no flush:
  /// end_batch() flushes at once, which saves the flush handler's pass through the loop.
  void begin_batch() { batching_ = true; }
  void end_batch() {
    batching_ = false;
    if (!flush_posted_) flush();
  }

  /// Subscriber mode (redis_client::subscribe): every handshake also sends SUBSCRIBE
  /// `channels`; published messages go to `handlers.message`, other replies (PING's)
  /// to the queued commands. Before start().
  void set_subscriber(std::vector<std::string> channels, redis_subscription_handlers handlers);

  /// First connection attempt; post it to the io_context.
  void start();

  /// Closes the connection for good and fails what is outstanding with
  /// redis_unavailable ("shutting down"). On the io_context.
  void shutdown();

  /// Whether the handshake is done and the socket is up (any thread).
  bool connected() const { return up_.load(std::memory_order_relaxed); }

  std::atomic<std::uint64_t> round_trips{0};  ///< writes
  std::atomic<std::uint64_t> commands{0};     ///< commands they held

 private:
  enum class state { down, connecting, handshaking, up, stopped };

  /// One queued command.
  struct entry {
    redis_callback done;
    clock::time_point deadline;
    std::uint32_t bytes = 0;  // its RESP in out_ while unsent
    bool bad = false;         // empty argument list
  };

  error unavailable() const { return unavailable_error(shown_url_, last_error_); }
  void pop_front();
  void drain_bad();
  void flush();
  void write_out();
  void write(std::uint64_t g);
  void written();
  void on_written(std::uint64_t g, boost::system::error_code ec);
  void start_read();
  void on_read(std::uint64_t g, boost::system::error_code ec, std::size_t n);
  void on_reply(redis_reply& r);
  void start_connect();
  void on_connected(std::uint64_t g, boost::system::error_code ec);
  void on_ready();
  void arm_timer(clock::time_point at);
  void arm_deadline();
  void on_deadline(std::uint64_t g);
  void fail_pending(const std::optional<error>& written_error);
  void drop(const std::string& why, const std::optional<error>& written_error);
  void set_up(bool up);

  boost::asio::io_context& ioc_;
  const redis_options opts_;
  const redis_endpoint ep_;
  const std::string shown_url_;
  redis_probe* const probe_;
  const bool reports_connected_;
  const bool stop_and_wait_;
  std::atomic<bool> up_{false};
  state st_ = state::connecting;  // commands queued before the first attempt wait for it
  std::uint64_t gen_ = 0;
  boost::asio::generic::stream_protocol::socket sock_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer deadline_timer_;
  bool deadline_armed_ = false;
  clock::time_point connect_deadline_{};
  boost::asio::steady_timer retry_timer_;
  std::chrono::milliseconds backoff_{0};
  std::string last_error_ = "not connected yet";

  std::deque<entry> pending_;  // outstanding commands, oldest first
  std::size_t unsent_ = 0;     // the newest pending_ entries not yet handed to a write
  std::string out_;            // RESP of the unsent commands
  std::size_t out_cmds_ = 0;   // commands in out_
  std::string writing_;        // the bytes of the write in flight
  bool write_busy_ = false;
  bool flush_posted_ = false;
  bool batching_ = false;   // see begin_batch
  int handshake_left_ = 0;  // handshake replies still awaited

  std::vector<std::string> channels_;  // subscriber mode when not empty
  redis_subscription_handlers sub_;

  redisReader* reader_ = nullptr;
  redis_reply slot_;  // the reply being read, see reply_functions
  std::array<char, 16 * 1024> rbuf_{};
};

}  // namespace parley::store::detail
