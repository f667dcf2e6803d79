// The REST Messages API: the request to send a message and its answer.

#include "src/channels/crypto/crypto.hpp"
#include "src/channels/errors.hpp"
#include "src/channels/json/reader.hpp"
#include "src/channels/text/split.hpp"
#include "src/channels/twilio/twilio.hpp"

namespace parley::channels::twilio {

namespace {

void add(text::form& f, const char* name, const std::string& value) {
  if (!value.empty()) f.emplace_back(name, value);
}

std::string string_of(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->str()) : std::string();
}

// An integer, or a string of digits ("30007"), else nullopt.
std::optional<std::int64_t> code_of(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->int64();
  if (v->is_string() && !v->str().empty() && v->str().size() < 19 &&
      v->str().find_first_not_of("0123456789") == std::string_view::npos)
    return std::stoll(std::string(v->str()));
  return std::nullopt;
}

}  // namespace

std::string messages_url(std::string_view api_base, std::string_view account_sid) {
  while (!api_base.empty() && api_base.back() == '/') api_base.remove_suffix(1);
  std::string url(api_base);
  url += "/2010-04-01/Accounts/";
  text::append_percent_encoded(url, account_sid);
  url += "/Messages.json";
  return url;
}

std::string basic_auth(std::string_view user, std::string_view password) {
  std::string pair;
  pair.reserve(user.size() + 1 + password.size());
  pair.append(user).append(":").append(password);
  return "Basic " + crypto::base64(pair);
}

result<std::string> send_form(const send_request& req) {
  if (req.to.empty()) return bad("To", "required");
  if (req.from.empty() && req.messaging_service_sid.empty())
    return bad("From", "required, or MessagingServiceSid");
  if (req.body.empty() && req.media_urls.empty()) return bad("Body", "required, or MediaUrl");
  if (text::utf16_length(req.body) > max_body_units)
    return bad("Body", "longer than " + std::to_string(max_body_units) +
                           " characters (render_sms splits it)");
  text::form f;
  add(f, "To", req.to);
  if (!req.messaging_service_sid.empty())
    add(f, "MessagingServiceSid", req.messaging_service_sid);
  else
    add(f, "From", req.from);
  add(f, "Body", req.body);
  for (const auto& url : req.media_urls) add(f, "MediaUrl", url);
  add(f, "StatusCallback", req.status_callback);
  return text::encode_form(f);
}

result<send_answer> parse_send_answer(int http_status, const std::string& body) {
  send_answer a;
  json::document doc;
  const bool is_object =
      !json::nested_deeper_than(body, 32) && json::read(body, doc) && doc.root().is_object();
  if (http_status >= 200 && http_status < 300) {
    if (!is_object) return bad("body", "the answer to a send is not a JSON object");
    const json::value& root = doc.root();
    a.sid = string_of(root.member("sid"));
    if (a.sid.empty()) return bad("sid", "missing from the answer to a send");
    a.accepted = true;
    a.status = string_of(root.member("status"));
    a.error_code = code_of(root.member("error_code"));
    a.error_message = string_of(root.member("error_message"));
    return a;
  }
  if (is_object) {
    const json::value& root = doc.root();
    a.error_code = code_of(root.member("code"));
    a.error_message = string_of(root.member("message"));
    a.more_info = string_of(root.member("more_info"));
  }
  if (a.error_message.empty()) a.error_message = "HTTP " + std::to_string(http_status);
  return a;
}

}  // namespace parley::channels::twilio
