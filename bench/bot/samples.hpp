#pragma once
// What the bot benchmarks share: a fixed clock and the sample bots of config/bots.

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "src/bot/bot.hpp"

namespace parley::bench {

inline constexpr std::int64_t now = 1795651200;  // 2026-11-26T00:00:00Z

/// config/bots/<name>.yaml, compiled and loaded; aborts the benchmark when it does not compile.
inline std::shared_ptr<const bot::program> load_sample(const std::string& name) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/" + name + ".yaml");
  if (!r.ok()) std::abort();
  return *bot::load(std::move(*r.program));
}

}  // namespace parley::bench
