#include "src/channels/text/attachments.hpp"

#include <algorithm>
#include <cctype>

namespace parley::channels::text {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The scheme of `url`, lower case, or empty when it has none (RFC 3986: ALPHA
/// *( ALPHA / DIGIT / "+" / "-" / "." ) ":").
std::string scheme_of(std::string_view url) {
  auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  for (std::size_t i = 0; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    bool ok = std::isalpha(c) || (i > 0 && (std::isdigit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok) return {};
  }
  return lower(url.substr(0, colon));
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    unsigned char c = static_cast<unsigned char>(ch);
    return std::islower(c) || std::isdigit(c) || c == '-' || c == '+' || c == '.' || c == '_';
  });
}

}  // namespace

std::string_view refusal_name(refusal r) {
  switch (r) {
    case refusal::too_many:
      return "too_many";
    case refusal::url_too_long:
      return "url_too_long";
    case refusal::scheme:
      return "scheme";
    case refusal::content_type:
      return "content_type";
  }
  return "unknown";
}

std::optional<std::string> invalid_scheme(std::string_view scheme) {
  if (scheme == "https" || scheme == "http") return std::nullopt;
  return "must be \"https\" or \"http\"";
}

std::optional<std::string> invalid_content_type_pattern(std::string_view pattern) {
  auto slash = pattern.find('/');
  if (slash == std::string_view::npos) return "must be type/subtype, type/* or */*";
  auto type = pattern.substr(0, slash);
  auto sub = pattern.substr(slash + 1);
  if (type == "*") {
    if (sub == "*") return std::nullopt;
    return "*/ must be followed by *";
  }
  if (!is_token(type)) return "type must be lower case letters, digits or -+._";
  if (sub == "*" || is_token(sub)) return std::nullopt;
  return "subtype must be * or lower case letters, digits or -+._";
}

bool content_type_matches(std::string_view pattern, std::string_view content_type) {
  if (pattern == "*/*") return content_type.find('/') != std::string_view::npos;
  auto slash = pattern.find('/');
  if (slash == std::string_view::npos) return false;
  if (pattern.substr(slash + 1) == "*") {
    auto prefix = pattern.substr(0, slash + 1);
    return content_type.size() > prefix.size() && content_type.substr(0, prefix.size()) == prefix;
  }
  return pattern == content_type;
}

std::vector<attachment_verdict> check_attachments(const attachment_limits& limits,
                                                  const std::vector<attachment_ref>& items) {
  std::vector<attachment_verdict> out;
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    attachment_verdict v;
    v.index = i;
    if (i >= limits.max_attachments) {
      v.refused = refusal::too_many;
      v.detail = "more than " + std::to_string(limits.max_attachments) + " attachments";
      out.push_back(std::move(v));
      continue;
    }
    if (item.url.size() > limits.max_url_bytes) {
      v.refused = refusal::url_too_long;
      v.detail = "URL of " + std::to_string(item.url.size()) + " bytes, more than " +
                 std::to_string(limits.max_url_bytes);
      out.push_back(std::move(v));
      continue;
    }
    auto scheme = scheme_of(item.url);
    bool scheme_ok =
        !scheme.empty() && !invalid_scheme(scheme) &&
        std::find(limits.schemes.begin(), limits.schemes.end(), scheme) != limits.schemes.end();
    if (!scheme_ok) {
      v.refused = refusal::scheme;
      v.detail = scheme.empty() ? std::string("URL has no scheme")
                                : "scheme \"" + scheme + "\" is not allowed";
      out.push_back(std::move(v));
      continue;
    }
    std::string_view ct = item.content_type;
    if (auto semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
    auto type = lower(trim(ct));
    bool type_ok = std::any_of(limits.content_types.begin(), limits.content_types.end(),
                               [&](const std::string& p) { return content_type_matches(p, type); });
    if (!type_ok) {
      v.refused = refusal::content_type;
      v.detail = "content type \"" + type + "\" is not allowed";
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace parley::channels::text
