#include "src/channels/botapi/botapi.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

namespace parley::channels::botapi {

namespace {

// Deeper JSON is refused before it is parsed: nothing we accept nests
// this far, and it bounds every recursion below.
constexpr int max_json_depth = 32;
constexpr std::size_t max_id_length = 128;
constexpr std::size_t max_request_id_length = 200;

constexpr std::array<std::string_view, 9> variable_types = {
    "boolean", "date", "dateTime", "money", "number", "text", "object", "ref", "list"};
constexpr std::array<std::string_view, 5> end_session_reasons = {"UserRequest", "Transfer",
                                                                 "Expiration", "Error", "Other"};
constexpr std::array<std::string_view, 2> transfer_failed_reasons = {"NoAgentAvailable", "Error"};
constexpr std::array<std::string_view, 2> referrer_types = {"Salesforce:Core:Bot:Id",
                                                            "Salesforce:BotRuntime:Session:Id"};

template <std::size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

template <std::size_t N>
std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto s : set) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

failure bad(std::string_view field, std::string_view what) {
  std::string message;
  message.reserve(field.size() + 2 + what.size());
  message.append(field).append(": ").append(what);
  return make_failure(400, std::move(message));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// [A-Za-z0-9._~:-]
constexpr std::array<bool, 256> id_chars = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
                                     c == ':' || c == '-';
  return t;
}();

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > max_id_length) return false;
  for (char c : s)
    if (!id_chars[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Header values are echoed in response headers: keep only what cannot break them.
std::string safe_header_value(std::string_view s) {
  if (s.size() > max_request_id_length ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return {};
  return std::string(s);
}

// An empty value is left out, so that the server's own X-Request-Id stands.
void add_header(http::response& resp, const char* name, std::string value) {
  if (!value.empty()) resp.headers.emplace_back(name, std::move(value));
}

// ------------------------------------------------------------------ hashing

std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += hex[(v >> (i * 4)) & 0xf];
}

// ------------------------------------------------------------------ UTF-8

// Bytes that stand for themselves in a JSON string: printable ASCII but '"' and '\\'.
constexpr std::array<bool, 256> plain_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or the
// negative count of bytes that form its maximal ill-formed prefix: -1 for a
// byte that cannot start a sequence, -k when byte k (0-based) cannot continue
// it or the input ends there. The parser refuses any ill-formed sequence; the
// writer replaces the prefix by one U+FFFD and resumes at byte k, which is
// where nlohmann's decoder rejects.
int utf8_sequence(const unsigned char* p, const unsigned char* end) {
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

// ------------------------------------------------------------------ JSON in
//
// Request bodies are parsed by a small parser into a flat document instead of
// an nlohmann DOM: one vector of values in document order, strings pointing
// into the body unless they had escapes. It accepts exactly the texts that
// nlohmann::json::parse accepts (RFC 8259 JSON with nothing after the value but
// blanks, or a NUL byte and anything; a leading UTF-8 byte order mark skipped;
// strings of well-formed UTF-8 without raw control characters, whose \u
// escapes pair their surrogates; no number beyond a double's range) and gives
// the values nlohmann gives: a number without fraction or exponent is a signed
// integer when negative, unsigned otherwise, a double when it does not fit 64
// bits; a repeated key keeps its last value. botapi_reference_parse.hpp in
// tests/unit/botapi keeps the former nlohmann-based parsing; the unit tests and
// the fuzz target compare with it.

// A value of a parsed document. The elements (members) of an array (object)
// follow it in the document, each after the whole subtree of the one before.
class jvalue {
 public:
  enum class kind : std::uint8_t {
    null,
    boolean,
    integer,
    unsigned_integer,
    floating,
    string,
    array,
    object
  };

  bool is_null() const { return kind_ == kind::null; }
  bool is_boolean() const { return kind_ == kind::boolean; }
  bool is_number() const { return is_number_integer() || kind_ == kind::floating; }
  bool is_number_integer() const {
    return kind_ == kind::integer || kind_ == kind::unsigned_integer;
  }
  bool is_number_unsigned() const { return kind_ == kind::unsigned_integer; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_object() const { return kind_ == kind::object; }

  bool boolean() const { return boolean_; }
  /// An integer as a signed or unsigned 64-bit value (an unsigned one converted).
  std::int64_t int64() const {
    return kind_ == kind::unsigned_integer ? static_cast<std::int64_t>(u_) : i_;
  }
  std::uint64_t uint64() const {
    return kind_ == kind::unsigned_integer ? u_ : static_cast<std::uint64_t>(i_);
  }
  /// Any number as a double.
  double number() const {
    switch (kind_) {
      case kind::integer:
        return static_cast<double>(i_);
      case kind::unsigned_integer:
        return static_cast<double>(u_);
      default:
        return d_;
    }
  }
  std::string_view str() const { return str_; }
  /// The key of a member of an object.
  std::string_view key() const { return key_; }
  /// Elements of an array, members of an object.
  std::size_t size() const { return size_; }
  /// The first element or member; valid when size() > 0.
  const jvalue* first() const { return this + 1; }
  /// The next element or member of the same array or object.
  const jvalue* next() const { return this + span_; }

  /// The member `name` of an object (the last one when repeated), or nullptr.
  const jvalue* member(std::string_view name) const {
    const jvalue* found = nullptr;
    const jvalue* m = first();
    for (std::size_t i = 0; i < size_; ++i, m = m->next())
      if (m->key_ == name) found = m;
    return found;
  }

 private:
  friend class json_parser;
  kind kind_ = kind::null;
  bool boolean_ = false;
  std::uint32_t span_ = 1;  // values in this subtree, this one included
  std::uint32_t size_ = 0;
  union {
    std::int64_t i_ = 0;
    std::uint64_t u_;
    double d_;
  };
  std::string_view str_;
  std::string_view key_;
};

// A parsed document. Its string views point into the text and into `unescaped`,
// so it must outlive neither and is never moved.
struct jdoc {
  std::vector<jvalue> values;
  std::string unescaped;  // strings that had escapes, decoded

  jdoc() = default;
  jdoc(const jdoc&) = delete;
  jdoc& operator=(const jdoc&) = delete;
  const jvalue& root() const { return values.front(); }
};

// Recursive descent over the text; the depth is bounded by nesting_depth()
// before it runs (and again by max_depth here).
class json_parser {
 public:
  json_parser(std::string_view text, jdoc& doc)
      : p_(text.data()), end_(text.data() + text.size()), size_(text.size()), doc_(doc) {}

  bool parse() {
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;  // byte order mark
    doc_.values.reserve(16);
    if (!value(0)) return false;
    skip_blanks();
    // Like nlohmann, a NUL byte ends the text (its lexer reads it as the end of input).
    return p_ == end_ || *p_ == '\0';
  }

 private:
  static constexpr int max_depth = 2 * max_json_depth;

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  void skip_blanks() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0)
      return false;
    p_ += word.size();
    return true;
  }

  jvalue& at(std::size_t index) { return doc_.values[index]; }

  bool value(int depth) {
    skip_blanks();
    if (p_ == end_ || depth > max_depth) return false;
    const std::size_t index = doc_.values.size();
    doc_.values.emplace_back();
    switch (*p_) {
      case '{':
        return container(index, depth, '}');
      case '[':
        return container(index, depth, ']');
      case '"': {
        std::string_view s;
        if (!string(s)) return false;
        at(index).kind_ = jvalue::kind::string;
        at(index).str_ = s;
        return true;
      }
      case 't':
      case 'f': {
        const bool b = *p_ == 't';
        if (!literal(b ? "true" : "false")) return false;
        at(index).kind_ = jvalue::kind::boolean;
        at(index).boolean_ = b;
        return true;
      }
      case 'n':
        return literal("null");
      default:
        return number(index);
    }
  }

  // An object (close '}') or an array (close ']'), at its opening character.
  bool container(std::size_t index, int depth, char close) {
    const bool object = close == '}';
    ++p_;
    skip_blanks();
    std::uint32_t n = 0;
    if (p_ != end_ && *p_ == close) {
      ++p_;
    } else {
      while (true) {
        std::string_view key;
        if (object) {
          skip_blanks();
          if (p_ == end_ || *p_ != '"' || !string(key)) return false;
          skip_blanks();
          if (p_ == end_ || *p_ != ':') return false;
          ++p_;
        }
        const std::size_t element = doc_.values.size();
        if (!value(depth + 1)) return false;
        at(element).key_ = key;
        ++n;
        skip_blanks();
        if (p_ == end_) return false;
        if (*p_ == ',') {
          ++p_;
          continue;
        }
        if (*p_ != close) return false;
        ++p_;
        break;
      }
    }
    jvalue& v = at(index);
    v.kind_ = object ? jvalue::kind::object : jvalue::kind::array;
    v.size_ = n;
    v.span_ = static_cast<std::uint32_t>(doc_.values.size() - index);
    return true;
  }

  // Four hex digits of a \u escape, or -1.
  int hex4() {
    if (end_ - p_ < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      int d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        return -1;
      v = v * 16 + d;
    }
    return v;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
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

  // One character of a string other than '"' and '\\': false for a control
  // character or ill-formed UTF-8; else its length in bytes.
  int plain_char() {
    const auto c = static_cast<unsigned char>(*p_);
    if (c < 0x20) return 0;
    if (c < 0x80) return 1;
    const int n = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                reinterpret_cast<const unsigned char*>(end_));
    return n > 0 ? n : 0;
  }

  // A string, at its opening quote.
  bool string(std::string_view& out) {
    const char* start = ++p_;
    while (true) {  // without escapes: a view of the text
      while (p_ != end_ && plain_bytes[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) return false;
      if (*p_ == '"') {
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (*p_ == '\\') break;
      const int n = plain_char();
      if (n == 0) return false;
      p_ += n;
    }
    // With escapes: decoded into doc_.unescaped. Reserved once to the size of
    // the text, it never grows: no string decodes longer than it is written.
    std::string& buf = doc_.unescaped;
    if (buf.empty()) buf.reserve(size_);
    const std::size_t from = buf.size();
    buf.append(start, static_cast<std::size_t>(p_ - start));
    while (true) {
      if (p_ == end_) return false;
      const char c = *p_;
      if (c == '"') {
        ++p_;
        out = std::string_view(buf.data() + from, buf.size() - from);
        return true;
      }
      if (c != '\\') {
        const int n = plain_char();
        if (n == 0) return false;
        buf.append(p_, static_cast<std::size_t>(n));
        p_ += n;
        continue;
      }
      if (++p_ == end_) return false;
      switch (*p_++) {
        case '"':
          buf += '"';
          break;
        case '\\':
          buf += '\\';
          break;
        case '/':
          buf += '/';
          break;
        case 'b':
          buf += '\b';
          break;
        case 'f':
          buf += '\f';
          break;
        case 'n':
          buf += '\n';
          break;
        case 'r':
          buf += '\r';
          break;
        case 't':
          buf += '\t';
          break;
        case 'u': {
          int cp = hex4();
          if (cp < 0) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: a low one must follow
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            const int low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          append_utf8(buf, static_cast<std::uint32_t>(cp));
          break;
        }
        default:
          return false;
      }
    }
  }

  bool digits() {
    if (p_ == end_ || !is_digit(*p_)) return false;
    while (p_ != end_ && is_digit(*p_)) ++p_;
    return true;
  }

  bool number(std::size_t index) {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0')
      ++p_;
    else if (!digits())
      return false;
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
      integral = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
      integral = false;
    }
    jvalue& v = at(index);
    if (integral) {  // a double only when it does not fit 64 bits
      if (*start == '-') {
        auto [end, ec] = std::from_chars(start, p_, v.i_);
        if (ec == std::errc()) {
          v.kind_ = jvalue::kind::integer;
          return true;
        }
      } else {
        auto [end, ec] = std::from_chars(start, p_, v.u_);
        if (ec == std::errc()) {
          v.kind_ = jvalue::kind::unsigned_integer;
          return true;
        }
      }
    }
    double d = 0;
    auto [end, ec] = std::from_chars(start, p_, d);
    if (ec == std::errc::result_out_of_range) {
      // Underflow or overflow: strtod's answer, as nlohmann uses it.
      const std::string copy(start, p_);
      d = std::strtod(copy.c_str(), nullptr);
    } else if (ec != std::errc()) {
      return false;
    }
    if (!std::isfinite(d)) return false;  // nlohmann refuses numbers that overflow
    v.kind_ = jvalue::kind::floating;
    v.d_ = d;
    return true;
  }

  const char* p_;
  const char* end_;
  std::size_t size_;
  jdoc& doc_;
};

// Nesting depth of a JSON text, counted outside strings. Cheap, and it keeps
// hostile bodies ("[[[[...") away from every recursive step after parsing.
int nesting_depth(std::string_view body) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
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

// Parses `body` into `doc`, whose root is then an object.
std::optional<failure> parse_body(std::string_view body, jdoc& doc) {
  if (trim(body).empty()) return bad("body", "required JSON object, got an empty body");
  if (nesting_depth(body) > max_json_depth)
    return bad("body", "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
  if (!json_parser(body, doc).parse()) return bad("body", "malformed JSON");
  if (!doc.root().is_object()) return bad("body", "must be a JSON object");
  return std::nullopt;
}

// Optional string member: absent or null leave `out` alone.
std::optional<failure> opt_string(const jvalue& obj, std::string_view key, std::string_view where,
                                  std::string& out) {
  const jvalue* v = obj.member(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) return bad(where, "must be a string");
  out = v->str();
  return std::nullopt;
}

std::optional<failure> req_string(const jvalue& obj, std::string_view key, std::string_view where,
                                  std::string& out) {
  const jvalue* v = obj.member(key);
  if (!v || !v->is_string()) return bad(where, "required string");
  out = v->str();
  return std::nullopt;
}

std::optional<failure> opt_bool(const jvalue& obj, std::string_view key, std::string_view where,
                                bool& out) {
  const jvalue* v = obj.member(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) return bad(where, "must be a boolean");
  out = v->boolean();
  return std::nullopt;
}

std::optional<failure> req_bool(const jvalue& obj, std::string_view key, std::string_view where,
                                bool& out) {
  const jvalue* v = obj.member(key);
  if (!v || !v->is_boolean()) return bad(where, "required boolean");
  out = v->boolean();
  return std::nullopt;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool is_date(std::string_view s) {
  return s.size() == 10 && digits(s, 0, 4) && s[4] == '-' && digits(s, 5, 2) && s[7] == '-' &&
         digits(s, 8, 2);
}

// ISO local date-time "YYYY-MM-DDTHH:MM:SS"; a fraction, "Z" or an offset may follow.
bool is_date_time(std::string_view s) {
  return s.size() >= 19 && s.size() <= 40 && is_date(s.substr(0, 10)) && s[10] == 'T' &&
         digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) && s[16] == ':' && digits(s, 17, 2);
}

// "USD 10.40", or a bare amount "10.40".
std::optional<double> parse_money(std::string_view s) {
  s = trim(s);
  if (s.size() > 4 && s[3] == ' ' &&
      std::all_of(s.begin(), s.begin() + 3, [](char c) { return c >= 'A' && c <= 'Z'; }))
    s = trim(s.substr(4));
  if (s.empty() || s.size() > 64) return std::nullopt;
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

v1::Value null_value() {
  v1::Value v;
  v.set_null_value(true);
  return v;
}

// Plain JSON → Value; depth is bounded by parse_body.
v1::Value plain_value(const jvalue& j) {
  v1::Value v;
  if (j.is_boolean()) {
    v.set_boolean(j.boolean());
  } else if (j.is_number()) {
    v.set_number(j.number());
  } else if (j.is_string()) {
    v.set_text(std::string(j.str()));
  } else if (j.is_array()) {
    auto* list = v.mutable_list();
    const jvalue* item = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, item = item->next())
      *list->add_items() = plain_value(*item);
  } else if (j.is_object()) {
    // Keys sorted (byte order), as ObjectValue wants them; a repeated key keeps
    // its last value.
    std::vector<const jvalue*> members;
    members.reserve(j.size());
    const jvalue* m = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, m = m->next()) members.push_back(m);
    std::stable_sort(members.begin(), members.end(),
                     [](const jvalue* a, const jvalue* b) { return a->key() < b->key(); });
    auto* obj = v.mutable_object();
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i + 1 < members.size() && members[i + 1]->key() == members[i]->key()) continue;
      auto* f = obj->add_fields();
      f->set_key(std::string(members[i]->key()));
      *f->mutable_value() = plain_value(*members[i]);
    }
  } else {
    v.set_null_value(true);
  }
  return v;
}

std::optional<failure> parse_variables(const jvalue& arr, std::string_view where,
                                       std::vector<variable>& out);

parsed<v1::Value> typed_value(std::string_view type, const jvalue& j, std::string_view where) {
  if (j.is_null()) return null_value();
  v1::Value v;
  if (type == "boolean") {
    if (!j.is_boolean()) return bad(where, "must be a boolean or null");
    v.set_boolean(j.boolean());
  } else if (type == "number") {
    if (!j.is_number()) return bad(where, "must be a number or null");
    v.set_number(j.number());
  } else if (type == "text" || type == "ref") {
    if (!j.is_string()) return bad(where, "must be a string or null");
    v.set_text(std::string(j.str()));
  } else if (type == "date") {
    if (!j.is_string() || !is_date(j.str()))
      return bad(where, "must be a date 'YYYY-MM-DD' or null");
    v.set_text(std::string(j.str()));
  } else if (type == "dateTime") {
    if (!j.is_string() || !is_date_time(j.str()))
      return bad(where, "must be a date-time 'YYYY-MM-DDTHH:MM:SS' or null");
    v.set_text(std::string(j.str()));
  } else if (type == "money") {
    std::optional<double> amount;
    if (j.is_number())
      amount = j.number();
    else if (j.is_string())
      amount = parse_money(j.str());
    if (!amount) return bad(where, "must be money 'CUR 12.34' or null");
    v.set_number(*amount);
  } else if (type == "object") {
    if (!j.is_array()) return bad(where, "must be an array of variables or null");
    std::vector<variable> fields;
    if (auto f = parse_variables(j, where, fields)) return *f;
    std::map<std::string, v1::Value> sorted;
    for (auto& f : fields) sorted[f.name] = std::move(f.value);
    auto* obj = v.mutable_object();
    for (auto& [k, val] : sorted) {
      auto* f = obj->add_fields();
      f->set_key(k);
      *f->mutable_value() = std::move(val);
    }
  } else if (type == "list") {
    if (!j.is_array()) return bad(where, "must be an array or null");
    auto* list = v.mutable_list();
    const jvalue* item = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, item = item->next()) {
      const jvalue* t = item->is_object() ? item->member("type") : nullptr;
      const jvalue* val = item->is_object() ? item->member("value") : nullptr;
      if (t && val && t->is_string() && one_of(t->str(), variable_types)) {
        auto converted =
            typed_value(t->str(), *val, std::string(where) + "[" + std::to_string(i) + "].value");
        if (!converted) return converted.err();
        *list->add_items() = std::move(*converted);
      } else {
        *list->add_items() = plain_value(*item);
      }
    }
  }
  return v;
}

std::optional<failure> parse_variable(const jvalue& j, const std::string& where, variable& out) {
  if (!j.is_object()) return bad(where, "must be an object {name, type, value}");
  if (auto f = req_string(j, "name", where + ".name", out.name)) return f;
  if (out.name.empty()) return bad(where + ".name", "must not be empty");
  const jvalue* t = j.member("type");
  if (!t || !t->is_string() || !one_of(t->str(), variable_types))
    return bad(where + ".type", "required, one of " + list_of(variable_types));
  out.type = t->str();
  const jvalue* v = j.member("value");
  if (!v) return bad(where + ".value", "required (null is allowed)");
  auto converted = typed_value(out.type, *v, where + ".value");
  if (!converted) return converted.err();
  out.value = std::move(*converted);
  return std::nullopt;
}

std::optional<failure> parse_variables(const jvalue& arr, std::string_view where,
                                       std::vector<variable>& out) {
  if (!arr.is_array()) return bad(where, "must be an array of variables");
  out.reserve(arr.size());
  const jvalue* item = arr.first();
  for (std::size_t i = 0; i < arr.size(); ++i, item = item->next()) {
    variable v;
    if (auto f = parse_variable(*item, std::string(where) + "[" + std::to_string(i) + "]", v))
      return f;
    out.push_back(std::move(v));
  }
  return std::nullopt;
}

std::optional<failure> parse_options(const jvalue& body, response_options& out) {
  const jvalue* o = body.member("responseOptions");
  if (!o || o->is_null()) return std::nullopt;
  if (!o->is_object()) return bad("responseOptions", "must be an object");
  if (const jvalue* v = o->member("variables"); v && !v->is_null()) {
    if (!v->is_object()) return bad("responseOptions.variables", "must be an object");
    if (auto f = req_bool(*v, "include", "responseOptions.variables.include", out.variables))
      return f;
    if (auto f =
            req_bool(*v, "onlyChanged", "responseOptions.variables.onlyChanged", out.only_changed))
      return f;
    if (const jvalue* filter = v->member("filter"); filter && !filter->is_null()) {
      if (!filter->is_array())
        return bad("responseOptions.variables.filter", "must be an array of strings or null");
      const jvalue* item = filter->first();
      for (std::size_t i = 0; i < filter->size(); ++i, item = item->next()) {
        if (!item->is_string())
          return bad("responseOptions.variables.filter[" + std::to_string(i) + "]",
                     "must be a string");
        out.filter.emplace_back(item->str());
      }
    }
  }
  if (auto f = opt_bool(*o, "metrics", "responseOptions.metrics", out.metrics)) return f;
  if (auto f = opt_bool(*o, "intents", "responseOptions.intents", out.intents)) return f;
  if (auto f = opt_bool(*o, "entities", "responseOptions.entities", out.entities)) return f;
  return std::nullopt;
}

// ------------------------------------------------------------------ headers and paths

// The headers the parse functions read, found in one pass over the request's
// headers: for each name the first, case-insensitively (as http::find_header
// finds them, without its locale-aware tolower per character).
struct request_headers {
  const std::string* authorization = nullptr;
  const std::string* org_id = nullptr;
  const std::string* request_id = nullptr;
  const std::string* runtime_crc = nullptr;
  const std::string* end_reason = nullptr;
};

request_headers find_headers(const http::request& req) {
  request_headers h;
  for (const auto& [name, value] : req.headers) {
    const std::string** slot = nullptr;
    switch (name.size()) {
      case 8:
        if (iequals(name, "X-Org-Id")) slot = &h.org_id;
        break;
      case 12:
        if (iequals(name, "X-Request-ID")) slot = &h.request_id;
        break;
      case 13:
        if (iequals(name, "Authorization"))
          slot = &h.authorization;
        else if (iequals(name, "X-Runtime-CRC"))
          slot = &h.runtime_crc;
        break;
      case 20:
        if (iequals(name, "X-Session-End-Reason")) slot = &h.end_reason;
        break;
      default:
        break;
    }
    if (slot && !*slot) *slot = &value;
  }
  return h;
}

std::optional<failure> parse_context(const http::request& req, const request_headers& headers,
                                     request_context& ctx) {
  const std::string* auth = headers.authorization;
  if (!auth || trim(*auth).empty())
    return make_failure(401, "Authorization: bearer token required");
  std::string_view a = trim(*auth);
  constexpr std::string_view scheme = "bearer";
  if (a.size() <= scheme.size() || !iequals(a.substr(0, scheme.size()), scheme) ||
      (a[scheme.size()] != ' ' && a[scheme.size()] != '\t'))
    return make_failure(401, "Authorization: must be 'Bearer <token>'");
  std::string_view token = trim(a.substr(scheme.size()));
  if (token.empty() || token.size() > 4096 || !printable(token))
    return make_failure(401, "Authorization: must be 'Bearer <token>'");
  ctx.bearer_token = std::string(token);

  const std::string* org = headers.org_id;
  if (!org || trim(*org).empty()) return bad("X-Org-Id", "required header");
  std::string_view o = trim(*org);
  if (!valid_id(o))
    return bad("X-Org-Id", "must be 1 to 128 letters, digits or the characters . _ ~ : -");
  ctx.org_id = std::string(o);

  ctx.request_id = safe_header_value(req.request_id);
  if (ctx.request_id.empty())
    if (const std::string* rid = headers.request_id) ctx.request_id = safe_header_value(trim(*rid));
  if (const std::string* crc = headers.runtime_crc) ctx.runtime_crc = safe_header_value(trim(*crc));
  return std::nullopt;
}

// The segments of "/a/b/c"; empty segments make the path invalid. No route has
// more than 4, so at most 9 are kept.
struct path_segments {
  std::array<std::string_view, 9> seg;
  std::size_t n = 0;
  std::size_t size() const { return n; }
  bool empty() const { return n == 0; }
  std::string_view operator[](std::size_t i) const { return seg[i]; }
};

path_segments segments(std::string_view path) {
  path_segments out;
  if (path.empty() || path[0] != '/') return out;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.seg[out.n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (out.n == out.seg.size()) break;
  }
  return out;
}

std::string path_label(std::string_view path) {
  if (path.size() > 200 || !printable(path)) return "the path";
  return "'" + std::string(path) + "'";
}

std::optional<std::string> path_id(std::string_view path, endpoint kind) {
  auto r = match_route(kind == endpoint::end_session ? "DELETE" : "POST", path);
  if (!r || r->kind != kind) return std::nullopt;
  return std::move(r->id);
}

// ------------------------------------------------------------------ JSON out
//
// Responses are written straight into their body string, no DOM. The text is
// byte for byte what nlohmann's `dump(-1, ' ', false, error_handler_t::replace)`
// wrote for the same document before (tests/unit/botapi/botapi_reference.hpp
// keeps that rendering as the reference): no blanks; strings escape '"', '\\'
// and the control characters (\b \t \n \f \r, else \u00xx in lower-case hex),
// copy valid UTF-8 as it is and replace each invalid or truncated sequence by
// U+FFFD; integral doubles below 2^53 print as integers, other finite doubles
// with nlohmann's shortest round-trip form, NaN and infinities as null.

template <std::size_t N>
void lit(std::string& out, const char (&s)[N]) {
  out.append(s, N - 1);
}

constexpr char hex_digits[] = "0123456789abcdef";

void append_replacement(std::string& out) { lit(out, "\xEF\xBF\xBD"); }

// The characters of a JSON string, without the quotes.
void append_escaped(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && plain_bytes[*p]) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const int n = utf8_sequence(p, end);
      if (n > 0) {
        out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
        p += n;
      } else {
        append_replacement(out);
        p += -n;
      }
      continue;
    }
    ++p;
    switch (c) {
      case '"':
        lit(out, "\\\"");
        break;
      case '\\':
        lit(out, "\\\\");
        break;
      case '\b':
        lit(out, "\\b");
        break;
      case '\t':
        lit(out, "\\t");
        break;
      case '\n':
        lit(out, "\\n");
        break;
      case '\f':
        lit(out, "\\f");
        break;
      case '\r':
        lit(out, "\\r");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xf]};
        out.append(esc, sizeof esc);
      }
    }
  }
}

// A JSON string.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  append_escaped(out, s);
  out += '"';
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// A number as the response shows it: integral doubles as integers ("3", not
// "3.0"), non-finite ones as null.
void append_number(std::string& out, double d) {
  if (!std::isfinite(d)) return lit(out, "null");
  if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return append_int(out, static_cast<std::int64_t>(d));
  // nlohmann's own Grisu2 formatting, so that the digits are the ones it printed.
  char buf[64];
  char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, end);
}

void append_bool(std::string& out, bool b) {
  if (b)
    lit(out, "true");
  else
    lit(out, "false");
}

// Plain JSON for a value; deeper than max_json_depth becomes null. Object keys
// are unique: a repeated key keeps its first place and takes its last value.
void append_plain(std::string& out, const v1::Value& v, int depth) {
  if (depth > max_json_depth) return lit(out, "null");
  switch (v.kind_case()) {
    case v1::Value::kText:
      return append_string(out, v.text());
    case v1::Value::kNumber:
      return append_number(out, v.number());
    case v1::Value::kBoolean:
      return append_bool(out, v.boolean());
    case v1::Value::kList: {
      out += '[';
      bool first = true;
      for (const auto& item : v.list().items()) {
        if (!first) out += ',';
        first = false;
        append_plain(out, item, depth + 1);
      }
      out += ']';
      return;
    }
    case v1::Value::kObject: {
      const auto& fields = v.object().fields();
      const int n = fields.size();
      out += '{';
      bool first = true;
      for (int i = 0; i < n; ++i) {
        const std::string& key = fields[i].key();
        bool seen = false;
        for (int j = 0; j < i && !seen; ++j) seen = fields[j].key() == key;
        if (seen) continue;
        int last = i;
        for (int j = i + 1; j < n; ++j)
          if (fields[j].key() == key) last = j;
        if (!first) out += ',';
        first = false;
        append_string(out, key);
        out += ':';
        append_plain(out, fields[last].value(), depth + 1);
      }
      out += '}';
      return;
    }
    default:
      return lit(out, "null");
  }
}

// A value as text, the way the bot's templates show it ("12.5", "true", "a, b").
std::string value_text(const v1::Value& v) {
  std::string out;
  switch (v.kind_case()) {
    case v1::Value::kText:
      return v.text();
    case v1::Value::kNumber:
      append_number(out, v.number());
      return out;
    case v1::Value::kBoolean:
      return v.boolean() ? "true" : "false";
    case v1::Value::kList:
      for (const auto& item : v.list().items()) {
        if (!out.empty()) out += ", ";
        if (item.kind_case() == v1::Value::kList)
          append_plain(out, item, 1);
        else
          out += value_text(item);
      }
      return out;
    case v1::Value::kObject:
      append_plain(out, v, 0);
      return out;
    default:
      return out;
  }
}

const char* inferred_type(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kBoolean:
      return "boolean";
    case v1::Value::kNumber:
      return "number";
    case v1::Value::kList:
      return "list";
    case v1::Value::kObject:
      return "object";
    default:
      return "text";
  }
}

std::string money_text(double amount, std::string_view currency) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, amount, std::chars_format::fixed, 2);
  std::string out(currency.empty() ? "USD" : currency);
  out += ' ';
  out.append(buf, ec == std::errc() ? end : buf);
  return out;
}

void append_typed(std::string& out, const v1::Value& v, std::string_view type,
                  std::string_view currency, int depth);

// `{"name":..,"type":..,"value":..}`; the type names need no escaping.
void append_variable(std::string& out, std::string_view name, const char* type, const v1::Value& v,
                     std::string_view currency, int depth) {
  lit(out, "{\"name\":");
  append_string(out, name);
  lit(out, ",\"type\":\"");
  out += type;
  lit(out, "\",\"value\":");
  append_typed(out, v, type, currency, depth);
  out += '}';
}

// A value as the JSON `value` of a contract variable of `type`.
void append_typed(std::string& out, const v1::Value& v, std::string_view type,
                  std::string_view currency, int depth) {
  const auto kind = v.kind_case();
  if (depth > max_json_depth || kind == v1::Value::KIND_NOT_SET || kind == v1::Value::kNullValue)
    return lit(out, "null");
  if (type == "boolean") {
    if (kind == v1::Value::kBoolean) return append_bool(out, v.boolean());
    return lit(out, "null");
  }
  if (type == "number") {
    if (kind == v1::Value::kNumber) return append_number(out, v.number());
    return lit(out, "null");
  }
  if (type == "money") {
    if (kind == v1::Value::kNumber && std::isfinite(v.number()))
      return append_string(out, money_text(v.number(), currency));
    if (kind == v1::Value::kText) return append_string(out, v.text());
    return lit(out, "null");
  }
  if (type == "list") {
    if (kind != v1::Value::kList) return lit(out, "null");
    out += '[';
    bool first = true;
    for (const auto& item : v.list().items()) {
      if (!first) out += ',';
      first = false;
      const char* t = inferred_type(item);
      lit(out, "{\"type\":\"");
      out += t;
      lit(out, "\",\"value\":");
      append_typed(out, item, t, currency, depth + 1);
      out += '}';
    }
    out += ']';
    return;
  }
  if (type == "object") {
    // ObjectValue → Variables array.
    if (kind != v1::Value::kObject) return lit(out, "null");
    out += '[';
    bool first = true;
    for (const auto& f : v.object().fields()) {
      if (!first) out += ',';
      first = false;
      append_variable(out, f.key(), inferred_type(f.value()), f.value(), currency, depth + 1);
    }
    out += ']';
    return;
  }
  // text, date, dateTime, ref
  if (kind == v1::Value::kText) return append_string(out, v.text());
  append_string(out, value_text(v));
}

const char* type_name(v1::VarType t, const v1::Value& v) {
  switch (t) {
    case v1::VAR_TEXT:
      return "text";
    case v1::VAR_NUMBER:
      return "number";
    case v1::VAR_BOOLEAN:
      return "boolean";
    case v1::VAR_DATE:
      return "date";
    case v1::VAR_DATETIME:
      return "dateTime";
    case v1::VAR_MONEY:
      return "money";
    case v1::VAR_LIST:
      return "list";
    case v1::VAR_OBJECT:
      return "object";
    default:
      return inferred_type(v);
  }
}

std::string choice_id(const v1::Choice& c) { return c.payload().empty() ? c.label() : c.payload(); }

// The UUID-form ids of message_id() for one turn: FNV-1a with two seeds over
// "<session id>\0<sequence id>\0<index>", the turn's part hashed once.
class message_id_hash {
 public:
  message_id_hash(std::string_view session_id, std::int64_t sequence_id) {
    for (unsigned char c : session_id) feed(h1_, h2_, c);
    feed(h1_, h2_, 0);
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, sequence_id);
    for (const char* c = buf; c != end; ++c) feed(h1_, h2_, static_cast<unsigned char>(*c));
    feed(h1_, h2_, 0);
  }

  /// Appends the id of the turn's message `index` to `out`.
  void append(std::string& out, std::size_t index) const {
    std::uint64_t h1 = h1_, h2 = h2_;
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(index));
    for (const char* c = buf; c != end; ++c) feed(h1, h2, static_cast<unsigned char>(*c));
    std::uint64_t hi = mix(h1);
    std::uint64_t lo = mix(h2 ^ hi);
    // RFC 9562 layout: version 8 (custom), variant 10.
    hi = (hi & ~0xf000ULL) | 0x8000ULL;
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
    char id[36];
    auto put = [&](int at, std::uint64_t v, int digits) {
      for (int i = digits - 1; i >= 0; --i, v >>= 4) id[at + i] = hex_digits[v & 0xf];
    };
    put(0, hi >> 32, 8);
    id[8] = '-';
    put(9, (hi >> 16) & 0xffff, 4);
    id[13] = '-';
    put(14, hi & 0xffff, 4);
    id[18] = '-';
    put(19, lo >> 48, 4);
    id[23] = '-';
    put(24, lo & 0xffffffffffffULL, 12);
    out.append(id, sizeof id);
  }

 private:
  static constexpr std::uint64_t prime = 0x100000001b3ULL;
  static void feed(std::uint64_t& h1, std::uint64_t& h2, unsigned char c) {
    h1 = (h1 ^ c) * prime;
    h2 = (h2 ^ c) * prime;
  }
  std::uint64_t h1_ = 0xcbf29ce484222325ULL, h2_ = 0x84222325cbf29ce4ULL;
};

// `"id":"<message id>"` of the next message of the turn.
struct message_ids {
  explicit message_ids(const reply& r) : hash(r.session_id, r.sequence_id) {}
  message_id_hash hash;
  std::size_t index = 0;
  void append(std::string& out) {
    lit(out, "\"id\":\"");
    hash.append(out, index++);
    out += '"';
  }
};

void append_escalate_target(std::string& out, std::string_view t) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> prefixes = {{
      {"bot:", "Salesforce:Core:Bot:Id"},
      {"flow:", "Salesforce:Core:Flow:Id"},
      {"queue:", "Salesforce:Core:Queue:Id"},
      {"skill:", "Salesforce:Core:Skill:Id"},
  }};
  std::string_view type = "Salesforce:Core:Skill:Id";
  for (const auto& [prefix, name] : prefixes)
    if (t.size() >= prefix.size() && iequals(t.substr(0, prefix.size()), prefix)) {
      type = name;
      t.remove_prefix(prefix.size());
      break;
    }
  lit(out, "{\"type\":\"");
  out += type;
  lit(out, "\",\"value\":");
  append_string(out, t);
  out += '}';
}

const char* end_reason_name(v1::EndReason r) {
  switch (r) {
    case v1::COMPLETED:
      return "Action";
    case v1::INFINITE_LOOP_DETECTED:
      return "InfiniteLoopDetected";
    default:
      return "Error";
  }
}

// `"messages":[...]` of a turn.
void append_messages(std::string& out, const reply& r, const v1::TurnResult& turn) {
  lit(out, "\"messages\":[");
  message_ids ids{r};
  bool first = true;
  auto next = [&] {
    if (!first) out += ',';
    first = false;
  };
  for (const auto& m : turn.messages()) {
    if (!m.text().empty()) {
      next();
      lit(out, "{\"type\":\"text\",");
      ids.append(out);
      lit(out, ",\"text\":");
      append_string(out, m.text());
      out += '}';
    }
    if (m.choices_size() > 0) {
      next();
      lit(out, "{\"type\":\"choices\",");
      ids.append(out);
      lit(out, ",\"choices\":[");
      int alias = 1;
      for (const auto& c : m.choices()) {
        if (alias > 1) out += ',';
        lit(out, "{\"label\":");
        append_string(out, c.label());
        lit(out, ",\"alias\":\"");
        append_int(out, alias++);
        lit(out, "\",\"id\":");
        append_string(out, c.payload().empty() ? c.label() : c.payload());
        out += '}';
      }
      lit(out, "],\"widget\":\"buttons\"}");
    }
  }
  if (turn.state().status() == v1::TRANSFERRED) {
    next();
    lit(out, "{\"type\":\"escalate\",");
    ids.append(out);
    lit(out, ",\"targets\":[");
    bool first_target = true;
    if (!turn.transfer().queue().empty()) {
      lit(out, "{\"type\":\"Salesforce:Core:Queue:Id\",\"value\":");
      append_string(out, turn.transfer().queue());
      out += '}';
      first_target = false;
    }
    for (const auto& t : turn.transfer().targets()) {
      if (!first_target) out += ',';
      first_target = false;
      append_escalate_target(out, t);
    }
    lit(out, "]}");
  } else if (turn.state().status() == v1::ENDED) {
    next();
    lit(out, "{\"type\":\"sessionEnded\",");
    ids.append(out);
    lit(out, ",\"reason\":\"");
    out += end_reason_name(turn.end_reason());
    lit(out, "\"}");
  }
  out += ']';
}

// `"_links":{...}`. The href is base URL, "/v5.3.0/sessions/" and the session
// id: escaped piece by piece, which gives the escaping of the whole, as every
// piece is followed by ASCII or the end of the string.
void append_links(std::string& out, const reply& r) {
  auto href = [&](bool messages) {
    lit(out, "{\"href\":\"");
    append_escaped(out, r.base_url);
    out += '/';
    out += api_version;
    lit(out, "/sessions/");
    append_escaped(out, r.session_id);
    if (messages) lit(out, "/messages");
    lit(out, "\"}");
  };
  lit(out, "\"_links\":{\"self\":");
  href(false);
  lit(out, ",\"messages\":");
  href(true);
  lit(out, ",\"session\":");
  href(false);
  out += '}';
}

// `"variables"`, `"metrics"`, `"intents"`, `"entities"` as the options ask, each
// followed by a comma.
void append_extras(std::string& out, const reply& r, const v1::TurnResult* turn) {
  if (r.options.variables) {
    lit(out, "\"variables\":[");
    bool first = true;
    for (const auto& v : r.variables) {
      if (!first) out += ',';
      first = false;
      append_variable(out, v.name, type_name(v.type, v.value), v.value, r.currency, 0);
    }
    lit(out, "],");
  }
  if (r.options.metrics) lit(out, "\"metrics\":{},");
  if (r.options.intents) {
    lit(out, "\"intents\":[");
    if (turn) {
      const bool direct = turn->matched_by() == "exact" || turn->matched_by() == "menu";
      bool first = true;
      for (const auto& i : turn->intents()) {
        if (!first) out += ',';
        first = false;
        lit(out, "{\"label\":");
        append_string(out, i.name());
        lit(out, ",\"confidenceScore\":");
        append_number(out, i.confidence());
        if (direct)
          lit(out, ",\"intentSource\":\"DIRECT\"}");
        else
          lit(out, ",\"intentSource\":\"CORE_NLP\"}");
      }
    }
    lit(out, "],");
  }
  if (r.options.entities) {
    lit(out, "\"entities\":[");
    if (turn) {
      bool first = true;
      for (const auto& e : turn->entities()) {
        if (!first) out += ',';
        first = false;
        lit(out, "{\"confidenceScore\":1,\"value\":");
        append_string(out, e.value());
        lit(out, ",\"type\":");
        append_string(out, e.entity());
        lit(out, ",\"entitySource\":\"BOT_SERVICE\"}");
      }
    }
    lit(out, "],");
  }
}

// A first guess at the size of a response body, so that it is allocated once.
std::size_t body_size_hint(const reply& r, const v1::TurnResult* turn) {
  std::size_t n = 320 + r.bot_version.size() + 3 * (r.base_url.size() + r.session_id.size()) +
                  24 * r.processed_sequence_ids.size() + 64 * r.variables.size();
  if (turn) {
    for (const auto& m : turn->messages()) {
      n += 80 + m.text().size();
      for (const auto& c : m.choices()) n += 48 + c.label().size() + c.payload().size();
    }
    n += 64 * (turn->intents_size() + turn->entities_size() + turn->transfer().targets_size());
  }
  return n;
}

// The body of a session response: `sessionId` (start only), `botVersion`,
// `processedSequenceIds`, `messages`, the extras, `_links`.
template <class Messages>
std::string session_body(const reply& r, const v1::TurnResult* turn, bool start,
                         Messages&& messages) {
  std::string out;
  out.reserve(body_size_hint(r, turn));
  out += '{';
  if (start) {
    lit(out, "\"sessionId\":");
    append_string(out, r.session_id);
    out += ',';
  }
  lit(out, "\"botVersion\":");
  append_string(out, r.bot_version);
  lit(out, ",\"processedSequenceIds\":[");
  bool first = true;
  for (auto id : r.processed_sequence_ids) {
    if (!first) out += ',';
    first = false;
    append_int(out, id);
  }
  lit(out, "],");
  messages(out);
  out += ',';
  append_extras(out, r, turn);
  append_links(out, r);
  out += '}';
  return out;
}

std::string runtime_crc(const reply& r) {
  if (!r.runtime_crc.empty()) return safe_header_value(r.runtime_crc);
  std::string out;
  append_hex(out, mix(fnv1a(r.bot_version, fnv1a(r.session_id, 0xcbf29ce484222325ULL) ^ 0xff)), 16);
  return out;
}

http::response success(std::string body, const reply& r, bool start) {
  http::response resp = http::response::json(200, std::move(body));
  resp.headers.reserve(3);
  add_header(resp, "X-Request-ID", safe_header_value(r.request_id));
  add_header(resp, "X-Runtime-CRC", runtime_crc(r));
  if (start) resp.headers.emplace_back("X-Bot-Mode", "default");
  return resp;
}

const char* error_class(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "UnauthorizedError";
    case 403:
      return "ForbiddenError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowedError";
    case 422:
      return "RequestProcessingException";
    case 423:
      return "ServerBusyError";
    case 429:
      return "TooManyRequestsError";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalServerError";
  }
}

}  // namespace

// ------------------------------------------------------------------ public

failure make_failure(int status, std::string message) {
  return failure{status, error_class(status), std::move(message)};
}

parsed<route> match_route(std::string_view method, std::string_view path) {
  auto seg = segments(path);
  auto method_is = [&](std::string_view m) { return method == m; };
  auto wrong_method = [&](std::string_view allowed) {
    return make_failure(
        405, "method: " +
                 std::string(method.size() <= 16 && printable(method) ? method : "this method") +
                 " not allowed on " + path_label(path) + ", use " + std::string(allowed));
  };
  auto not_found = [&] { return make_failure(404, "path: no such resource " + path_label(path)); };
  if (seg.size() == 1 && (seg[0] == "status" || seg[0] == "versions")) {
    if (!method_is("GET")) return wrong_method("GET");
    return route{seg[0] == "status" ? endpoint::status : endpoint::versions, {}};
  }
  if (seg.empty() || seg[0] != api_version) return not_found();
  if (seg.size() == 4 && seg[1] == "bots" && seg[3] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::start_session, std::string(seg[2])};
  }
  if (seg.size() == 4 && seg[1] == "sessions" && seg[3] == "messages") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::continue_session, std::string(seg[2])};
  }
  if (seg.size() == 3 && seg[1] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("DELETE")) return wrong_method("DELETE");
    return route{endpoint::end_session, std::string(seg[2])};
  }
  return not_found();
}

namespace {
botapi::variables by_name(const std::vector<variable>& vars) {
  botapi::variables out;
  for (const auto& v : vars) out[v.name] = v.value;
  return out;
}
}  // namespace

variables start_request::bot_variables() const { return by_name(variables); }
variables continue_request::bot_variables() const { return by_name(variables); }

parsed<start_request> parse_start(const http::request& req) try {
  start_request out;
  auto id = path_id(req.path, endpoint::start_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.bot_id = std::move(*id);
  const request_headers headers = find_headers(req);
  if (auto f = parse_context(req, headers, out.ctx)) return *f;
  jdoc doc;
  if (auto f = parse_body(req.body, doc)) return *f;
  const jvalue& j = doc.root();

  if (auto f = req_string(j, "externalSessionKey", "externalSessionKey", out.external_session_key))
    return *f;
  if (out.external_session_key.empty()) return bad("externalSessionKey", "must not be empty");
  const jvalue* fc = j.member("forceConfig");
  if (!fc || !fc->is_object()) return bad("forceConfig", "required object {endpoint}");
  if (auto f = req_string(*fc, "endpoint", "forceConfig.endpoint", out.endpoint)) return *f;
  if (const jvalue* m = j.member("message"); m && !m->is_null()) {
    if (!m->is_object()) return bad("message", "must be an object {text}");
    if (const jvalue* t = m->member("text"); t && !t->is_null()) {
      if (!t->is_string()) return bad("message.text", "must be a string");
      out.text = std::string(t->str());
    }
  }
  if (const jvalue* tz = j.member("tz"); tz && !tz->is_null()) {
    if (!tz->is_string()) return bad("tz", "must be a string or null");
    out.tz = std::string(tz->str());
  }
  if (const jvalue* vars = j.member("variables"); vars && !vars->is_null())
    if (auto f = parse_variables(*vars, "variables", out.variables)) return *f;
  if (const jvalue* refs = j.member("referrers"); refs && !refs->is_null()) {
    if (!refs->is_array()) return bad("referrers", "must be an array or null");
    const jvalue* item = refs->first();
    for (std::size_t i = 0; i < refs->size(); ++i, item = item->next()) {
      const std::string where = "referrers[" + std::to_string(i) + "]";
      const jvalue& r = *item;
      if (!r.is_object()) return bad(where, "must be an object {type, value}");
      const jvalue* t = r.member("type");
      if (!t || !t->is_string() || !one_of(t->str(), referrer_types))
        return bad(where + ".type", "required, one of " + list_of(referrer_types));
      referrer ref;
      ref.type = t->str();
      if (auto f = req_string(r, "value", where + ".value", ref.value)) return *f;
      out.referrers.push_back(std::move(ref));
    }
  }
  if (auto f = parse_options(j, out.options)) return *f;
  return out;
} catch (const std::exception&) {
  // Only allocation failure can get here; the request is refused, not the process.
  return bad("body", "could not be processed");
}

parsed<continue_request> parse_continue(const http::request& req) try {
  continue_request out;
  auto id = path_id(req.path, endpoint::continue_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.session_id = std::move(*id);
  const request_headers headers = find_headers(req);
  if (auto f = parse_context(req, headers, out.ctx)) return *f;
  jdoc doc;
  if (auto f = parse_body(req.body, doc)) return *f;
  const jvalue& j = doc.root();

  const jvalue* mp = j.member("message");
  if (!mp || !mp->is_object()) return bad("message", "required object");
  const jvalue& m = *mp;
  static constexpr std::array<std::pair<std::string_view, message_kind>, 7> kinds = {{
      {"text", message_kind::text},
      {"choice", message_kind::choice},
      {"redirect", message_kind::redirect},
      {"transferSucceeded", message_kind::transfer_succeeded},
      {"transferFailed", message_kind::transfer_failed},
      {"endSession", message_kind::end_session},
      {"setVariables", message_kind::set_variables},
  }};
  const jvalue* type = m.member("type");
  auto kind = kinds.end();
  if (type && type->is_string())
    kind = std::find_if(kinds.begin(), kinds.end(),
                        [&](const auto& k) { return k.first == type->str(); });
  if (kind == kinds.end())
    return bad("message.type",
               "required, one of text, choice, redirect, transferSucceeded, transferFailed, "
               "endSession, setVariables");
  out.kind = kind->second;

  const jvalue* seq = m.member("sequenceId");
  if (!seq || !seq->is_number_integer()) return bad("message.sequenceId", "required integer");
  if (seq->is_number_unsigned() &&
      seq->uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return bad("message.sequenceId", "must fit in a signed 64-bit integer");
  out.sequence_id = seq->int64();
  if (out.sequence_id < 0) return bad("message.sequenceId", "must not be negative");
  if (auto f = opt_string(m, "inReplyToMessageId", "message.inReplyToMessageId", out.in_reply_to))
    return *f;

  switch (out.kind) {
    case message_kind::text:
      if (auto f = req_string(m, "text", "message.text", out.text)) return *f;
      break;
    case message_kind::choice: {
      const jvalue* idx = m.member("choiceIndex");
      if (idx && !idx->is_null()) {
        if (!idx->is_number_integer())
          return bad("message.choiceIndex", "must be an integer or null");
        if (idx->is_number_unsigned() &&
            idx->uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return bad("message.choiceIndex", "must be at least 1");
        const std::int64_t n = idx->int64();
        if (n < 1) return bad("message.choiceIndex", "must be at least 1");
        out.choice_index = n;
      }
      const jvalue* cid = m.member("choiceId");
      if (cid && !cid->is_null()) {
        if (!cid->is_string()) return bad("message.choiceId", "must be a string or null");
        out.choice_id = std::string(cid->str());
      }
      if (!out.choice_index && !out.choice_id)
        return bad("message.choiceIndex", "either choiceIndex or choiceId is required");
      break;
    }
    case message_kind::redirect:
      if (auto f = req_string(m, "dialogId", "message.dialogId", out.dialog_id)) return *f;
      break;
    case message_kind::transfer_succeeded:
      break;
    case message_kind::transfer_failed: {
      const jvalue* r = m.member("reason");
      if (!r || !r->is_string() || !one_of(r->str(), transfer_failed_reasons))
        return bad("message.reason", "required, one of " + list_of(transfer_failed_reasons));
      out.reason = r->str();
      if (auto f = opt_string(m, "description", "message.description", out.description)) return *f;
      break;
    }
    case message_kind::end_session: {
      const jvalue* r = m.member("reason");
      if (!r || !r->is_string() || !one_of(r->str(), end_session_reasons))
        return bad("message.reason", "required, one of " + list_of(end_session_reasons));
      out.reason = r->str();
      break;
    }
    case message_kind::set_variables: {
      const jvalue* vars = m.member("variables");
      if (!vars || !vars->is_array())
        return bad("message.variables", "required array of variables");
      if (auto f = parse_variables(*vars, "message.variables", out.variables)) return *f;
      break;
    }
  }
  if (auto f = parse_options(j, out.options)) return *f;
  return out;
} catch (const std::exception&) {
  return bad("body", "could not be processed");
}

parsed<end_request> parse_end(const http::request& req) try {
  end_request out;
  auto id = path_id(req.path, endpoint::end_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.session_id = std::move(*id);
  const request_headers headers = find_headers(req);
  if (auto f = parse_context(req, headers, out.ctx)) return *f;
  const std::string* reason = headers.end_reason;
  std::string_view r = reason ? trim(*reason) : std::string_view{};
  if (!one_of(r, end_session_reasons))
    return bad("X-Session-End-Reason", "required header, one of " + list_of(end_session_reasons));
  out.reason = std::string(r);
  return out;
} catch (const std::exception&) {
  return bad("request", "could not be processed");
}

parsed<v1::Input> to_input(const continue_request& msg, const v1::TurnResult* last_turn,
                           std::int64_t now_unix) {
  switch (msg.kind) {
    case message_kind::text: {
      v1::Input in;
      in.set_text(msg.text);
      in.set_now_unix(now_unix);
      return in;
    }
    case message_kind::choice: {
      v1::Input in;
      in.set_now_unix(now_unix);
      if (msg.choice_id) {
        in.set_payload(*msg.choice_id);
        return in;
      }
      const v1::Outbound* menu = nullptr;
      if (last_turn)
        for (const auto& o : last_turn->messages())
          if (o.choices_size() > 0) menu = &o;
      if (!menu) return bad("message.choiceIndex", "the bot offered no choices to pick from");
      const std::int64_t n = msg.choice_index.value_or(0);
      if (n < 1 || n > menu->choices_size())
        return bad("message.choiceIndex", "no choice " + std::to_string(n) + " among the " +
                                              std::to_string(menu->choices_size()) + " offered");
      in.set_payload(choice_id(menu->choices(static_cast<int>(n - 1))));
      return in;
    }
    default:
      return bad("message.type", "carries no user input for the bot");
  }
}

std::vector<variable_out> response_variables(const v1::Program& program, const v1::State& state,
                                             const response_options& options,
                                             const v1::State* previous) {
  std::vector<variable_out> out;
  if (!options.variables) return out;
  auto value_in = [&](const v1::State& s, int index) -> const v1::Value* {
    for (const auto& slot : s.vars())
      if (slot.index() == static_cast<std::uint32_t>(index)) return &slot.value();
    return nullptr;
  };
  for (int i = 0; i < program.variables_size(); ++i) {
    const auto& decl = program.variables(i);
    if (!options.filter.empty() && std::find(options.filter.begin(), options.filter.end(),
                                             decl.name()) == options.filter.end())
      continue;
    const v1::Value* now = value_in(state, i);
    if (options.only_changed && previous) {
      const v1::Value* before = value_in(*previous, i);
      if (now == before) continue;  // both unset
      if (now && before && now->SerializeAsString() == before->SerializeAsString()) continue;
    }
    variable_out v;
    v.name = decl.name();
    v.type = decl.type();
    v.value = now ? *now : (decl.has_default_value() ? decl.default_value() : null_value());
    out.push_back(std::move(v));
  }
  return out;
}

std::string message_id(std::string_view session_id, std::int64_t sequence_id, std::size_t index) {
  std::string out;
  out.reserve(36);
  message_id_hash(session_id, sequence_id).append(out, index);
  return out;
}

http::response render_start(const reply& r, const v1::TurnResult& turn) {
  return success(session_body(r, &turn, /*start=*/true,
                              [&](std::string& out) { append_messages(out, r, turn); }),
                 r, /*start=*/true);
}

http::response render_continue(const reply& r, const v1::TurnResult& turn) {
  return success(session_body(r, &turn, /*start=*/false,
                              [&](std::string& out) { append_messages(out, r, turn); }),
                 r, /*start=*/false);
}

http::response render_end(const reply& r) {
  return success(
      session_body(r, nullptr, /*start=*/false,
                   [&](std::string& out) {
                     lit(out, "\"messages\":[{\"type\":\"sessionEnded\",\"id\":\"");
                     message_id_hash(r.session_id, r.sequence_id).append(out, end_message_index);
                     lit(out, "\",\"reason\":\"ClientRequest\"}]");
                   }),
      r, /*start=*/false);
}

http::response render_error(int status, std::string_view message, std::string_view path,
                            std::string_view request_id, std::int64_t timestamp_ms,
                            std::optional<std::int64_t> retry_after_s) {
  std::string body;
  body.reserve(112 + 2 * (message.size() + path.size() + request_id.size()));
  lit(body, "{\"status\":");
  append_int(body, status);
  lit(body, ",\"path\":");
  append_string(body, path);
  lit(body, ",\"requestId\":");
  append_string(body, request_id);
  lit(body, ",\"error\":\"");
  body += error_class(status);
  lit(body, "\",\"message\":");
  append_string(body, message);
  lit(body, ",\"timestamp\":");
  append_int(body, timestamp_ms);
  body += '}';
  http::response resp = http::response::json(status, std::move(body));
  add_header(resp, "X-Request-ID", safe_header_value(request_id));
  if (retry_after_s)
    resp.headers.emplace_back("Retry-After",
                              std::to_string(std::max<std::int64_t>(0, *retry_after_s)));
  return resp;
}

http::response render_failure(const failure& f, const http::request& req,
                              std::int64_t timestamp_ms) {
  std::string request_id = safe_header_value(req.request_id);
  if (request_id.empty())
    if (const std::string* rid = req.header("X-Request-ID"))
      request_id = safe_header_value(trim(*rid));
  return render_error(f.status, f.message, req.path, request_id, timestamp_ms);
}

http::response render_status(bool up) {
  return http::response::json(200, up ? R"({"status":"UP"})" : R"({"status":"DOWN"})");
}

http::response render_versions() {
  std::string body = R"({"versions":[{"versionNumber":")";
  body += api_version;
  body += R"(","status":"ACTIVE"}]})";
  return http::response::json(200, std::move(body));
}

}  // namespace parley::channels::botapi
