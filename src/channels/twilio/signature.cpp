// X-Twilio-Signature: computing and checking it.

#include <algorithm>

#include "src/channels/crypto/crypto.hpp"
#include "src/channels/errors.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/strings.hpp"

namespace parley::channels::twilio {

namespace {

constexpr std::string_view header = "X-Twilio-Signature";

// The URL with its default port added (no port) or removed (that port); nullopt
// when it has another port or no recognisable authority.
std::optional<std::string> port_variant(std::string_view url) {
  std::string_view port;
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (common::iequals(scheme, "https"))
    port = "443";
  else if (common::iequals(scheme, "http"))
    port = "80";
  else
    return std::nullopt;
  const std::size_t auth_begin = scheme_end + 3;
  const std::size_t auth_end = std::min(url.find_first_of("/?#", auth_begin), url.size());
  std::string_view authority = url.substr(auth_begin, auth_end - auth_begin);
  // The host starts after any userinfo; an IPv6 literal's colons are inside [].
  std::size_t host_begin = authority.rfind('@');
  host_begin = host_begin == std::string_view::npos ? 0 : host_begin + 1;
  std::size_t search_from = host_begin;
  if (host_begin < authority.size() && authority[host_begin] == '[') {
    const std::size_t close = authority.find(']', host_begin);
    if (close == std::string_view::npos) return std::nullopt;
    search_from = close;
  }
  const std::size_t colon = authority.find(':', search_from);
  std::string out(url.substr(0, auth_begin));
  if (colon == std::string_view::npos) {
    if (authority.size() == host_begin) return std::nullopt;  // no host
    out.append(authority).append(":").append(port);
  } else {
    if (authority.substr(colon + 1) != port) return std::nullopt;
    out.append(authority.substr(0, colon));
  }
  out.append(url.substr(auth_end));
  return out;
}

result<void> no_match() { return refuse(forbidden, header, "does not match the request"); }

}  // namespace

std::string compute_signature(std::string_view auth_token, std::string_view url,
                              const text::form& params) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(params.size());
  std::size_t size = url.size();
  for (const auto& p : params) {
    sorted.push_back(&p);
    size += p.first.size() + p.second.size();
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
  std::string data;
  data.reserve(size);
  data.append(url);
  for (const auto* p : sorted) data.append(p->first).append(p->second);
  return crypto::base64(crypto::bytes_of(crypto::hmac_sha1(auth_token, data)));
}

result<void> verify_signature(std::string_view auth_token, std::string_view url,
                              const text::form& params, std::string_view signature) {
  if (signature.empty()) return refuse(forbidden, header, "missing");
  if (auth_token.empty()) return no_match();
  bool ok = crypto::equal_constant_time(compute_signature(auth_token, url, params), signature);
  if (auto other = port_variant(url))
    ok |= crypto::equal_constant_time(compute_signature(auth_token, *other, params), signature);
  if (!ok) return no_match();
  return {};
}

result<void> verify_signature_json(std::string_view auth_token, std::string_view url,
                                   std::string_view body, std::string_view signature) {
  auto sig = verify_signature(auth_token, url, {}, signature);
  if (!sig) return sig;
  const std::size_t q = url.find('?');
  const std::size_t hash = url.find('#');
  const std::string_view query =
      q == std::string_view::npos
          ? std::string_view()
          : url.substr(q + 1,
                       hash == std::string_view::npos ? std::string_view::npos : hash - q - 1);
  auto params = text::parse_form(query);
  const std::string* claimed = params ? text::find(*params, "bodySHA256") : nullptr;
  if (claimed == nullptr) return refuse(forbidden, "bodySHA256", "missing from the URL");
  std::string lower = *claimed;
  for (char& c : lower) c = common::ascii_lower(c);
  if (!crypto::equal_constant_time(crypto::hex(crypto::bytes_of(crypto::sha256(body))), lower))
    return refuse(forbidden, "bodySHA256", "does not match the body");
  return {};
}

}  // namespace parley::channels::twilio
