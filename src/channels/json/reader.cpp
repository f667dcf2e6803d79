#include "src/channels/json/reader.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace parley::channels::json {

namespace od = simdjson::ondemand;

namespace {

// Bodies up to this size are parsed by a parser kept per thread (it keeps the
// buffers of the largest body it saw); larger ones by a parser of their own, so
// that one large body does not pin its buffers on the thread.
constexpr std::size_t max_kept_size = 64 * 1024;

od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The number at the start of `token` (simdjson's raw token: the number and the
// blanks after it), converted as nlohmann converts it. False when it is not an
// RFC 8259 number or overflows a double.
bool parse_number(std::string_view token, std::int64_t& i, std::uint64_t& u, double& d,
                  value::kind& kind) {
  while (!token.empty() && is_blank(token.back())) token.remove_suffix(1);
  const char* const start = token.data();
  const char* const end = start + token.size();
  const char* p = start;
  auto digits = [&] {
    if (p == end || !is_digit(*p)) return false;
    while (p != end && is_digit(*p)) ++p;
    return true;
  };
  if (p != end && *p == '-') ++p;
  if (p == end) return false;
  if (*p == '0')
    ++p;
  else if (!digits())
    return false;
  bool integral = true;
  if (p != end && *p == '.') {
    ++p;
    if (!digits()) return false;
    integral = false;
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p != end && (*p == '+' || *p == '-')) ++p;
    if (!digits()) return false;
    integral = false;
  }
  if (p != end) return false;
  if (integral) {  // a double only when it does not fit 64 bits
    if (*start == '-') {
      if (std::from_chars(start, end, i).ec == std::errc()) {
        kind = value::kind::integer;
        return true;
      }
    } else if (std::from_chars(start, end, u).ec == std::errc()) {
      kind = value::kind::unsigned_integer;
      return true;
    }
  }
  auto [stop, ec] = std::from_chars(start, end, d);
  if (ec == std::errc::result_out_of_range) {
    // Underflow or overflow: strtod's answer, as nlohmann uses it.
    const std::string copy(start, end);
    d = std::strtod(copy.c_str(), nullptr);
  } else if (ec != std::errc() || stop != end) {
    return false;
  }
  if (!std::isfinite(d)) return false;  // nlohmann refuses numbers that overflow
  kind = value::kind::floating;
  return true;
}

}  // namespace

// Walks simdjson's On-Demand iteration once, validating every value on the way
// (On-Demand checks only what is visited), and appends the flat values.
class document_builder {
 public:
  /// `input`: what simdjson reads (the text or its padded copy); `text`: the
  /// caller's text, of the same bytes, which views of strings point into.
  document_builder(document& doc, std::string_view input, std::string_view text)
      : doc_(doc), input_(input), text_(text) {}

  bool root(od::document& d) {
    od::json_type type;
    if (d.type().get(type)) return false;
    switch (type) {
      case od::json_type::object: {
        od::object o;
        if (d.get_object().get(o) || !object(o, {})) return false;
        break;
      }
      case od::json_type::array: {
        od::array a;
        if (d.get_array().get(a) || !array(a, {})) return false;
        break;
      }
      default: {
        // A scalar root is refused by every codec; it only has to be valid.
        value& v = push({});
        if (type == od::json_type::string) {
          std::string_view s;
          if (d.get_string().get(s)) return false;
          v.kind_ = value::kind::string;
          v.str_ = copy(s);
        } else if (type == od::json_type::boolean) {
          if (d.get_bool().get(v.boolean_)) return false;
          v.kind_ = value::kind::boolean;
        } else if (type == od::json_type::null) {
          bool null = false;
          if (d.is_null().get(null) || !null) return false;
        } else {
          if (d.get_double().get(v.d_)) return false;
          v.kind_ = value::kind::floating;
        }
        break;
      }
    }
    // Nothing but blanks after the root (not every getter checks it).
    const char* at = nullptr;
    if (d.current_location().get(at) == simdjson::SUCCESS) return false;
    return true;
  }

 private:
  value& push(std::string_view key) {
    doc_.values_.emplace_back();
    value& v = doc_.values_.back();
    v.key_ = key;
    return v;
  }

  value& at(std::size_t index) { return doc_.values_[index]; }

  // A copy of `s` in the document's buffer, which never reallocates: it is
  // reserved to the size of the text, and no string decodes longer than written.
  std::string_view copy(std::string_view s) {
    std::string& buf = doc_.strings_;
    if (buf.capacity() < text_.size()) buf.reserve(text_.size());
    const std::size_t from = buf.size();
    buf.append(s);
    return std::string_view(buf.data() + from, s.size());
  }

  // The characters of the string at `p` in the input (after its opening quote)
  // when it has no escapes: a view of the caller's text (stage 1 has checked its
  // UTF-8 and that it holds no control character). Nothing when it has escapes.
  bool plain(const char* p, std::string_view& out) const {
    const char* end = input_.data() + input_.size();
    const void* quote = std::memchr(p, '"', static_cast<std::size_t>(end - p));
    if (!quote) return false;
    const auto n = static_cast<std::size_t>(static_cast<const char*>(quote) - p);
    if (std::memchr(p, '\\', n)) return false;
    out = text_.substr(static_cast<std::size_t>(p - input_.data()), n);
    return true;
  }

  bool object(od::object& o, std::string_view key) {
    const std::size_t index = doc_.values_.size();
    push(key);
    std::uint32_t n = 0;
    for (auto member : o) {
      od::field f;
      if (std::move(member).get(f)) return false;
      std::string_view k;
      if (!plain(f.key().raw(), k)) {
        if (f.unescaped_key().get(k)) return false;
        k = copy(k);
      }
      if (!element(f.value(), k)) return false;
      ++n;
    }
    finish(index, value::kind::object, n);
    return true;
  }

  bool array(od::array& a, std::string_view key) {
    const std::size_t index = doc_.values_.size();
    push(key);
    std::uint32_t n = 0;
    for (auto item : a) {
      od::value v;
      if (std::move(item).get(v) || !element(v, {})) return false;
      ++n;
    }
    finish(index, value::kind::array, n);
    return true;
  }

  void finish(std::size_t index, value::kind kind, std::uint32_t n) {
    value& v = at(index);
    v.kind_ = kind;
    v.size_ = n;
    v.span_ = static_cast<std::uint32_t>(doc_.values_.size() - index);
  }

  bool element(od::value v, std::string_view key) {
    od::json_type type;
    if (v.type().get(type)) return false;
    switch (type) {
      case od::json_type::object: {
        od::object o;
        return !v.get_object().get(o) && object(o, key);
      }
      case od::json_type::array: {
        od::array a;
        return !v.get_array().get(a) && array(a, key);
      }
      case od::json_type::string: {
        // Consumed even when plain: a skipped value goes unchecked, and so would
        // what follows it.
        std::string_view s;
        if (plain(v.raw_json_token().data() + 1, s)) {
          od::raw_json_string raw;
          if (v.get_raw_json_string().get(raw)) return false;
        } else {
          if (v.get_string().get(s)) return false;
          s = copy(s);
        }
        value& out = push(key);
        out.kind_ = value::kind::string;
        out.str_ = s;
        return true;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (v.get_bool().get(b)) return false;
        value& out = push(key);
        out.kind_ = value::kind::boolean;
        out.boolean_ = b;
        return true;
      }
      case od::json_type::null: {
        bool null = false;
        if (v.is_null().get(null) || !null) return false;
        push(key);
        return true;
      }
      case od::json_type::number: {
        value& out = push(key);
        return parse_number(v.raw_json_token(), out.i_, out.u_, out.d_, out.kind_);
      }
    }
    return false;
  }

  document& doc_;
  std::string_view input_;
  std::string_view text_;
};

bool read(std::string_view text, std::size_t capacity, document& doc) {
  doc.values_.clear();
  doc.strings_.clear();
  // Like nlohmann: one byte order mark is skipped, and a NUL byte ends the text
  // (its lexer reads it as the end of input; inside a value it is an error either
  // way, as the value is then cut short).
  if (text.size() >= 3 && std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) {
    text.remove_prefix(3);
    capacity -= 3;
  }
  if (const void* nul = std::memchr(text.data(), '\0', text.size()))
    text = text.substr(0, static_cast<std::size_t>(static_cast<const char*>(nul) - text.data()));
  doc.values_.reserve(16);

  const bool kept = text.size() <= max_kept_size;
  std::unique_ptr<od::parser> own;
  od::parser& parser = kept ? thread_parser() : *(own = std::make_unique<od::parser>());

  simdjson::padded_string copy;
  thread_local std::string scratch;  // the padded copy of small texts
  simdjson::padded_string_view input;
  if (capacity >= text.size() + simdjson::SIMDJSON_PADDING) {
    input = simdjson::padded_string_view(text.data(), text.size(), capacity);
  } else if (kept) {
    scratch.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    scratch.assign(text.data(), text.size());
    input = simdjson::padded_string_view(scratch.data(), scratch.size(), scratch.capacity());
  } else {
    copy = simdjson::padded_string(text);
    input = copy;
  }

  od::document d;
  if (parser.iterate(input).get(d)) return false;
  document_builder builder(doc, std::string_view(input.data(), input.length()), text);
  return builder.root(d);
}

int nesting_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

bool nested_deeper_than(std::string_view text, int max) {
  std::size_t opening = 0;  // a loop the compiler vectorizes
  for (char c : text) opening += static_cast<std::size_t>((c == '[') | (c == '{'));
  if (opening <= static_cast<std::size_t>(std::max(max, 0))) return false;
  return nesting_depth(text) > max;
}

}  // namespace parley::channels::json
