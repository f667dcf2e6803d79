#pragma once
/// The runtime's Prometheus families (one probe per node): what the runtime and its
/// conversations report, one verb per event. Thread-safe (prometheus-cpp's counters
/// are atomic).

#include <array>

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
  /// Registers the families in `reg`, which outlives the probe.
  explicit runtime_probe(prometheus::Registry& reg);

  /// A turn was answered with `st`, `seconds` after it was submitted.
  void turn_answered(turn_outcome::status st, double seconds);
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
  std::array<prometheus::Counter*,
             static_cast<std::size_t>(turn_outcome::status::awaiting_transfer) + 1>
      by_status_{};
};

}  // namespace parley::actors
