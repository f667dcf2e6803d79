#pragma once
/// parley::common::utf8 — UTF-8 validation and cleaning (pure, header-only).
///
/// Well-formed means RFC 3629: no overlong forms, no surrogates, nothing above
/// U+10FFFF. Cleaning replaces each maximal ill-formed subpart (Unicode's
/// "substitution of maximal subparts", what nlohmann's dump(replace) does) by one
/// U+FFFD and keeps everything else, NUL included.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::common::utf8 {

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view replacement = "\xEF\xBF\xBD";

/// Length of the well-formed UTF-8 sequence at `p` (lead byte >= 0x80, p < end),
/// or the negative count of bytes that form its maximal ill-formed prefix: -1 for a
/// byte that cannot start a sequence, -k when byte k (0-based) cannot continue it
/// or the input ends there.
inline int sequence(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char c = p[0];
  int n;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;  // no overlong forms
    else if (c == 0xED)
      hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;  // no overlong forms
    else if (c == 0xF4)
      hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k < n; ++k) {
    if (p + k >= end) return -k;
    const unsigned char b = p[k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
  }
  return n;
}

/// True when `s` is well-formed UTF-8.
inline bool valid(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const int n = sequence(p, end);
    if (n < 0) return false;
    p += n;
  }
  return true;
}

/// Appends `s` to `out` with every maximal ill-formed subpart replaced by U+FFFD.
inline void append_clean(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && *p < 0x80) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const int n = sequence(p, end);
    if (n > 0) {
      out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
      p += n;
    } else {
      out += replacement;
      p += -n;
    }
  }
}

/// `s` cleaned as append_clean does it; `s` itself when it is already well-formed.
inline std::string clean(std::string_view s) {
  if (valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  append_clean(out, s);
  return out;
}

/// Appends code point `cp` (<= U+10FFFF, not a surrogate) in UTF-8.
inline void append_code_point(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace parley::common::utf8
