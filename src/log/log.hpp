#pragma once
/// Structured logs: one line per event on stdout, as JSON or logfmt, through spdlog.
///
///   parley::log::info("http_listening", {{"port", "8080"}});
///   -> {"ts":"2026-11-26T14:40:00.123Z","level":"info","event":"http_listening","port":"8080"}
///
/// Thread-safe; callable from any thread. Fields are strings: callers format numbers.

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

/// The line `event` would print, without timestamp; exposed for tests.
std::string format_line(format fmt, level l, std::string_view name, const fields& f);

}  // namespace parley::log
