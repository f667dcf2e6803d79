#include "src/store/redis/connection.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include "src/store/redis_probe.hpp"

namespace parley::store::detail {

namespace net = boost::asio;

namespace {
/// Output buffers larger than this are freed once written.
constexpr std::size_t max_kept_buffer = 64 * 1024;
}  // namespace

connection::connection(net::io_context& ioc, const redis_options& opts, const redis_endpoint& ep,
                       const std::string& shown_url, redis_probe* probe, bool reports_connected,
                       bool stop_and_wait)
    : ioc_(ioc),
      opts_(opts),
      ep_(ep),
      shown_url_(shown_url),
      probe_(probe),
      reports_connected_(reports_connected),
      stop_and_wait_(stop_and_wait),
      sock_(ioc),
      resolver_(ioc),
      deadline_timer_(ioc),
      retry_timer_(ioc) {}

connection::~connection() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void connection::set_subscriber(std::vector<std::string> channels,
                                redis_subscription_handlers handlers) {
  channels_ = std::move(channels);
  sub_ = std::move(handlers);
}

void connection::start() { start_connect(); }

void connection::shutdown() {
  st_ = state::stopped;
  ++gen_;
  set_up(false);
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
  auto e = shutting_down_error(shown_url_);
  for (auto& entry : failed) entry.done(entry.bad ? bad_command_error() : e);
}

void connection::set_up(bool up) {
  if (up_.exchange(up, std::memory_order_relaxed) == up) return;
  if (probe_ != nullptr && reports_connected_) probe_->connected(up);
}

void connection::pop_front() {
  pending_.pop_front();
  unsent_ = std::min(unsent_, pending_.size());
}

/// Completes the bad commands at the head of the queue: they wait for no reply.
/// Stop-and-wait: only those handed to a write, so that they count in their batch.
void connection::drain_bad() {
  while (!pending_.empty() && pending_.front().bad &&
         (!stop_and_wait_ || pending_.size() > unsent_)) {
    auto entry = std::move(pending_.front());
    pop_front();
    entry.done(bad_command_error());
  }
}

void connection::flush() {
  flush_posted_ = false;
  switch (st_) {
    case state::stopped:
      return;
    case state::down:
      // Fail fast while waiting to reconnect.
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

/// Writes the unsent commands, at most max_batch of them, unless a write is in flight
/// (its completion writes what was appended meanwhile).
void connection::write_out() {
  // Up: a write that fails at once drops the connection (and fails the rest).
  while (!write_busy_ && unsent_ > 0 && st_ == state::up) {
    if (stop_and_wait_ && pending_.size() > unsent_) return;  // on_reply writes them
    std::size_t take = unsent_;
    std::size_t bytes = out_.size();
    std::size_t cmds = out_cmds_;
    if (take > opts_.max_batch) {
      take = opts_.max_batch;
      bytes = 0;
      cmds = 0;
      auto first = pending_.size() - unsent_;
      for (std::size_t i = first; i < first + take; ++i) {
        bytes += pending_[i].bytes;
        cmds += pending_[i].bad ? 0 : 1;
      }
    }
    unsent_ -= take;
    if (bytes == 0) {  // bad commands only: nothing to write
      drain_bad();
      continue;
    }
    if (bytes == out_.size()) {
      std::swap(out_, writing_);
    } else {
      writing_.assign(out_, 0, bytes);
      out_.erase(0, bytes);
    }
    out_cmds_ -= cmds;
    round_trips.fetch_add(1, std::memory_order_relaxed);
    commands.fetch_add(cmds, std::memory_order_relaxed);
    if (probe_ != nullptr) probe_->written(cmds);
    write(gen_);
  }
}

/// Writes `writing_`: at once when the socket takes it all (a batch usually fits in its
/// buffer), which saves the completion handler's pass through the loop; the rest with
/// an asynchronous write.
void connection::write(std::uint64_t g) {
  boost::system::error_code ec;
  std::size_t n = sock_.write_some(net::buffer(writing_), ec);
  if (ec && ec != net::error::would_block && ec != net::error::try_again) {
    written();
    drop(ec.message(), std::nullopt);
    return;
  }
  if (!ec && n == writing_.size()) {
    written();
    return;
  }
  if (ec) n = 0;
  write_busy_ = true;
  net::async_write(sock_, net::buffer(writing_) + n,
                   [self = shared_from_this(), g](boost::system::error_code ec2, std::size_t) {
                     self->on_written(g, ec2);
                   });
}

void connection::written() {
  write_busy_ = false;
  // A burst's batch (thousands of snapshots) is not kept: the buffer's capacity would
  // stay with the connection for good.
  if (writing_.capacity() > max_kept_buffer)
    std::string().swap(writing_);
  else
    writing_.clear();
}

void connection::on_written(std::uint64_t g, boost::system::error_code ec) {
  if (g != gen_) return;
  written();
  if (ec) {
    drop(ec.message(), std::nullopt);
    return;
  }
  if (st_ == state::up) write_out();
}

void connection::start_read() {
  sock_.async_read_some(net::buffer(rbuf_), [self = shared_from_this(), g = gen_](
                                                boost::system::error_code ec, std::size_t n) {
    self->on_read(g, ec, n);
  });
}

void connection::on_read(std::uint64_t g, boost::system::error_code ec, std::size_t n) {
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
    // A failed handshake, or a callback's shutdown, ends this connection's reads.
    if (g != gen_) return;
  }
  start_read();
}

void connection::on_reply(redis_reply& r) {
  // A published message is no reply to anything (nor to the handshake: it cannot be
  // mistaken for a confirmation, which starts with "subscribe").
  if (!channels_.empty() && r.type == redis_reply::kind::array && r.elements.size() == 3 &&
      r.elements[0].str == "message") {
    sub_.message(r.elements[1].str, r.elements[2].str);
    return;
  }
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
  // The last reply of a stop-and-wait batch: the commands queued meanwhile go now.
  if (stop_and_wait_ && unsent_ > 0 && pending_.size() == unsent_ && st_ == state::up) {
    write_out();
    drain_bad();
    arm_deadline();
  }
}

void connection::start_connect() {
  ++gen_;
  st_ = state::connecting;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreateWithFunctions(reply_functions());
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

void connection::on_connected(std::uint64_t g, boost::system::error_code ec) {
  if (g != gen_) return;
  if (ec) {
    drop(ec.message(), std::nullopt);
    return;
  }
  boost::system::error_code ignored_nb;
  sock_.non_blocking(true, ignored_nb);  // for write()'s first, synchronous attempt
  if (ep_.unix_path.empty()) {
    // Replies are small and awaited: Nagle would hold every batch back.
    boost::system::error_code ignored;
    sock_.set_option(net::ip::tcp::no_delay(true), ignored);
  }
  std::string hello = handshake_commands(ep_, opts_.scripts, handshake_left_);
  if (!channels_.empty()) {
    // One confirmation per channel.
    std::vector<std::string_view> args{"SUBSCRIBE"};
    args.insert(args.end(), channels_.begin(), channels_.end());
    append_wire(hello, args);
    handshake_left_ += static_cast<int>(channels_.size());
  }
  start_read();
  if (handshake_left_ == 0) {
    on_ready();
    return;
  }
  // The commands queued meanwhile wait in out_ until the handshake answered: written
  // before it, they could run unauthenticated, in the wrong db or before their scripts.
  st_ = state::handshaking;
  writing_ = std::move(hello);
  write(g);
}

void connection::on_ready() {
  st_ = state::up;
  set_up(true);
  backoff_ = std::chrono::milliseconds{0};
  last_error_.clear();
  // The timer still waits for the connect deadline, later than the commands'.
  deadline_timer_.cancel();
  deadline_armed_ = false;
  write_out();
  drain_bad();
  arm_deadline();
  if (!channels_.empty() && sub_.subscribed) sub_.subscribed();
}

void connection::arm_timer(clock::time_point at) {
  deadline_armed_ = true;
  deadline_timer_.expires_at(at);
  deadline_timer_.async_wait([self = shared_from_this(), g = gen_](boost::system::error_code ec) {
    // Cancelled only by on_ready, which re-arms, or with a new generation.
    if (ec != net::error::operation_aborted) self->on_deadline(g);
  });
}

/// One timer per connection, armed while commands are outstanding at the oldest one's
/// deadline; when it fires early it re-arms for the new oldest, so queueing a command
/// never touches the timer queue.
void connection::arm_deadline() {
  if (!deadline_armed_ && st_ == state::up && !pending_.empty())
    arm_timer(pending_.front().deadline);
}

void connection::on_deadline(std::uint64_t g) {
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

/// Fails every queued command: the written ones with `written_error` if given, the rest
/// (and all when not given) with redis_unavailable.
void connection::fail_pending(const std::optional<error>& written_error) {
  auto written = pending_.size() - unsent_;
  auto failed = std::move(pending_);
  pending_.clear();
  unsent_ = 0;
  out_.clear();
  out_cmds_ = 0;
  // Callbacks may queue more commands here: they find the state set.
  auto e = unavailable();
  for (std::size_t i = 0; i < failed.size(); ++i) {
    auto& entry = failed[i];
    if (entry.bad) {
      entry.done(bad_command_error());
    } else if (i < written && written_error) {
      entry.done(*written_error);
    } else {
      entry.done(e);
    }
  }
}

/// Closes the connection (or abandons the attempt), fails what is queued and schedules
/// the next attempt: soon after losing a working connection (often a restarted
/// server), with doubling backoff after a failed attempt.
void connection::drop(const std::string& why, const std::optional<error>& written_error) {
  bool was_up = st_ == state::up;
  ++gen_;
  st_ = state::down;
  set_up(false);
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
  if (was_up && !channels_.empty() && sub_.lost) sub_.lost(why);
}

}  // namespace parley::store::detail
