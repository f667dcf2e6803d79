#include "cluster/node/timer_poller.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "src/common/clock.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/store/redis.hpp"

namespace parley::cluster {
namespace {

using actors::inbound;
using actors::turn_outcome;
using clock_type = std::chrono::steady_clock;

/// Moves (or removes, at "0") a conversation's entry iff it still holds the deadline
/// the poller read: a commit that moved it meanwhile wins. KEYS timer set; ARGV
/// member, the score read, the new score.
const char* const fix_script = R"lua(
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '0' then redis.call('ZREM', KEYS[1], ARGV[1])
else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1
)lua";

struct fix {
  uint32_t shard = 0;
  std::string member, score;
  int64_t next = 0;
};

}  // namespace

struct timer_poller::impl {
  store::redis_client& redis;
  shard_table& table;
  actors::turn_sink& sink;
  options o;
  std::thread thread;
  log::rate_limited fail_log{std::chrono::seconds(5)};

  // Shared with the turns' callbacks (any thread), under `m`.
  std::mutex m;
  std::condition_variable wake;
  bool stopping = false;
  std::unordered_set<std::string> in_flight;                        // members
  std::unordered_map<std::string, clock_type::time_point> backoff;  // members
  std::vector<fix> fixes;
  std::weak_ptr<impl> self_ref;  // what the turns' callbacks hold

  prometheus::Counter* nudged = nullptr;
  prometheus::Counter* closed = nullptr;
  prometheus::Counter* stale = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Gauge* due = nullptr;
  prometheus::Gauge* lag = nullptr;

  impl(store::redis_client& r, shard_table& t, actors::turn_sink& s, options oo,
       prometheus::Registry* reg)
      : redis(r), table(t), sink(s), o(std::move(oo)) {
    if (reg == nullptr) return;
    const char* fired_help = "Timers that fired (a turn that nudged or closed), by kind.";
    nudged = &metrics::counter(*reg, "parley_timers_fired_total", fired_help, {{"kind", "nudge"}});
    closed = &metrics::counter(*reg, "parley_timers_fired_total", fired_help, {{"kind", "close"}});
    stale = &metrics::counter(*reg, "parley_timers_stale_total",
                              "Timer turns that found their deadline gone (answered first, or "
                              "fired by another poll): nothing happened.");
    failed = &metrics::counter(*reg, "parley_timers_failed_total",
                               "Timer turns that could not run (the store or the shard "
                               "unavailable); each is tried again.");
    due = &metrics::gauge(*reg, "parley_timers_due",
                          "Timers due in the shards this node holds, at its last poll "
                          "(at most timers.batch per shard are read).");
    lag = &metrics::gauge(*reg, "parley_timers_lag_seconds",
                          "How late the most overdue timer of this node's shards was at the "
                          "last poll.");
  }

  void run() {
    std::unique_lock<std::mutex> lock(m);
    while (!stopping) {
      lock.unlock();
      poll();
      lock.lock();
      wake.wait_for(lock, o.period, [this] { return stopping || !fixes.empty(); });
    }
  }

  void apply_fixes() {
    std::vector<fix> todo;
    {
      std::lock_guard<std::mutex> lock(m);
      todo.swap(fixes);
    }
    if (todo.empty()) return;
    std::vector<std::vector<std::string>> cmds;
    for (auto& f : todo)
      cmds.push_back({"EVAL", fix_script, "1", o.keys.timers(f.shard), f.member, f.score,
                      std::to_string(f.next)});
    auto r = redis.pipeline_sync(std::move(cmds));
    for (const auto& x : r)
      if (!x.ok()) fail_log.warn("timer_fix_failed", {{"error", x.err().message}});
  }

  void poll() {
    apply_fixes();
    std::vector<uint32_t> shards;
    for (uint32_t s = 0; s < table.size(); ++s)
      if (table.held(s) != 0 && !table.leaving(s)) shards.push_back(s);
    if (shards.empty()) {
      if (due) due->Set(0);
      if (lag) lag->Set(0);
      return;
    }
    const int64_t now_ms = common::now_unix_ms();
    const std::string now = std::to_string(now_ms), batch = std::to_string(o.batch);
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(shards.size());
    for (auto s : shards)
      cmds.push_back(
          {"ZRANGEBYSCORE", o.keys.timers(s), "-inf", now, "WITHSCORES", "LIMIT", "0", batch});
    auto replies = redis.pipeline_sync(std::move(cmds));
    std::size_t n_due = 0;
    int64_t oldest = now_ms;
    const auto steady = clock_type::now();
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (!replies[i].ok()) {
        fail_log.warn("timer_poll_failed", {{"error", replies[i].err().message}});
        continue;
      }
      const auto& els = replies[i]->elements;
      for (std::size_t k = 0; k + 1 < els.size(); k += 2) {
        const std::string& member = els[k].str;
        const std::string& score = els[k + 1].str;
        auto nul = member.find('\0');
        if (nul == std::string::npos) continue;
        int64_t due_ms = 0;
        try {
          due_ms = std::stoll(score);
        } catch (const std::exception&) {
          continue;
        }
        ++n_due;
        oldest = std::min(oldest, due_ms);
        {
          std::lock_guard<std::mutex> lock(m);
          if (in_flight.count(member) > 0) continue;
          auto b = backoff.find(member);
          if (b != backoff.end()) {
            if (b->second > steady) continue;
            backoff.erase(b);
          }
          in_flight.insert(member);
        }
        submit(shards[i], member, score, due_ms, now_ms);
      }
    }
    if (due) due->Set(static_cast<double>(n_due));
    if (lag) lag->Set(static_cast<double>(now_ms - oldest) / 1000.0);
  }

  void submit(uint32_t shard, const std::string& member, const std::string& score, int64_t due_ms,
              int64_t now_ms);
};

void timer_poller::impl::submit(uint32_t shard, const std::string& member, const std::string& score,
                                int64_t due_ms, int64_t now_ms) {
  inbound in;
  in.what = inbound::kind::timer;
  auto nul = member.find('\0');
  in.tenant = member.substr(0, nul);
  in.session_id = member.substr(nul + 1);
  in.timer_due_ms = due_ms;
  in.now_unix = now_ms / 1000;
  // The callback may outlive the poller's thread (stop() does not wait for turns): it
  // holds the impl.
  std::weak_ptr<impl> self = self_ref;
  sink.submit(std::move(in), [self, shard, member, score](turn_outcome out) {
    auto i = self.lock();
    if (!i) return;
    using st = turn_outcome::status;
    std::lock_guard<std::mutex> lock(i->m);
    i->in_flight.erase(member);
    switch (out.st) {
      case st::ok:
        if (out.result && out.result->timer() == "nudge" && i->nudged) i->nudged->Increment();
        if (out.result && out.result->timer() == "close" && i->closed) i->closed->Increment();
        return;
      case st::replayed: {
        if (i->stale) i->stale->Increment();
        int64_t next = out.result ? bot::next_timer_ms(out.result->state()) : 0;
        // A deadline not past the one that did nothing would do nothing again: gone.
        if (next <= std::stoll(score)) next = 0;
        i->fixes.push_back({shard, member, score, next});
        break;
      }
      case st::session_not_found:
      case st::session_ended:
      case st::awaiting_transfer:
      case st::bot_not_found:
      case st::bad_input:
        i->fixes.push_back({shard, member, score, 0});
        break;
      default:
        if (i->failed) i->failed->Increment();
        i->backoff[member] = clock_type::now() + i->o.retry_after;
        return;
    }
    i->wake.notify_all();
  });
}

timer_poller::timer_poller(store::redis_client& redis, shard_table& table, actors::turn_sink& sink,
                           options o, prometheus::Registry* metrics)
    : impl_(std::make_shared<impl>(redis, table, sink, std::move(o), metrics)) {
  impl_->self_ref = impl_;
}

timer_poller::~timer_poller() { stop(); }

void timer_poller::start() {
  impl_->thread = std::thread([i = impl_.get()] { i->run(); });
}

void timer_poller::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->stopping = true;
    impl_->wake.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace parley::cluster
