// The canary's pure parts (docs/operations.md "Canary deploys"): which sessions start on
// the canary (takes_canary), the registry's split of new sessions by the change log,
// and the verdict over the per-turn rates (store::canary_breaches). No server: the
// registry's program source answers inline.

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/registry/bot_registry.hpp"
#include "src/bot/bot.hpp"
#include "src/store/catalog/canary.hpp"
#include "tests/unit/actors/registry_support.hpp"

namespace parley::actors {
namespace {

using namespace std::chrono_literals;

TEST(TakesCanary, TheSameSessionIdAlwaysGetsTheSameAnswerAndTheShareFollowsThePercent) {
  for (int percent : {1, 10, 50}) {
    int taken = 0;
    for (int i = 0; i < 10000; ++i) {
      std::string id = "5f0c2a1e-" + std::to_string(i * 7919);
      bool t = takes_canary(id, percent);
      EXPECT_EQ(t, takes_canary(id, percent)) << id;
      taken += t;
    }
    // 10,000 ids: within 1.5 points of the percent (about 4 standard deviations at 50 %).
    EXPECT_NEAR(taken / 100.0, percent, 1.5) << percent << " %";
  }
  EXPECT_FALSE(takes_canary("any", 0));
  // A session taken at 10 % is taken at every larger share: raising a canary's share
  // keeps the sessions it had.
  for (int i = 0; i < 1000; ++i) {
    std::string id = "s" + std::to_string(i);
    if (takes_canary(id, 10)) {
      EXPECT_TRUE(takes_canary(id, 20)) << id;
    }
  }
}

using testing::change_log;
using testing::compiled;

TEST(BotRegistry, NewSessionsTakeTheCanaryOfTheChangeLogByTheirSessionId) {
  std::mutex m;
  std::vector<store::active_change> log{{"t", "b", 1, 1, 2, 30}};
  program_source src;
  src.load = [](const std::string&, const std::string&, uint32_t v,
                std::function<void(result<std::pair<uint32_t, std::string>>)> done) {
    if (v == 0) v = 1;
    done(std::make_pair(v, compiled("v" + std::to_string(v))));
  };
  src.changes = change_log(m, log);
  bot_registry reg(src, 1ms);
  auto start = [&](const std::string& session) {
    uint32_t version = 0;
    reg.for_new_session("t", "b", session, [&](result<loaded_program> r) {
      ASSERT_TRUE(r.ok());
      version = r->version;
    });
    return version;
  };
  auto applied = [&](int64_t seq) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (reg.applied_change_seq() < seq && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    return reg.applied_change_seq() >= seq;
  };
  EXPECT_EQ(start("s-1"), 1u) << "before the first poll: the active version";
  reg.start();
  ASSERT_TRUE(applied(1));
  ASSERT_EQ(reg.canaries().size(), 1u);
  EXPECT_EQ(reg.canaries()[0].version, 2u);
  EXPECT_EQ(reg.canaries()[0].percent, 30);
  int on_canary = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string id = "session-" + std::to_string(i);
    auto v = start(id);
    EXPECT_EQ(v, takes_canary(id, 30) ? 2u : 1u) << id;
    on_canary += v == 2;
  }
  EXPECT_GT(on_canary, 240);
  EXPECT_LT(on_canary, 360);
  // The canary ends (the same change log row, without a canary): all new sessions go
  // to the active version; a session on version 2 still finds its program.
  {
    std::lock_guard<std::mutex> lock(m);
    log.push_back({"t", "b", 1, 2, 0, 0});
  }
  ASSERT_TRUE(applied(2));
  EXPECT_TRUE(reg.canaries().empty());
  for (int i = 0; i < 200; ++i) EXPECT_EQ(start("session-" + std::to_string(i)), 1u);
  uint32_t kept = 0;
  reg.version("t", "b", 2, [&](result<loaded_program> r) { kept = r ? r->version : 0; });
  EXPECT_EQ(kept, 2u);
  reg.stop();
}

TEST(CanaryBreaches, AreTheRatesPastTheirMarginInPercentagePointsPerTurn) {
  store::canary_settings s;                                   // +5 points each
  store::version_counts base{1000, 200, 50, 10, 150, 0, 10};  // 5 % fallbacks, 1 % errors
  store::version_counts same{100, 20, 5, 1, 15, 0, 1};
  EXPECT_TRUE(store::canary_breaches(s, same, base).empty());
  store::version_counts failing{100, 20, 5, 1, 15, 60, 1};  // 60 % failed actions
  auto b = store::canary_breaches(s, failing, base);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].rate, "action_failure_rate");
  EXPECT_DOUBLE_EQ(b[0].canary, 0.6);
  EXPECT_DOUBLE_EQ(b[0].baseline, 0.0);
  EXPECT_DOUBLE_EQ(b[0].increase_points, 60.0);
  EXPECT_DOUBLE_EQ(b[0].max_increase_points, 5.0);
  // Exactly at the margin is within it; past it is not.
  store::version_counts at{100, 20, 10, 1, 15, 0, 6};  // +5 and +5 points
  EXPECT_TRUE(store::canary_breaches(s, at, base).empty());
  store::version_counts past{100, 20, 11, 1, 15, 0, 7};
  auto p = store::canary_breaches(s, past, base);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].rate, "error_dialog_rate");
  EXPECT_EQ(p[1].rate, "fallback_rate");
  // A canary better than its baseline is never past a margin; a baseline with no turns
  // counts as rates of 0.
  store::version_counts better{100, 20, 0, 0, 20, 0, 0};
  EXPECT_TRUE(store::canary_breaches(s, better, base).empty());
  EXPECT_EQ(store::canary_breaches(s, failing, store::version_counts{}).size(), 1u);
  s.max_action_failure_rate_increase = 100;
  EXPECT_TRUE(store::canary_breaches(s, failing, base).empty()) << "a margin of 100 never trips";
}

}  // namespace
}  // namespace parley::actors
