#include "src/http/request_parser.hpp"

#include <cstring>

namespace parley::http {

namespace {

// Chunk-size lines carry extensions nobody sends at length; a cap keeps a client from
// making the connection's buffer grow without a limit.
constexpr std::size_t max_chunk_line = 4096;

bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c | 0x20) : c;
}

/// ASCII case-insensitive: header names and list tokens are ASCII.
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls `f(token)` for each trimmed element of a comma-separated list (empty ones
/// too when `keep_empty`); stops and returns false as soon as `f` does.
template <typename F>
bool for_each_token(std::string_view list, bool keep_empty, F&& f) {
  while (true) {
    auto comma = list.find(',');
    auto tok = trim(list.substr(0, comma));
    if ((keep_empty || !tok.empty()) && !f(tok)) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

/// Decimal digits only, no sign; false on overflow past 2^63.
bool parse_decimal(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
bool valid_chunk_extensions(std::string_view s) {
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  while (true) {
    skip_ws();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_ws();
    std::size_t start = i;
    while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
    skip_ws();
    if (i == s.size() || s[i] != '=') continue;
    ++i;
    skip_ws();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (c == '\\') {
          if (i + 1 == s.size()) return false;
          auto e = static_cast<unsigned char>(s[i + 1]);
          if (e != '\t' && (e < 0x20 || e == 0x7f)) return false;
          i += 2;
          continue;
        }
        if (c != '\t' && (c < 0x20 || c == 0x7f)) return false;
        ++i;
      }
      if (!closed) return false;
    } else {
      start = i;
      while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) ++i;
      if (i == start) return false;
    }
  }
}

}  // namespace

void request_parser::reset() {
  auto l = limits_;
  *this = request_parser(l);
}

void request_parser::fail(int status, const char* code, std::string message) {
  state_ = state::failed;
  error_status_ = status;
  error_code_ = code;
  error_message_ = std::move(message);
}

void request_parser::finish() {
  phase_ = phase::complete;
  state_ = state::done;
}

std::size_t request_parser::parse(std::string_view data, request& out) {
  std::size_t pos = 0;
  while (state_ == state::need_more && pos < data.size()) {
    auto rest = data.substr(pos);
    std::size_t n = 0;
    switch (phase_) {
      case phase::request_line:
      case phase::fields:
      case phase::trailers:
        n = parse_head(rest, out);
        break;
      case phase::complete:
        return pos;
      default:
        n = parse_body(rest, out);
        break;
    }
    if (n == 0) break;  // a partial line: needs more input
    pos += n;
  }
  return pos;
}

std::size_t request_parser::parse_head(std::string_view data, request& out) {
  if (phase_ == phase::request_line && !started_) {
    // Robustness (RFC 9112 2.2): empty lines before a request line are skipped, so
    // a client's stray CRLF after a body does not fail the next request.
    if (data[0] == '\r') {
      if (data.size() < 2) return 0;
      if (data[1] == '\n') return 2;
    }
    started_ = true;
  }
  std::size_t budget =
      limits_.max_header_bytes > head_bytes_ ? limits_.max_header_bytes - head_bytes_ : 0;
  std::size_t scan = data.size() < budget ? data.size() : budget;
  const void* nl = scan == 0 ? nullptr : std::memchr(data.data(), '\n', scan);
  if (nl == nullptr) {
    if (data.size() >= budget) {
      std::size_t kib = limits_.max_header_bytes / 1024;
      fail(431, "headers_too_large",
           std::string(phase_ == phase::trailers ? "request trailers exceed "
                                                 : "request headers exceed ") +
               (kib * 1024 == limits_.max_header_bytes
                    ? std::to_string(kib) + " KiB"
                    : std::to_string(limits_.max_header_bytes) + " bytes"));
    }
    return 0;
  }
  std::size_t lf = static_cast<const char*>(nl) - data.data();
  if (lf == 0 || data[lf - 1] != '\r') {
    fail_bad("bad line ending");
    return 0;
  }
  std::size_t len = lf + 1;
  head_bytes_ += len;
  std::string_view line = data.substr(0, lf - 1);
  bool ok = true;
  switch (phase_) {
    case phase::request_line:
      ok = on_request_line(line, out);
      if (ok) phase_ = phase::fields;
      break;
    case phase::fields:
      ok = line.empty() ? on_head_complete() : on_field(line, out, false);
      break;
    default:  // trailers
      if (line.empty())
        finish();
      else
        ok = on_field(line, out, true);
      break;
  }
  return ok ? len : 0;
}

bool request_parser::on_request_line(std::string_view line, request& out) {
  std::size_t i = 0;
  while (i < line.size() && is_tchar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') {
    fail_bad("bad method");
    return false;
  }
  std::size_t t = i + 1;
  std::size_t j = t;
  while (j < line.size() && static_cast<unsigned char>(line[j]) > 0x20 && line[j] != 0x7f) ++j;
  if (j == t || j == line.size() || line[j] != ' ') {
    fail_bad("bad target");
    return false;
  }
  auto version = line.substr(j + 1);
  if (version == "HTTP/1.1") {
    http10_ = false;
  } else if (version == "HTTP/1.0") {
    http10_ = true;
  } else {
    fail_bad("bad version");
    return false;
  }
  out.method.assign(line.data(), i);
  out.target.assign(line.data() + t, j - t);
  auto target = line.substr(t, j - t);
  auto q = target.find('?');
  if (q == std::string_view::npos) {
    out.path.assign(target.data(), target.size());
  } else {
    out.path.assign(target.data(), q);
    out.query.assign(target.data() + q + 1, target.size() - q - 1);
  }
  // Typical requests carry about eight fields; one allocation for all of them.
  out.headers.reserve(12);
  return true;
}

bool request_parser::on_field(std::string_view line, request& out, bool trailer) {
  if (is_ows(line[0])) {
    // Obsolete line folding (RFC 9112 5.2): rejected rather than unfolded.
    fail_bad("bad obs-fold");
    return false;
  }
  std::size_t i = 0;
  while (i < line.size() && is_tchar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i == line.size() || line[i] != ':') {
    fail_bad("bad field");
    return false;
  }
  auto name = line.substr(0, i);
  auto value = trim(line.substr(i + 1));
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      fail_bad("bad value");
      return false;
    }
  }
  bool is_length = iequals(name, "Content-Length");
  bool is_coding = iequals(name, "Transfer-Encoding");
  if (trailer) {
    // Framing is settled by the head; a trailer may not change it.
    if (is_length || is_coding) {
      fail_bad(is_length ? "bad Content-Length" : "bad Transfer-Encoding");
      return false;
    }
  } else if (is_length) {
    if (saw_transfer_encoding_) {
      fail_bad("bad Content-Length");
      return false;
    }
    // A list of equal values ("5, 5", or repeated fields) is one length (RFC 9110 8.6).
    bool any = false;
    bool ok = for_each_token(value, true, [&](std::string_view tok) {
      std::uint64_t v = 0;
      if (!parse_decimal(tok, v)) return false;
      if (has_length_ && v != content_length_) return false;
      has_length_ = true;
      content_length_ = v;
      any = true;
      return true;
    });
    if (!ok || !any) {
      fail_bad("bad Content-Length");
      return false;
    }
  } else if (is_coding) {
    if (has_length_ || saw_transfer_encoding_) {
      fail_bad("bad Transfer-Encoding");
      return false;
    }
    saw_transfer_encoding_ = true;
    const char* problem = nullptr;
    bool any = false;
    for_each_token(value, false, [&](std::string_view tok) {
      any = true;
      if (chunked_) {
        // chunked must be the final coding, or the body's end is unknowable.
        problem = "bad";
        return false;
      }
      if (iequals(tok, "chunked")) {
        chunked_ = true;
        return true;
      }
      problem = "unsupported";
      return false;
    });
    if (problem != nullptr && problem[0] == 'u') {
      fail(501, "not_implemented",
           "Transfer-Encoding '" + std::string(value) + "' is not supported (only chunked)");
      return false;
    }
    if (problem != nullptr || !any) {
      fail_bad("bad Transfer-Encoding");
      return false;
    }
  } else if (iequals(name, "Connection")) {
    for_each_token(value, false, [&](std::string_view tok) {
      if (iequals(tok, "close"))
        conn_close_ = true;
      else if (iequals(tok, "keep-alive"))
        conn_keep_alive_ = true;
      return true;
    });
  }
  out.headers.emplace_back(std::piecewise_construct,
                           std::forward_as_tuple(name.data(), name.size()),
                           std::forward_as_tuple(value.data(), value.size()));
  return true;
}

bool request_parser::on_head_complete() {
  keep_alive_ = http10_ ? (conn_keep_alive_ && !conn_close_) : !conn_close_;
  if (chunked_) {
    phase_ = phase::chunk_size;
    return true;
  }
  if (has_length_ && content_length_ > 0) {
    if (content_length_ > limits_.max_body_bytes) {
      fail(413, "body_too_large",
           "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
      return false;
    }
    remaining_ = content_length_;
    phase_ = phase::body_length;
    return true;
  }
  // No framing in a request means no body (RFC 9112 6.3).
  finish();
  return true;
}

std::size_t request_parser::parse_body(std::string_view data, request& out) {
  switch (phase_) {
    case phase::body_length:
    case phase::chunk_data: {
      if (out.body.empty() && phase_ == phase::body_length) out.body.reserve(remaining_);
      std::size_t n = data.size() < remaining_ ? data.size() : static_cast<std::size_t>(remaining_);
      out.body.append(data.data(), n);
      remaining_ -= n;
      if (remaining_ == 0) {
        if (phase_ == phase::body_length)
          finish();
        else
          phase_ = phase::chunk_data_end;
      }
      return n;
    }
    case phase::chunk_data_end:
      if (data[0] != '\r' || (data.size() >= 2 && data[1] != '\n')) {
        fail_bad("bad chunk");
        return 0;
      }
      if (data.size() < 2) return 0;
      phase_ = phase::chunk_size;
      return 2;
    case phase::chunk_size: {
      std::size_t scan = data.size() < max_chunk_line ? data.size() : max_chunk_line;
      const void* nl = std::memchr(data.data(), '\n', scan);
      if (nl == nullptr) {
        if (data.size() >= max_chunk_line) fail_bad("bad chunk");
        return 0;
      }
      std::size_t lf = static_cast<const char*>(nl) - data.data();
      if (lf == 0 || data[lf - 1] != '\r') {
        fail_bad("bad line ending");
        return 0;
      }
      return on_chunk_size(data.substr(0, lf - 1)) ? lf + 1 : 0;
    }
    default:
      return 0;
  }
}

bool request_parser::on_chunk_size(std::string_view line) {
  std::size_t i = 0;
  std::uint64_t size = 0;
  while (i < line.size() && hex_value(line[i]) >= 0) {
    if (i == 15) {  // past 2^60: no body this server accepts
      fail_bad("bad chunk");
      return false;
    }
    size = size * 16 + static_cast<std::uint64_t>(hex_value(line[i]));
    ++i;
  }
  if (i == 0) {
    fail_bad("bad chunk");
    return false;
  }
  if (!valid_chunk_extensions(line.substr(i))) {
    fail_bad("bad chunk extension");
    return false;
  }
  if (size == 0) {
    phase_ = phase::trailers;
    head_bytes_ = 0;  // the trailer section has its own budget
    return true;
  }
  if (content_length_ + size > limits_.max_body_bytes) {
    fail(413, "body_too_large",
         "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
    return false;
  }
  content_length_ += size;  // the decoded length so far
  remaining_ = size;
  phase_ = phase::chunk_data;
  return true;
}

}  // namespace parley::http
