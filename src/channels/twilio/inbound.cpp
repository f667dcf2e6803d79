// Inbound webhooks: messages and status callbacks.

#include <charconv>

#include "src/channels/errors.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/utf8.hpp"

namespace parley::channels::twilio {

namespace {

std::string clean(std::string_view s) {
  if (common::utf8::valid(s)) return std::string(s);
  std::string out;
  common::utf8::append_clean(out, s);
  return out;
}

bool valid_sid(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

// The single value of `name`: nullptr when absent, an error when repeated.
result<const std::string*> single(const text::form& p, std::string_view name) {
  if (text::count(p, name) > 1) return bad(name, "repeated parameter");
  return text::find(p, name);
}

std::optional<std::int64_t> integer(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

result<inbound> parse_inbound(const text::form& params) {
  inbound in;
  // Each required or used field: absent is "", repeated is refused.
  auto get = [&](std::string_view name, std::string& out, bool required) -> std::optional<error> {
    auto v = single(params, name);
    if (!v) return v.err();
    if (*v == nullptr) {
      if (required) return bad(name, "required parameter");
      return std::nullopt;
    }
    out = clean(**v);
    return std::nullopt;
  };
  auto sid = single(params, "MessageSid");
  if (!sid) return sid.err();
  const char* sid_name = "MessageSid";
  if (*sid == nullptr) {
    sid = single(params, "SmsSid");
    if (!sid) return sid.err();
    sid_name = "SmsSid";
  }
  if (*sid == nullptr) return bad("MessageSid", "required parameter (or SmsSid)");
  if (!valid_sid(**sid)) return bad(sid_name, "must be 1..64 ASCII letters and digits");
  in.message_sid = **sid;
  if (auto e = get("AccountSid", in.account_sid, true)) return *e;
  if (!valid_sid(in.account_sid))
    return bad("AccountSid", "must be 1..64 ASCII letters and digits");
  if (auto e = get("MessagingServiceSid", in.messaging_service_sid, false)) return *e;
  auto status = single(params, "MessageStatus");
  if (!status) return status.err();
  in.kind = *status != nullptr ? inbound_kind::status : inbound_kind::message;
  const bool message = in.kind == inbound_kind::message;
  if (auto e = get("From", in.from, message)) return *e;
  if (auto e = get("To", in.to, message)) return *e;
  if (auto e = get("Body", in.body, false)) return *e;
  if (!message) {
    in.message_status = clean(**status);
    if (in.message_status.empty()) return bad("MessageStatus", "must not be empty");
    std::string code;
    if (auto e = get("ErrorCode", code, false)) return *e;
    if (!code.empty()) {
      auto v = integer(code);
      if (!v) return bad("ErrorCode", "must be an integer");
      in.error_code = *v;
    }
  }
  std::string num;
  if (auto e = get("NumMedia", num, false)) return *e;
  if (!num.empty()) {
    auto n = integer(num);
    if (!n || *n < 0 || *n > max_media)
      return bad("NumMedia", "must be an integer 0.." + std::to_string(max_media));
    for (std::int64_t i = 0; i < *n; ++i) {
      const std::string index = std::to_string(i);
      media_item m;
      if (auto e = get("MediaUrl" + index, m.url, true)) return *e;
      if (m.url.empty()) return bad("MediaUrl" + index, "must not be empty");
      if (auto e = get("MediaContentType" + index, m.content_type, false)) return *e;
      in.media.push_back(std::move(m));
    }
  }
  return in;
}

}  // namespace parley::channels::twilio
