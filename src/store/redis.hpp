#pragma once
/// parley::store Redis client on hiredis 0.14 (its reply reader) and Boost.Asio.
///
/// Threads: every redis_client owns one event loop of its own (an io_context on a
/// dedicated thread) with one connection. Callers on any thread (CAF scheduler, HTTP
/// threads) only serialize the command and enqueue it, then return at once; the loop
/// writes every queued command to the socket in one write, so commands queued together
/// share one round trip (the basis of group commit). It is woken only by the first
/// command queued while it waits, not for commands queued while it is busy. Completion
/// callbacks run on that loop's thread, in submission order: they must be short and
/// must not block or throw (post the result to an actor, a strand or a promise instead).
///
/// Failures: while Redis is unreachable every command fails fast with code
/// `redis_unavailable` and the client reconnects by itself with exponential
/// backoff. A command that exceeds `command_timeout` fails with
/// `redis_timeout` (the connection is then dropped and rebuilt, because its
/// reply stream can no longer be trusted). An error reply from Redis
/// (`-WRONGTYPE ...`) to a top-level command fails with `redis_error` and the
/// server's message (errors nested in an EXEC array stay `kind::error`
/// elements); an empty argument list fails with `redis_bad_command`. Commands
/// already written when the connection breaks fail and are not resent: the
/// caller cannot know whether Redis applied them.
///
/// Scripts (redis_options::scripts, eval): every connection loads the registered
/// scripts (SCRIPT LOAD) after each (re)connect, before any other command; eval sends
/// EVALSHA and, when Redis answers NOSCRIPT (a SCRIPT FLUSH, a script never
/// registered), sends the script once more with EVAL.
///
/// Lanes mode (redis_options::lanes set): the client also keeps one connection
/// per io::lanes lane, driven entirely by that lane's io_context, so a command
/// issued and answered on one lane costs no thread hand-off (command_on). It is the
/// same connection type as the client's own loop runs, so the same failure semantics
/// hold per lane connection. The lanes must outlive the
/// client and keep running until its destructor has returned (it waits for
/// each lane to fail its outstanding commands).
///
/// Pub/sub (subscribe): each subscription is one more connection of the client's own
/// loop, in subscriber mode, that sends SUBSCRIBE after every (re)connect's handshake,
/// so it follows Redis restarts by itself. Messages published while it is down are
/// lost (Redis keeps none): `subscribed` runs after each (re)subscription, so the
/// subscriber can catch up from its source of truth. It PINGs every `keepalive`; a PING
/// unanswered within `command_timeout` rebuilds the connection (a half-open socket
/// would otherwise swallow messages unnoticed).

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"

namespace parley::io {
class lanes;
}

namespace parley::store {

/// Where Redis listens, parsed from a URL by parse_redis_url.
struct redis_endpoint {
  std::string host;       ///< TCP host; empty when `unix_path` is set
  int port = 6379;        ///< TCP port
  std::string unix_path;  ///< Unix socket path; empty for TCP
  std::string username;   ///< ACL user for AUTH; empty for the default user
  std::string password;   ///< AUTH password; empty for none
  int db = 0;             ///< SELECTed after every (re)connect
};

/// Parses "redis://[[user]:password@]host[:port][/db]" or
/// "unix://[[user:]password@]/path/to.sock[?db=N]". On failure the error (code `bad_redis_url`)
/// names the URL and the part at fault.
result<redis_endpoint> parse_redis_url(std::string_view url);

/// A Lua script for EVALSHA: its source and SHA-1 (40 lower-case hex digits, as Redis
/// names it). Copies share one immutable source.
class redis_script {
 public:
  explicit redis_script(std::string source);
  const std::string& source() const;
  const std::string& sha1() const;

 private:
  struct data;
  std::shared_ptr<const data> data_;
};

class redis_probe;

struct redis_options {
  /// "redis://host:port[/db]" or "unix:///path/to.sock", see parse_redis_url.
  std::string url;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  /// Reconnect backoff: first wait, doubled after each failed attempt up to the max.
  std::chrono::milliseconds reconnect_min{20};
  std::chrono::milliseconds reconnect_max{1000};
  /// Most commands written before their replies are read in one round trip.
  std::size_t max_batch = 4096;
  /// When set, one more connection per lane for command_on (see top of file).
  /// Not owned; must outlive the client and run until it is destroyed.
  io::lanes* lanes = nullptr;
  /// Loaded on every connection after each (re)connect, before any other command. A
  /// script Redis refuses (a syntax error) fails the handshake, so keep them tested.
  std::vector<redis_script> scripts{};
  /// When set, counts round trips and commands and reports whether the client's own
  /// connection is up (parley_redis_*). Not owned; must outlive the client.
  redis_probe* probe = nullptr;
  /// How often a subscription's connection PINGs Redis (see subscribe).
  std::chrono::milliseconds keepalive{1000};
};

/// One Redis reply, owned (copied out of hiredis' reply tree).
struct redis_reply {
  enum class kind { string, array, integer, nil, status, error };
  kind type = kind::nil;
  std::string str;                    ///< string, status and error replies
  long long integer = 0;              ///< integer replies
  std::vector<redis_reply> elements;  ///< array replies (e.g. EXEC, MGET)

  bool is_nil() const { return type == kind::nil; }
};

/// Completion callbacks; they run on the client's loop thread or a lane (see top of file).
using redis_callback = std::function<void(result<redis_reply>)>;
using redis_pipeline_callback = std::function<void(std::vector<result<redis_reply>>)>;

/// What a subscription calls, on the client's loop thread (short, never blocking, as
/// every callback of the client). `message` is required; the others may be empty.
struct redis_subscription_handlers {
  /// One message published on one of the channels: (channel, payload).
  std::function<void(const std::string& channel, const std::string& payload)> message;
  /// Redis confirmed the subscription to every channel: after the first connect and
  /// after each reconnect (messages published in between were missed).
  std::function<void()> subscribed;
  /// A subscribed connection broke (`why`); it reconnects with the usual backoff.
  std::function<void(const std::string& why)> lost;
};

/// A live subscription (redis_client::subscribe). Destroying it unsubscribes (closes its
/// connection): no handler runs once the destructor has returned. Destroy it before
/// its client (the client's destructor aborts otherwise), never from a handler of its
/// client (that would deadlock; it aborts).
class redis_subscription {
 public:
  ~redis_subscription();
  redis_subscription(const redis_subscription&) = delete;
  redis_subscription& operator=(const redis_subscription&) = delete;

 private:
  friend class redis_client;
  explicit redis_subscription(std::function<void()> stop);
  std::function<void()> stop_;
};

class redis_client {
 public:
  /// Starts the client's loop thread and a first connection attempt. Succeeds even when
  /// Redis is down (the client keeps retrying; see connected() and ping());
  /// fails only on a malformed URL or options (code `bad_redis_url`).
  static result<std::unique_ptr<redis_client>> create(redis_options options);

  /// Stops the client's loop (its "I/O thread"). Commands still queued complete with
  /// `redis_unavailable` ("client is shutting down") on the I/O thread before
  /// the destructor returns; in lanes mode the lane connections' outstanding
  /// commands do the same on their lanes, and the destructor waits for every
  /// lane to have done so. Calling it from a callback of the I/O thread or
  /// from any lane thread aborts (it would deadlock).
  ~redis_client();

  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Queues one command; `args` are binary-safe ("SET", key, bytes).
  /// `done` runs once on the I/O thread.
  void command(std::vector<std::string> args, redis_callback done);

  /// The same for a braced list (`command({"SET", key, bytes}, done)`), which
  /// picks this overload: the arguments are serialized before it returns, so
  /// they are viewed, never copied into a vector of strings first (a copy of
  /// every argument and two or more allocations per command otherwise).
  void command(std::initializer_list<std::string_view> args, redis_callback done);

  /// Queues one command on lane `lane`'s connection; `done` runs on that lane,
  /// in submission order among the commands of that lane. From the lane's own
  /// thread no lock and no wake-up is needed: commands queued while the lane
  /// runs other handlers are written together by one flush handler posted with
  /// the first of them (group commit per lane). From any other thread the
  /// serialized command is posted to the lane. Without lanes (options.lanes
  /// null) it is command(args, done). `lane` must be below lanes->size().
  void command_on(std::size_t lane, std::initializer_list<std::string_view> args,
                  redis_callback done);

  /// EVALSHA of `script` with `keys` and `args`; on a NOSCRIPT error the script is sent
  /// once more with EVAL (which loads it). `done` runs once on the client's loop, with
  /// the script's reply (an error reply fails with `redis_error`).
  void eval(const redis_script& script, std::initializer_list<std::string_view> keys,
            std::initializer_list<std::string_view> args, redis_callback done);

  /// eval with keys and arguments counted at run time (a script over many shards).
  void eval_list(const redis_script& script, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args, redis_callback done);

  /// eval on lane `lane`'s connection; `done` runs on that lane, in submission order
  /// among the commands of that lane (as command_on; without lanes it is eval).
  void eval_on(std::size_t lane, const redis_script& script,
               std::initializer_list<std::string_view> keys,
               std::initializer_list<std::string_view> args, redis_callback done);

  /// Queues several commands that are written together; `done` runs once on
  /// the I/O thread with one result per command, in order. Not a transaction:
  /// wrap the commands in MULTI/EXEC for atomicity.
  void pipeline(std::vector<std::vector<std::string>> cmds, redis_pipeline_callback done);

  /// PING; `done` gets success or the reason Redis is not usable. In lanes mode on
  /// the I/O thread's connection and on every lane connection (`done` runs once, on
  /// whichever thread answers last; a failure names its lane connection).
  void ping(std::function<void(result<void>)> done);

  /// Subscribes to `channels` (SUBSCRIBE; no patterns) on a connection of its own; see
  /// the top of the file. Returns at once, before Redis confirmed (`subscribed` says
  /// when). `channels` must not be empty.
  std::unique_ptr<redis_subscription> subscribe(std::vector<std::string> channels,
                                                redis_subscription_handlers handlers);

  /// Blocking command for tools and tests. Never call it from an actor, an
  /// HTTP handler or a callback of this client (that would deadlock; it fails
  /// with `redis_misuse` instead when called from the I/O thread).
  result<redis_reply> command_sync(std::vector<std::string> args);

  /// Blocking pipeline, with command_sync's rules: replies in order, each command
  /// bounded by the command timeout.
  std::vector<result<redis_reply>> pipeline_sync(std::vector<std::vector<std::string>> cmds);

  /// Whether the I/O thread currently holds a working connection. Turns false
  /// as soon as the I/O thread sees the socket close, even when idle. The lane
  /// connections are not reflected here.
  bool connected() const;

  /// Counters since creation, for metrics and tests. `round_trips` counts
  /// batches written and read together; `commands` the commands they held.
  /// Both include the lane connections' writes.
  struct stats_snapshot {
    std::uint64_t round_trips = 0;
    std::uint64_t commands = 0;
  };
  stats_snapshot stats() const;

  /// The URL this client was created with, password replaced by "***" (for
  /// logs and /readyz bodies).
  const std::string& url() const;

 private:
  struct impl;
  explicit redis_client(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::store
