#pragma once
/// The runtime's Prometheus families (one probe per node): what the runtime and its
/// conversations report, one verb per event. Thread-safe (prometheus-cpp's counters
/// are atomic).

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/runtime/runtime.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace parley::actors {

class runtime_probe {
 public:
  ~runtime_probe();
  /// Registers the families in `reg`, which outlives the probe.
  explicit runtime_probe(prometheus::Registry& reg);

  /// A turn was answered with `st`, `seconds` after it was submitted.
  void turn_answered(turn_outcome::status st, double seconds);
  /// What a turn of bot version `version` did (fallback, transfer, end, errors), for
  /// the per-version rates; a new turn (`ok`) with its result only.
  void bot_turn(const std::string& tenant, const turn_outcome& out, bool started);
  /// The per-version counters so far, one entry per version seen (any thread).
  std::vector<store::version_delta> version_totals();
  /// A conversation actor became live on this node / stopped being live.
  void conversation_live();
  void conversation_gone();
  /// A conversation's first turn found its snapshot / started it new.
  void activated_from_snapshot();
  void activated_new();
  /// A conversation actor died and was started again from its snapshot.
  void conversation_restarted();
  /// A message killed its conversation `max_attempts` times.
  void message_quarantined();
  /// An idle conversation actor was stopped.
  void conversation_passivated();
  /// A turn's snapshot could not be written (the turn was answered unavailable).
  void commit_failed();
  /// A snapshot read waited for an orphaned commit.
  void read_fenced();
  /// A turn's replay record cut an action answer past its bound (src/bot/replay.hpp):
  /// its conversation cannot be replayed exactly.
  void replay_answer_cut();

 private:
  prometheus::Family<prometheus::Counter>& turns_;
  prometheus::Histogram& turn_seconds_;
  prometheus::Gauge& live_;
  prometheus::Counter& activated_snapshot_;
  prometheus::Counter& activated_new_;
  prometheus::Counter& restarts_;
  prometheus::Counter& quarantines_;
  prometheus::Counter& passivations_;
  prometheus::Counter& commit_failures_;
  prometheus::Counter& fenced_reads_;
  prometheus::Counter& replay_cuts_;
  std::array<prometheus::Counter*, static_cast<std::size_t>(turn_outcome::last_status) + 1>
      by_status_{};

  /// The samples of one bot version, found once per version (the families' Add takes
  /// a lock and hashes the labels).
  struct version_samples;
  const version_samples& samples_of(const std::string& tenant, const std::string& bot,
                                    std::int64_t version);
  prometheus::Family<prometheus::Counter>& bot_turns_;
  prometheus::Family<prometheus::Counter>& bot_sessions_;
  prometheus::Family<prometheus::Counter>& bot_fallbacks_;
  prometheus::Family<prometheus::Counter>& bot_transfers_;
  prometheus::Family<prometheus::Counter>& bot_ended_;
  prometheus::Family<prometheus::Counter>& bot_action_failures_;
  prometheus::Family<prometheus::Counter>& bot_error_dialogs_;
  const std::uint64_t id_;  ///< unique per probe in the process (see samples_of)
  std::mutex versions_mutex_;
  std::unordered_map<std::string, std::unique_ptr<version_samples>> versions_;
};

}  // namespace parley::actors
