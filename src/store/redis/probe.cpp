#include "src/store/redis_probe.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace parley::store {

namespace {

/// The one unlabelled series of a new family of `Builder`'s type.
template <class Builder>
auto& only_series(Builder builder, prometheus::Registry& reg, const char* name, const char* help) {
  return builder.Name(name).Help(help).Register(reg).Add({});
}

}  // namespace

redis_probe::redis_probe(prometheus::Registry& reg)
    : commands_(only_series(prometheus::BuildCounter(), reg, "parley_redis_commands_total",
                            "Commands sent to Redis.")),
      round_trips_(only_series(prometheus::BuildCounter(), reg, "parley_redis_round_trips_total",
                               "Batches written to Redis and read back together (commands per "
                               "round trip = group commit).")),
      connected_(only_series(prometheus::BuildGauge(), reg, "parley_redis_connected",
                             "1 while the Redis client holds a connection.")) {}

void redis_probe::written(std::uint64_t commands) {
  round_trips_.Increment();
  commands_.Increment(static_cast<double>(commands));
}

void redis_probe::connected(bool up) { connected_.Set(up ? 1 : 0); }

}  // namespace parley::store
