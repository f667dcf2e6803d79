#pragma once
// What the bot registry's unit tests share: a compiled one-message bot and a change
// log served from memory.

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "actors/registry/bot_registry.hpp"
#include "src/bot/bot.hpp"

namespace parley::actors::testing {

/// The serialized program of a bot whose welcome says `welcome`.
inline std::string compiled(const std::string& welcome) {
  auto r = bot::compile(
      "bot:\n  name: t\n  welcome: hi\ndialogs:\n  hi:\n    - message: \"" + welcome + "\"\n",
      "t.yaml");
  EXPECT_TRUE(r.ok());
  return bot::serialize(*r.program);
}

/// A program_source::changes answering from `log` (read under `m`, which the test
/// holds to append), as store::active_changes_since does.
inline auto change_log(std::mutex& m, const std::vector<store::active_change>& log) {
  return [&m, &log](int64_t since,
                    std::function<void(result<std::vector<store::active_change>>)> done) {
    std::vector<store::active_change> out;
    {
      std::lock_guard<std::mutex> lock(m);
      for (const auto& c : log)
        if (c.change_seq > since) out.push_back(c);
    }
    done(out);
  };
}

}  // namespace parley::actors::testing
