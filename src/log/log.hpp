#pragma once
/// Structured logs: one line per event on stdout, as JSON or logfmt, through spdlog.
///
///   parley::log::info("http_listening", {{"port", "8080"}});
///   -> {"ts":"2026-11-26T14:40:00.123Z","level":"info","event":"http_listening","port":"8080"}
///
/// Thread-safe; callable from any thread. Fields are strings: callers format numbers.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::log {

enum class level { trace, debug, info, warn, error };
enum class format { json, logfmt };

using fields = std::vector<std::pair<std::string_view, std::string>>;

/// Sets the sink (stdout), the minimum level and the line format. Call once at start-up;
/// before it, events go to stdout as JSON at info level.
void configure(level min_level, format fmt);

/// Parses "info" etc.; false when the name is unknown.
bool parse_level(std::string_view name, level& out);

bool enabled(level l);
void event(level l, std::string_view name, const fields& f = {});

inline void debug(std::string_view name, const fields& f = {}) { event(level::debug, name, f); }
inline void info(std::string_view name, const fields& f = {}) { event(level::info, name, f); }
inline void warn(std::string_view name, const fields& f = {}) { event(level::warn, name, f); }
inline void error(std::string_view name, const fields& f = {}) { event(level::error, name, f); }

/// Lets one line per interval through and counts the rest, for an event a hostile
/// client or a failing resource can repeat thousands of times a second
/// (`http_accept_failed`). The line let through after a quiet spell carries
/// `suppressed`: how many were held back since the previous one. Thread-safe.
class rate_limited {
 public:
  explicit rate_limited(std::chrono::steady_clock::duration interval = std::chrono::seconds(1))
      : interval_(interval) {}

  /// Logs like `event()` when the interval since the last line has passed; else counts.
  /// Returns whether the line was written.
  bool event(level l, std::string_view name, fields f = {});
  bool warn(std::string_view name, fields f = {}) { return event(level::warn, name, std::move(f)); }

 private:
  std::chrono::steady_clock::duration interval_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point next_{};
  std::uint64_t suppressed_ = 0;
};

/// The line `event` would print, without timestamp; exposed for tests.
std::string format_line(format fmt, level l, std::string_view name, const fields& f);

}  // namespace parley::log
