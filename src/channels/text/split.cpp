#include "src/channels/text/split.hpp"

#include "src/common/utf8.hpp"

namespace parley::channels::text {

namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Bytes and UTF-16 units of the character at s[i] (well-formed UTF-8).
std::size_t char_bytes(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  const int n = common::utf8::sequence(reinterpret_cast<const unsigned char*>(s.data()) + i,
                                       reinterpret_cast<const unsigned char*>(s.data()) + s.size());
  return n > 0 ? static_cast<std::size_t>(n) : 1;
}

std::size_t units_of(std::size_t bytes) { return bytes == 4 ? 2 : 1; }

}  // namespace

std::size_t utf16_length(std::string_view s) {
  std::size_t units = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = char_bytes(s, i);
    units += units_of(n);
    i += n;
  }
  return units;
}

std::vector<std::string> split_text(std::string_view text, std::size_t max_units) {
  if (max_units < 2) max_units = 2;
  std::string clean;
  if (!common::utf8::valid(text)) {
    common::utf8::append_clean(clean, text);
    text = clean;
  }
  std::vector<std::string> parts;
  std::size_t pos = 0;
  const std::size_t n = text.size();
  while (true) {
    while (pos < n && blank(text[pos])) ++pos;
    if (pos == n) break;
    // `limit`: the end of the longest run of whole characters from pos that fits.
    std::size_t limit = pos, units = 0;
    while (limit < n) {
      const std::size_t b = char_bytes(text, limit);
      if (units + units_of(b) > max_units) break;
      units += units_of(b);
      limit += b;
    }
    std::size_t end = limit, next = limit;
    if (limit < n) {
      // A cut at a blank: the blank at `limit` itself counts, it is not kept.
      std::size_t line = std::string_view::npos, space = std::string_view::npos;
      for (std::size_t i = limit; i > pos; --i) {
        const char c = text[i];
        if (line == std::string_view::npos && (c == '\n' || c == '\r')) line = i;
        if (space == std::string_view::npos && blank(c)) space = i;
        if (line != std::string_view::npos) break;
      }
      if (line != std::string_view::npos && (line - pos) * 2 >= limit - pos)
        end = next = line;
      else if (space != std::string_view::npos)
        end = next = space;
    }
    while (end > pos && blank(text[end - 1])) --end;
    parts.emplace_back(text.substr(pos, end - pos));
    pos = next;
  }
  return parts;
}

}  // namespace parley::channels::text
