// Regex entities run on RE2 (issue 14): linear time whatever the pattern and
// the message, and the compiler rejects what RE2 cannot run, naming the line.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "src/bot/bot.hpp"
#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t now = 1795651200;  // 2026-11-26T00:00:00Z

// A bot whose welcome asks for the entity `p`, with `pattern` as its regex.
std::string asking_bot(const std::string& pattern) {
  return "bot: {name: re, welcome: ask}\n"
         "variables: {got: text}\n"
         "entities:\n"
         "  p: {regex: '" +
         pattern +
         "'}\n"
         "dialogs:\n"
         "  ask:\n"
         "    - question: {prompt: 'Say it', reprompt: 'Again', entity: p, into: got, retries: 5}\n"
         "    - message: 'Got {{got}}'\n";
}

bool has(const bot::compile_result& r, int line, const std::string& part) {
  for (const auto& d : r.diagnostics)
    if (d.line == line && d.level == bot::severity::error &&
        d.message.find(part) != std::string::npos)
      return true;
  return false;
}

std::string dump(const bot::compile_result& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// `^(a+)+$` against "aaa...a!" takes a backtracking engine (std::regex) time
// doubling with each 'a': 3 s for 26 of them. RE2 answers in microseconds.
TEST(regex_entities, a_pathological_pattern_ends_fast_and_matches_nothing) {
  auto p = bot::testing::build(asking_bot("^(a+)+$"));
  ASSERT_TRUE(p);
  auto waiting = bot::start(*p, {}, now).state();

  auto t0 = std::chrono::steady_clock::now();
  auto r = bot::resume(*p, waiting, bot::text_input(std::string(26, 'a') + "!", now));
  double turn_ms = ms_since(t0);
  EXPECT_LT(turn_ms, 50.0) << "one turn of 26 'a's and a '!'";
  EXPECT_EQ(r.error(), "");
  EXPECT_NE(r.matched_by(), "entity");
  for (const auto& e : r.entities()) EXPECT_NE(e.entity(), "p") << e.value();
  ASSERT_GE(r.messages_size(), 1);
  EXPECT_EQ(r.messages(r.messages_size() - 1).text(), "Again") << "the question asks again";

  // The longest message a turn reads (max_input_bytes), still without a match.
  t0 = std::chrono::steady_clock::now();
  r = bot::resume(*p, waiting,
                  bot::text_input(std::string(bot::max_input_bytes - 1, 'a') + "!", now));
  EXPECT_LT(ms_since(t0), 50.0) << "one turn of 1,999 'a's and a '!'";
  EXPECT_NE(r.matched_by(), "entity");

  // Past the VM's input cap, straight through the extractors.
  std::string long_text = std::string(10000, 'a') + "!";
  t0 = std::chrono::steady_clock::now();
  auto found = bot::extract_entities(*p, long_text, now);
  EXPECT_LT(ms_since(t0), 50.0) << "10,000 'a's and a '!'";
  for (const auto& e : found) EXPECT_NE(e.entity(), "p") << e.value();

  // The same pattern still matches what it should.
  r = bot::resume(*p, waiting, bot::text_input("aaaa", now));
  EXPECT_EQ(r.matched_by(), "entity");
  ASSERT_GE(r.messages_size(), 1);
  EXPECT_EQ(r.messages(0).text(), "Got aaaa");
}

// The captured value is the leftmost match, its first alternative winning
// (ECMAScript's and Perl's rule, which RE2 keeps), not the longest one.
TEST(regex_entities, the_value_is_the_leftmost_first_match) {
  auto p = bot::testing::build(asking_bot(R"(\d+|\d+-\d+|x(yz|y))"));
  ASSERT_TRUE(p);
  auto value = [&](const std::string& text) -> std::string {
    for (const auto& m : bot::extract_entities(*p, text, now))
      if (m.entity() == "p") return m.value();
    return "-";
  };
  EXPECT_EQ(value("call 555-1234 now"), "555");
  EXPECT_EQ(value("XYZ"), "XYZ") << "regexes ignore case unless told otherwise";
  EXPECT_EQ(value("café 42 €"), "42") << "UTF-8 text around the match";
  EXPECT_EQ(value("nothing here"), "-");
}

TEST(regex_entities, the_compiler_rejects_what_re2_cannot_run_naming_the_line) {
  const char* text = R"(bot: {name: re, welcome: w}
entities:
  twice: {regex: '(a)\1'}
  ahead: {regex: 'foo(?=bar)'}
  behind: {regex: '(?<!x)y'}
  named: {regex: '(?<n>a)'}
  fine: {regex: '\b[A-Z]{2}\d+\b'}
dialogs: {w: [{message: hi}]}
)";
  auto r = bot::compile(text, "re.yaml");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(r, 3, "regex uses a backreference ('\\1')")) << dump(r);
  EXPECT_TRUE(has(r, 3, "linear")) << dump(r);
  EXPECT_TRUE(has(r, 4, "regex uses a lookahead ('(?=')")) << dump(r);
  EXPECT_TRUE(has(r, 5, "regex uses a lookbehind ('(?<!')")) << dump(r);
  EXPECT_TRUE(has(r, 6, "(?P<name>...)")) << dump(r);
  for (const auto& d : r.diagnostics) EXPECT_NE(d.line, 7) << d.to_string();
  for (const auto& d : r.diagnostics) EXPECT_EQ(d.file, "re.yaml");
}

// A program compiled before regexes ran on RE2 may hold a pattern RE2 cannot
// run: loading it fails with the reason instead of running it some other way.
TEST(regex_entities, loading_a_program_with_a_backreference_fails_with_the_reason) {
  auto r = bot::compile(asking_bot("a+"));
  ASSERT_TRUE(r.ok()) << dump(r);
  v1::Program prog = *r.program;
  for (auto& e : *prog.mutable_entities())
    if (e.name() == "p") e.set_regex("(a)\\1");
  auto p = bot::load(prog);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("entity 'p': regex uses a backreference"), std::string::npos)
      << p.err().message;
}
