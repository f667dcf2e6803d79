#pragma once
/// Conversation tests: scripted exchanges run against a program, like Rasa's
/// test stories. Used by `parleyctl test` and by the unit tests. The file
/// format is documented in docs/bot-format.md ("Conversation tests").
///
/// Pure: actions are answered from the answers the test file gives, the clock
/// is the test file's `now`, nothing touches the network.

#include <string>
#include <string_view>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/common/result.hpp"

namespace parley::bot {

struct conversation_test_result {
  std::string name;
  int line = 0;  // where the test starts in the test file
  bool passed = false;
  /// For a failed test: what was expected, what happened instead, and where.
  std::string failure;
  /// The exchange up to the end or the failure ("bot> ...", "user> ...").
  std::string transcript;
};

/// Runs every test of a test file. Fails (code `bad_tests`) only when the test
/// file itself is malformed; a failing test is a result with passed == false.
result<std::vector<conversation_test_result>> run_conversation_tests(const program& prog,
                                                                     std::string_view tests_yaml,
                                                                     std::string_view file_name);

}  // namespace parley::bot
