// Send API bodies, the messaging window and the Send API's answers.

#include "src/channels/errors.hpp"
#include "src/channels/json/reader.hpp"
#include "src/channels/json/writer.hpp"
#include "src/channels/messenger/messenger.hpp"
#include "src/channels/text/form.hpp"
#include "src/channels/text/menu.hpp"
#include "src/channels/text/split.hpp"

namespace parley::channels::messenger {

namespace {

std::string_view without_slash(std::string_view base) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  return base;
}

bool fits(std::string_view s, std::size_t max_units) {
  return !s.empty() && text::utf16_length(s) <= max_units;
}

void open_body(std::string& out, std::string_view psid) {
  json::lit(out, "{\"recipient\":{\"id\":");
  json::append_string(out, psid);
  json::lit(out, "}");
}

std::string string_of(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->str()) : std::string();
}

std::optional<std::int64_t> integer_of(const json::value* v) {
  if (v != nullptr && v->is_number_integer()) return v->int64();
  return std::nullopt;
}

}  // namespace

std::string send_api_endpoint(std::string_view api_base) {
  std::string url(without_slash(api_base));
  url += "/me/messages";
  return url;
}

std::string send_api_url(std::string_view api_base, std::string_view page_token) {
  std::string url = send_api_endpoint(api_base);
  url += "?access_token=";
  text::append_percent_encoded(url, page_token);
  return url;
}

bool fits_quick_replies(const ::parley::bot::v1::Outbound& message) {
  if (message.choices_size() == 0 || message.choices_size() > max_quick_replies) return false;
  for (const auto& c : message.choices())
    if (!fits(c.label(), max_title_units) || !fits(c.payload(), max_payload_units)) return false;
  return true;
}

std::vector<std::string> render_reply(std::string_view psid,
                                      const ::parley::bot::v1::Outbound& message,
                                      sender_role role) {
  const bool quick = fits_quick_replies(message);
  std::vector<std::string> parts =
      text::split_text(quick ? message.text() : text::with_numbered_menu(message), max_text_units);
  if (quick && parts.empty()) parts.emplace_back("Choose one:");
  std::vector<std::string> bodies;
  bodies.reserve(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string out;
    open_body(out, psid);
    if (role == sender_role::agent)
      json::lit(out, ",\"messaging_type\":\"MESSAGE_TAG\",\"tag\":\"HUMAN_AGENT\"");
    else
      json::lit(out, ",\"messaging_type\":\"RESPONSE\"");
    json::lit(out, ",\"message\":{\"text\":");
    json::append_string(out, parts[i]);
    if (quick && i + 1 == parts.size()) {
      json::lit(out, ",\"quick_replies\":[");
      for (int c = 0; c < message.choices_size(); ++c) {
        if (c > 0) json::lit(out, ",");
        json::lit(out, "{\"content_type\":\"text\",\"title\":");
        json::append_string(out, message.choices(c).label());
        json::lit(out, ",\"payload\":");
        json::append_string(out, message.choices(c).payload());
        json::lit(out, "}");
      }
      json::lit(out, "]");
    }
    json::lit(out, "}}");
    bodies.push_back(std::move(out));
  }
  return bodies;
}

std::string typing_on(std::string_view psid) {
  std::string out;
  open_body(out, psid);
  json::lit(out, ",\"sender_action\":\"typing_on\"}");
  return out;
}

std::optional<std::string> check_window(std::optional<std::int64_t> last_user_message_ms,
                                        std::int64_t now_ms, sender_role role) {
  if (!last_user_message_ms)
    return std::string("no message from the user yet: Messenger allows replies only after one");
  const std::int64_t age = now_ms > *last_user_message_ms ? now_ms - *last_user_message_ms : 0;
  const bool bot = role == sender_role::bot;
  if (age <= (bot ? bot_window_ms : agent_window_ms)) return std::nullopt;
  return "the user's last message is " + std::to_string(age / 3600000) + " h old; " +
         (bot ? "the bot may answer within 24 h of it"
              : "a human agent may answer within 7 days of it (HUMAN_AGENT tag)");
}

result<send_answer> parse_send_answer(int http_status, const std::string& body) {
  send_answer a;
  json::document doc;
  const bool is_object =
      !json::nested_deeper_than(body, 32) && json::read(body, doc) && doc.root().is_object();
  if (http_status >= 200 && http_status < 300) {
    if (!is_object) return bad("body", "the answer to a send is not a JSON object");
    a.message_id = string_of(doc.root().member("message_id"));
    if (a.message_id.empty()) return bad("message_id", "missing from the answer to a send");
    a.recipient_id = string_of(doc.root().member("recipient_id"));
    a.accepted = true;
    return a;
  }
  const json::value* err = is_object ? doc.root().member("error") : nullptr;
  if (err != nullptr && err->is_object()) {
    a.error_message = string_of(err->member("message"));
    a.error_type = string_of(err->member("type"));
    a.error_code = integer_of(err->member("code"));
    a.error_subcode = integer_of(err->member("error_subcode"));
    a.fbtrace_id = string_of(err->member("fbtrace_id"));
  }
  if (a.error_message.empty()) a.error_message = "HTTP " + std::to_string(http_status);
  return a;
}

}  // namespace parley::channels::messenger
