// redis_client: the client's own loop (an io_context on a thread of its own, running
// the same connection type as the lanes), the submission queue that feeds it from
// other threads, and the commands built on top (pipeline, ping, eval).

#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"
#include "src/store/redis/connection.hpp"
#include "src/store/redis/wire.hpp"

namespace parley::store {

namespace net = boost::asio;
using detail::connection;

namespace {

/// RESP of the tail of an EVAL or EVALSHA: numkeys, keys, args.
struct eval_call {
  std::string tail;
  std::size_t elements = 0;
};

/// One submission from another thread: a single command or a pipeline, serialized on
/// the submitting thread, so the loop only copies bytes.
struct request {
  std::optional<redis_script> script;  // set for eval(): `call` is its keys and args
  eval_call call;
  std::string wire;                  // the well-formed commands, in RESP, in order
  std::vector<std::uint32_t> sizes;  // pipeline: bytes of each command in `wire`, 0 if empty
  bool bad = false;                  // single command: empty argument list
  redis_callback one;                // set for command()
  redis_pipeline_callback many;      // set for pipeline()
};

template <class Args>
request single_command(const Args& args, redis_callback done) {
  request req;
  if (args.size() == 0) {
    req.bad = true;
  } else {
    detail::append_wire(req.wire, args);
  }
  req.one = std::move(done);
  return req;
}

/// The replies of a pipeline, gathered in order (a connection completes its commands
/// in order), handed over with the last one.
struct pipeline_replies {
  std::size_t count = 0;
  std::vector<result<redis_reply>> replies;
  redis_pipeline_callback done;
};

template <class Keys, class Args>
eval_call eval_tail(const Keys& keys, const Args& args) {
  eval_call c;
  auto numkeys = std::to_string(keys.size());
  std::size_t bytes = detail::bulk_size(numkeys.size());
  for (const auto& k : keys) bytes += detail::bulk_size(std::string_view(k).size());
  for (const auto& a : args) bytes += detail::bulk_size(std::string_view(a).size());
  c.tail.reserve(bytes);
  detail::append_bulk(c.tail, numkeys);
  for (const auto& k : keys) detail::append_bulk(c.tail, k);
  for (const auto& a : args) detail::append_bulk(c.tail, a);
  c.elements = 1 + keys.size() + args.size();
  return c;
}

/// Appends `verb body tail` (EVALSHA sha ... or EVAL source ...).
void append_eval(std::string& out, std::string_view verb, std::string_view body,
                 const eval_call& c) {
  detail::append_array_header(out, 2 + c.elements);
  detail::append_bulk(out, verb);
  detail::append_bulk(out, body);
  out += c.tail;
}

/// EVALSHA on `conn` (from its io_context), then EVAL once on NOSCRIPT.
void eval_here(connection& conn, const redis_script& script, eval_call call, redis_callback done) {
  std::string wire;
  append_eval(wire, "EVALSHA", script.sha1(), call);
  conn.enqueue(
      false,
      [&conn, script, call = std::move(call),
       done = std::move(done)](result<redis_reply> r) mutable {
        if (!detail::is_noscript(r)) {
          done(std::move(r));
          return;
        }
        // The callback runs on conn's io_context, so it may queue there.
        conn.enqueue(false, std::move(done),
                     [&](std::string& out) { append_eval(out, "EVAL", script.source(), call); });
      },
      [&](std::string& out) { out += wire; });
}

/// PINGs `conn` every `every` while it is up, until `timer` is cancelled. On its loop.
void keep_alive(const std::shared_ptr<connection>& conn,
                const std::shared_ptr<net::steady_timer>& timer, std::chrono::milliseconds every) {
  timer->expires_after(every);
  timer->async_wait([conn, timer, every](boost::system::error_code ec) {
    if (ec) return;
    if (conn->connected())
      conn->enqueue(
          false, [](result<redis_reply>) {},
          [](std::string& out) {
            detail::append_wire(out, std::initializer_list<std::string_view>{"PING"});
          });
    keep_alive(conn, timer, every);
  });
}

}  // namespace

struct redis_client::impl {
  redis_options opts;
  redis_endpoint ep;
  std::string shown_url;  // opts.url without the password, for messages

  // Declared first, destroyed last: the connections' sockets belong to it.
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::shared_ptr<connection> own;  // the client's own connection, on ioc
  // Lanes mode: one connection per lane, index = lane. Shared with the handlers in
  // flight on the lanes, which may outlive the client by a little.
  std::vector<std::shared_ptr<connection>> lanes;
  std::thread io;
  std::thread::id io_id;
  std::atomic<int> subscriptions{0};  // live redis_subscription objects

  std::mutex mtx;
  // Swapped with `batch` by the loop, so both keep their capacity and queueing
  // allocates nothing.
  std::vector<request> queue;                         // guarded by mtx
  bool drain_posted = false;                          // guarded by mtx: a drain() is queued on ioc
  bool stopping = false;                              // guarded by mtx
  std::vector<request> batch;                         // the loop's only
  static constexpr std::size_t kept_capacity = 1024;  // requests, see drain()

  bool on_loop() const { return std::this_thread::get_id() == io_id; }

  /// From any thread. On the loop itself straight into the connection; from elsewhere
  /// into the queue, with one drain posted for all the requests queued before it runs
  /// (the loop is woken once per batch, not once per command).
  void submit(request req) {
    if (on_loop()) {
      hand_over(req);
      return;
    }
    bool post = false;
    {
      std::unique_lock<std::mutex> lock(mtx);
      if (stopping) {
        // A command issued while the destructor runs: a caller bug, answered anyway.
        lock.unlock();
        fail(req, detail::shutting_down_error(shown_url));
        return;
      }
      queue.push_back(std::move(req));
      post = !std::exchange(drain_posted, true);
    }
    if (post) net::post(ioc, [this] { drain(); });
  }

  void drain() {
    {
      std::lock_guard<std::mutex> lock(mtx);
      std::swap(batch, queue);
      drain_posted = false;
    }
    own->begin_batch();
    for (auto& req : batch) hand_over(req);
    own->end_batch();
    // Runs the callbacks' destructors (captured state) outside the lock.
    batch.clear();
    // A burst (or an outage) would pin its peak capacity for good.
    if (batch.capacity() > kept_capacity) batch.shrink_to_fit();
  }

  /// Queues `req` on the own connection. On the loop.
  void hand_over(request& req) {
    if (req.script) {
      eval_here(*own, *req.script, std::move(req.call), std::move(req.one));
      return;
    }
    if (req.one) {
      own->enqueue(req.bad, std::move(req.one), [&](std::string& out) { out += req.wire; });
      return;
    }
    auto gathered = std::make_shared<pipeline_replies>();
    gathered->count = req.sizes.size();
    gathered->replies.reserve(req.sizes.size());
    gathered->done = std::move(req.many);
    std::size_t at = 0;
    for (auto size : req.sizes) {
      own->enqueue(
          size == 0,
          [gathered](result<redis_reply> r) {
            gathered->replies.push_back(std::move(r));
            if (gathered->replies.size() == gathered->count)
              gathered->done(std::move(gathered->replies));
          },
          [&](std::string& out) { out.append(req.wire, at, size); });
      at += size;
    }
  }

  static void fail(request& req, const error& e) {
    if (req.one) {
      // An eval is never bad: req.bad stays false.
      req.one(req.bad ? detail::bad_command_error() : e);
      return;
    }
    std::vector<result<redis_reply>> replies;
    for (auto size : req.sizes) replies.emplace_back(size == 0 ? detail::bad_command_error() : e);
    req.many(std::move(replies));
  }

  /// The lane connection for `lane`, or null without lanes.
  connection* lane_connection(std::size_t lane) {
    if (lanes.empty()) return nullptr;
    if (lane >= lanes.size()) std::abort();  // no such lane: a caller bug
    return lanes[lane].get();
  }
};

result<std::unique_ptr<redis_client>> redis_client::create(redis_options options) {
  auto ep = parse_redis_url(options.url);
  if (!ep) return ep.err();
  if (options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0 ||
      options.keepalive.count() <= 0)
    return make_error("bad_redis_url", "Redis timeouts must be positive");
  if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min)
    return make_error("bad_redis_url", "Redis reconnect backoff must be positive with min <= max");
  if (options.max_batch == 0) options.max_batch = 1;
  auto p = std::make_unique<impl>();
  p->opts = std::move(options);
  p->ep = std::move(*ep);
  p->shown_url = detail::redact(p->opts.url);
  p->guard.emplace(net::make_work_guard(p->ioc));
  p->own =
      std::make_shared<connection>(p->ioc, p->opts, p->ep, p->shown_url, p->opts.probe, true, true);
  // Posted before the thread starts: the first commands wait for the first attempt.
  net::post(p->ioc, [conn = p->own] { conn->start(); });
  if (p->opts.lanes != nullptr) {
    auto& l = *p->opts.lanes;
    for (std::size_t i = 0; i < l.size(); ++i) {
      auto conn = std::make_shared<connection>(l.at(i), p->opts, p->ep, p->shown_url, p->opts.probe,
                                               false, false);
      net::post(l.at(i), [conn] { conn->start(); });
      p->lanes.push_back(std::move(conn));
    }
  }
  auto* raw = p.get();
  std::promise<void> started;
  p->io = std::thread([raw, &started] {
    raw->io_id = std::this_thread::get_id();
    started.set_value();
    raw->ioc.run();
  });
  started.get_future().wait();
  return std::unique_ptr<redis_client>(new redis_client(std::move(p)));
}

redis_client::redis_client(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

redis_client::~redis_client() {
  // Joining the loop's thread from itself would deadlock: a caller bug.
  if (impl_->on_loop()) std::abort();
  // A subscription left behind would stop on a destroyed loop: a caller bug.
  if (impl_->subscriptions.load() != 0) std::abort();
  // Waiting for a lane from that lane would never return: a caller bug.
  for (auto& conn : impl_->lanes)
    if (conn->context().get_executor().running_in_this_thread()) std::abort();
  auto shut = [](connection& conn, std::function<void()> before) {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    net::post(conn.context(), [&conn, done, before = std::move(before)] {
      if (before) before();
      conn.shutdown();
      done->set_value();
    });
    return f;
  };
  std::vector<std::future<void>> lanes_done;
  for (auto& conn : impl_->lanes) lanes_done.push_back(shut(*conn, nullptr));
  for (auto& f : lanes_done) f.wait();
  auto* p = impl_.get();
  shut(*p->own, [p] {
    // What other threads queued before the destructor: a drain may be posted behind.
    std::vector<request> left;
    {
      std::lock_guard<std::mutex> lock(p->mtx);
      p->stopping = true;
      std::swap(left, p->queue);
    }
    for (auto& req : left) p->hand_over(req);
  }).wait();
  impl_->guard.reset();
  impl_->ioc.stop();
  impl_->io.join();
}

void redis_client::command(std::vector<std::string> args, redis_callback done) {
  impl_->submit(single_command(args, std::move(done)));
}

void redis_client::command(std::initializer_list<std::string_view> args, redis_callback done) {
  impl_->submit(single_command(args, std::move(done)));
}

void redis_client::command_on(std::size_t lane, std::initializer_list<std::string_view> args,
                              redis_callback done) {
  auto* conn = impl_->lane_connection(lane);
  if (conn == nullptr) {
    command(args, std::move(done));
    return;
  }
  bool bad = args.size() == 0;
  if (conn->context().get_executor().running_in_this_thread()) {
    // Serialized straight into the lane's output buffer: no copy, no lock.
    conn->enqueue(bad, std::move(done), [&](std::string& out) { detail::append_wire(out, args); });
    return;
  }
  std::string wire;
  if (!bad) detail::append_wire(wire, args);
  net::post(conn->context(), [conn = impl_->lanes[lane], bad, wire = std::move(wire),
                              done = std::move(done)]() mutable {
    conn->enqueue(bad, std::move(done), [&](std::string& out) { out += wire; });
  });
}

void redis_client::eval(const redis_script& script, std::initializer_list<std::string_view> keys,
                        std::initializer_list<std::string_view> args, redis_callback done) {
  // Through the queue, as any command, so a submitter's commands keep their order.
  request req;
  req.script = script;
  req.call = eval_tail(keys, args);
  req.one = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::eval_list(const redis_script& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args, redis_callback done) {
  request req;
  req.script = script;
  req.call = eval_tail(keys, args);
  req.one = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::eval_on(std::size_t lane, const redis_script& script,
                           std::initializer_list<std::string_view> keys,
                           std::initializer_list<std::string_view> args, redis_callback done) {
  auto* conn = impl_->lane_connection(lane);
  if (conn == nullptr) {
    eval(script, keys, args, std::move(done));
    return;
  }
  auto call = eval_tail(keys, args);
  if (conn->context().get_executor().running_in_this_thread()) {
    eval_here(*conn, script, std::move(call), std::move(done));
    return;
  }
  net::post(conn->context(), [conn = impl_->lanes[lane], script, call = std::move(call),
                              done = std::move(done)]() mutable {
    eval_here(*conn, script, std::move(call), std::move(done));
  });
}

void redis_client::pipeline(std::vector<std::vector<std::string>> cmds,
                            redis_pipeline_callback done) {
  if (cmds.empty()) {
    // Keep the contract (callback on the loop) even for an empty pipeline.
    command({"PING"}, [done = std::move(done)](result<redis_reply>) { done({}); });
    return;
  }
  request req;
  std::size_t bytes = 0;
  for (auto& c : cmds) bytes += c.empty() ? 0 : detail::wire_size(c);
  req.wire.reserve(bytes);
  for (auto& c : cmds) {
    auto before = req.wire.size();
    if (!c.empty()) detail::append_wire(req.wire, c);
    req.sizes.push_back(static_cast<std::uint32_t>(req.wire.size() - before));
  }
  req.many = std::move(done);
  impl_->submit(std::move(req));
}

void redis_client::ping(std::function<void(result<void>)> done) {
  // The own connection and, in lanes mode, every lane's: the first failure wins
  // (naming its lane), `done` runs once the last answer is in.
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

std::unique_ptr<redis_subscription> redis_client::subscribe(std::vector<std::string> channels,
                                                            redis_subscription_handlers handlers) {
  if (channels.empty() || !handlers.message) std::abort();  // a caller bug
  auto* p = impl_.get();
  auto opts = p->opts;
  opts.scripts.clear();  // it sends no EVALSHA
  // Not counted in the probe: its PINGs are not the node's traffic.
  auto conn = std::make_shared<connection>(p->ioc, opts, p->ep, p->shown_url, nullptr, false, true);
  conn->set_subscriber(std::move(channels), std::move(handlers));
  auto timer = std::make_shared<net::steady_timer>(p->ioc);
  net::post(p->ioc, [conn, timer, every = opts.keepalive] {
    conn->start();
    keep_alive(conn, timer, every);
  });
  ++p->subscriptions;
  return std::unique_ptr<redis_subscription>(new redis_subscription([p, conn, timer] {
    if (p->on_loop()) std::abort();  // waiting for the loop from the loop: a caller bug
    std::promise<void> done;
    net::post(p->ioc, [&] {
      timer->cancel();
      conn->shutdown();
      done.set_value();
    });
    done.get_future().wait();
    --p->subscriptions;
  }));
}

redis_subscription::redis_subscription(std::function<void()> stop) : stop_(std::move(stop)) {}

redis_subscription::~redis_subscription() { stop_(); }

result<redis_reply> redis_client::command_sync(std::vector<std::string> args) {
  if (impl_->on_loop())
    return make_error("redis_misuse", "command_sync called from the Redis client's own I/O thread");
  std::promise<result<redis_reply>> p;
  auto f = p.get_future();
  command(std::move(args), [&p](result<redis_reply> r) { p.set_value(std::move(r)); });
  return f.get();
}

std::vector<result<redis_reply>> redis_client::pipeline_sync(
    std::vector<std::vector<std::string>> cmds) {
  if (impl_->on_loop())
    return std::vector<result<redis_reply>>(
        cmds.size(),
        make_error("redis_misuse", "pipeline_sync called from the Redis client's own I/O thread"));
  std::promise<std::vector<result<redis_reply>>> p;
  auto f = p.get_future();
  pipeline(std::move(cmds),
           [&p](std::vector<result<redis_reply>> r) { p.set_value(std::move(r)); });
  return f.get();
}

bool redis_client::connected() const { return impl_->own->connected(); }

redis_client::stats_snapshot redis_client::stats() const {
  stats_snapshot s{impl_->own->round_trips.load(std::memory_order_relaxed),
                   impl_->own->commands.load(std::memory_order_relaxed)};
  for (auto& conn : impl_->lanes) {
    s.round_trips += conn->round_trips.load(std::memory_order_relaxed);
    s.commands += conn->commands.load(std::memory_order_relaxed);
  }
  return s;
}

const std::string& redis_client::url() const { return impl_->shown_url; }

}  // namespace parley::store
