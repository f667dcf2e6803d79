// Secrets, tokens, the bearer header and query parameters.

#include <cstring>

#include "src/channels/crypto/crypto.hpp"
#include "src/channels/directline/directline.hpp"
#include "src/channels/errors.hpp"
#include "src/common/strings.hpp"

namespace parley::channels::directline {

namespace {

constexpr std::string_view secret_prefix = "dl1~";
constexpr std::string_view token_prefix = "dlt1.";

/// A tenant or bot id as the catalog allows it: 1 to 64 letters, digits, '_', '-' or
/// '.', starting with a letter or digit.
bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s[0])) return false;
  for (char c : s)
    if (!alnum(c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

error not_a_token() { return refuse(forbidden, "Authorization", "not a valid Direct Line token"); }

int b64url_index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  std::string s = crypto::base64(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (auto& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64url_index(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero (a canonical encoding).
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool is_secret(std::string_view bearer) { return bearer.substr(0, 4) == secret_prefix; }

result<secret_claims> parse_secret(std::string_view secret) {
  auto fail = [] { return refuse(forbidden, "Authorization", "not a Direct Line secret"); };
  if (!is_secret(secret)) return fail();
  auto rest = secret.substr(secret_prefix.size());
  auto a = rest.find('~');
  if (a == std::string_view::npos) return fail();
  auto b = rest.find('~', a + 1);
  if (b == std::string_view::npos) return fail();
  secret_claims c{std::string(rest.substr(0, a)), std::string(rest.substr(a + 1, b - a - 1))};
  if (!valid_id(c.tenant) || !valid_id(c.bot) || b + 1 >= rest.size()) return fail();
  return c;
}

std::string make_secret(std::string_view tenant, std::string_view bot, std::string_view random) {
  std::string s(secret_prefix);
  s.append(tenant).append("~").append(bot).append("~").append(base64url(random));
  return s;
}

std::string sign_token(const token_claims& c, std::string_view key) {
  std::string payload = c.tenant;
  payload.append("\n").append(c.bot).append("\n").append(c.conversation).append("\n");
  payload += std::to_string(c.expires_unix);
  std::string t(token_prefix);
  t += base64url(payload);
  auto mac = crypto::hmac_sha256(key, t);
  t += '.';
  t += base64url(crypto::bytes_of(mac));
  return t;
}

result<token_claims> verify_token(std::string_view token, std::string_view key,
                                  std::int64_t now_unix) {
  if (key.empty() || token.substr(0, token_prefix.size()) != token_prefix) return not_a_token();
  auto dot = token.rfind('.');
  if (dot < token_prefix.size()) return not_a_token();
  auto signed_part = token.substr(0, dot);
  auto mac = base64url_decode(token.substr(dot + 1));
  if (!mac) return not_a_token();
  auto expected = crypto::hmac_sha256(key, signed_part);
  if (!crypto::equal_constant_time(*mac, crypto::bytes_of(expected))) return not_a_token();
  auto payload = base64url_decode(signed_part.substr(token_prefix.size()));
  if (!payload) return not_a_token();
  token_claims c;
  std::string* fields[] = {&c.tenant, &c.bot, &c.conversation};
  std::string_view p = *payload;
  for (auto* f : fields) {
    auto nl = p.find('\n');
    if (nl == std::string_view::npos) return not_a_token();
    *f = std::string(p.substr(0, nl));
    p.remove_prefix(nl + 1);
  }
  if (p.empty() || p.size() > 19) return not_a_token();
  for (char ch : p)
    if (ch < '0' || ch > '9') return not_a_token();
  c.expires_unix = std::stoll(std::string(p));
  if (c.expires_unix <= now_unix)
    return refuse(token_expired, "Authorization", "the token has expired");
  return c;
}

std::string bearer_of(const http::request& req) {
  const std::string* h = req.header("Authorization");
  if (h == nullptr) return {};
  std::string_view v = *h;
  if (v.size() < 7 || !common::iequals(v.substr(0, 7), "Bearer ")) return {};
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = part.find('=');
    if (part.substr(0, eq) != name) continue;
    std::string out;
    if (eq == std::string_view::npos) return out;
    auto raw = part.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() && hexval(raw[i + 1]) >= 0 &&
                 hexval(raw[i + 2]) >= 0) {
        out += static_cast<char>(hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]));
        i += 2;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> watermark_of(std::string_view query) {
  auto w = query_param(query, "watermark");
  if (!w || w->empty()) return std::uint64_t{0};
  if (w->size() > 18) return std::nullopt;
  for (char c : *w)
    if (c < '0' || c > '9') return std::nullopt;
  return std::stoull(*w);
}

}  // namespace parley::channels::directline
