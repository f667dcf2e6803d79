#include "src/bot/replay.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t thursday = 1795651200;  // 2026-11-26T00:00:00Z

using bot::testing::build;

const char* const shop = R"BOT(bot:
  name: shop
  welcome: welcome
  fallback: confused
variables:
  size: text
  day: date
  price: money
intents:
  buy: [I want to buy a shirt, buy a shirt, purchase a tshirt, order a shirt, get me a shirt]
dialogs:
  welcome:
    - message: "Hello!"
  buy:
    intent: buy
    steps:
      - question: {prompt: "Which day?", entity: date, into: day}
      - action:
          name: price
          method: GET
          url: "https://shop.example/price"
          result: {price: total}
      - message: "On {{day}}: {{price}}"
      - end: "Bye."
  confused:
    - message: "Sorry?"
)BOT";

/// The answer the action server gave while the conversation was recorded.
using action_server = std::function<v1::ActionResult(const v1::ActionRequest&)>;

v1::ActionResult answer(int status, std::string body) {
  v1::ActionResult r;
  r.set_ok(true);
  r.set_status(status);
  r.set_body(std::move(body));
  return r;
}

/// Runs `messages` through `prog` as the conversation actor does (start, then one text
/// turn each, actions answered by `server`) and records every turn as the actor does.
bot::recorded_conversation record(const bot::program& prog,
                                  const std::vector<std::string>& messages, std::int64_t now,
                                  const action_server& server) {
  bot::recorded_conversation c;
  c.session_id = "s-1";
  v1::State state;
  for (std::size_t i = 0; i <= messages.size(); ++i) {
    bot::turn_recorder rec;
    v1::TurnResult r;
    const std::int64_t at = now + static_cast<std::int64_t>(i) * 60;
    if (i == 0) {
      rec.enter("start", "");
      r = bot::start(prog, {}, at);
    } else {
      rec.enter("text", messages[i - 1]);
      r = bot::resume(prog, state, bot::text_input(messages[i - 1], at));
    }
    while (r.state().status() == v1::AWAITING_ACTION) {
      v1::Input in;
      *in.mutable_action() = server(r.action());
      in.set_now_unix(at);
      rec.action(r.action().name(), in);
      auto next = bot::resume(prog, r.state(), in);
      for (auto& m : *next.mutable_messages()) *r.add_messages() = std::move(m);
      *r.mutable_state() = next.state();
      r.set_end_reason(next.end_reason());
    }
    bot::recorded_turn t;
    t.sequence = static_cast<std::int64_t>(i) + 1;
    t.user = i == 0 ? "" : messages[i - 1];
    for (const auto& m : r.messages()) t.replies.push_back(m.text());
    auto parsed = bot::parse_record(rec.finish(at, r), t);
    EXPECT_TRUE(parsed.ok()) << parsed.err().message;
    c.turns.push_back(std::move(t));
    state = r.state();
  }
  return c;
}

const std::vector<std::string> buying = {"I want to buy a shirt", "tomorrow"};

action_server priced(const char* total) {
  return [total](const v1::ActionRequest&) {
    return answer(200, std::string(R"({"total": )") + total + "}");
  };
}

}  // namespace

TEST(replay, the_same_program_gives_the_same_conversation) {
  auto p = build(shop);
  ASSERT_TRUE(p);
  auto c = record(*p, buying, thursday, priced("19.5"));
  ASSERT_EQ(c.turns.size(), 3u);
  EXPECT_EQ(c.turns[2].replies, (std::vector<std::string>{"On 2026-11-27: 19.5", "Bye."}));
  EXPECT_EQ(c.turns[2].status, v1::ENDED);
  auto r = bot::replay(*p, c);
  EXPECT_EQ(r.verdict, bot::replay_verdict::same) << r.reason;
  EXPECT_TRUE(r.diffs.empty());
}

TEST(replay, a_changed_reply_differs_with_its_turn_message_and_both_replies) {
  auto p = build(shop);
  std::string changed = shop;
  changed.replace(changed.find("Which day?"), 10, "What day?");
  auto candidate = build(changed);
  ASSERT_TRUE(p && candidate);
  auto c = record(*p, buying, thursday, priced("19.5"));
  auto r = bot::replay(*candidate, c);
  ASSERT_EQ(r.verdict, bot::replay_verdict::differs);
  ASSERT_EQ(r.diffs.size(), 1u);
  EXPECT_EQ(r.diffs[0].turn, 2);
  EXPECT_EQ(r.diffs[0].user, "I want to buy a shirt");
  EXPECT_EQ(r.diffs[0].recorded, std::vector<std::string>{"Which day?"});
  EXPECT_EQ(r.diffs[0].candidate, std::vector<std::string>{"What day?"});
  EXPECT_EQ(r.diffs[0].recorded_outcome, "awaiting input");
  EXPECT_TRUE(r.reason.empty());
}

TEST(replay, recorded_action_answers_are_used_not_a_server) {
  auto p = build(shop);
  auto c = record(*p, buying, thursday, priced("42"));
  // The replay has no server: the price can only come from the recorded answer.
  auto r = bot::replay(*p, c);
  EXPECT_EQ(r.verdict, bot::replay_verdict::same) << r.reason;
  ASSERT_EQ(c.turns[2].actions.size(), 1u);
  EXPECT_EQ(c.turns[2].actions[0].name, "price");
  EXPECT_EQ(c.turns[2].actions[0].result.body(), R"({"total": 42})");
  // And the recording is what the candidate gets: a changed answer changes the reply.
  c.turns[2].actions[0].result.set_body(R"({"total": 7})");
  auto changed = bot::replay(*p, c);
  ASSERT_EQ(changed.verdict, bot::replay_verdict::differs);
  EXPECT_EQ(changed.diffs[0].candidate[0], "On 2026-11-27: 7");
}

TEST(replay, an_action_the_recording_never_answered_differs_with_a_reason) {
  auto p = build(shop);
  std::string renamed = shop;
  renamed.replace(renamed.find("name: price"), 11, "name: quote");
  auto candidate = build(renamed);
  ASSERT_TRUE(p && candidate);
  auto c = record(*p, buying, thursday, priced("1"));
  auto r = bot::replay(*candidate, c);
  ASSERT_EQ(r.verdict, bot::replay_verdict::differs);
  EXPECT_NE(r.reason.find("turn 3"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("action 'quote'"), std::string::npos) << r.reason;
  ASSERT_EQ(r.diffs.size(), 1u);
  EXPECT_EQ(r.diffs[0].turn, 3);
}

TEST(replay, the_clock_is_the_recorded_one) {
  auto p = build(shop);
  // Recorded a week later: "tomorrow" was another day, and the replay says so.
  auto c = record(*p, buying, thursday + 7 * 86400, priced("1"));
  EXPECT_EQ(c.turns[2].now_unix, thursday + 7 * 86400 + 120);
  EXPECT_EQ(c.turns[2].replies[0], "On 2026-12-04: 1");
  EXPECT_EQ(bot::replay(*p, c).verdict, bot::replay_verdict::same);
}

TEST(replay, an_outcome_change_differs) {
  auto p = build(shop);
  std::string no_end = shop;
  no_end.replace(no_end.find("      - end: \"Bye.\"\n"), 20, "      - message: \"Bye.\"\n");
  auto candidate = build(no_end);
  ASSERT_TRUE(p && candidate);
  auto r = bot::replay(*candidate, record(*p, buying, thursday, priced("1")));
  ASSERT_EQ(r.verdict, bot::replay_verdict::differs);
  EXPECT_EQ(r.diffs[0].recorded_outcome, "ended (completed)");
  EXPECT_EQ(r.diffs[0].candidate_outcome, "awaiting input");
}

TEST(replay, a_long_answer_is_cut_and_its_conversation_skipped_with_the_reason) {
  auto p = build(shop);
  auto c = record(*p, buying, thursday, [](const v1::ActionRequest&) {
    return answer(200, R"({"total": 1, "pad": ")" + std::string(20000, 'x') + "\"}");
  });
  ASSERT_TRUE(c.turns[2].actions[0].truncated);
  EXPECT_LE(c.turns[2].actions[0].result.body().size(), bot::max_recorded_body);
  auto r = bot::replay(*p, c);
  EXPECT_EQ(r.verdict, bot::replay_verdict::skipped);
  EXPECT_NE(r.reason.find("action 'price'"), std::string::npos) << r.reason;
}

TEST(replay, a_turn_without_a_record_is_skipped_and_a_bad_record_names_its_field) {
  auto p = build(shop);
  auto c = record(*p, buying, thursday, priced("1"));
  c.turns[1].has_record = false;
  auto r = bot::replay(*p, c);
  EXPECT_EQ(r.verdict, bot::replay_verdict::skipped);
  EXPECT_NE(r.reason.find("turn 2"), std::string::npos);
  bot::recorded_turn t;
  auto bad = bot::parse_record(
      R"({"op":"text","input":"x","status":"ended","end_reason":"","now":"soon"})", t);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("'now'"), std::string::npos) << bad.err().message;
}

TEST(replay, the_recorder_says_when_it_cut_an_answer_and_forgets_it_on_clear) {
  bot::turn_recorder rec;
  rec.enter("text", "x");
  rec.action("small", bot::action_input(200, "{}", thursday));
  EXPECT_FALSE(rec.cut());
  // A multi-byte character across the bound is not split.
  rec.action("big",
             bot::action_input(200, std::string(bot::max_recorded_body - 1, 'x') + "é", thursday));
  EXPECT_TRUE(rec.cut());
  v1::TurnResult r;
  r.mutable_state()->set_status(v1::AWAITING_INPUT);
  bot::recorded_turn t;
  ASSERT_TRUE(bot::parse_record(rec.finish(thursday, r), t).ok());
  ASSERT_EQ(t.actions.size(), 2u);
  EXPECT_EQ(t.actions[1].result.body().size(), bot::max_recorded_body - 1);
  EXPECT_TRUE(t.actions[1].truncated);
  EXPECT_FALSE(t.actions[0].truncated);
  rec.clear();
  EXPECT_FALSE(rec.cut());
  EXPECT_FALSE(rec.entered());
}

TEST(replay, a_recorded_timer_fires_the_candidates_own_timer_when_it_is_due) {
  const std::string timed = R"BOT(bot:
  name: timed
  welcome: ask
  nudge: "Still there?"
variables:
  n: number
dialogs:
  ask:
    - question: {prompt: "How many?", entity: number, into: n, nudge_after: 2m}
    - end: "Thanks."
)BOT";
  auto p = build(timed);
  ASSERT_TRUE(p);
  // Recorded: the start, then the nudge two minutes later.
  bot::recorded_conversation c;
  auto started = bot::start(*p, {}, thursday);
  bot::turn_recorder rec;
  rec.enter("start", "");
  bot::recorded_turn t1;
  t1.sequence = 1;
  for (const auto& m : started.messages()) t1.replies.push_back(m.text());
  ASSERT_TRUE(bot::parse_record(rec.finish(thursday, started), t1).ok());
  const auto due = bot::next_timer_ms(started.state());
  ASSERT_GE(due, (thursday + 120) * 1000);
  ASSERT_LT(due, (thursday + 125) * 1000);
  const std::int64_t fired = (due + 999) / 1000;  // the poller's clock when it fired
  auto nudged = bot::resume(*p, started.state(), bot::timer_input(due, fired));
  ASSERT_EQ(nudged.timer(), "nudge");
  rec.clear();
  rec.enter("timer", nudged.timer());
  bot::recorded_turn t2;
  t2.sequence = 2;
  for (const auto& m : nudged.messages()) t2.replies.push_back(m.text());
  ASSERT_EQ(t2.replies, std::vector<std::string>{"Still there?"});
  ASSERT_TRUE(bot::parse_record(rec.finish(fired, nudged), t2).ok());
  c.turns = {t1, t2};
  EXPECT_EQ(bot::replay(*p, c).verdict, bot::replay_verdict::same);

  // A candidate that waits five minutes has no timer due then: turn 2 differs.
  std::string later = timed;
  later.replace(later.find("nudge_after: 2m"), 15, "nudge_after: 5m");
  auto candidate = build(later);
  ASSERT_TRUE(candidate);
  auto r = bot::replay(*candidate, c);
  ASSERT_EQ(r.verdict, bot::replay_verdict::differs);
  EXPECT_EQ(r.diffs[0].turn, 2);
  EXPECT_TRUE(r.diffs[0].candidate.empty());
}
