// The Messenger codec: the X-Hub-Signature-256 vector of protocols.md, the
// verification GET, batched webhooks, Send API bodies and the messaging window.

#include <gtest/gtest.h>

#include "src/channels/errors.hpp"
#include "src/channels/json/reader.hpp"
#include "src/channels/messenger/messenger.hpp"
#include "src/channels/text/split.hpp"

namespace messenger = parley::channels::messenger;
namespace json = parley::channels::json;
namespace text = parley::channels::text;
namespace v1 = parley::bot::v1;
using parley::channels::http_status;

namespace {

const std::string vector_body =
    R"({"object":"page","entry":[{"id":"PAGE_ID","time":1458692752478,"messaging":[{"sender":{"id":"PSID"},"recipient":{"id":"PAGE_ID"},"timestamp":1458692752478,"message":{"mid":"mid.1457764197618:41d102a3e1ae206a38","text":"hello, world!"}}]}]})";
const std::string vector_signature =
    "sha256=1a1b9736a151b78a203840dcbb2fe384c5c411a2e82fec8c24802152d087a9f1";

v1::Outbound menu(std::string text, int n, std::string label_prefix = "Option ") {
  v1::Outbound o;
  o.set_text(std::move(text));
  for (int i = 1; i <= n; ++i) {
    auto* c = o.add_choices();
    c->set_label(label_prefix + std::to_string(i));
    c->set_payload("opt_" + std::to_string(i));
  }
  return o;
}

// ---------------------------------------------------------------- signature

TEST(messenger_signature, protocols_vector) {
  EXPECT_EQ(messenger::compute_signature("appsecret", vector_body), vector_signature);
  EXPECT_TRUE(messenger::verify_signature("appsecret", vector_body, vector_signature).ok());
  // Uppercase hex digits and prefix are accepted.
  std::string upper = vector_signature;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(messenger::verify_signature("appsecret", vector_body, upper).ok());
}

TEST(messenger_signature, refusals_are_403_and_name_the_header) {
  auto check = [](std::string_view secret, std::string_view body, std::string_view header,
                  std::string_view message) {
    auto r = messenger::verify_signature(secret, body, header);
    ASSERT_FALSE(r.ok()) << header;
    EXPECT_EQ(http_status(r.err()), 403);
    EXPECT_EQ(r.err().message, message) << header;
  };
  check("appsecret", vector_body, "", "X-Hub-Signature-256: missing");
  check("appsecret", vector_body, vector_signature.substr(7),
        "X-Hub-Signature-256: must be sha256=<64 hex digits>");
  check("appsecret", vector_body, "sha1=" + vector_signature.substr(7),
        "X-Hub-Signature-256: must be sha256=<64 hex digits>");
  check("appsecret", vector_body, vector_signature + "0",
        "X-Hub-Signature-256: must be sha256=<64 hex digits>");
  check("appsecret", vector_body, vector_signature.substr(0, 70) + "g",
        "X-Hub-Signature-256: must be sha256=<64 hex digits>");
  check("appsecreT", vector_body, vector_signature, "X-Hub-Signature-256: does not match the body");
  check("", vector_body, vector_signature, "X-Hub-Signature-256: does not match the body");
  // The raw bytes count: the same JSON re-serialised with a blank does not match.
  std::string spaced = vector_body;
  spaced.insert(1, " ");
  check("appsecret", spaced, vector_signature, "X-Hub-Signature-256: does not match the body");
}

// ---------------------------------------------------------------- verification GET

TEST(messenger_subscription, challenge_on_a_matching_token) {
  auto c = messenger::verify_subscription(
      "hub.mode=subscribe&hub.verify_token=s3cr%C3%A9t&hub.challenge=1158201444", "s3cr\xC3\xA9t");
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_EQ(*c, "1158201444");
}

TEST(messenger_subscription, refusals) {
  auto check = [](std::string_view query, std::string_view token, int status,
                  std::string_view message) {
    auto c = messenger::verify_subscription(query, token);
    ASSERT_FALSE(c.ok()) << query;
    EXPECT_EQ(http_status(c.err()), status) << query;
    EXPECT_EQ(c.err().message, message) << query;
  };
  check("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "right", 403,
        "hub.verify_token: does not match the configured token");
  check("hub.mode=subscribe&hub.challenge=1", "right", 403,
        "hub.verify_token: does not match the configured token");
  check("hub.mode=subscribe&hub.verify_token=&hub.challenge=1", "", 403,
        "hub.verify_token: does not match the configured token");
  check("hub.mode=unsubscribe&hub.verify_token=right&hub.challenge=1", "right", 403,
        "hub.mode: must be subscribe");
  check("hub.verify_token=right&hub.challenge=1", "right", 403, "hub.mode: must be subscribe");
  check("hub.mode=subscribe&hub.verify_token=right", "right", 400, "hub.challenge: required");
  check("hub.mode=%zz", "right", 400, "parameter 1: malformed percent-encoding");
}

// ---------------------------------------------------------------- webhooks

TEST(messenger_webhook, the_protocols_vector_body) {
  auto w = messenger::parse_webhook(vector_body);
  ASSERT_TRUE(w.ok()) << w.err().message;
  ASSERT_EQ(w->events.size(), 1u);
  const auto& e = w->events[0];
  EXPECT_EQ(e.kind, messenger::event_kind::message);
  EXPECT_EQ(e.page_id, "PAGE_ID");
  EXPECT_EQ(e.sender_id, "PSID");
  EXPECT_EQ(e.recipient_id, "PAGE_ID");
  EXPECT_EQ(e.timestamp, 1458692752478);
  EXPECT_EQ(e.mid, "mid.1457764197618:41d102a3e1ae206a38");
  EXPECT_EQ(e.text, "hello, world!");
  EXPECT_FALSE(e.quick_reply_payload.has_value());
  EXPECT_TRUE(e.problem.empty());
}

TEST(messenger_webhook, every_event_of_a_batch) {
  const std::string body = R"({"object":"page","entry":[
    {"id":"P1","time":1,"messaging":[
      {"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":10,
       "message":{"mid":"m1","text":"Billing","quick_reply":{"payload":"billing"}}},
      {"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":11,
       "message":{"mid":"m2","attachments":[
         {"type":"image","payload":{"url":"https://cdn.example/a.jpg"}},
         {"type":"location","payload":{"coordinates":{"lat":1,"long":2}}},
         {"type":"fallback","payload":null}]}},
      {"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":12,
       "postback":{"title":"Get Started","payload":"GET_STARTED","mid":"m3"}}]},
    {"id":"P2","time":2,"messaging":[
      {"sender":{"id":"P2"},"recipient":{"id":"U2"},"timestamp":13,
       "message":{"is_echo":true,"app_id":1517776481860111,"mid":"m4","text":"our reply"}},
      {"sender":{"id":"U2"},"recipient":{"id":"P2"},"timestamp":14,
       "delivery":{"mids":["m4","m5"],"watermark":1458668856253}},
      {"sender":{"id":"U2"},"recipient":{"id":"P2"},"timestamp":15,
       "read":{"watermark":1458668856254}},
      {"sender":{"id":"U2"},"recipient":{"id":"P2"},"timestamp":16,
       "reaction":{"reaction":"love","emoji":"\u2764","action":"react","mid":"m4"}}]}]})";
  auto w = messenger::parse_webhook(body);
  ASSERT_TRUE(w.ok()) << w.err().message;
  ASSERT_EQ(w->events.size(), 7u);
  using k = messenger::event_kind;
  const auto& ev = w->events;
  EXPECT_EQ(ev[0].kind, k::message);
  EXPECT_EQ(ev[0].quick_reply_payload, "billing");
  EXPECT_EQ(ev[0].page_id, "P1");
  EXPECT_EQ(ev[1].kind, k::message);
  ASSERT_EQ(ev[1].attachments.size(), 3u);
  EXPECT_EQ(ev[1].attachments[0].type, "image");
  EXPECT_EQ(ev[1].attachments[0].url, "https://cdn.example/a.jpg");
  EXPECT_EQ(ev[1].attachments[1].type, "location");
  EXPECT_EQ(ev[1].attachments[1].url, "");
  EXPECT_EQ(ev[1].attachments[2].type, "fallback");
  EXPECT_EQ(ev[2].kind, k::postback);
  EXPECT_EQ(ev[2].payload, "GET_STARTED");
  EXPECT_EQ(ev[2].title, "Get Started");
  EXPECT_EQ(ev[2].mid, "m3");
  EXPECT_EQ(ev[3].kind, k::echo);
  EXPECT_EQ(ev[3].page_id, "P2");
  EXPECT_EQ(ev[3].mid, "m4");
  EXPECT_EQ(ev[4].kind, k::delivery);
  EXPECT_EQ(ev[4].mids, (std::vector<std::string>{"m4", "m5"}));
  EXPECT_EQ(ev[4].watermark, 1458668856253);
  EXPECT_EQ(ev[5].kind, k::read);
  EXPECT_EQ(ev[5].watermark, 1458668856254);
  EXPECT_EQ(ev[6].kind, k::unknown);
  EXPECT_EQ(ev[6].problem, "reaction");
  EXPECT_EQ(ev[6].timestamp, 16);
}

TEST(messenger_webhook, bad_events_are_reported_not_fatal) {
  const std::string body = R"({"object":"page","entry":[{"id":"P","messaging":[
      {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"text":5}},
      {"recipient":{"id":"P"},"message":{"text":"x"}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":"soon","message":{"text":"x"}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"quick_reply":{}}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"attachments":[{"type":"image","payload":{"url":7}}]}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"delivery":{"mids":[1]}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"is_echo":"yes"}},
      "nonsense",
      {"sender":{"id":"U"},"recipient":{"id":"P"}},
      {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"text":"still here"}}]}]})";
  auto w = messenger::parse_webhook(body);
  ASSERT_TRUE(w.ok()) << w.err().message;
  ASSERT_EQ(w->events.size(), 10u);
  const std::vector<std::string> problems = {
      "entry[0].messaging[0].message.text: must be a string",
      "entry[0].messaging[1].sender.id: required string",
      "entry[0].messaging[2].timestamp: must be an integer",
      "entry[0].messaging[3].message.quick_reply.payload: required string",
      "entry[0].messaging[4].message.attachments[0].payload.url: must be a string",
      "entry[0].messaging[5].delivery.mids[0]: must be a string",
      "entry[0].messaging[6].message.is_echo: must be a boolean",
      "entry[0].messaging[7]: must be an object",
  };
  for (std::size_t i = 0; i < problems.size(); ++i) {
    EXPECT_EQ(w->events[i].kind, messenger::event_kind::invalid) << i;
    EXPECT_EQ(w->events[i].problem, problems[i]);
  }
  EXPECT_EQ(w->events[8].kind, messenger::event_kind::unknown);
  EXPECT_EQ(w->events[8].problem, "");
  EXPECT_EQ(w->events[9].kind, messenger::event_kind::message);
  EXPECT_EQ(w->events[9].text, "still here");
}

TEST(messenger_webhook, standby_items_are_unknown) {
  auto w = messenger::parse_webhook(
      R"({"object":"page","entry":[{"id":"P","standby":[{"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"text":"for the other app"}}]}]})");
  ASSERT_TRUE(w.ok()) << w.err().message;
  ASSERT_EQ(w->events.size(), 1u);
  EXPECT_EQ(w->events[0].kind, messenger::event_kind::unknown);
  EXPECT_EQ(w->events[0].problem, "standby");
}

TEST(messenger_webhook, malformed_bodies_name_the_field) {
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"", 400, "body: required JSON object, got an empty body"},
      {"{", 400, "body: malformed JSON"},
      {"[]", 400, "body: must be a JSON object"},
      {std::string(40, '[') + std::string(40, ']'), 400, "body: JSON nested deeper than 32 levels"},
      {R"({"entry":[]})", 400, "object: required string"},
      {R"({"object":"instagram","entry":[]})", 404, "object: must be \"page\""},
      {R"({"object":"page"})", 400, "entry: required array"},
      {R"({"object":"page","entry":{}})", 400, "entry: required array"},
      {R"({"object":"page","entry":[1]})", 400, "entry[0]: must be an object"},
      {R"({"object":"page","entry":[{"id":{}}]})", 400, "entry[0].id: must be a string"},
      {R"({"object":"page","entry":[{},{"messaging":{}}]})", 400,
       "entry[1].messaging: must be an array"},
  };
  for (const auto& [body, status, message] : cases) {
    auto w = messenger::parse_webhook(body);
    ASSERT_FALSE(w.ok()) << body;
    EXPECT_EQ(http_status(w.err()), status) << body;
    EXPECT_EQ(w.err().message, message) << body;
  }
  // An empty batch is fine.
  auto empty = messenger::parse_webhook(R"({"object":"page","entry":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
}

TEST(messenger_webhook, too_many_events) {
  std::string body = R"({"object":"page","entry":[{"messaging":[)";
  for (std::size_t i = 0; i <= messenger::max_events; ++i) body += i ? ",{}" : "{}";
  body += "]}]}";
  auto w = messenger::parse_webhook(body);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.err().message, "entry: more than 1000 events in one POST");
}

// ---------------------------------------------------------------- Send API

TEST(messenger_send, text_with_quick_replies) {
  v1::Outbound o = menu("Which department?", 2);
  auto bodies = messenger::render_reply("PSID", o);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(
      bodies[0],
      R"({"recipient":{"id":"PSID"},"messaging_type":"RESPONSE","message":{"text":"Which department?",)"
      R"("quick_replies":[{"content_type":"text","title":"Option 1","payload":"opt_1"},)"
      R"({"content_type":"text","title":"Option 2","payload":"opt_2"}]}})");
  json::document doc;
  EXPECT_TRUE(json::read(bodies[0], doc));
}

TEST(messenger_send, agent_replies_carry_the_human_agent_tag) {
  v1::Outbound o;
  o.set_text("Hi, this is Ann \"from\" support");
  auto bodies = messenger::render_reply("U1", o, messenger::sender_role::agent);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(
      bodies[0],
      R"({"recipient":{"id":"U1"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"Hi, this is Ann \"from\" support"}})");
}

TEST(messenger_send, quick_reply_limits_fall_back_to_numbered_text) {
  EXPECT_TRUE(messenger::fits_quick_replies(menu("?", 13)));
  EXPECT_FALSE(messenger::fits_quick_replies(menu("?", 14)));
  // 20 characters fit, 21 do not; é is one character, 😀 two units.
  EXPECT_TRUE(messenger::fits_quick_replies(menu("?", 1, std::string(19, 'x'))));
  EXPECT_FALSE(messenger::fits_quick_replies(menu("?", 1, std::string(20, 'x'))));
  std::string accented;
  for (int i = 0; i < 19; ++i) accented += "\xC3\xA9";  // 19 é + "1" = 20 characters, 39 bytes
  EXPECT_TRUE(messenger::fits_quick_replies(menu("?", 1, accented)));
  std::string emoji;
  for (int i = 0; i < 10; ++i) emoji += "\xF0\x9F\x98\x80";  // 20 units + "1"
  EXPECT_FALSE(messenger::fits_quick_replies(menu("?", 1, emoji)));
  v1::Outbound empty_payload = menu("?", 1);
  empty_payload.mutable_choices(0)->clear_payload();
  EXPECT_FALSE(messenger::fits_quick_replies(empty_payload));
  v1::Outbound long_payload = menu("?", 1);
  long_payload.mutable_choices(0)->set_payload(std::string(1001, 'p'));
  EXPECT_FALSE(messenger::fits_quick_replies(long_payload));

  auto bodies = messenger::render_reply("U", menu("Pick:", 14));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0].find("quick_replies"), std::string::npos);
  EXPECT_NE(bodies[0].find(R"("text":"Pick:\nReply 1 for Option 1, 2 for Option 2, )"),
            std::string::npos)
      << bodies[0];
  EXPECT_NE(bodies[0].find("13 for Option 13 or 14 for Option 14.\"}}"), std::string::npos);
}

TEST(messenger_send, choices_without_text_get_a_prompt) {
  auto bodies = messenger::render_reply("U", menu("", 1));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find(R"("text":"Choose one:","quick_replies")"), std::string::npos);
  EXPECT_TRUE(messenger::render_reply("U", v1::Outbound()).empty());
}

TEST(messenger_send, long_text_is_split_under_2000_with_quick_replies_last) {
  std::string t;
  for (int i = 0; i < 1000; ++i) t += "lorem ";  // 6000 characters
  v1::Outbound o = menu(t, 3);
  auto bodies = messenger::render_reply("U", o);
  ASSERT_EQ(bodies.size(), 4u);
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    json::document doc;
    ASSERT_TRUE(json::read(bodies[i], doc));
    const json::value* msg = doc.root().member("message");
    ASSERT_NE(msg, nullptr);
    EXPECT_LT(text::utf16_length(msg->member("text")->str()), 2000u);
    EXPECT_EQ(msg->member("quick_replies") != nullptr, i + 1 == bodies.size()) << i;
  }
}

TEST(messenger_send, typing_and_urls) {
  EXPECT_EQ(messenger::typing_on("PSID"),
            R"({"recipient":{"id":"PSID"},"sender_action":"typing_on"})");
  EXPECT_EQ(messenger::send_api_endpoint(messenger::default_api_base),
            "https://graph.facebook.com/v19.0/me/messages");
  EXPECT_EQ(messenger::send_api_url("http://127.0.0.1:9000/v19.0/", "EAA+b/c="),
            "http://127.0.0.1:9000/v19.0/me/messages?access_token=EAA%2Bb%2Fc%3D");
}

TEST(messenger_send, the_24_hour_window) {
  using messenger::sender_role;
  const std::int64_t h = 3600 * 1000;
  const std::int64_t now = 1'700'000'000'000;
  EXPECT_FALSE(messenger::check_window(now - h, now, sender_role::bot).has_value());
  EXPECT_FALSE(messenger::check_window(now - 24 * h, now, sender_role::bot).has_value());
  auto late = messenger::check_window(now - 25 * h, now, sender_role::bot);
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(*late, "the user's last message is 25 h old; the bot may answer within 24 h of it");
  EXPECT_FALSE(messenger::check_window(now - 25 * h, now, sender_role::agent).has_value());
  EXPECT_FALSE(messenger::check_window(now - 7 * 24 * h, now, sender_role::agent).has_value());
  auto stale = messenger::check_window(now - 7 * 24 * h - 1, now, sender_role::agent);
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(*stale,
            "the user's last message is 168 h old; a human agent may answer within 7 days of it "
            "(HUMAN_AGENT tag)");
  auto never = messenger::check_window(std::nullopt, now, sender_role::bot);
  ASSERT_TRUE(never.has_value());
  EXPECT_EQ(*never, "no message from the user yet: Messenger allows replies only after one");
  // Clock skew: a message "from the future" counts as now.
  EXPECT_FALSE(messenger::check_window(now + h, now, sender_role::bot).has_value());
}

TEST(messenger_send, answers) {
  auto ok = messenger::parse_send_answer(200, R"({"recipient_id":"U1","message_id":"m_AG5"})");
  ASSERT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_TRUE(ok->accepted);
  EXPECT_EQ(ok->recipient_id, "U1");
  EXPECT_EQ(ok->message_id, "m_AG5");
  auto err = messenger::parse_send_answer(
      400,
      R"({"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"Abc"}})");
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->accepted);
  EXPECT_EQ(err->error_code, 10);
  EXPECT_EQ(err->error_subcode, 2018278);
  EXPECT_EQ(err->error_type, "OAuthException");
  EXPECT_EQ(err->fbtrace_id, "Abc");
  EXPECT_EQ(err->error_message, "(#10) This message is sent outside of allowed window.");
  auto down = messenger::parse_send_answer(503, "");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->error_message, "HTTP 503");
  auto bad = messenger::parse_send_answer(200, R"({"recipient_id":"U1"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, "message_id: missing from the answer to a send");
}

}  // namespace
