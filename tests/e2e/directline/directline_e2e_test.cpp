// Microsoft's botframework-directlinejs under Node against a real parleyd: the
// order-status bot's whole conversation over the WebSocket stream, with the echo of
// each user activity (clientActivityID) and the bot's suggested actions
// (directlinejs_client.js holds the checks).

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/directline_node.hpp"

namespace {

using namespace std::chrono_literals;

TEST(DirectLineJs, MultiTurnConversationOverTheWebSocket) {
  const std::string dir = std::string(PARLEY_SOURCE_DIR) + "/tests/e2e";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/botframework-directlinejs"))
      << "run `npm ci` in tests/e2e (scripts/test does)";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_NODE)) << "node is not installed";
  parley::test::directline_node n;
  ASSERT_TRUE(n.ready()) << n.output();
  auto client = parley::testing::run_to_end(
      {PARLEY_NODE, dir + "/directline/directlinejs_client.js", n.domain(), n.secret()},
      {{"NODE_PATH", dir + "/node_modules"}}, 90s);
  const auto& out = client.output;
  ASSERT_TRUE(client.code.has_value()) << out;
  EXPECT_EQ(*client.code, 0) << out << "\nparleyd:\n" << n.output();
  EXPECT_NE(out.find("ok: "), std::string::npos) << "the client ran to its end:\n" << out;
  EXPECT_EQ(n.orders().calls(), 1) << "the order lookup ran once";
}

}  // namespace
