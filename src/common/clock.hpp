#pragma once
/// parley::common — the wall clock, for the timestamps a user or a log sees.

#include <chrono>
#include <cstdint>

namespace parley::common {

/// Milliseconds since the Unix epoch (system clock: may jump; use steady_clock
/// for durations).
inline std::int64_t now_unix_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Seconds since the Unix epoch.
inline std::int64_t now_unix_s() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace parley::common
