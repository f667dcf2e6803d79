// The verification GET and X-Hub-Signature-256.

#include "src/channels/crypto/crypto.hpp"
#include "src/channels/errors.hpp"
#include "src/channels/messenger/messenger.hpp"
#include "src/channels/text/form.hpp"
#include "src/common/strings.hpp"

namespace parley::channels::messenger {

namespace {

constexpr std::string_view header = "X-Hub-Signature-256";

}  // namespace

result<std::string> verify_subscription(std::string_view query, std::string_view verify_token) {
  auto params = text::parse_form(query);
  if (!params) return params.err();
  const std::string* mode = text::find(*params, "hub.mode");
  if (mode == nullptr || *mode != "subscribe")
    return refuse(forbidden, "hub.mode", "must be subscribe");
  const std::string* token = text::find(*params, "hub.verify_token");
  if (token == nullptr || verify_token.empty() ||
      !crypto::equal_constant_time(*token, verify_token))
    return refuse(forbidden, "hub.verify_token", "does not match the configured token");
  const std::string* challenge = text::find(*params, "hub.challenge");
  if (challenge == nullptr || challenge->empty()) return bad("hub.challenge", "required");
  return *challenge;
}

std::string compute_signature(std::string_view app_secret, std::string_view raw_body) {
  return "sha256=" + crypto::hex(crypto::bytes_of(crypto::hmac_sha256(app_secret, raw_body)));
}

result<void> verify_signature(std::string_view app_secret, std::string_view raw_body,
                              std::string_view value) {
  if (value.empty()) return refuse(forbidden, header, "missing");
  constexpr std::string_view prefix = "sha256=";
  if (value.size() != prefix.size() + 2 * crypto::sha256_size ||
      !common::istarts_with(value, prefix) ||
      value.find_first_not_of("0123456789abcdefABCDEF", prefix.size()) != std::string_view::npos)
    return refuse(forbidden, header, "must be sha256=<64 hex digits>");
  std::string got(value.substr(prefix.size()));
  for (char& c : got) c = common::ascii_lower(c);
  if (app_secret.empty() ||
      !crypto::equal_constant_time(
          crypto::hex(crypto::bytes_of(crypto::hmac_sha256(app_secret, raw_body))), got))
    return refuse(forbidden, header, "does not match the body");
  return {};
}

}  // namespace parley::channels::messenger
