#include "actors/canary/canary_monitor.hpp"

#include <future>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "actors/registry/bot_registry.hpp"
#include "src/log/log.hpp"

namespace parley::actors {
namespace {

std::string version_key(const std::string& tenant, const std::string& bot, int version) {
  std::string k = tenant;
  k += '\0';
  k += bot;
  k += '\0';
  k += std::to_string(version);
  return k;
}

store::version_counts minus(const store::version_counts& a, const store::version_counts& b) {
  return {a.turns - b.turns,
          a.sessions - b.sessions,
          a.fallbacks - b.fallbacks,
          a.transfers - b.transfers,
          a.ended - b.ended,
          a.action_failures - b.action_failures,
          a.error_dialogs - b.error_dialogs};
}

bool zero(const store::version_counts& c) {
  return c.turns == 0 && c.sessions == 0 && c.fallbacks == 0 && c.transfers == 0 && c.ended == 0 &&
         c.action_failures == 0 && c.error_dialogs == 0;
}

/// Runs a catalog job from the monitor's own thread and waits for it, 10 s at most:
/// unlike run_job_sync, a stalled Postgres cannot hold this thread (and the node's
/// shutdown, which joins it) for longer; the job, if it ever completes, is ignored.
template <class T>
result<T> wait_job(store::postgres_client& pg, store::catalog_job<T> job) {
  auto p = std::make_shared<std::promise<result<T>>>();
  auto f = p->get_future();
  store::run_job<T>(pg, std::move(job), [p](result<T> r) { p->set_value(std::move(r)); });
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return make_error("postgres_unavailable", "the catalog did not answer within 10 s");
  return f.get();
}

}  // namespace

struct canary_monitor::probe {
  explicit probe(prometheus::Registry& reg)
      : rollbacks(prometheus::BuildCounter()
                      .Name("parley_canary_rollbacks_total")
                      .Help("Canaries this node rolled back by itself, past a margin over their "
                            "minimum number of conversations.")
                      .Register(reg)),
        percent(prometheus::BuildGauge()
                    .Name("parley_canary_percent")
                    .Help("Share (%) of new conversations the running canary version takes on "
                          "this node; 0 once it ended.")
                    .Register(reg)),
        flush_failures(prometheus::BuildCounter()
                           .Name("parley_bot_stats_flush_failures_total")
                           .Help("Flushes of this node's per-version counts to Postgres that "
                                 "failed (retried with the next one).")
                           .Register(reg)
                           .Add({})) {}
  prometheus::Family<prometheus::Counter>& rollbacks;
  prometheus::Family<prometheus::Gauge>& percent;
  prometheus::Counter& flush_failures;
  std::set<std::vector<std::string>> shown;  // label sets of `percent` set so far
};

canary_monitor::canary_monitor(store::postgres_client& pg, bot_registry& registry,
                               std::function<std::vector<store::version_delta>()> totals,
                               std::function<bool()> ready,
                               std::function<void(const store::canary_rollback&)> rolled_back,
                               prometheus::Registry& metrics, canary_monitor_options options)
    : pg_(pg),
      registry_(registry),
      totals_(std::move(totals)),
      ready_(std::move(ready)),
      rolled_back_(std::move(rolled_back)),
      options_(std::move(options)),
      probe_(std::make_unique<probe>(metrics)) {}

canary_monitor::~canary_monitor() { stop(); }

void canary_monitor::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void canary_monitor::stop() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void canary_monitor::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m_);
      if (cv_.wait_for(lock, options_.interval, [this] { return stop_; })) break;
    }
    tick();
  }
  if (!ready_ || ready_()) flush();
}

bool canary_monitor::flush() {
  std::vector<store::version_delta> deltas;
  std::vector<std::pair<std::string, store::version_counts>> now;
  for (auto& t : totals_()) {
    auto key = version_key(t.tenant, t.bot, t.version);
    auto d = minus(t.counts, flushed_[key]);
    if (zero(d)) continue;
    now.emplace_back(key, t.counts);
    deltas.push_back({t.tenant, t.bot, t.version, d});
  }
  if (deltas.empty()) return true;
  auto r = wait_job<void>(pg_, store::add_version_stats(std::move(deltas)));
  if (!r) {
    probe_->flush_failures.Increment();
    log::warn("bot_stats_flush_failed", {{"error", r.err().message}});
    return false;
  }
  for (auto& [key, counts] : now) flushed_[key] = counts;
  return true;
}

void canary_monitor::tick() {
  if (ready_ && !ready_()) return;
  flush();
  auto canaries = registry_.canaries();
  // The gauges: the running canaries at their share, those that ended at 0.
  std::set<std::vector<std::string>> running;
  for (const auto& c : canaries) {
    std::vector<std::string> labels{c.tenant, c.bot, std::to_string(c.version)};
    probe_->percent.Add({{"tenant", labels[0]}, {"bot", labels[1]}, {"version", labels[2]}})
        .Set(c.percent);
    running.insert(labels);
    probe_->shown.insert(std::move(labels));
  }
  for (const auto& l : probe_->shown)
    if (running.count(l) == 0)
      probe_->percent.Add({{"tenant", l[0]}, {"bot", l[1]}, {"version", l[2]}}).Set(0);
  if (canaries.empty()) return;
  auto judged = wait_job<std::vector<store::canary_rollback>>(
      pg_, store::judge_canaries(options_.actor, options_.region));
  if (!judged) {
    log::warn("canary_judge_failed", {{"error", judged.err().message}});
    return;
  }
  for (const auto& rb : *judged) {
    const auto& c = rb.report.canary;
    probe_->rollbacks.Add({{"tenant", c.tenant}, {"bot", c.bot}}).Increment();
    std::string rates;
    for (const auto& b : rb.report.breaches) rates += (rates.empty() ? "" : ",") + b.rate;
    log::warn("canary_rolled_back",
              {{"tenant", c.tenant},
               {"bot", c.bot},
               {"version", std::to_string(c.version)},
               {"baseline_version", std::to_string(c.baseline_version)},
               {"conversations", std::to_string(rb.report.canary_counts.sessions)},
               {"breaches", rates}});
    if (rolled_back_) rolled_back_(rb);
  }
  if (!judged->empty()) registry_.poll_now();
}

}  // namespace parley::actors
