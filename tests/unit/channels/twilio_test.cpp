// The Twilio SMS codec: every X-Twilio-Signature vector of protocols.md, inbound
// webhooks, keywords, TwiML, replies and the REST Messages API.

#include <gtest/gtest.h>

#include "src/channels/errors.hpp"
#include "src/channels/text/split.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/utf8.hpp"

namespace twilio = parley::channels::twilio;
namespace text = parley::channels::text;
namespace v1 = parley::bot::v1;
using parley::channels::http_status;

namespace {

const std::string sdk_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const text::form sdk_params = {{"CallSid", "CA1234567890ABCDE"},
                               {"Caller", "+14158675309"},
                               {"Digits", "1234"},
                               {"From", "+14158675309"},
                               {"To", "+18005551212"}};
const text::form sms_params = {{"AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
                               {"Body", "Hello"},
                               {"From", "+15551234567"},
                               {"MessageSid", "SM00000000000000000000000000000000"},
                               {"NumMedia", "0"},
                               {"To", "+15557654321"}};

text::form reversed(text::form f) { return text::form(f.rbegin(), f.rend()); }

// ---------------------------------------------------------------- protocols.md vectors

TEST(twilio_signature, vector_1_sdk_url_with_query) {
  EXPECT_EQ(twilio::compute_signature("12345", sdk_url, sdk_params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  EXPECT_TRUE(
      twilio::verify_signature("12345", sdk_url, sdk_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").ok());
  // Parameters are sorted: the order received does not matter.
  EXPECT_TRUE(twilio::verify_signature("12345", sdk_url, reversed(sdk_params),
                                       "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
                  .ok());
}

TEST(twilio_signature, vector_2_host_case_is_kept) {
  const std::string url = "https://MyCompany.com/myapp.php?foo=1&bar=2";
  EXPECT_EQ(twilio::compute_signature("12345", url, sdk_params), "g9IN/x4Cft2g517EjYvEvM/W7LU=");
  EXPECT_TRUE(
      twilio::verify_signature("12345", url, sdk_params, "g9IN/x4Cft2g517EjYvEvM/W7LU=").ok());
  // Not lowercased: the lowercase host's signature does not match this URL.
  EXPECT_FALSE(
      twilio::verify_signature("12345", url, sdk_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").ok());
}

TEST(twilio_signature, vector_3_other_values) {
  text::form p = sdk_params;
  p[1].second = p[3].second = "+14158675310";
  EXPECT_EQ(twilio::compute_signature("12345", sdk_url, p), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
  EXPECT_TRUE(twilio::verify_signature("12345", sdk_url, p, "GvWf1cFY/Q7PnoempGyD5oXAezc=").ok());
  EXPECT_FALSE(twilio::verify_signature("12345", sdk_url, p, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").ok());
}

TEST(twilio_signature, vector_4_sms_webhook_and_its_port_variant) {
  const std::string url = "https://bot.example.com/twilio/sms";
  const std::string with_port = "https://bot.example.com:443/twilio/sms";
  EXPECT_EQ(twilio::compute_signature("12345", url, sms_params), "4Joi7tpP6v9Aek2sDxkc4ZMZzvo=");
  EXPECT_EQ(twilio::compute_signature("12345", with_port, sms_params),
            "Fblnjp3byNsEO0kXBpbB1UFSTow=");
  // Twilio signed with the port, we are configured without it, and the reverse.
  EXPECT_TRUE(
      twilio::verify_signature("12345", url, sms_params, "4Joi7tpP6v9Aek2sDxkc4ZMZzvo=").ok());
  EXPECT_TRUE(
      twilio::verify_signature("12345", url, sms_params, "Fblnjp3byNsEO0kXBpbB1UFSTow=").ok());
  EXPECT_TRUE(
      twilio::verify_signature("12345", with_port, sms_params, "4Joi7tpP6v9Aek2sDxkc4ZMZzvo=")
          .ok());
  EXPECT_TRUE(
      twilio::verify_signature("12345", with_port, sms_params, "Fblnjp3byNsEO0kXBpbB1UFSTow=")
          .ok());
}

TEST(twilio_signature, vector_5_repeated_name_sorted_by_value) {
  const text::form p = {{"MediaUrl", "b"}, {"MediaUrl", "a"}};
  EXPECT_EQ(twilio::compute_signature("12345", "https://bot.example.com/x", p),
            "UNVk7psxX7oGxOThUn9poPWeyYg=");
  EXPECT_TRUE(twilio::verify_signature("12345", "https://bot.example.com/x", reversed(p),
                                       "UNVk7psxX7oGxOThUn9poPWeyYg=")
                  .ok());
}

// ---------------------------------------------------------------- refusals

TEST(twilio_signature, refusals_are_403_and_name_the_header) {
  const std::string url = "https://bot.example.com/twilio/sms";
  const std::string good = "4Joi7tpP6v9Aek2sDxkc4ZMZzvo=";
  auto missing = twilio::verify_signature("12345", url, sms_params, "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(http_status(missing.err()), 403);
  EXPECT_EQ(missing.err().message, "X-Twilio-Signature: missing");
  auto wrong_token = twilio::verify_signature("54321", url, sms_params, good);
  ASSERT_FALSE(wrong_token.ok());
  EXPECT_EQ(http_status(wrong_token.err()), 403);
  EXPECT_EQ(wrong_token.err().message, "X-Twilio-Signature: does not match the request");
  EXPECT_EQ(wrong_token.err().message.find("54321"), std::string::npos);
  EXPECT_FALSE(twilio::verify_signature("", url, sms_params, good).ok());
  // A changed, added or removed parameter, or another path, breaks it.
  text::form changed = sms_params;
  changed[1].second = "Hellp";
  EXPECT_FALSE(twilio::verify_signature("12345", url, changed, good).ok());
  text::form added = sms_params;
  added.emplace_back("FromCity", "X");
  EXPECT_FALSE(twilio::verify_signature("12345", url, added, good).ok());
  text::form removed(sms_params.begin() + 1, sms_params.end());
  EXPECT_FALSE(twilio::verify_signature("12345", url, removed, good).ok());
  EXPECT_FALSE(twilio::verify_signature("12345", url + "/", sms_params, good).ok());
  EXPECT_FALSE(twilio::verify_signature("12345", url, sms_params, good.substr(1)).ok());
  EXPECT_FALSE(twilio::verify_signature("12345", url, sms_params, good + "=").ok());
}

TEST(twilio_signature, port_variants_only_for_the_default_port) {
  const text::form p = {{"a", "1"}};
  const auto sig = [&](const std::string& url) { return twilio::compute_signature("t", url, p); };
  auto ok = [&](const std::string& configured, const std::string& signed_url) {
    return twilio::verify_signature("t", configured, p, sig(signed_url)).ok();
  };
  EXPECT_TRUE(ok("http://h.example/x?q=1", "http://h.example:80/x?q=1"));
  EXPECT_TRUE(ok("http://h.example:80/x", "http://h.example/x"));
  EXPECT_TRUE(ok("https://user:pw@h.example/x", "https://user:pw@h.example:443/x"));
  EXPECT_TRUE(ok("https://[::1]/x", "https://[::1]:443/x"));
  EXPECT_TRUE(ok("https://h.example", "https://h.example:443"));
  // http's port is not https's; another port is never dropped.
  EXPECT_FALSE(ok("https://h.example/x", "https://h.example:80/x"));
  EXPECT_FALSE(ok("http://h.example/x", "http://h.example:443/x"));
  EXPECT_FALSE(ok("https://h.example:8443/x", "https://h.example/x"));
  EXPECT_FALSE(ok("https://h.example/x", "https://h.example:8443/x"));
}

TEST(twilio_signature, json_body_signed_through_body_sha256) {
  const std::string body = R"({"a":1})";
  // Python: hashlib.sha256(b'{"a":1}').hexdigest()
  const std::string digest = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
  const std::string url = "https://h.example/hook?bodySHA256=" + digest;
  const std::string sig = twilio::compute_signature("t", url, {});
  EXPECT_TRUE(twilio::verify_signature_json("t", url, body, sig).ok());
  auto tampered = twilio::verify_signature_json("t", url, R"({"a":2})", sig);
  ASSERT_FALSE(tampered.ok());
  EXPECT_EQ(tampered.err().message, "bodySHA256: does not match the body");
  const std::string bare = "https://h.example/hook";
  auto absent =
      twilio::verify_signature_json("t", bare, body, twilio::compute_signature("t", bare, {}));
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(http_status(absent.err()), 403);
  EXPECT_FALSE(twilio::verify_signature_json("t", url, body, "x").ok());
}

// ---------------------------------------------------------------- inbound

TEST(twilio_inbound, an_sms_from_its_form_body) {
  auto form = text::parse_form(text::encode_form(sms_params));
  ASSERT_TRUE(form.ok());
  auto in = twilio::parse_inbound(*form);
  ASSERT_TRUE(in.ok()) << in.err().message;
  EXPECT_EQ(in->kind, twilio::inbound_kind::message);
  EXPECT_EQ(in->message_sid, "SM00000000000000000000000000000000");
  EXPECT_EQ(in->account_sid, "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
  EXPECT_EQ(in->from, "+15551234567");
  EXPECT_EQ(in->to, "+15557654321");
  EXPECT_EQ(in->body, "Hello");
  EXPECT_TRUE(in->media.empty());
  EXPECT_FALSE(in->error_code.has_value());
}

TEST(twilio_inbound, an_mms_with_media_and_a_decoded_body) {
  auto form = text::parse_form(
      "SmsSid=MM1&AccountSid=AC1&From=%2B1555&To=%2B1666&Body=caf%C3%A9+ok&NumMedia=2"
      "&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm0&MediaContentType0=image%2Fjpeg"
      "&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm1&SmsStatus=received&FromCity=X");
  ASSERT_TRUE(form.ok());
  auto in = twilio::parse_inbound(*form);
  ASSERT_TRUE(in.ok()) << in.err().message;
  EXPECT_EQ(in->kind, twilio::inbound_kind::message);  // SmsStatus is not a status callback
  EXPECT_EQ(in->message_sid, "MM1");
  EXPECT_EQ(in->from, "+1555");
  EXPECT_EQ(in->body, "caf\xC3\xA9 ok");
  ASSERT_EQ(in->media.size(), 2u);
  EXPECT_EQ(in->media[0].url, "https://api.twilio.com/m0");
  EXPECT_EQ(in->media[0].content_type, "image/jpeg");
  EXPECT_EQ(in->media[1].url, "https://api.twilio.com/m1");
  EXPECT_EQ(in->media[1].content_type, "");
}

TEST(twilio_inbound, a_status_callback) {
  auto form = text::parse_form(
      "MessageSid=SM9&AccountSid=AC1&From=%2B1666&To=%2B1555&MessageStatus=undelivered"
      "&SmsStatus=undelivered&ErrorCode=30003");
  auto in = twilio::parse_inbound(*form);
  ASSERT_TRUE(in.ok()) << in.err().message;
  EXPECT_EQ(in->kind, twilio::inbound_kind::status);
  EXPECT_EQ(in->message_status, "undelivered");
  EXPECT_EQ(in->error_code, 30003);
  // From and To are not required for a status.
  auto bare = twilio::parse_inbound(
      *text::parse_form("MessageSid=SM9&AccountSid=AC1&MessageStatus=delivered"));
  ASSERT_TRUE(bare.ok()) << bare.err().message;
  EXPECT_EQ(bare->message_status, "delivered");
  EXPECT_FALSE(bare->error_code.has_value());
}

TEST(twilio_inbound, refusals_name_the_parameter) {
  const std::string base = "MessageSid=SM1&AccountSid=AC1&From=a&To=b";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"AccountSid=AC1&From=a&To=b", "MessageSid: required parameter (or SmsSid)"},
      {"MessageSid=SM1&From=a&To=b", "AccountSid: required parameter"},
      {"MessageSid=SM1&AccountSid=AC1&To=b", "From: required parameter"},
      {"MessageSid=SM1&AccountSid=AC1&From=a", "To: required parameter"},
      {"MessageSid=S%2F1&AccountSid=AC1&From=a&To=b",
       "MessageSid: must be 1..64 ASCII letters and digits"},
      {"SmsSid=&AccountSid=AC1&From=a&To=b", "SmsSid: must be 1..64 ASCII letters and digits"},
      {base + "&MessageSid=SM2", "MessageSid: repeated parameter"},
      {base + "&Body=1&Body=2", "Body: repeated parameter"},
      {base + "&NumMedia=x", "NumMedia: must be an integer 0..10"},
      {base + "&NumMedia=11", "NumMedia: must be an integer 0..10"},
      {base + "&NumMedia=-1", "NumMedia: must be an integer 0..10"},
      {base + "&NumMedia=1", "MediaUrl0: required parameter"},
      {base + "&NumMedia=1&MediaUrl0=", "MediaUrl0: must not be empty"},
      {base + "&MessageStatus=failed&ErrorCode=abc", "ErrorCode: must be an integer"},
      {base + "&MessageStatus=", "MessageStatus: must not be empty"},
  };
  for (const auto& [body, message] : cases) {
    auto form = text::parse_form(body);
    ASSERT_TRUE(form.ok()) << body;
    auto in = twilio::parse_inbound(*form);
    ASSERT_FALSE(in.ok()) << body;
    EXPECT_EQ(in.err().message, message) << body;
    EXPECT_EQ(http_status(in.err()), 400);
  }
}

TEST(twilio_inbound, ill_formed_utf8_is_replaced_after_the_signature) {
  auto form = text::parse_form("MessageSid=SM1&AccountSid=AC1&From=a&To=b&Body=%FFhi");
  ASSERT_TRUE(form.ok());
  // The signature covers the bytes received...
  EXPECT_EQ(*text::find(*form, "Body"), "\xFFhi");
  // ...and the message holds well-formed text.
  auto in = twilio::parse_inbound(*form);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->body, "\xEF\xBF\xBDhi");
}

// ---------------------------------------------------------------- keywords

TEST(twilio_keywords, stop_start_help_and_ordinary_text) {
  for (const char* s : {"STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "CANCEL", "end", "Quit",
                        "STOP!", "stop.\n"})
    EXPECT_EQ(twilio::classify_keyword(s), twilio::keyword::stop) << s;
  for (const char* s : {"START", "start", "Yes", "UNSTOP", " unstop "})
    EXPECT_EQ(twilio::classify_keyword(s), twilio::keyword::start) << s;
  for (const char* s : {"HELP", "info"})
    EXPECT_EQ(twilio::classify_keyword(s), twilio::keyword::help);
  for (const char* s :
       {"", "stop sending", "STOPP", "please stop", "yes please", "STOP!!", "s top"})
    EXPECT_EQ(twilio::classify_keyword(s), twilio::keyword::none) << s;
}

// ---------------------------------------------------------------- replies

TEST(twilio_reply, twiml) {
  EXPECT_EQ(twilio::twiml_empty, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
  EXPECT_EQ(twilio::twiml_content_type, "text/xml");
  EXPECT_EQ(twilio::twiml_message("a<b & \"c\" 'd'>\x01\n"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>"
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\n</Message></Response>");
}

TEST(twilio_reply, choices_become_the_numbered_sentence) {
  v1::Outbound o;
  o.set_text("Which department?");
  for (const char* l : {"Billing", "Shipping", "Returns"}) {
    auto* c = o.add_choices();
    c->set_label(l);
    c->set_payload(l);
  }
  EXPECT_EQ(twilio::render_sms(o),
            std::vector<std::string>{"Which department?\nReply 1 for Billing, 2 for Shipping "
                                     "or 3 for Returns."});
  EXPECT_TRUE(twilio::render_sms(v1::Outbound()).empty());
}

TEST(twilio_reply, long_text_is_split_under_1600) {
  v1::Outbound o;
  std::string t;
  for (int i = 0; i < 700; ++i) t += "h\xC3\xA9llo ";  // 6 units each: 4200
  o.set_text(t);
  auto parts = twilio::render_sms(o);
  ASSERT_EQ(parts.size(), 3u);
  std::string joined;
  for (const auto& p : parts) {
    EXPECT_LE(text::utf16_length(p), twilio::max_body_units);
    EXPECT_TRUE(parley::common::utf8::valid(p));
    EXPECT_EQ(p.rfind("h\xC3\xA9llo", 0), 0u);  // each part starts with a whole word
    joined += p + " ";
  }
  EXPECT_EQ(joined, t);
  // Each part is a body the REST request accepts.
  for (const auto& p : parts) EXPECT_TRUE(twilio::send_form({"+1", "+2", "", p, {}, ""}).ok());
}

// ---------------------------------------------------------------- REST API

TEST(twilio_rest, url_auth_and_form) {
  EXPECT_EQ(twilio::messages_url(twilio::default_api_base, "AC123"),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json");
  EXPECT_EQ(twilio::messages_url("http://127.0.0.1:8080/", "AC 1"),
            "http://127.0.0.1:8080/2010-04-01/Accounts/AC%201/Messages.json");
  // base64("AC123:token")
  EXPECT_EQ(twilio::basic_auth("AC123", "token"), "Basic QUMxMjM6dG9rZW4=");
  twilio::send_request r;
  r.to = "+15557654321";
  r.from = "+15551234567";
  r.body = "Hi & bye, 100%";
  r.status_callback = "https://bot.example.com/twilio/status";
  auto body = twilio::send_form(r);
  ASSERT_TRUE(body.ok()) << body.err().message;
  EXPECT_EQ(*body,
            "To=%2B15557654321&From=%2B15551234567&Body=Hi+%26+bye%2C+100%25"
            "&StatusCallback=https%3A%2F%2Fbot.example.com%2Ftwilio%2Fstatus");
  r.messaging_service_sid = "MG1";
  r.media_urls = {"https://x/a.png", "https://x/b.png"};
  r.status_callback.clear();
  auto back = text::parse_form(*twilio::send_form(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (text::form{{"To", "+15557654321"},
                               {"MessagingServiceSid", "MG1"},
                               {"Body", "Hi & bye, 100%"},
                               {"MediaUrl", "https://x/a.png"},
                               {"MediaUrl", "https://x/b.png"}}));
}

TEST(twilio_rest, send_form_refusals) {
  auto msg = [](twilio::send_request r) { return twilio::send_form(r).err().message; };
  EXPECT_EQ(msg({"", "+1", "", "x", {}, ""}), "To: required");
  EXPECT_EQ(msg({"+2", "", "", "x", {}, ""}), "From: required, or MessagingServiceSid");
  EXPECT_EQ(msg({"+2", "+1", "", "", {}, ""}), "Body: required, or MediaUrl");
  EXPECT_EQ(msg({"+2", "+1", "", std::string(1601, 'a'), {}, ""}),
            "Body: longer than 1600 characters (render_sms splits it)");
  EXPECT_TRUE(twilio::send_form({"+2", "+1", "", std::string(1600, 'a'), {}, ""}).ok());
  EXPECT_TRUE(twilio::send_form({"+2", "+1", "", "", {"https://x/a.png"}, ""}).ok());
}

TEST(twilio_rest, answers) {
  auto ok = twilio::parse_send_answer(
      201, R"({"sid":"SM123","status":"queued","to":"+1","error_code":null,"error_message":null})");
  ASSERT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_TRUE(ok->accepted);
  EXPECT_EQ(ok->sid, "SM123");
  EXPECT_EQ(ok->status, "queued");
  EXPECT_FALSE(ok->error_code.has_value());
  auto failed =
      twilio::parse_send_answer(201, R"({"sid":"SM1","status":"failed","error_code":30007})");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->error_code, 30007);
  auto err = twilio::parse_send_answer(
      400,
      R"({"code":21211,"message":"The 'To' number is not valid.","more_info":"https://www.twilio.com/docs/errors/21211","status":400})");
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->accepted);
  EXPECT_EQ(err->error_code, 21211);
  EXPECT_EQ(err->error_message, "The 'To' number is not valid.");
  EXPECT_EQ(err->more_info, "https://www.twilio.com/docs/errors/21211");
  auto gateway = twilio::parse_send_answer(502, "<html>bad gateway</html>");
  ASSERT_TRUE(gateway.ok());
  EXPECT_FALSE(gateway->accepted);
  EXPECT_EQ(gateway->error_message, "HTTP 502");
  auto no_sid = twilio::parse_send_answer(201, R"({"status":"queued"})");
  ASSERT_FALSE(no_sid.ok());
  EXPECT_EQ(no_sid.err().message, "sid: missing from the answer to a send");
  auto not_json = twilio::parse_send_answer(200, "{");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.err().message, "body: the answer to a send is not a JSON object");
}

}  // namespace
