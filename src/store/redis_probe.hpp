#pragma once
/// parley::store::redis_probe: the Redis client's Prometheus families.
///
/// parley_redis_commands_total, parley_redis_round_trips_total (commands per round
/// trip = group commit) and parley_redis_connected. Give it to the client through
/// redis_options::probe; the client's connections call its verbs. Thread-safe.

#include <cstdint>

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace parley::store {

class redis_probe {
 public:
  /// Registers the families in `reg`, which must outlive the probe.
  explicit redis_probe(prometheus::Registry& reg);
  redis_probe(const redis_probe&) = delete;
  redis_probe& operator=(const redis_probe&) = delete;

  /// One write of `commands` commands, whose replies are read back together.
  void written(std::uint64_t commands);

  /// The client's own connection came up (true) or went down (false).
  void connected(bool up);

 private:
  prometheus::Counter& commands_;
  prometheus::Counter& round_trips_;
  prometheus::Gauge& connected_;
};

}  // namespace parley::store
