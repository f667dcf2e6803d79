#pragma once
/// parley::common — the wall clock, for the timestamps a user or a log sees, and
/// durations as people write them.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

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

/// A duration as people write it in bot files and query parameters: a number
/// (decimals allowed) and a unit, ms, s, m (or min), h or d, optionally apart by
/// spaces; a bare number is seconds. "90s", "2m", "1.5h", "7d", "250ms". Nullopt for
/// anything else, for a negative number, and past 2^64 ms.
inline std::optional<std::uint64_t> parse_duration_ms(std::string_view text) {
  const std::string s(text);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v >= 0)) return std::nullopt;
  std::string_view unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  while (!unit.empty() && unit.back() == ' ') unit.remove_suffix(1);
  double f = 0;
  if (unit == "ms")
    f = 1;
  else if (unit == "s" || unit.empty())
    f = 1000;
  else if (unit == "m" || unit == "min")
    f = 60000;
  else if (unit == "h")
    f = 3600000;
  else if (unit == "d")
    f = 86400000;
  else
    return std::nullopt;
  const double ms = v * f;
  if (!(ms < 1.8e19)) return std::nullopt;  // infinity, or past what uint64 holds
  return static_cast<std::uint64_t>(ms);
}

}  // namespace parley::common
