#include <gtest/gtest.h>

#include <string>

#include "src/bot/bot.hpp"

namespace bot = parley::bot;

namespace {

const char* const minimal = R"(bot:
  name: tiny
  welcome: hello
variables:
  n: {type: number, default: 1}
  s: text
intents:
  greet: [hi, hello, hey, good morning, hiya]
dialogs:
  hello:
    intent: greet
    steps:
      - message: "Hello {{s}}, n is {{n}}"
      - set: {n: "n + 1"}
)";

bool has(const bot::compile_result& r, int line, int column, const std::string& part,
         bot::severity level = bot::severity::error) {
  for (const auto& d : r.diagnostics)
    if (d.line == line && (column == 0 || d.column == column) && d.level == level &&
        d.message.find(part) != std::string::npos)
      return true;
  return false;
}

std::string dump(const bot::compile_result& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

}  // namespace

TEST(compiler, compiles_a_minimal_bot) {
  auto r = bot::compile(minimal, "tiny.yaml");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.error_count(), 0u);
  EXPECT_EQ(r.program->name(), "tiny");
  EXPECT_EQ(r.program->id().rfind("tiny@", 0), 0u);
  EXPECT_EQ(r.program->id().size(), 5u + 16u);
  EXPECT_EQ(r.program->idle_timeout_s(), 1800u);
}

TEST(compiler, ambiguity_threshold_is_a_fraction) {
  std::string with = minimal;
  with.replace(with.find("  welcome: hello"), 16, "  welcome: hello\n  ambiguity_threshold: 0.1");
  auto ok = bot::compile(with, "tiny.yaml");
  ASSERT_TRUE(ok.ok()) << dump(ok);
  EXPECT_FLOAT_EQ(ok.program->ambiguity_threshold(), 0.1f);
  EXPECT_FLOAT_EQ(bot::compile(minimal).program->ambiguity_threshold(), 0.0f) << "off by default";
  std::string bad = minimal;
  bad.replace(bad.find("  welcome: hello"), 16, "  welcome: hello\n  ambiguity_threshold: 2");
  auto r = bot::compile(bad, "tiny.yaml");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(r, 4, 0, "'ambiguity_threshold' must be between 0 and 1")) << dump(r);
}

TEST(compiler, an_intent_may_have_its_own_confidence_threshold) {
  auto with = [](const std::string& intent) {
    std::string s = minimal;
    s.replace(s.find("  greet: [hi, hello, hey, good morning, hiya]"), 45, intent);
    return bot::compile(s, "tiny.yaml");
  };
  auto ok = with(
      "  greet:\n    confidence_threshold: 0.8\n    utterances: [hi, hello, hey, good morning, "
      "hiya]");
  ASSERT_TRUE(ok.ok()) << dump(ok);
  ASSERT_EQ(ok.program->intents_size(), 1);
  EXPECT_TRUE(ok.program->intents(0).has_confidence_threshold());
  EXPECT_FLOAT_EQ(ok.program->intents(0).confidence_threshold(), 0.8f);
  EXPECT_EQ(ok.program->intents(0).utterances_size(), 5);
  EXPECT_FALSE(bot::compile(minimal).program->intents(0).has_confidence_threshold())
      << "the short form has none: the bot's applies";

  auto bad = with("  greet:\n    confidence_threshold: 1.5\n    utterances: [hi, hello]");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(has(bad, 9, 0, "intent 'greet': 'confidence_threshold' must be between 0 and 1"))
      << dump(bad);
  auto typo = with("  greet:\n    threshold: 0.5\n    utterances: [hi, hello]");
  EXPECT_FALSE(typo.ok());
  EXPECT_TRUE(has(typo, 9, 0, "threshold")) << dump(typo);
  auto none = with("  greet:\n    confidence_threshold: 0.5");
  EXPECT_FALSE(none.ok());
  EXPECT_TRUE(has(none, 8, 0, "needs a non-empty list of utterances")) << dump(none);
}

TEST(compiler, handoff_after_fallbacks_is_a_count_and_handoff_a_dialog) {
  auto with = [](const std::string& lines) {
    std::string s = minimal;
    s.replace(s.find("  welcome: hello"), 16, "  welcome: hello\n" + lines);
    return bot::compile(s, "tiny.yaml");
  };
  auto ok = with("  handoff_after_fallbacks: 3\n  handoff: hello");
  ASSERT_TRUE(ok.ok()) << dump(ok);
  EXPECT_EQ(ok.program->handoff_after_fallbacks(), 3u);
  EXPECT_EQ(ok.program->handoff(), 0);
  auto plain = with("  handoff_after_fallbacks: 2");
  ASSERT_TRUE(plain.ok()) << dump(plain);
  EXPECT_EQ(plain.program->handoff(), -1) << "no dialog: the default transfer";
  EXPECT_EQ(bot::compile(minimal).program->handoff_after_fallbacks(), 0u) << "off by default";
  auto zero = with("  handoff_after_fallbacks: 0");
  EXPECT_TRUE(has(zero, 4, 0, "'handoff_after_fallbacks' must be a whole number from 1 to 100"))
      << dump(zero);
  auto words = with("  handoff_after_fallbacks: often");
  EXPECT_FALSE(words.ok());
  auto unknown = with("  handoff_after_fallbacks: 2\n  handoff: nowhere");
  EXPECT_FALSE(unknown.ok());
  EXPECT_TRUE(has(unknown, 5, 0, "nowhere")) << dump(unknown);
  auto alone = with("  handoff: hello");
  ASSERT_TRUE(alone.ok()) << dump(alone);
  EXPECT_TRUE(has(alone, 4, 0, "'handoff' never runs without", bot::severity::warning))
      << dump(alone);
}

TEST(compiler, output_is_deterministic) {
  auto a = bot::compile(minimal);
  auto b = bot::compile(minimal);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(bot::serialize(*a.program), bot::serialize(*b.program));
  EXPECT_EQ(a.program->id(), b.program->id());
  std::string changed = minimal;
  changed.replace(changed.find("Hello {{s}}"), 5, "Howdy");
  auto c = bot::compile(changed);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a.program->id(), c.program->id()) << "the id names the exact program";
}

TEST(compiler, reports_every_error_with_its_position) {
  const char* text = R"(bot:
  name: broken
  welcome: start
variables:
  count: number
  name: text
entities:
  order: {regex: '[A-Z'}
intents:
  a: [one, two, three, four, five]
  b: []
  a: [six]
dialogs:
  start:
    - message: "Hi {{nobody}}"
    - set: {count: '"text"'}
    - goto: nowhere
    - message: never said
  other:
    - if: count + 1
      then:
        - message: x
)";
  auto r = bot::compile(text, "broken.yaml");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(r, 8, 0, "regex does not compile")) << dump(r);
  EXPECT_TRUE(has(r, 11, 0, "needs a non-empty list of utterances")) << dump(r);
  EXPECT_TRUE(has(r, 12, 3, "duplicate intent 'a'")) << dump(r);
  EXPECT_TRUE(has(r, 15, 22, "undefined variable 'nobody'")) << dump(r);
  EXPECT_TRUE(
      has(r, 16, 21, "type mismatch: variable 'count' is number but the expression is text"))
      << dump(r);
  EXPECT_TRUE(has(r, 17, 13, "unknown dialog 'nowhere'")) << dump(r);
  EXPECT_TRUE(has(r, 18, 7, "unreachable step")) << dump(r);
  EXPECT_TRUE(has(r, 20, 11, "the condition is number, it must be a boolean")) << dump(r);
  EXPECT_GE(r.error_count(), 8u);
  // Sorted by position, and formatted as file:line:col.
  EXPECT_EQ(r.diagnostics.front().to_string().rfind("broken.yaml:8:", 0), 0u) << dump(r);
}

TEST(compiler, syntax_errors_have_a_position) {
  auto r = bot::compile("bot:\n  name: x\n dialogs: [\n", "bad.yaml");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_GT(r.diagnostics[0].line, 0);
  EXPECT_NE(r.diagnostics[0].message.find("syntax error"), std::string::npos);
}

TEST(compiler, warns_about_smells) {
  const char* text = R"(bot:
  name: smelly
  welcome: start
intents:
  few: [one, two]
  lonely: [a, b, c, d, e]
dialogs:
  start:
    intent: few
    steps:
      - message: hi
  orphan:
    - message: nobody comes here
)";
  auto r = bot::compile(text);
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has(r, 5, 3, "has only 2 utterance(s)", bot::severity::warning)) << dump(r);
  EXPECT_TRUE(has(r, 6, 3, "intent 'lonely' triggers no dialog", bot::severity::warning))
      << dump(r);
  EXPECT_TRUE(has(r, 12, 3, "'orphan' is unreachable", bot::severity::warning)) << dump(r);
}

TEST(compiler, checks_steps_and_references) {
  const char* text = R"(bot:
  name: refs
  welcome: start
  session_timeout: 2 weeks
variables:
  when: date
  ok: boolean
dialogs:
  start:
    - question: {prompt: "When?", entity: datee, into: when}
    - question: {prompt: "Sure?", entity: number, into: ok}
    - action: {name: x, url: "ftp://a", timeout: 30s}
    - menu: {prompt: "Pick", options: [A, a]}
    - transfer: {message: bye}
    - sing: loud
)";
  auto r = bot::compile(text);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(r, 4, 0, "bad 'session_timeout'")) << dump(r);
  EXPECT_TRUE(has(r, 10, 0, "unknown entity 'datee'")) << dump(r);
  EXPECT_TRUE(has(r, 11, 0, "entity 'number' cannot fill variable 'ok'")) << dump(r);
  EXPECT_TRUE(has(r, 12, 0, "must start with http:// or https://")) << dump(r);
  EXPECT_TRUE(has(r, 12, 0, "between 1ms and 10s")) << dump(r);
  EXPECT_TRUE(has(r, 13, 0, "duplicate menu option 'a'")) << dump(r);
  EXPECT_TRUE(has(r, 14, 0, "needs a 'queue'")) << dump(r);
  EXPECT_TRUE(has(r, 15, 0, "unknown step 'sing'")) << dump(r);
}

TEST(compiler, accepts_json) {
  const char* text = R"({"bot": {"name": "j", "welcome": "w"},
  "dialogs": {"w": [{"message": "hi from json"}]}})";
  auto r = bot::compile(text, "j.json");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.program->dialogs(0).steps(0).texts(0), "hi from json");
}

TEST(compiler, sample_bots_compile_cleanly) {
  for (const char* name : {"order-status", "appointments", "help-desk"}) {
    auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/" + name + ".yaml");
    EXPECT_TRUE(r.ok()) << name << "\n" << dump(r);
    EXPECT_EQ(r.error_count(), 0u) << name;
    EXPECT_EQ(r.warning_count(), 0u) << name << "\n" << dump(r);
  }
}
