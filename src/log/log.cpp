#include "src/log/log.hpp"

#include "src/common/strings.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

namespace parley::log {
namespace {

std::atomic<level> min_level_{level::info};
std::atomic<format> format_{format::json};

const char* level_name(level l) {
  switch (l) {
    case level::trace:
      return "trace";
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

void logfmt_value(std::string& out, std::string_view s) {
  bool quote = s.empty();
  for (char c : s)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) quote = true;
  if (!quote) {
    out += s;
    return;
  }
  out += '"';
  common::append_json_escaped(out, s);
  out += '"';
}

spdlog::logger& logger() {
  static auto l = [] {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("parley", sink);
    lg->set_level(spdlog::level::trace);
    lg->flush_on(spdlog::level::trace);
    return lg;
  }();
  return *l;
}

}  // namespace

void configure(level min_level, format fmt) {
  min_level_ = min_level;
  format_ = fmt;
  logger().set_pattern(
      fmt == format::json ? "{\"ts\":\"%Y-%m-%dT%H:%M:%S.%eZ\",%v}" : "ts=%Y-%m-%dT%H:%M:%S.%eZ %v",
      spdlog::pattern_time_type::utc);
}

bool parse_level(std::string_view name, level& out) {
  for (level l : {level::trace, level::debug, level::info, level::warn, level::error}) {
    if (name == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool enabled(level l) { return l >= min_level_.load(std::memory_order_relaxed); }

std::string format_line(format fmt, level l, std::string_view name, const fields& f) {
  std::string line;
  line.reserve(64 + f.size() * 24);
  if (fmt == format::json) {
    line += "\"level\":\"";
    line += level_name(l);
    line += "\",\"event\":\"";
    common::append_json_escaped(line, name);
    line += '"';
    for (const auto& [k, v] : f) {
      line += ",\"";
      common::append_json_escaped(line, k);
      line += "\":\"";
      common::append_json_escaped(line, v);
      line += '"';
    }
  } else {
    line += "level=";
    line += level_name(l);
    line += " event=";
    logfmt_value(line, name);
    for (const auto& [k, v] : f) {
      line += ' ';
      line += k;
      line += '=';
      logfmt_value(line, v);
    }
  }
  return line;
}

void event(level l, std::string_view name, const fields& f) {
  if (!enabled(l)) return;
  static const bool configured = [] {
    if (logger().name() == "parley") configure(min_level_.load(), format_.load());
    return true;
  }();
  (void)configured;
  logger().log(spdlog::level::info, format_line(format_.load(), l, name, f));
}

bool rate_limited::event(level l, std::string_view name, fields f) {
  std::uint64_t held = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (now < next_) {
      ++suppressed_;
      return false;
    }
    next_ = now + interval_;
    held = suppressed_;
    suppressed_ = 0;
  }
  if (held > 0) f.emplace_back("suppressed", std::to_string(held));
  log::event(l, name, f);
  return true;
}

}  // namespace parley::log
