#pragma once
/// IANA time zones for the bot engine (internal to src/bot).
///
/// Backed by Howard Hinnant's date/tz (Debian libhowardhinnant-date-dev, built
/// with USE_OS_TZDB: it reads the system tz database in /usr/share/zoneinfo).
/// C++17 has no std::chrono time zones, and setenv("TZ") + localtime_r would
/// race between the many threads that run turns. A zone is located once, when
/// a program is compiled or loaded, and is then immutable: any number of
/// threads may call its const members at once.

#include <cstdint>
#include <memory>
#include <string>

namespace parley::bot::detail {

class zone {
 public:
  /// UTC (the default when a bot names no zone).
  zone() = default;
  /// The zone named `name` ("Europe/Paris", "UTC"); null when the tz database
  /// does not know it, with `why` saying so in words for a diagnostic.
  static std::shared_ptr<const zone> locate(const std::string& name, std::string& why);

  /// Seconds east of UTC at the instant `utc_unix`.
  int offset_at(std::int64_t utc_unix) const;
  /// The instant of a local wall-clock time (seconds since 1970-01-01T00:00
  /// local). A time skipped by a forward shift (02:30 on a spring-forward day
  /// in Europe/Paris) is read with the offset before the shift, which lands
  /// the same distance after it (03:30); a time that happens twice (a
  /// fall-back hour) is the earlier one.
  std::int64_t to_utc(std::int64_t local_unix) const;

 private:
  const void* tz_ = nullptr;  // const date::time_zone*, owned by the tz database; null: UTC
};

}  // namespace parley::bot::detail
