#pragma once
/// The canary monitor of one node (docs/operations.md, "Canary deploys"): once per
/// `interval` it
///  1. adds what this node's conversations did per bot version since its last flush
///     (the runtime's parley_bot_*_total counters) to Postgres's region-wide
///     bot_version_stats (store::add_version_stats), so every node judges, and
///     `parleyctl stats` shows, the whole region's figures;
///  2. when the registry follows a running canary, judges every running canary of the
///     region (store::judge_canaries): one past its margins over its minimum number of
///     conversations is rolled back by a conditional update, so of all the nodes that
///     judge it exactly one does; that node audits it, counts it in
///     parley_canary_rollbacks_total{tenant,bot}, publishes `canary_changed` on the
///     region's feed and polls its registry at once;
///  3. sets parley_canary_percent{tenant,bot,version} (the share of new conversations
///     the canary takes here; 0 once it ended).
///
/// A flush that fails is retried with the next one (the counts wait on this node); a
/// node that dies loses at most one interval of counts.
///
/// Threads: one thread of its own, started by start() and ended by stop() (or the
/// destructor), which also flushes once more. The hooks run on that thread and must not
/// block for long.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/store/catalog/canary.hpp"
#include "src/store/postgres.hpp"

namespace prometheus {
class Registry;
}

namespace parley::actors {

class bot_registry;

struct canary_monitor_options {
  std::chrono::milliseconds interval{1000};
  /// The audit actor of an automatic rollback: "node:<node.name>".
  std::string actor = "node";
  /// node.region: the monitor judges the canaries of this region's tenants.
  std::string region = "local";
};

class canary_monitor {
 public:
  /// `totals`: the node's per-version counters since it started
  /// (runtime::bot_version_totals). `ready`: false while the schema is being migrated
  /// (nothing is flushed or judged). `rolled_back`: after each rollback this node made
  /// (parleyd publishes the change). `registry`, `pg` and `metrics` outlive the monitor.
  canary_monitor(store::postgres_client& pg, bot_registry& registry,
                 std::function<std::vector<store::version_delta>()> totals,
                 std::function<bool()> ready,
                 std::function<void(const store::canary_rollback&)> rolled_back,
                 prometheus::Registry& metrics, canary_monitor_options options = {});
  ~canary_monitor();
  canary_monitor(const canary_monitor&) = delete;
  canary_monitor& operator=(const canary_monitor&) = delete;

  void start();
  /// Ends the thread after one last flush. Idempotent.
  void stop();

 private:
  struct probe;
  void loop();
  void tick();
  bool flush();

  store::postgres_client& pg_;
  bot_registry& registry_;
  std::function<std::vector<store::version_delta>()> totals_;
  std::function<bool()> ready_;
  std::function<void(const store::canary_rollback&)> rolled_back_;
  canary_monitor_options options_;
  std::unique_ptr<probe> probe_;
  std::map<std::string, store::version_counts> flushed_;  // tenant\0bot\0version; thread only
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace parley::actors
