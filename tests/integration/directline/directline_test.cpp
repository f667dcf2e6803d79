// Direct Line 3.0 against a real parleyd, Redis and Postgres: tokens, conversations,
// posts and polls from a watermark, a retried post, reconnects, refresh and expiry,
// bad credentials, CORS, the WebSocket stream (replay at open, pushes, one socket
// per conversation), and a handoff to an agent of the agent API.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "src/channels/directline/directline.hpp"
#include "src/common/clock.hpp"
#include "tests/support/directline_node.hpp"
#include "tests/support/directline_stream.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace dl = parley::channels::directline;
using parley::test::stream_client;

json message(const std::string& text, const std::string& client_id) {
  return {{"type", "message"},
          {"from", {{"id", "user-1"}, {"name", "Ann"}}},
          {"text", text},
          {"channelData", {{"clientActivityID", client_id}, {"n", {1, 2.5, "x"}}}}};
}

/// Texts of the bot's messages in an activity list, joined by newlines.
std::string bot_texts(const json& activities) {
  std::string out;
  for (const auto& a : activities)
    if (a.value("type", "") == "message" && a["from"].value("role", "") == "bot")
      out += a.value("text", "") + "\n";
  return out;
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class DirectLine : public ::testing::Test {
 protected:
  void SetUp() override {
    n_ = std::make_unique<parley::test::directline_node>();
    ASSERT_TRUE(n_->ready()) << n_->output();
  }

  /// A started conversation: (id, token).
  std::pair<std::string, std::string> start() {
    auto r = n_->call("POST", "/v3/directline/conversations", n_->secret());
    EXPECT_EQ(r.status, 201) << r.body;
    return {r.j.value("conversationId", ""), r.j.value("token", "")};
  }

  parley::test::dl_reply activities(const std::string& conv, const std::string& token,
                                    const std::string& watermark = "") {
    return n_->call("GET",
                    "/v3/directline/conversations/" + conv + "/activities" +
                        (watermark.empty() ? "" : "?watermark=" + watermark),
                    token);
  }

  parley::test::dl_reply post(const std::string& conv, const std::string& token, const json& a) {
    return n_->call("POST", "/v3/directline/conversations/" + conv + "/activities", token,
                    a.dump());
  }

  std::unique_ptr<parley::test::directline_node> n_;
};

TEST_F(DirectLine, TokenConversationPostAndPollFromTheWatermark) {
  auto g = n_->call("POST", "/v3/directline/tokens/generate", n_->secret());
  ASSERT_EQ(g.status, 200) << g.body;
  std::string conv = g.j.value("conversationId", "");
  std::string token = g.j.value("token", "");
  EXPECT_EQ(g.j.value("expires_in", 0), 1800);
  ASSERT_FALSE(conv.empty());

  auto s = n_->call("POST", "/v3/directline/conversations", token);
  ASSERT_EQ(s.status, 201) << s.body;
  EXPECT_EQ(s.j["conversationId"], conv);
  EXPECT_EQ(s.j["token"], token);
  std::string stream = s.j.value("streamUrl", "");
  EXPECT_EQ(stream.rfind("ws://127.0.0.1:" + n_->port() + "/v3/directline/conversations/" + conv +
                             "/stream?t=",
                         0),
            0u)
      << stream;

  auto welcome = activities(conv, token);
  ASSERT_EQ(welcome.status, 200) << welcome.body;
  EXPECT_EQ(welcome.j["watermark"], "2") << welcome.body;
  ASSERT_EQ(welcome.j["activities"].size(), 2u);
  EXPECT_EQ(welcome.j["activities"][0]["text"], "Hi! I'm the order assistant.");
  const auto& menu = welcome.j["activities"][1];
  EXPECT_EQ(menu["id"], conv + "|0000001");
  EXPECT_EQ(menu["suggestedActions"]["actions"][0],
            json({{"type", "imBack"}, {"title", "Track an order"}, {"value", "Track an order"}}));

  // The same token again: the conversation exists (200), nothing runs twice.
  auto again = n_->call("POST", "/v3/directline/conversations", token);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(activities(conv, token).j["watermark"], "2");

  auto p = post(conv, token, message("Track an order", "client-1"));
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.j["id"], conv + "|0000002");
  auto next = activities(conv, token, "2");
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.j["watermark"], "4");
  ASSERT_EQ(next.j["activities"].size(), 2u) << next.body;
  const auto& echo = next.j["activities"][0];
  EXPECT_EQ(echo["id"], conv + "|0000002");
  EXPECT_EQ(echo["from"]["id"], "user-1");
  EXPECT_EQ(echo["text"], "Track an order");
  EXPECT_EQ(echo["channelData"], json({{"clientActivityID", "client-1"}, {"n", {1, 2.5, "x"}}}));
  EXPECT_EQ(next.j["activities"][1]["replyToId"], conv + "|0000002");
  EXPECT_TRUE(has(bot_texts(next.j["activities"]), "What's your order number?")) << next.body;

  auto lookup = post(conv, token, message("AB-123456", "client-2"));
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  auto after = activities(conv, token, "4");
  EXPECT_TRUE(has(bot_texts(after.j["activities"]), "has shipped with UPS")) << after.body;
  EXPECT_EQ(n_->orders().calls(), 1);

  // A replay from 0 has everything, in order, with ids matching positions.
  auto all = activities(conv, token, "0");
  ASSERT_EQ(all.j["activities"].size(), std::stoul(all.j["watermark"].get<std::string>()));
  for (std::size_t i = 0; i < all.j["activities"].size(); ++i)
    EXPECT_EQ(all.j["activities"][i]["id"], dl::activity_id(conv, i));
}

TEST_F(DirectLine, AnAttachmentTheTenantRefusesIs400NamingIt) {
  auto [conv, token] = start();
  json a = message("", "client-att-1");
  a.erase("text");
  a["attachments"] = json::array(
      {{{"contentType", "image/png"}, {"contentUrl", "https://cdn.example/a.png"}},
       {{"contentType", "application/zip"}, {"contentUrl", "https://cdn.example/b.zip"}}});
  auto refused = post(conv, token, a);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.j["error"]["code"], "BadArgument") << refused.body;
  EXPECT_EQ(refused.j["error"]["message"],
            "attachments[1].contentType: content type \"application/zip\" is not allowed")
      << refused.body;
  json js = a;
  js["attachments"] =
      json::array({{{"contentType", "image/png"}, {"contentUrl", "javascript:alert(1)"}}});
  auto scheme = post(conv, token, js);
  EXPECT_EQ(scheme.status, 400) << scheme.body;
  EXPECT_EQ(scheme.j["error"]["message"],
            "attachments[0].contentUrl: scheme \"javascript\" is not allowed")
      << scheme.body;
  // Nothing of the refused posts reached the conversation: only the welcome is there.
  EXPECT_EQ(activities(conv, token).j["watermark"], "2");

  a["attachments"].erase(1);
  a["channelData"]["clientActivityID"] = "client-att-2";
  auto ok = post(conv, token, a);
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto next = activities(conv, token, "2");
  ASSERT_GE(next.j["activities"].size(), 1u) << next.body;
  EXPECT_EQ(next.j["activities"][0]["attachments"][0]["contentUrl"], "https://cdn.example/a.png")
      << next.body;
}

TEST_F(DirectLine, ARetriedPostMakesNoSecondEchoOrAnswer) {
  auto [conv, token] = start();
  auto first = post(conv, token, message("Track an order", "retry-1"));
  ASSERT_EQ(first.status, 200) << first.body;
  auto second = post(conv, token, message("Track an order", "retry-1"));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(first.j["id"], second.j["id"]);
  auto all = activities(conv, token);
  int echoes = 0, questions = 0;
  for (const auto& a : all.j["activities"]) {
    if (a.contains("channelData") && a["channelData"]["clientActivityID"] == "retry-1") ++echoes;
    if (has(a.value("text", ""), "What's your order number?")) ++questions;
  }
  EXPECT_EQ(echoes, 1) << all.body;
  EXPECT_EQ(questions, 1) << all.body;
  // The bot did not run the text twice: the next answer is to the question.
  auto p = post(conv, token, message("AB-123456", "retry-2"));
  ASSERT_EQ(p.status, 200);
  EXPECT_TRUE(has(bot_texts(activities(conv, token, all.j["watermark"]).j["activities"]),
                  "has shipped with UPS"));
}

TEST_F(DirectLine, ReconnectRefreshExpiryAndBadCredentials) {
  auto [conv, token] = start();
  auto rc = n_->call("GET", "/v3/directline/conversations/" + conv + "?watermark=2", token);
  ASSERT_EQ(rc.status, 200) << rc.body;
  EXPECT_EQ(rc.j["conversationId"], conv);
  EXPECT_TRUE(has(rc.j.value("streamUrl", ""), "&watermark=2")) << rc.body;
  auto rs = n_->call("GET", "/v3/directline/conversations/" + conv, n_->secret());
  ASSERT_EQ(rs.status, 200) << rs.body;
  EXPECT_FALSE(rs.j.value("token", "").empty());

  // Refresh: a new token for the same conversation; the secret cannot refresh.
  auto rf = n_->call("POST", "/v3/directline/tokens/refresh", token);
  ASSERT_EQ(rf.status, 200) << rf.body;
  EXPECT_EQ(rf.j["conversationId"], conv);
  std::string refreshed = rf.j.value("token", "");
  EXPECT_EQ(activities(conv, refreshed).status, 200);
  EXPECT_EQ(n_->call("POST", "/v3/directline/tokens/refresh", n_->secret()).status, 403);

  // Expired (signed with the region's key, expiry passed): 403 TokenExpired.
  auto now = parley::common::now_unix_ms() / 1000;
  auto expired = dl::sign_token({n_->tenant(), "orders", conv, now - 1},
                                parley::test::directline_node::token_key);
  auto e = activities(conv, expired);
  EXPECT_EQ(e.status, 403);
  EXPECT_EQ(e.j["error"]["code"], "TokenExpired") << e.body;
  EXPECT_EQ(n_->call("POST", "/v3/directline/tokens/refresh", expired).j["error"]["code"],
            "TokenExpired");

  // Bad credentials: none, a wrong secret, a forged token, another conversation's token.
  EXPECT_EQ(activities(conv, "").status, 403);
  auto wrong = n_->secret();
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  auto w = n_->call("POST", "/v3/directline/conversations", wrong);
  EXPECT_EQ(w.status, 403);
  EXPECT_FALSE(has(w.body, wrong)) << "a secret is never echoed";
  EXPECT_EQ(n_->call("POST", "/v3/directline/conversations",
                     dl::make_secret("other-tenant", "orders", "0123456789abcdef01234567"))
                .status,
            403);
  auto forged = dl::sign_token({n_->tenant(), "orders", conv, now + 600}, "not-the-key");
  EXPECT_EQ(activities(conv, forged).status, 403);
  auto [other, other_token] = start();
  EXPECT_EQ(activities(conv, other_token).status, 403);
  EXPECT_EQ(post(conv, other_token, message("hi", "x")).status, 403);
  EXPECT_EQ(activities(conv, token, "abc").status, 400);
  auto bad = post(conv, token, json{{"type", "message"}, {"text", 5}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.j["error"]["code"], "BadArgument");
  EXPECT_TRUE(has(bad.j["error"].value("message", ""), "text")) << bad.body;
}

TEST_F(DirectLine, CorsPreflightAndHeaders) {
  auto o =
      n_->call("OPTIONS", "/v3/directline/conversations", "", "",
               {{"Origin", "https://shop.example.com"},
                {"Access-Control-Request-Method", "POST"},
                {"Access-Control-Request-Headers", "authorization,content-type,x-ms-bot-agent"}});
  EXPECT_EQ(o.status, 204);
  ASSERT_NE(o.header("Access-Control-Allow-Origin"), nullptr);
  ASSERT_NE(o.header("Access-Control-Allow-Headers"), nullptr);
  auto allowed = *o.header("Access-Control-Allow-Headers");
  for (const char* h : {"Authorization", "Content-Type", "x-ms-bot-agent"})
    EXPECT_TRUE(has(allowed, h)) << allowed;
  auto r = n_->call("POST", "/v3/directline/conversations", "");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.header("Access-Control-Allow-Origin"), nullptr) << "errors carry CORS too";
}

TEST_F(DirectLine, StreamReplaysFromTheWatermarkPushesAndKeepsOneSocket) {
  auto s = n_->call("POST", "/v3/directline/conversations", n_->secret());
  ASSERT_EQ(s.status, 201);
  std::string conv = s.j["conversationId"], token = s.j["token"];
  stream_client ws(s.j["streamUrl"].get<std::string>());
  auto menu = ws.until([](const json& a) { return a.value("text", "") == "How can I help you?"; });
  ASSERT_FALSE(menu.is_null()) << "the welcome is replayed at open";
  ws.send("");  // the client's keep-alive is ignored

  auto p = post(conv, token, message("Track an order", "ws-1"));
  ASSERT_EQ(p.status, 200) << p.body;
  std::vector<json> seen;
  auto q = ws.until(
      [](const json& a) { return has(a.value("text", ""), "What's your order number?"); }, &seen);
  ASSERT_FALSE(q.is_null());
  bool echoed = false, typing = false;
  for (const auto& a : seen) {
    if (a["type"] == "typing" && !echoed) typing = a["from"]["role"] == "bot";
    echoed |= a.contains("channelData") && a["channelData"]["clientActivityID"] == "ws-1" &&
              a["id"] == p.j["id"];
  }
  EXPECT_TRUE(echoed) << "the echo comes on the stream with its id";
  EXPECT_TRUE(typing) << "the bot is typing while the turn is pending";

  // A reconnect from watermark 2 replays the echo and the question, not the welcome.
  auto rc = n_->call("GET", "/v3/directline/conversations/" + conv + "?watermark=2", token);
  ASSERT_EQ(rc.status, 200);
  stream_client second(rc.j["streamUrl"].get<std::string>());
  auto first_frame = second.next();
  ASSERT_FALSE(first_frame.is_null());
  EXPECT_EQ(first_frame["watermark"], "4") << first_frame.dump();
  EXPECT_EQ(first_frame["activities"][0]["id"], conv + "|0000002") << first_frame.dump();
  // The first socket was replaced: it gets closed.
  EXPECT_TRUE(ws.next(10s).is_null());
  EXPECT_TRUE(ws.closed());

  // A bad token cannot open a stream.
  auto other = n_->call("POST", "/v3/directline/conversations", n_->secret());
  std::string bad_url = rc.j["streamUrl"].get<std::string>();
  bad_url = bad_url.substr(0, bad_url.find("?t=")) + "?t=" + other.j["token"].get<std::string>();
  EXPECT_ANY_THROW(stream_client refused(bad_url));
}

TEST_F(DirectLine, SigtermWithOpenStreamsExitsZeroPromptly) {
  std::vector<std::unique_ptr<stream_client>> open;
  for (int i = 0; i < 2; ++i) {
    auto s = n_->call("POST", "/v3/directline/conversations", n_->secret());
    ASSERT_EQ(s.status, 201);
    open.push_back(std::make_unique<stream_client>(s.j["streamUrl"].get<std::string>()));
    ASSERT_FALSE(open.back()->next().is_null());
  }
  auto t0 = std::chrono::steady_clock::now();
  auto code = n_->terminate(15s);
  ASSERT_TRUE(code.has_value()) << n_->output();
  EXPECT_EQ(*code, 0) << n_->output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  for (auto& c : open) EXPECT_TRUE(c->next(5s).is_null());
}

TEST_F(DirectLine, AHandoffReachesTheAgentWhoseMessagesReachTheChat) {
  const std::string key = n_->api_key();
  ASSERT_FALSE(key.empty());
  auto agent = [&](const std::string& method, const std::string& path, const json& body = nullptr) {
    return n_->call(method, path, key, body.is_null() ? "" : body.dump(),
                    {{"X-Org-Id", n_->tenant()}});
  };
  auto [conv, token] = start();
  ASSERT_EQ(post(conv, token, message("Talk to an agent", "h-1")).status, 200);
  auto before = activities(conv, token);
  ASSERT_TRUE(has(bot_texts(before.j["activities"]), "connecting you with an agent"))
      << before.body;

  // The handoff reaches the agent API, as the SMS and Messenger ones do.
  json handoff;
  ASSERT_TRUE(parley::store::testing::eventually([&] {
    for (const auto& h : agent("GET", "/agent/v1/handoffs").j.value("handoffs", json::array()))
      if (h.value("sessionId", "") == conv) handoff = h;
    return !handoff.is_null();
  })) << "no open handoff for "
      << conv;
  EXPECT_EQ(handoff["channel"], "directline");
  EXPECT_EQ(handoff["queue"], "orders");

  // The user's message goes to the agent: it is echoed, and the bot says nothing.
  auto p = post(conv, token, message("my parcel is late", "h-2"));
  ASSERT_EQ(p.status, 200) << p.body;
  auto after = activities(conv, token, before.j.value("watermark", ""));
  ASSERT_EQ(after.j["activities"].size(), 1u) << after.body;
  EXPECT_EQ(after.j["activities"][0]["text"], "my parcel is late");
  ASSERT_TRUE(parley::store::testing::eventually([&] {
    return has(agent("GET", "/agent/v1/handoffs/" + conv + "/transcript").body,
               "my parcel is late");
  }));

  // The agent's message reaches the open socket, once though the tool retried its post.
  parley::test::dl_reply resumed = n_->call(
      "GET",
      "/v3/directline/conversations/" + conv + "?watermark=" + after.j.value("watermark", ""),
      token);
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  stream_client ws(resumed.j.value("streamUrl", ""));
  for (int i = 0; i < 2; ++i) {
    auto m = agent("POST", "/agent/v1/handoffs/" + conv + "/messages",
                   {{"text", "Hi, I'm Ann from support."}, {"id", "a1"}});
    EXPECT_EQ(m.status, 200) << m.body;
  }
  auto ann = ws.until([](const json& a) { return has(a.value("text", ""), "I'm Ann"); });
  ASSERT_FALSE(ann.is_null()) << "the agent's message did not reach the socket";
  EXPECT_EQ(ann["from"]["role"], "bot");

  // Back to the bot: what it says about the failed transfer reaches the chat, then it
  // answers the user again.
  auto c = agent("POST", "/agent/v1/handoffs/" + conv + "/close", {{"outcome", "returned_to_bot"}});
  EXPECT_EQ(c.status, 200) << c.body;
  ASSERT_FALSE(ws.until([](const json& a) {
                   return has(a.value("text", ""), "could not connect you");
                 }).is_null());
  ASSERT_EQ(post(conv, token, message("Track an order", "h-3")).status, 200);
  auto all = activities(conv, token, "0");
  EXPECT_TRUE(has(bot_texts(all.j["activities"]), "What's your order number?")) << all.body;
  int anns = 0;
  for (const auto& a : all.j["activities"]) anns += has(a.value("text", ""), "I'm Ann") ? 1 : 0;
  EXPECT_EQ(anns, 1) << all.body;
}

TEST(DirectLineWithoutKey, EveryRouteAnswers503) {
  parley::test::directline_node n(false);
  ASSERT_TRUE(n.ready()) << n.output();
  auto r = n.call("POST", "/v3/directline/conversations", n.secret());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.j["error"]["code"], "ServiceError");
  EXPECT_TRUE(has(n.output(), "directline_disabled"));
}

}  // namespace
