#include <gtest/gtest.h>

#include "src/bot/conversation_test.hpp"

namespace bot = parley::bot;

namespace {

std::shared_ptr<const bot::program> echo() {
  auto r = bot::compile(R"(bot: {name: echo, welcome: hi}
variables: {word: text}
dialogs:
  hi:
    - question: {prompt: "Say a word", entity: text, into: word}
    - message: "You said {{word}}"
)");
  EXPECT_TRUE(r.ok());
  return *bot::load(*r.program);
}

}  // namespace

TEST(conversation_tests, pass_and_fail_with_a_clear_diff) {
  auto p = echo();
  auto res = bot::run_conversation_tests(*p, R"(tests:
  - name: good
    steps:
      - bot: Say a word
      - user: banana
      - bot: You said banana
      - vars: {word: banana}
  - name: wrong text
    steps:
      - bot: Say a word
      - user: banana
      - bot: You said apple
  - name: unexpected message
    steps:
      - user: banana
)",
                                         "echo.tests.yaml");
  ASSERT_TRUE(res.ok()) << res.err().message;
  ASSERT_EQ(res->size(), 3u);
  EXPECT_TRUE((*res)[0].passed) << (*res)[0].failure;
  EXPECT_FALSE((*res)[1].passed);
  EXPECT_NE((*res)[1].failure.find("step 3 (echo.tests.yaml:12)"), std::string::npos)
      << (*res)[1].failure;
  EXPECT_NE(
      (*res)[1].failure.find("\"You said apple\"\n    but it said\n      \"You said banana\""),
      std::string::npos)
      << (*res)[1].failure;
  EXPECT_NE((*res)[1].transcript.find("user> banana"), std::string::npos);
  EXPECT_FALSE((*res)[2].passed);
  EXPECT_NE((*res)[2].failure.find("\"Say a word\" which the test does not expect"),
            std::string::npos)
      << (*res)[2].failure;
}

TEST(conversation_tests, malformed_test_files_are_errors) {
  auto p = echo();
  auto res = bot::run_conversation_tests(*p, "tests: 3", "x.yaml");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.err().code, "bad_tests");
}
