#include <gtest/gtest.h>

#include <algorithm>

#include "src/bot/bot.hpp"
#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t now = 1795651200;  // 2026-11-26T00:00:00Z, a Thursday

using bot::testing::build;

std::vector<std::string> texts(const v1::TurnResult& r) {
  std::vector<std::string> out;
  for (const auto& m : r.messages()) out.push_back(m.text());
  return out;
}

std::string var(const bot::program& p, const v1::TurnResult& r, const char* name) {
  auto v = bot::get_variable(p, r.state(), name);
  return v ? bot::to_text(*v) : "<unknown>";
}

const char* const shop = R"BOT(bot:
  name: shop
  welcome: welcome
  fallback: confused
  error: oops
  session_timeout: 15m
variables:
  name: {type: text, default: friend, client_settable: true}
  secret_level: {type: number, default: 0}
  size: text
  qty: number
  day: date
  price: money
  status: text
  code: number
entities:
  size:
    values: {small: [s, tiny], large: [l, big, huge]}
intents:
  buy: [I want to buy a shirt, buy a shirt, purchase a tshirt, order a shirt, get me a shirt]
  loop: [loop forever, spin, run in circles, infinite loop, go around]
  crash: [divide by zero, crash now, break it, make an error, explode]
dialogs:
  welcome:
    - message: "Hello {{name}}!"
  buy:
    intent: buy
    steps:
      - menu:
          prompt: "Which size?"
          options:
            - label: Small
              set: {size: '"small"'}
            - label: Large
              payload: SIZE_L
              set: {size: '"large"'}
            - label: Let me describe it
              call: describe
      - question: {prompt: "How many?", reprompt: "Please give a number.", entity: number, into: qty, retries: 1}
      - question: {prompt: "Which day?", entity: date, into: day}
      - action:
          name: price
          method: POST
          url: "https://shop.example/price?token={{secret.SHOP_KEY}}"
          headers: {X-Key: "{{secret.SHOP_KEY}}"}
          body: {size: size, qty: qty, day: day}
          timeout: 2s
          result: {price: total, status: "info.state"}
          status_into: code
      - message: "{{qty}} {{size}} shirt(s) on {{day}}: {{price}} ({{status}})"
  describe:
    - question: {prompt: "Describe the size", entity: size, into: size}
    - message: "Noted: {{size}}"
  spin:
    intent: loop
    steps:
      - goto: spin
  crash:
    intent: crash
    steps:
      - set: {qty: "1 / 0"}
  confused:
    - message: "Sorry?"
  oops:
    - message: "Oops, {{name}}."
    - end: "Bye."
)BOT";

}  // namespace

TEST(vm, start_runs_the_welcome_dialog_and_waits) {
  auto p = build(shop);
  ASSERT_TRUE(p);
  bot::variables vars;
  vars["name"].set_text("Ann");
  auto r = bot::start(*p, vars, now);
  EXPECT_EQ(texts(r), std::vector<std::string>{"Hello Ann!"});
  EXPECT_EQ(r.state().status(), v1::AWAITING_INPUT);
  EXPECT_EQ(r.state().program_id(), p->id());
  EXPECT_EQ(p->idle_timeout(), std::chrono::minutes(15));
  EXPECT_TRUE(r.error().empty());
}

TEST(vm, only_client_settable_variables_are_accepted) {
  auto p = build(shop);
  bot::variables vars;
  vars["secret_level"].set_number(9);
  vars["nope"].set_text("x");
  auto r = bot::start(*p, vars, now);
  EXPECT_EQ(var(*p, r, "secret_level"), "0");
  EXPECT_NE(r.error().find("nope"), std::string::npos);
  EXPECT_NE(r.error().find("secret_level"), std::string::npos);
}

TEST(vm, full_flow_with_menu_question_and_action) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("I'd like to buy a shirt", now));
  ASSERT_FALSE(r.intents().empty());
  EXPECT_EQ(r.intents(0).name(), "buy");
  EXPECT_EQ(r.matched_by(), "intent");
  ASSERT_EQ(r.messages_size(), 1);
  EXPECT_EQ(r.messages(0).text(), "Which size?");
  ASSERT_EQ(r.messages(0).choices_size(), 3);
  EXPECT_EQ(r.messages(0).choices(1).label(), "Large");
  EXPECT_EQ(r.messages(0).choices(1).payload(), "SIZE_L");
  EXPECT_EQ(r.messages(0).choices(0).payload(), "small");

  r = bot::resume(*p, r.state(), bot::payload_input("SIZE_L", now));
  EXPECT_EQ(r.matched_by(), "menu");
  EXPECT_EQ(texts(r), std::vector<std::string>{"How many?"});
  EXPECT_EQ(var(*p, r, "size"), "large");

  r = bot::resume(*p, r.state(), bot::text_input("lots", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"Please give a number."});
  r = bot::resume(*p, r.state(), bot::text_input("3 please", now));
  EXPECT_EQ(var(*p, r, "qty"), "3");
  EXPECT_EQ(texts(r), std::vector<std::string>{"Which day?"});

  r = bot::resume(*p, r.state(), bot::text_input("tomorrow", now));
  EXPECT_EQ(var(*p, r, "day"), "2026-11-27");
  ASSERT_EQ(r.state().status(), v1::AWAITING_ACTION);
  EXPECT_EQ(r.action().name(), "price");
  EXPECT_EQ(r.action().method(), "POST");
  EXPECT_EQ(r.action().timeout_ms(), 2000u);
  EXPECT_EQ(r.action().body(), R"({"day":"2026-11-27","qty":3.0,"size":"large"})");
  EXPECT_EQ(r.action().url(), "https://shop.example/price?token={{secret.SHOP_KEY}}");

  auto resolved =
      bot::resolve_secrets(r.action(), [](std::string_view n) -> std::optional<std::string> {
        if (n == "SHOP_KEY") return std::string("k3y");
        return std::nullopt;
      });
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->url(), "https://shop.example/price?token=k3y");
  EXPECT_EQ(resolved->headers(0).value(), "k3y");

  r = bot::resume(
      *p, r.state(),
      bot::action_input(200, R"({"total": 59.97, "info": {"state": "in stock"}})", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"3 large shirt(s) on 2026-11-27: 59.97 (in stock)"});
  EXPECT_EQ(var(*p, r, "code"), "200");
  EXPECT_EQ(r.state().status(), v1::AWAITING_INPUT);
  EXPECT_EQ(r.state().frames_size(), 0) << "the dialog finished: the bot is idle";
}

TEST(vm, resume_taking_the_state_over_runs_the_same_turn) {
  // The runtime hands the snapshot's state to the VM instead of copying it.
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  for (const auto& in : {bot::text_input("I'd like to buy a shirt", now),
                         bot::payload_input("SIZE_L", now), bot::text_input("lots", now),
                         bot::text_input("3 please", now), bot::text_input("tomorrow", now)}) {
    auto copied = bot::resume(*p, r.state(), in);
    v1::State given = r.state();
    auto moved = bot::resume(*p, std::move(given), in);
    EXPECT_EQ(moved.SerializeAsString(), copied.SerializeAsString()) << in.ShortDebugString();
    EXPECT_EQ(given.ByteSizeLong(), 0u) << "the state was taken over";
    r = std::move(moved);
  }
  EXPECT_EQ(r.state().status(), v1::AWAITING_ACTION);
  EXPECT_EQ(var(*p, r, "day"), "2026-11-27");
}

TEST(vm, set_variables_changes_client_settable_variables_all_or_nothing) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  const auto before = r.SerializeAsString();
  v1::Value v;
  v.set_text("gold");
  auto set = bot::set_variables(*p, r.state(), {{"name", v}});
  ASSERT_TRUE(set.ok()) << set.err().message;
  EXPECT_EQ(var(*p, *set, "name"), "gold");
  EXPECT_EQ(set->messages_size(), 0) << "the bot does not run";
  EXPECT_EQ(set->state().turn(), r.state().turn() + 1);
  EXPECT_EQ(set->state().frames_size(), r.state().frames_size());

  auto bad = bot::set_variables(*p, set->state(), {{"name", v}, {"size", v}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, "invalid_argument");
  EXPECT_NE(bad.err().message.find("'size'"), std::string::npos) << bad.err().message;
  EXPECT_EQ(r.SerializeAsString(), before) << "the input state is not changed";

  auto ended = set->state();
  ended.set_status(v1::ENDED);
  auto over = bot::set_variables(*p, ended, {{"name", v}});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.err().code, "session_ended");
}

TEST(vm, a_failed_transfer_gives_the_conversation_back_to_the_bot) {
  auto p = build(R"BOT(bot:
  name: desk
  welcome: welcome
  main_menu: menu
dialogs:
  welcome:
    - message: "Hi."
    - goto: menu
  menu:
    - menu:
        prompt: "Pick one"
        options:
          - label: Agent
            goto: agent
  agent:
    - transfer: {queue: support, message: "Connecting you."}
)BOT");
  auto r = bot::start(*p, {}, now);
  EXPECT_FALSE(bot::transfer_failed(*p, r.state(), true, now).ok()) << "no transfer was asked for";
  EXPECT_EQ(bot::transfer_succeeded(*p, r.state()).err().code, "not_transferred");
  r = bot::resume(*p, r.state(), bot::text_input("1", now));
  ASSERT_EQ(r.state().status(), v1::TRANSFERRED) << r.ShortDebugString();
  EXPECT_EQ(r.transfer().queue(), "support");

  auto ok = bot::transfer_succeeded(*p, r.state());
  ASSERT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_EQ(ok->state().status(), v1::ENDED) << "the bot's part is over";
  EXPECT_EQ(ok->end_reason(), v1::COMPLETED);
  EXPECT_EQ(ok->messages_size(), 0);

  auto failed = bot::transfer_failed(*p, r.state(), true, now);
  ASSERT_TRUE(failed.ok()) << failed.err().message;
  EXPECT_EQ(failed->state().status(), v1::AWAITING_INPUT);
  EXPECT_EQ(texts(*failed),
            (std::vector<std::string>{"Sorry, no agent is available right now.", "Pick one"}));
  EXPECT_EQ(failed->state().turn(), r.state().turn() + 1);
  auto error = bot::transfer_failed(*p, r.state(), false, now);
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(texts(*error).front(), "Sorry, we could not connect you with an agent.");
  // And the conversation goes on.
  auto again = bot::resume(*p, failed->state(), bot::text_input("1", now));
  EXPECT_EQ(again.state().status(), v1::TRANSFERRED);
}

TEST(vm, redirect_runs_the_named_dialog_from_an_open_question) {
  auto p = build(R"BOT(bot:
  name: desk
  welcome: welcome
dialogs:
  welcome:
    - question: {prompt: "Your name?", entity: text, into: who}
    - message: "Thanks {{who}}."
    - end: "Bye."
  help:
    - message: "Here is some help."
    - question: {prompt: "Anything else?", entity: text, into: who}
variables:
  who: text
)BOT");
  auto r = bot::start(*p, {}, now);
  ASSERT_EQ(texts(r), (std::vector<std::string>{"Your name?"}));
  auto moved = bot::redirect(*p, r.state(), "help", now);
  ASSERT_TRUE(moved.ok()) << moved.err().message;
  EXPECT_EQ(texts(*moved), (std::vector<std::string>{"Here is some help.", "Anything else?"}));
  EXPECT_EQ(moved->state().status(), v1::AWAITING_INPUT);
  EXPECT_EQ(moved->state().turn(), r.state().turn() + 1);
  // The answer goes to the question of the dialog it was sent to, not the old one.
  auto next = bot::resume(*p, moved->state(), bot::text_input("no", now));
  EXPECT_TRUE(texts(next).empty()) << next.ShortDebugString();
  EXPECT_NE(next.state().status(), v1::ENDED) << "the welcome's end was left behind";

  auto unknown = bot::redirect(*p, r.state(), "nowhere", now);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, "unknown_dialog");
  EXPECT_NE(unknown.err().message.find("'nowhere'"), std::string::npos) << unknown.err().message;
  auto done = bot::resume(*p, r.state(), bot::text_input("Ann", now));
  ASSERT_EQ(done.state().status(), v1::ENDED) << done.ShortDebugString();
  EXPECT_EQ(bot::redirect(*p, done.state(), "help", now).err().code, "session_ended");
}

TEST(vm, close_intents_are_disambiguated_with_a_menu_of_the_two) {
  const std::string source = R"BOT(bot:
  name: desk
  confidence_threshold: 0.05
  ambiguity_threshold: 0.9
intents:
  billing: [my bill is wrong, a question about my bill, why is my bill so high]
  refund: [i want a refund, refund my order, how do i get a refund]
dialogs:
  billing:
    intent: billing
    steps:
      - message: "Billing here."
  refund:
    intent: refund
    steps:
      - message: "Refunds here."
)BOT";
  auto p = build(source);
  auto r = bot::start(*p, {}, now);
  // Both intents score, within 0.9 of each other: the bot asks instead of guessing.
  auto asked = bot::resume(*p, r.state(), bot::text_input("bill refund", now));
  ASSERT_EQ(asked.messages_size(), 1) << asked.ShortDebugString();
  EXPECT_EQ(asked.matched_by(), "ambiguous");
  const auto& m = asked.messages(0);
  EXPECT_EQ(m.text(), "Did you mean one of these?");
  ASSERT_EQ(m.choices_size(), 2);
  std::vector<std::string> payloads = {m.choices(0).payload(), m.choices(1).payload()};
  std::sort(payloads.begin(), payloads.end());
  EXPECT_EQ(payloads, (std::vector<std::string>{"intent:billing", "intent:refund"}));
  // The answer, as a button's payload or as its label, starts that intent's dialog.
  const auto& refund = m.choices(0).payload() == "intent:refund" ? m.choices(0) : m.choices(1);
  EXPECT_EQ(refund.label(), "I want a refund");
  auto by_payload = bot::resume(*p, asked.state(), bot::payload_input(refund.payload(), now));
  EXPECT_EQ(texts(by_payload), (std::vector<std::string>{"Refunds here."}));
  EXPECT_EQ(by_payload.matched_by(), "disambiguation");
  auto by_label = bot::resume(*p, asked.state(), bot::text_input(refund.label(), now));
  EXPECT_EQ(texts(by_label), (std::vector<std::string>{"Refunds here."}));
  // An exact utterance is never in doubt.
  EXPECT_EQ(texts(bot::resume(*p, r.state(), bot::text_input("my bill is wrong", now))),
            (std::vector<std::string>{"Billing here."}));
  // Off (the default): the best intent wins.
  std::string off = source;
  off.replace(off.find("  ambiguity_threshold: 0.9\n"), 27, "");
  auto q = build(off);
  auto guessed =
      bot::resume(*q, bot::start(*q, {}, now).state(), bot::text_input("bill refund", now));
  EXPECT_EQ(guessed.matched_by(), "intent") << guessed.ShortDebugString();
}

TEST(vm, an_intents_own_confidence_threshold_overrides_the_bots) {
  const std::string source = R"BOT(bot:
  name: desk
  confidence_threshold: 0.05
intents:
  billing: [my bill is wrong, a question about my bill, why is my bill so high]
  close_account:
    confidence_threshold: 1
    utterances: [close my account, delete my account for good, i want to close my account]
dialogs:
  billing:
    intent: billing
    steps:
      - message: "Billing here."
  close:
    intent: close_account
    steps:
      - message: "Closing it."
)BOT";
  auto p = build(source);
  auto s = bot::start(*p, {}, now).state();
  // Near a billing utterance: the bot's low threshold trusts it.
  auto billing = bot::resume(*p, s, bot::text_input("my bill is wrong again", now));
  EXPECT_EQ(texts(billing), (std::vector<std::string>{"Billing here."}))
      << billing.ShortDebugString();
  // Near a close_account utterance, the model's best guess, but below its own 1 (only exact
  // utterances).
  auto closing = bot::resume(*p, s, bot::text_input("close my account please", now));
  ASSERT_GT(closing.intents_size(), 0);
  EXPECT_EQ(closing.intents(0).name(), "close_account");
  EXPECT_LT(closing.intents(0).confidence(), 1.0f);
  EXPECT_EQ(closing.matched_by(), "fallback") << closing.ShortDebugString();
  // The same bot with the bot's threshold for that intent takes it.
  std::string relaxed = source;
  relaxed.replace(relaxed.find("    confidence_threshold: 1\n"), 28, "");
  auto q = build(relaxed);
  auto taken = bot::resume(*q, bot::start(*q, {}, now).state(),
                           bot::text_input("close my account please", now));
  EXPECT_EQ(texts(taken), (std::vector<std::string>{"Closing it."})) << taken.ShortDebugString();
  // An exact training utterance needs no confidence.
  EXPECT_EQ(texts(bot::resume(*p, s, bot::text_input("close my account", now))),
            (std::vector<std::string>{"Closing it."}));
}

TEST(vm, too_many_fallbacks_in_a_row_hand_the_conversation_over) {
  const std::string source = R"BOT(bot:
  name: desk
  fallback: confused
  handoff_after_fallbacks: 3
  handoff: agent
intents:
  billing: [my bill is wrong, a question about my bill, why is my bill so high]
dialogs:
  billing:
    intent: billing
    steps:
      - message: "Billing here."
  confused:
    - message: "Sorry?"
  agent:
    - transfer:
        message: "Passing you to a person."
        queue: support
)BOT";
  auto p = build(source);
  auto s = bot::start(*p, {}, now).state();
  auto say = [&](const char* text) {
    auto r = bot::resume(*p, s, bot::text_input(text, now));
    s = r.state();
    return r;
  };
  // Two fallbacks, then an understood message: the count starts again.
  EXPECT_EQ(texts(say("zzz qqq")), (std::vector<std::string>{"Sorry?"}));
  EXPECT_EQ(say("xyzzy plugh").state().fallbacks_in_row(), 2u);
  EXPECT_EQ(texts(say("my bill is wrong")), (std::vector<std::string>{"Billing here."}));
  EXPECT_EQ(s.fallbacks_in_row(), 0u);
  EXPECT_EQ(texts(say("zzz qqq")), (std::vector<std::string>{"Sorry?"}));
  EXPECT_EQ(texts(say("xyzzy plugh")), (std::vector<std::string>{"Sorry?"}));
  // The third in a row runs the handoff dialog instead of the fallback.
  auto third = say("frobnicate");
  EXPECT_EQ(third.matched_by(), "fallback");
  EXPECT_EQ(texts(third), (std::vector<std::string>{"Passing you to a person."}));
  ASSERT_TRUE(third.has_transfer()) << third.ShortDebugString();
  EXPECT_EQ(third.transfer().queue(), "support");
  EXPECT_EQ(third.state().status(), v1::TRANSFERRED);
  EXPECT_EQ(third.state().fallbacks_in_row(), 0u);

  // Without a handoff dialog: the default message and a transfer with no queue, also
  // from an open menu whose options were not matched (the bot has no fallback dialog).
  const std::string plain = R"BOT(bot:
  name: desk
  welcome: pick
  handoff_after_fallbacks: 2
dialogs:
  pick:
    - menu:
        prompt: "Pick one"
        options:
          - label: Red
          - label: Blue
)BOT";
  auto q = build(plain);
  auto first = bot::resume(*q, bot::start(*q, {}, now).state(), bot::text_input("green", now));
  EXPECT_EQ(first.matched_by(), "fallback");
  ASSERT_EQ(first.messages_size(), 2) << first.ShortDebugString();  // sorry + the menu again
  EXPECT_EQ(first.state().status(), v1::AWAITING_INPUT);
  auto second = bot::resume(*q, first.state(), bot::text_input("purple", now));
  EXPECT_EQ(texts(second),
            (std::vector<std::string>{"Let me connect you with someone who can help."}));
  EXPECT_TRUE(second.has_transfer());
  EXPECT_EQ(second.transfer().queue(), "");
  EXPECT_EQ(second.state().status(), v1::TRANSFERRED);
}

TEST(vm, menu_by_number_and_label_and_call_returns) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("buy a shirt", now));
  EXPECT_EQ(r.matched_by(), "exact");
  EXPECT_FLOAT_EQ(r.intents(0).confidence(), 1.0f);
  auto at_menu = r.state();
  r = bot::resume(*p, at_menu, bot::text_input("1", now));
  EXPECT_EQ(var(*p, r, "size"), "small");
  r = bot::resume(*p, at_menu, bot::text_input("  SMALL! ", now));
  EXPECT_EQ(var(*p, r, "size"), "small");
  r = bot::resume(*p, at_menu, bot::text_input("3", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"Describe the size"});
  r = bot::resume(*p, r.state(), bot::text_input("a big one", now));
  EXPECT_EQ(texts(r), (std::vector<std::string>{"Noted: large", "How many?"}))
      << "call returns to the step after the menu";
}

TEST(vm, unmatched_input_goes_to_fallback) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("what is the meaning of life", now));
  EXPECT_EQ(r.matched_by(), "fallback");
  EXPECT_EQ(texts(r), std::vector<std::string>{"Sorry?"});
}

TEST(vm, question_retry_limit_moves_on) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("buy a shirt", now));
  r = bot::resume(*p, r.state(), bot::text_input("small", now));
  r = bot::resume(*p, r.state(), bot::text_input("many", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"Please give a number."});
  r = bot::resume(*p, r.state(), bot::text_input("lots", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"Which day?"}) << "retries: 1 then skip";
  EXPECT_EQ(var(*p, r, "qty"), "");
}

TEST(vm, infinite_loops_end_the_session) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("loop forever", now));
  EXPECT_EQ(r.state().status(), v1::ENDED);
  EXPECT_EQ(r.end_reason(), v1::INFINITE_LOOP_DETECTED);
  EXPECT_NE(r.error().find("InfiniteLoopDetected"), std::string::npos);
  auto again = bot::resume(*p, r.state(), bot::text_input("hello?", now));
  EXPECT_EQ(again.state().status(), v1::ENDED);
  EXPECT_EQ(again.messages_size(), 0);
}

TEST(vm, runtime_errors_run_the_error_dialog) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("divide by zero", now));
  EXPECT_EQ(texts(r), (std::vector<std::string>{"Oops, friend.", "Bye."}));
  EXPECT_NE(r.error().find("division by zero (dialog 'crash', line"), std::string::npos)
      << r.error();
  EXPECT_EQ(r.state().status(), v1::ENDED);
  EXPECT_EQ(r.end_reason(), v1::COMPLETED);
}

TEST(vm, caller_failure_runs_the_error_dialog) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::failure_input("snapshot store unavailable", now));
  EXPECT_EQ(texts(r), (std::vector<std::string>{"Oops, friend.", "Bye."}));
  EXPECT_EQ(r.error(), "snapshot store unavailable");
}

TEST(vm, failed_action_without_on_error_runs_the_error_dialog) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  for (const char* in : {"buy a shirt", "small", "2", "2026-12-01"})
    r = bot::resume(*p, r.state(), bot::text_input(in, now));
  ASSERT_EQ(r.state().status(), v1::AWAITING_ACTION);
  auto waiting = r.state();
  auto wrong = bot::resume(*p, waiting, bot::text_input("hello?", now));
  EXPECT_EQ(wrong.state().status(), v1::AWAITING_ACTION) << "text while waiting for an action";
  EXPECT_FALSE(wrong.error().empty());
  r = bot::resume(*p, waiting, bot::action_failure_input("timeout", now));
  EXPECT_EQ(texts(r), (std::vector<std::string>{"Oops, friend.", "Bye."}));
  r = bot::resume(*p, waiting, bot::action_input(200, "not json", now));
  EXPECT_NE(r.error().find("invalid JSON"), std::string::npos);
}

TEST(vm, a_state_of_another_program_is_refused) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  auto other = r.state();
  other.set_program_id("shop@0000000000000000");
  auto x = bot::resume(*p, other, bot::text_input("hi", now));
  EXPECT_EQ(x.state().status(), v1::ENDED);
  EXPECT_EQ(x.end_reason(), v1::PROGRAM_MISMATCH);
}

TEST(vm, corrupt_states_do_not_crash) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  auto s = r.state();
  s.add_frames()->set_dialog(999);
  auto x = bot::resume(*p, s, bot::text_input("hi", now));
  EXPECT_EQ(x.state().status(), v1::ENDED);
  EXPECT_EQ(x.end_reason(), v1::ERROR);
}

TEST(vm, long_input_is_truncated) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  r = bot::resume(*p, r.state(), bot::text_input("buy a shirt", now));
  r = bot::resume(*p, r.state(), bot::text_input("3", now));  // describe the size
  r = bot::resume(*p, r.state(), bot::text_input(std::string(100000, 'x') + " big", now));
  EXPECT_EQ(texts(r), std::vector<std::string>{"Describe the size"})
      << "'big' lies beyond the input limit, so it was not seen";
}

TEST(vm, state_stays_small) {
  auto p = build(shop);
  auto r = bot::start(*p, {}, now);
  for (const char* in : {"buy a shirt", "large", "2", "tomorrow"})
    r = bot::resume(*p, r.state(), bot::text_input(in, now));
  EXPECT_EQ(r.state().status(), v1::AWAITING_ACTION);
  EXPECT_LT(r.state().ByteSizeLong(), 128u);
  // Round trip through bytes, as a snapshot would.
  v1::State back;
  ASSERT_TRUE(back.ParseFromString(r.state().SerializeAsString()));
  auto done = bot::resume(*p, back, bot::action_input(200, R"({"total": 1})", now));
  EXPECT_EQ(done.messages_size(), 1);
}
