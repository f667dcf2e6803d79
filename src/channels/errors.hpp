#pragma once
/// parley::channels — the errors of the channel codecs (twilio/, messenger/, text/).
///
/// A codec that refuses input returns a `parley::error` whose `code` is one of the
/// constants below and whose `message` starts with the field at fault
/// ("X-Twilio-Signature: does not match the request"). `http_status` maps the code
/// to the status a gateway answers. No message ever holds the value of a secret.

#include <string>
#include <string_view>

#include "src/common/result.hpp"

namespace parley::channels {

inline constexpr std::string_view bad_request = "bad_request";  ///< 400: malformed input
inline constexpr std::string_view forbidden = "forbidden";      ///< 403: signature or token
inline constexpr std::string_view not_found = "not_found";      ///< 404: not for this endpoint

/// An error with `code` and the message "<field>: <what>".
inline error refuse(std::string_view code, std::string_view field, std::string_view what) {
  std::string message;
  message.reserve(field.size() + 2 + what.size());
  message.append(field).append(": ").append(what);
  return error{std::string(code), std::move(message)};
}

/// 400 "<field>: <what>".
inline error bad(std::string_view field, std::string_view what) {
  return refuse(bad_request, field, what);
}

/// The HTTP status for an error of a codec: 403, 404, else 400.
inline int http_status(const error& e) {
  if (e.code == forbidden) return 403;
  if (e.code == not_found) return 404;
  return 400;
}

}  // namespace parley::channels
