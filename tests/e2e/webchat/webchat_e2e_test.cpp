// Parley's web chat page against a real parleyd: the page's headers and the token
// route here; the page itself in a headless Chromium (chat_page_client.js holds the
// browser's checks and saves a screenshot in the build folder); and Microsoft's Web
// Chat bundle (botframework-webchat) against the Direct Line domain with a token from
// the page's token route (webchat_bundle_client.js).

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

#include "tests/support/directline_node.hpp"

namespace {

using namespace std::chrono_literals;

TEST(WebChatPage, ServesThePageAndItsAssetsUnderARestrictivePolicy) {
  parley::test::directline_node n;
  ASSERT_TRUE(n.ready()) << n.output();
  auto page = n.call("GET", "/chat/" + n.tenant() + "/orders", "");
  ASSERT_EQ(page.status, 200) << page.body;
  ASSERT_NE(page.header("Content-Type"), nullptr);
  EXPECT_EQ(*page.header("Content-Type"), "text/html; charset=utf-8");
  ASSERT_NE(page.header("Content-Security-Policy"), nullptr);
  const std::string& csp = *page.header("Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self' ws: wss:"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(page.body.find("/chat-static/chat.js"), std::string::npos);
  EXPECT_EQ(page.body.find(n.secret()), std::string::npos) << "the page holds the secret";
  EXPECT_EQ(page.body.find("http"), std::string::npos) << "the page loads nothing from elsewhere";

  auto js = n.call("GET", "/chat-static/chat.js", "");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(*js.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(js.body.find("/v3/directline"), std::string::npos);
  auto css = n.call("GET", "/chat-static/chat.css", "");
  ASSERT_EQ(css.status, 200);
  EXPECT_EQ(*css.header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(n.call("GET", "/chat-static/nothing.js", "").status, 404);
  EXPECT_EQ(n.call("GET", "/chat/" + n.tenant(), "").status, 404);
  EXPECT_EQ(n.call("GET", "/chat/" + n.tenant() + "/orders/more", "").status, 404);
  EXPECT_EQ(n.call("GET", "/chat/" + n.tenant() + "/bad%20name", "").status, 404);
}

TEST(WebChatPage, TheTokenRouteMintsATokenWithoutShowingTheSecret) {
  parley::test::directline_node n;
  ASSERT_TRUE(n.ready()) << n.output();
  auto t = n.call("POST", "/chat/" + n.tenant() + "/orders/token", "");
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.body.find(n.secret()), std::string::npos) << "the answer holds the secret";
  ASSERT_TRUE(t.j.contains("token") && t.j.contains("conversationId") && t.j.contains("expires_in"))
      << t.body;
  auto claims = parley::channels::directline::verify_token(
      t.j["token"].get<std::string>(), parley::test::directline_node::token_key, 0);
  ASSERT_TRUE(claims.ok()) << claims.err().message;
  EXPECT_EQ(claims->tenant, n.tenant());
  EXPECT_EQ(claims->bot, "orders");
  EXPECT_EQ(claims->conversation, t.j["conversationId"].get<std::string>());
  // The token starts its conversation, as one from tokens/generate does.
  auto started = n.call("POST", "/v3/directline/conversations", t.j["token"].get<std::string>());
  EXPECT_EQ(started.status, 201) << started.body;
  EXPECT_EQ(started.j.value("conversationId", ""), claims->conversation);
  // Two visitors, two conversations.
  auto again = n.call("POST", "/chat/" + n.tenant() + "/orders/token", "");
  EXPECT_NE(again.j.value("conversationId", ""), claims->conversation);

  auto off = n.call("POST", "/chat/" + n.tenant() + "/other/token", "");
  EXPECT_EQ(off.status, 404);
  EXPECT_EQ(off.j["error"]["message"],
            "web chat is not enabled for bot other: set the tenant secret directline.other")
      << off.body;
  EXPECT_EQ(n.call("POST", "/chat/" + n.tenant() + "/orders/other", "").status, 404);
}

TEST(WebChatPage, TheTokenRouteAnswers503WithoutATokenKey) {
  parley::test::directline_node n(false);
  ASSERT_TRUE(n.ready()) << n.output();
  auto t = n.call("POST", "/chat/" + n.tenant() + "/orders/token", "");
  EXPECT_EQ(t.status, 503) << t.body;
}

TEST(WebChatPage, AConversationInHeadlessChromium) {
  const std::string dir = std::string(PARLEY_SOURCE_DIR) + "/tests/e2e";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/playwright-core"))
      << "run `npm ci` in tests/e2e (scripts/test does)";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_NODE)) << "node is not installed";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_CHROMIUM))
      << "chromium is not installed (scripts/lib/deps.sh installs it)";
  parley::test::directline_node n;
  ASSERT_TRUE(n.ready()) << n.output();
  const std::string shot = std::string(PARLEY_TEST_OUTPUT_DIR) + "/webchat.png";
  std::filesystem::remove(shot);
  auto client = parley::testing::run_to_end(
      {PARLEY_NODE, dir + "/webchat/chat_page_client.js", "http://127.0.0.1:" + n.port(),
       n.tenant(), "orders", n.secret(), shot},
      {{"NODE_PATH", dir + "/node_modules"}, {"PARLEY_CHROMIUM", PARLEY_CHROMIUM}}, 150s);
  const auto& out = client.output;
  ASSERT_TRUE(client.code.has_value()) << out;
  EXPECT_EQ(*client.code, 0) << out << "\nparleyd:\n" << n.output();
  EXPECT_NE(out.find("ok: "), std::string::npos) << "the client ran to its end:\n" << out;
  EXPECT_TRUE(std::filesystem::exists(shot)) << shot;
  std::cout << "screenshot: " << shot << std::endl;
  EXPECT_EQ(n.orders().calls(), 1) << "the order lookup ran once";
}

TEST(WebChatPage, MicrosoftWebChatTalksToTheDirectLineDomain) {
  const std::string dir = std::string(PARLEY_SOURCE_DIR) + "/tests/e2e";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/botframework-webchat/dist/webchat.js"))
      << "run `npm ci` in tests/e2e (scripts/test does)";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_NODE)) << "node is not installed";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_CHROMIUM))
      << "chromium is not installed (scripts/lib/deps.sh installs it)";
  parley::test::directline_node n;
  ASSERT_TRUE(n.ready()) << n.output();
  const std::string shot = std::string(PARLEY_TEST_OUTPUT_DIR) + "/botframework-webchat.png";
  std::filesystem::remove(shot);
  auto client = parley::testing::run_to_end(
      {PARLEY_NODE, dir + "/webchat/webchat_bundle_client.js", "http://127.0.0.1:" + n.port(),
       n.tenant(), "orders", shot},
      {{"NODE_PATH", dir + "/node_modules"}, {"PARLEY_CHROMIUM", PARLEY_CHROMIUM}}, 150s);
  const auto& out = client.output;
  ASSERT_TRUE(client.code.has_value()) << out;
  EXPECT_EQ(*client.code, 0) << out << "\nparleyd:\n" << n.output();
  EXPECT_NE(out.find("ok: "), std::string::npos) << "the client ran to its end:\n" << out;
  EXPECT_TRUE(std::filesystem::exists(shot)) << shot;
  std::cout << "screenshot: " << shot << std::endl;
}

}  // namespace
