#pragma once
/// parley::common — small string helpers every folder needs (pure, header-only):
/// ASCII case-insensitive comparison and JSON string escaping.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "src/common/utf8.hpp"

namespace parley::common {

/// `c` lower-cased if it is an ASCII capital letter (no locale, unlike std::tolower).
constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// ASCII case-insensitive equality (header names, tokens, schemes); bytes >= 0x80
/// compare as they are.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

/// True when `s` starts with `prefix`, ASCII case-insensitively.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

namespace detail {
// Bytes that stand for themselves in a JSON string: printable ASCII but '"' and '\\'.
inline constexpr std::array<bool, 256> json_plain_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();
}  // namespace detail

/// Appends the characters of a JSON string for `s`, without the quotes: '"', '\\'
/// and the control characters escaped (\b \t \n \f \r, else \u00xx in lower-case
/// hex), well-formed UTF-8 copied as it is, each ill-formed subpart replaced by
/// U+FFFD (see utf8::append_clean). The output is byte for byte nlohmann's
/// `dump(-1, ' ', false, error_handler_t::replace)` of the string.
inline void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && detail::json_plain_bytes[*p]) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const int n = utf8::sequence(p, end);
      if (n > 0) {
        out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
        p += n;
      } else {
        out += utf8::replacement;
        p += -n;
      }
      continue;
    }
    ++p;
    switch (c) {
      case '"':
        out.append("\\\"", 2);
        break;
      case '\\':
        out.append("\\\\", 2);
        break;
      case '\b':
        out.append("\\b", 2);
        break;
      case '\t':
        out.append("\\t", 2);
        break;
      case '\n':
        out.append("\\n", 2);
        break;
      case '\f':
        out.append("\\f", 2);
        break;
      case '\r':
        out.append("\\r", 2);
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out.append(esc, sizeof esc);
      }
    }
  }
}

/// Appends `s` as a JSON string, quotes included (append_json_escaped).
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

}  // namespace parley::common
