// The Direct Line 3.0 codec: posted activities, the echo and bot activities, sets,
// secrets and tokens.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "src/channels/directline/directline.hpp"

namespace dl = parley::channels::directline;
using json = nlohmann::json;

TEST(DirectLine, ParsesAMessageAndKeepsChannelDataUnchanged) {
  auto a = dl::parse_activity(
      R"({"type":"message","from":{"id":"u1","name":"Ann","role":"user"},"text":"hi",)"
      R"("locale":"en-US","channelData":{"clientActivityID":"c-1","n":[1,-2,2.5,true,null,{"s":"é"}]},)"
      R"("attachments":[{"contentType":"image/png","contentUrl":"https://x/a.png","name":"a.png"}]})");
  ASSERT_TRUE(a.ok()) << a.err().message;
  EXPECT_EQ(a->type, "message");
  EXPECT_EQ(a->text, "hi");
  EXPECT_EQ(a->from_id, "u1");
  EXPECT_EQ(a->from_name, "Ann");
  EXPECT_EQ(a->client_activity_id, "c-1");
  EXPECT_EQ(a->channel_data, R"({"clientActivityID":"c-1","n":[1,-2,2.5,true,null,{"s":"é"}]})");
  ASSERT_EQ(a->attachments.size(), 1u);
  EXPECT_EQ(a->attachments[0].content_url, "https://x/a.png");

  auto echo = json::parse(
      dl::with_id(dl::render_user_echo(*a, "conv-1", 1764682800123), dl::activity_id("conv-1", 3)));
  EXPECT_EQ(echo["id"], "conv-1|0000003");
  EXPECT_EQ(echo["type"], "message");
  EXPECT_EQ(echo["text"], "hi");
  EXPECT_EQ(echo["from"]["id"], "u1");
  EXPECT_EQ(echo["from"]["role"], "user");
  EXPECT_EQ(echo["conversation"]["id"], "conv-1");
  EXPECT_EQ(echo["channelId"], "directline");
  EXPECT_EQ(echo["timestamp"], "2025-12-02T13:40:00.123Z");
  EXPECT_EQ(echo["channelData"]["clientActivityID"], "c-1");
  EXPECT_EQ(echo["channelData"]["n"][2], 2.5);
  EXPECT_EQ(echo["attachments"][0]["contentType"], "image/png");
}

TEST(DirectLine, RefusalsNameTheField) {
  struct {
    const char* body;
    const char* field;
  } cases[] = {
      {"not json", "body: "},
      {"[]", "body: "},
      {R"({"text":"x"})", "type: "},
      {R"({"type":"conversationUpdate"})", "type: "},
      {R"({"type":"message","text":3})", "text: "},
      {R"({"type":"message","from":"u"})", "from: "},
      {R"({"type":"message","from":{"id":1}})", "from.id: "},
      {R"({"type":"message","attachments":{}})", "attachments: "},
      {R"({"type":"message","attachments":[{"contentUrl":"x"}]})", "attachments[0].contentType: "},
  };
  for (const auto& c : cases) {
    auto a = dl::parse_activity(c.body);
    ASSERT_FALSE(a.ok()) << c.body;
    EXPECT_EQ(a.err().code, "bad_request");
    EXPECT_EQ(a.err().message.rfind(c.field, 0), 0u) << a.err().message;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(dl::parse_activity(R"({"type":"message","value":)" + deep).ok());
}

TEST(DirectLine, BotMessagesCarrySuggestedActionsAsImBack) {
  auto m = json::parse(dl::with_id(
      dl::render_bot_message({"How can I help?", {"Track an order", "Talk to an agent"}}, "orders",
                             "c", "c|0000001", 0),
      "c|0000002"));
  EXPECT_EQ(m["type"], "message");
  EXPECT_EQ(m["from"]["role"], "bot");
  EXPECT_EQ(m["from"]["id"], "orders");
  EXPECT_EQ(m["replyToId"], "c|0000001");
  ASSERT_EQ(m["suggestedActions"]["actions"].size(), 2u);
  EXPECT_EQ(m["suggestedActions"]["actions"][0],
            json({{"type", "imBack"}, {"title", "Track an order"}, {"value", "Track an order"}}));
  auto plain = json::parse(dl::render_bot_message({"Bye", {}}, "orders", "c", "", 0));
  EXPECT_FALSE(plain.contains("suggestedActions"));
  EXPECT_FALSE(plain.contains("replyToId"));
  EXPECT_EQ(json::parse(dl::render_typing("orders", "c", 0))["type"], "typing");
  EXPECT_EQ(json::parse(dl::render_end_of_conversation("orders", "c", 0))["type"],
            "endOfConversation");
}

TEST(DirectLine, SetsTokensConversationsAndErrorsHaveTheirShapes) {
  auto set = json::parse(dl::render_activity_set({R"({"id":"a"})", R"({"id":"b"})"}, 7));
  EXPECT_EQ(set["watermark"], "7");
  EXPECT_EQ(set["activities"].size(), 2u);
  EXPECT_EQ(json::parse(dl::render_activity_set({}, 0))["activities"], json::array());
  auto t = json::parse(dl::render_token("c", "tok", 1800));
  EXPECT_EQ(t, json({{"conversationId", "c"}, {"token", "tok"}, {"expires_in", 1800}}));
  auto c = json::parse(dl::render_conversation("c", "tok", 1800, "ws://h/s"));
  EXPECT_EQ(c["streamUrl"], "ws://h/s");
  EXPECT_FALSE(
      json::parse(dl::render_conversation("c", "tok", -1, "ws://h/s")).contains("expires_in"));
  EXPECT_EQ(json::parse(dl::render_resource("c|0000001")), json({{"id", "c|0000001"}}));
  auto e = dl::error_response(403, "TokenExpired", "the token has expired");
  EXPECT_EQ(e.status, 403);
  EXPECT_EQ(json::parse(e.body),
            json({{"error", {{"code", "TokenExpired"}, {"message", "the token has expired"}}}}));
  EXPECT_EQ(dl::with_id("{}", "x"), R"({"id":"x"})");
}

TEST(DirectLine, SecretsNameTheirTenantAndBot) {
  auto s = dl::make_secret("acme.eu", "help-desk", "0123456789abcdef01234567");
  EXPECT_EQ(s.rfind("dl1~acme.eu~help-desk~", 0), 0u);
  EXPECT_TRUE(dl::is_secret(s));
  auto c = dl::parse_secret(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tenant, "acme.eu");
  EXPECT_EQ(c->bot, "help-desk");
  for (const char* bad : {"dl1~", "dl1~a~b~", "dl1~a~~x", "dl1~~b~x", "dl1~a b~c~x", "xx~a~b~c"}) {
    auto r = dl::parse_secret(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.err().code, "forbidden");
      EXPECT_EQ(r.err().message.find(bad), std::string::npos) << "a secret is never echoed";
    }
  }
}

TEST(DirectLine, TokensVerifyWithTheKeyAndExpire) {
  dl::token_claims c{"acme", "orders", "conv-1", 1000};
  auto t = dl::sign_token(c, "key-1");
  EXPECT_EQ(t.rfind("dlt1.", 0), 0u);
  auto v = dl::verify_token(t, "key-1", 999);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(v->tenant, "acme");
  EXPECT_EQ(v->bot, "orders");
  EXPECT_EQ(v->conversation, "conv-1");
  EXPECT_EQ(v->expires_unix, 1000);
  auto expired = dl::verify_token(t, "key-1", 1000);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.err().code, "TokenExpired");
  EXPECT_FALSE(dl::verify_token(t, "key-2", 0).ok());
  EXPECT_FALSE(dl::verify_token(t, "", 0).ok());
  std::string tampered = t;
  tampered[6] = tampered[6] == 'A' ? 'B' : 'A';
  auto tv = dl::verify_token(tampered, "key-1", 0);
  ASSERT_FALSE(tv.ok());
  EXPECT_EQ(tv.err().code, "forbidden");
  EXPECT_FALSE(dl::verify_token("dlt1.", "key-1", 0).ok());
  EXPECT_FALSE(dl::verify_token("dlt1..", "key-1", 0).ok());
}

TEST(DirectLine, Base64UrlQueryWatermarkAndBearer) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    auto e = dl::base64url(s);
    EXPECT_EQ(e.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(dl::base64url_decode(e), s);
  }
  EXPECT_FALSE(dl::base64url_decode("a").has_value());
  EXPECT_FALSE(dl::base64url_decode("ab+c").has_value());
  EXPECT_EQ(dl::watermark_of(""), 0u);
  EXPECT_EQ(dl::watermark_of("watermark=12&x=1"), 12u);
  EXPECT_EQ(dl::watermark_of("x=1&watermark="), 0u);
  EXPECT_FALSE(dl::watermark_of("watermark=-1").has_value());
  EXPECT_EQ(dl::query_param("t=a%2Eb+c&u", "t"), "a.b c");
  EXPECT_EQ(dl::query_param("u", "u"), "");
  EXPECT_FALSE(dl::query_param("u=1", "t").has_value());
  parley::http::request r;
  r.headers = {{"authorization", "Bearer  abc "}};
  EXPECT_EQ(dl::bearer_of(r), "abc");
  r.headers = {{"Authorization", "Basic abc"}};
  EXPECT_EQ(dl::bearer_of(r), "");
}
