// Timers of questions and menus: the bot-file syntax and its diagnostics, and the VM's
// nudge and close (docs/bot-format.md, "Timers").

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/bot/bot.hpp"
#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t now = 1795651200;           // 2026-11-26T00:00:00Z
constexpr std::int64_t now_ms = (now + 1) * 1000;  // the end of `now`'s second

using bot::testing::build;

std::vector<std::string> texts(const v1::TurnResult& r) {
  std::vector<std::string> out;
  for (const auto& m : r.messages()) out.push_back(m.text());
  return out;
}

/// The messages of every error diagnostic, "line: message".
std::vector<std::string> errors(const bot::compile_result& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics)
    if (d.level == bot::severity::error) out.push_back(std::to_string(d.line) + ": " + d.message);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

const char* const order_bot = R"BOT(bot:
  name: orders
  welcome: ask
  nudge_after: 2m
  close_after: 10m
  nudge: "Still there, {{name}}? I need your order number."
variables:
  name: {type: text, default: friend}
  order: number
  colour: text
dialogs:
  ask:
    - question:
        prompt: What is your order number?
        entity: number
        into: order
    - menu:
        prompt: Which colour?
        nudge_after: 30s
        close_after: 1m
        on_close: goodbye
        options: [Red, Blue]
    - question:
        prompt: Anything else?
        entity: text
        into: colour
        nudge_after: off
        close_after: off
    - end: Thanks!
  goodbye:
    - message: "I'll keep your order {{order}} for later."
    - question:
        prompt: Want to pick a colour now?
        entity: text
        into: colour
)BOT";

TEST(timers_compiler, bot_defaults_and_step_keys_merge_into_each_step) {
  auto r = bot::compile(order_bot, "orders.yaml");
  ASSERT_TRUE(r.ok()) << joined(errors(r));
  const auto& ask = r.program->dialogs(0);
  ASSERT_TRUE(ask.steps(0).has_timers());
  EXPECT_EQ(ask.steps(0).timers().nudge_after_ms(), 120000u);
  EXPECT_EQ(ask.steps(0).timers().close_after_ms(), 600000u);
  EXPECT_EQ(ask.steps(0).timers().on_close(), -1);
  EXPECT_EQ(ask.steps(0).timers().nudge(), "Still there, {{name}}? I need your order number.");
  ASSERT_TRUE(ask.steps(1).has_timers());
  EXPECT_EQ(ask.steps(1).timers().nudge_after_ms(), 30000u);
  EXPECT_EQ(ask.steps(1).timers().close_after_ms(), 60000u);
  EXPECT_EQ(ask.steps(1).timers().on_close(), 1);
  // `off` turns the bot's defaults off for one step.
  EXPECT_FALSE(ask.steps(2).has_timers());
}

TEST(timers_compiler, a_bot_without_timers_compiles_to_the_same_steps) {
  auto r = bot::compile(R"BOT(bot: {name: plain, welcome: ask}
variables: {n: number}
dialogs:
  ask:
    - question: {prompt: "How many?", entity: number, into: n}
)BOT");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.program->dialogs(0).steps(0).has_timers());
}

TEST(timers_compiler, bad_durations_and_limits_name_their_line) {
  auto r = bot::compile(R"BOT(bot:
  name: bad
  welcome: ask
  nudge_after: soon
  close_after: 5s
variables: {n: number}
dialogs:
  ask:
    - question:
        prompt: How many?
        entity: number
        into: n
        nudge_after: 8d
    - question:
        prompt: How many more?
        entity: number
        into: n
        nudge_after: 5m
        close_after: 2m
    - question:
        prompt: And?
        entity: number
        into: n
        close_after: 1h
    - menu:
        prompt: Pick
        options: [a]
        on_close: nowhere
)BOT",
                        "bad.yaml");
  ASSERT_FALSE(r.ok());
  auto e = joined(errors(r));
  EXPECT_NE(e.find("4: bad 'nudge_after' 'soon' (from 10s to 7d, or off"), std::string::npos) << e;
  EXPECT_NE(e.find("5: bad 'close_after' '5s' (from 10s to 7d"), std::string::npos) << e;
  EXPECT_NE(e.find("13: bad 'nudge_after' '8d'"), std::string::npos) << e;
  EXPECT_NE(e.find("19: 'close_after' (2m) must be longer than 'nudge_after' (5m)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("24: 'close_after' (1h) must be shorter than the bot's 'session_timeout' "
                   "(30m): the session would expire first"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("28: unknown dialog 'nowhere'"), std::string::npos) << e;
}

TEST(timers_compiler, close_after_checks_against_the_bots_nudge_after) {
  auto r = bot::compile(R"BOT(bot:
  name: bad
  welcome: ask
  nudge_after: 5m
  close_after: 4m
variables: {n: number}
dialogs:
  ask:
    - question: {prompt: "How many?", entity: number, into: n, close_after: 3m}
)BOT");
  auto e = joined(errors(r));
  EXPECT_NE(e.find("5: 'close_after' (4m) must be longer than 'nudge_after' (5m)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("9: 'close_after' (3m) must be longer than 'nudge_after' (5m, from the bot's "
                   "settings)"),
            std::string::npos)
      << e;
}

TEST(timers_compiler, a_node_may_lower_the_minimum) {
  const char* text = R"BOT(bot: {name: quick, welcome: ask, nudge_after: 1s, close_after: 2s}
variables: {n: number}
dialogs:
  ask:
    - question: {prompt: "How many?", entity: number, into: n}
)BOT";
  EXPECT_FALSE(bot::compile(text).ok());
  bot::compile_options o;
  o.min_timer = std::chrono::milliseconds(500);
  auto r = bot::compile(text, "quick.yaml", o);
  ASSERT_TRUE(r.ok()) << joined(errors(r));
  EXPECT_EQ(r.program->dialogs(0).steps(0).timers().close_after_ms(), 2000u);
}

TEST(timers_compiler, texts_without_their_timer_are_warned_about) {
  auto r = bot::compile(R"BOT(bot: {name: warn, welcome: ask}
variables: {n: number}
dialogs:
  ask:
    - question: {prompt: "How many?", entity: number, into: n, nudge: "Hello?"}
)BOT");
  ASSERT_TRUE(r.ok());
  bool warned = false;
  for (const auto& d : r.diagnostics)
    warned = warned || (d.line == 5 && d.message.find("'nudge' is never said") == 0);
  EXPECT_TRUE(warned);
}

// ------------------------------------------------------------------ VM

TEST(timers_vm, a_question_with_nudge_after_sets_its_deadlines) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto r = bot::start(*p, {}, now);
  EXPECT_EQ(texts(r), std::vector<std::string>{"What is your order number?"});
  EXPECT_EQ(r.state().nudge_at_ms(), now_ms + 120000);
  EXPECT_EQ(r.state().close_at_ms(), now_ms + 600000);
  EXPECT_EQ(bot::next_timer_ms(r.state()), now_ms + 120000);
}

TEST(timers_vm, the_nudge_fires_at_its_deadline_and_the_close_ends_the_session) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto s = bot::start(*p, {}, now).state();
  auto nudged = bot::resume(*p, s, bot::timer_input(s.nudge_at_ms(), now + 120));
  EXPECT_EQ(nudged.timer(), "nudge");
  EXPECT_EQ(texts(nudged),
            std::vector<std::string>{"Still there, friend? I need your order number."});
  EXPECT_EQ(nudged.state().nudge_at_ms(), 0);
  EXPECT_EQ(nudged.state().close_at_ms(), s.close_at_ms());
  EXPECT_EQ(nudged.state().status(), v1::AWAITING_INPUT);
  EXPECT_EQ(nudged.state().turn(), s.turn() + 1);
  // The same nudge again (two polls raced): nothing happens, the state is unchanged.
  auto again = bot::resume(*p, nudged.state(), bot::timer_input(s.nudge_at_ms(), now + 121));
  EXPECT_EQ(again.timer(), "");
  EXPECT_TRUE(again.messages().empty());
  EXPECT_EQ(again.state().SerializeAsString(), nudged.state().SerializeAsString());

  auto closed = bot::resume(*p, nudged.state(), bot::timer_input(s.close_at_ms(), now + 600));
  EXPECT_EQ(closed.timer(), "close");
  EXPECT_EQ(texts(closed), std::vector<std::string>{
                               "I'm closing this conversation for now. Write again any time."});
  EXPECT_EQ(closed.state().status(), v1::ENDED);
  EXPECT_EQ(closed.end_reason(), v1::COMPLETED);
  EXPECT_EQ(bot::next_timer_ms(closed.state()), 0);
}

TEST(timers_vm, past_its_close_a_late_nudge_closes_at_once) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto s = bot::start(*p, {}, now).state();
  auto r = bot::resume(*p, s, bot::timer_input(s.nudge_at_ms(), now + 3600));
  EXPECT_EQ(r.timer(), "close");
  EXPECT_EQ(r.state().status(), v1::ENDED);
}

TEST(timers_vm, an_answer_before_the_deadline_cancels_and_the_next_step_rearms) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto s = bot::start(*p, {}, now).state();
  auto answered = bot::resume(*p, s, bot::text_input("1234", now + 50));
  EXPECT_EQ(texts(answered), std::vector<std::string>{"Which colour?"});
  // The menu's own timers, from the answer's time.
  EXPECT_EQ(answered.state().nudge_at_ms(), (now + 51) * 1000 + 30000);
  EXPECT_EQ(answered.state().close_at_ms(), (now + 51) * 1000 + 60000);
  auto stale = bot::resume(*p, answered.state(), bot::timer_input(s.nudge_at_ms(), now + 120));
  EXPECT_EQ(stale.timer(), "");
  EXPECT_TRUE(stale.messages().empty());
  // A wrong answer re-prompts and starts the wait again.
  auto s2 = bot::start(*p, {}, now).state();
  auto wrong = bot::resume(*p, s2, bot::text_input("no idea", now + 90));
  EXPECT_EQ(wrong.state().nudge_at_ms(), (now + 91) * 1000 + 120000);
  // A step with its timers off clears them.
  auto picked = bot::resume(*p, answered.state(), bot::payload_input("red", now + 70));
  EXPECT_EQ(texts(picked), std::vector<std::string>{"Anything else?"});
  EXPECT_EQ(bot::next_timer_ms(picked.state()), 0);
}

TEST(timers_vm, the_close_runs_the_named_dialog) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto s = bot::start(*p, {}, now).state();
  auto menu = bot::resume(*p, s, bot::text_input("77", now + 1)).state();
  auto closed = bot::resume(*p, menu, bot::timer_input(menu.close_at_ms(), now + 61));
  EXPECT_EQ(closed.timer(), "close");
  EXPECT_EQ(texts(closed), (std::vector<std::string>{"I'll keep your order 77 for later.",
                                                     "Want to pick a colour now?"}));
  EXPECT_EQ(closed.state().status(), v1::AWAITING_INPUT);
  // The dialog's own question takes the bot's defaults, from the close's time.
  EXPECT_EQ(closed.state().nudge_at_ms(), (now + 62) * 1000 + 120000);
}

TEST(timers_vm, timers_do_not_fire_on_an_ended_conversation) {
  auto p = build(order_bot);
  ASSERT_TRUE(p);
  auto s = bot::start(*p, {}, now).state();
  auto armed = s;
  s.set_status(v1::ENDED);
  auto r = bot::resume(*p, s, bot::timer_input(armed.nudge_at_ms(), now + 120));
  EXPECT_EQ(r.timer(), "");
  EXPECT_TRUE(r.messages().empty());
  // Its deadlines are no longer due anywhere (the shard's timer set drops them).
  EXPECT_EQ(bot::next_timer_ms(s), 0);
}

}  // namespace
