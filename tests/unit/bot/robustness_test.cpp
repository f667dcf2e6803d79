#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "src/bot/bot.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

// Mutated sample bots (lines dropped, damaged or replaced by malformed steps)
// must give diagnostics, never an exception or a crash; what still compiles
// must load and survive a few turns of arbitrary input. Seeded: the same
// mutations every run.
TEST(robustness, mutated_bot_files_never_crash_the_compiler_or_the_vm) {
  std::vector<std::vector<std::string>> files;
  for (const char* name : {"order-status", "appointments", "help-desk"})
    files.push_back(read_lines(std::string(PARLEY_BOTS_DIR) + "/" + name + ".yaml"));
  const char* junk[] = {"- goto: x",
                        "  - message: {{",
                        "menu: 3",
                        "    - question: hi",
                        "  steps: 5",
                        ":",
                        "- [a, b",
                        "  - if: '1 +'",
                        "    then: x",
                        "- set: [1]",
                        "  - action: {url: 5, result: [1]}",
                        "bot: 3",
                        "  options: {a: b}",
                        "    - label: [x]",
                        "  entities: {x: {regex: '('}}",
                        "      retries: many",
                        "- transfer: x",
                        "  - call: [x]",
                        "\t",
                        "  - end: {message: [1,{a: b}]}"};
  std::mt19937 rng(7);
  int compiled = 0, rejected = 0;
  for (int iter = 0; iter < 150; ++iter) {
    auto lines = files[rng() % files.size()];
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      std::size_t i = rng() % lines.size();
      switch (rng() % 4) {
        case 0:
          lines.erase(lines.begin() + static_cast<long>(i));
          break;
        case 1:
          lines.insert(lines.begin() + static_cast<long>(i), junk[rng() % 20]);
          break;
        case 2:
          if (!lines[i].empty()) lines[i].erase(rng() % lines[i].size(), 1 + rng() % 4);
          break;
        default:
          if (!lines[i].empty())
            lines[i][rng() % lines[i].size()] = "x:-[{ '\"#|>&*!%@"[rng() % 17];
      }
    }
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    bot::compile_result r;
    ASSERT_NO_THROW(r = bot::compile(text, "mutated.yaml")) << text;
    if (!r.ok()) {
      ++rejected;
      ASSERT_GT(r.error_count(), 0u);
      continue;
    }
    ++compiled;
    auto p = bot::load(*r.program);
    ASSERT_TRUE(p.ok()) << p.err().message;
    auto t = bot::start(**p, {}, 0);
    for (const char* in : {"hi", "1", "where is my order", "AB-123456", "yes", "tomorrow", "2"}) {
      if (t.state().status() == v1::AWAITING_ACTION)
        t = bot::resume(**p, t.state(), bot::action_input(200, R"({"status":"x"})"));
      ASSERT_NO_THROW(t = bot::resume(**p, t.state(), bot::text_input(in)));
      EXPECT_LT(t.state().ByteSizeLong(), 1024u);
    }
  }
  EXPECT_GT(compiled, 10) << "the mutations should leave some bots valid";
  EXPECT_GT(rejected, 10);
}
