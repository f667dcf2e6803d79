#include "src/http/request_parser.hpp"

#include <cstring>
#include <optional>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include "src/common/strings.hpp"

namespace parley::http {

namespace {

namespace bhttp = boost::beast::http;
using beast_string = boost::beast::string_view;

using common::iequals;

// Chunk-size lines carry extensions nobody sends at length; a cap keeps a client from
// making the connection's buffer grow without a limit.
constexpr std::size_t max_chunk_line = 4096;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls `f(token)` for each trimmed, non-empty element of a comma-separated list;
/// stops as soon as `f` returns false.
template <typename F>
void for_each_token(std::string_view list, F&& f) {
  while (true) {
    auto comma = list.find(',');
    auto tok = trim(list.substr(0, comma));
    if (!tok.empty() && !f(tok)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

std::string_view view(beast_string s) { return {s.data(), s.size()}; }

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

/// Beast's parser with callbacks that write into the `request` being parsed: names,
/// values and body pieces are views into the connection's buffer, copied once into the
/// request's strings. It adds what Beast lets through: a Transfer-Encoding other than
/// a final `chunked` (501, or 400 when `chunked` is not last), and keep-alive from
/// every Connection token (Beast's HTTP/1.0 rule ignores `close`).
class beast_request : public bhttp::basic_parser<true> {
 public:
  beast_request(const request_parser::limits& l) {
    header_limit(static_cast<std::uint32_t>(l.max_header_bytes));
    body_limit(static_cast<std::uint64_t>(l.max_body_bytes));
    eager(false);  // one step per put(): the line scanner sees every chunk-size line
  }

  request_parser* owner = nullptr;
  request* out = nullptr;
  bool http10 = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool saw_coding = false;
  bool chunked_seen = false;
  bool head_done = false;
  bool first_chunk = true;
  std::uint64_t chunk_left = 0;  // data bytes of the current chunk not seen yet

 private:
  void on_request_impl(bhttp::verb, beast_string method, beast_string target, int version,
                       boost::beast::error_code&) override {
    http10 = version == 10;
    out->method.assign(method.data(), method.size());
    out->target.assign(target.data(), target.size());
    auto t = view(target);
    auto q = t.find('?');
    if (q == std::string_view::npos) {
      out->path.assign(t.data(), t.size());
    } else {
      out->path.assign(t.data(), q);
      out->query.assign(t.data() + q + 1, t.size() - q - 1);
    }
    // Typical requests carry about eight fields; one allocation for all of them.
    out->headers.reserve(12);
  }

  void on_response_impl(int, beast_string, int, boost::beast::error_code&) override {}

  void on_field_impl(bhttp::field f, beast_string name, beast_string value,
                     boost::beast::error_code& ec) override {
    // Trailers reach here too: Beast fails a framing field in them before this call.
    if (!head_done && f == bhttp::field::transfer_encoding && !check_coding(view(value))) {
      ec = bhttp::error::bad_transfer_encoding;
      return;
    }
    if (!head_done && f == bhttp::field::connection)
      for_each_token(view(value), [&](std::string_view tok) {
        if (iequals(tok, "close"))
          conn_close = true;
        else if (iequals(tok, "keep-alive"))
          conn_keep_alive = true;
        return true;
      });
    out->headers.emplace_back(std::piecewise_construct,
                              std::forward_as_tuple(name.data(), name.size()),
                              std::forward_as_tuple(value.data(), value.size()));
  }

  /// Only `chunked`, once and last. Records the failure in the owner.
  bool check_coding(std::string_view value) {
    if (saw_coding) {
      owner->fail_bad("bad Transfer-Encoding");
      return false;
    }
    saw_coding = true;
    const char* problem = nullptr;
    bool any = false;
    for_each_token(value, [&](std::string_view tok) {
      any = true;
      if (chunked_seen) {
        // chunked must be the final coding, or the body's end is unknowable.
        problem = "bad";
        return false;
      }
      if (iequals(tok, "chunked")) {
        chunked_seen = true;
        return true;
      }
      problem = "unsupported";
      return false;
    });
    if (problem != nullptr && problem[0] == 'u') {
      owner->fail(501, "not_implemented",
                  "Transfer-Encoding '" + std::string(value) + "' is not supported (only chunked)");
      return false;
    }
    if (problem != nullptr || !any) {
      owner->fail_bad("bad Transfer-Encoding");
      return false;
    }
    return true;
  }

  void on_header_impl(boost::beast::error_code&) override {
    head_done = true;
    owner->keep_alive_ = http10 ? (conn_keep_alive && !conn_close) : !conn_close;
  }

  // Nothing is reserved from Content-Length: the body grows as its bytes arrive, so a
  // client that announces a large body and sends nothing costs nothing.
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::beast::error_code&) override {}

  std::size_t on_body_impl(beast_string body, boost::beast::error_code&) override {
    out->body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t size, beast_string, boost::beast::error_code&) override {
    first_chunk = false;
    chunk_left = size;
  }

  std::size_t on_chunk_body_impl(std::uint64_t remain, beast_string body,
                                 boost::beast::error_code&) override {
    out->body.append(body.data(), body.size());
    chunk_left = remain - body.size();
    return body.size();
  }

  void on_finish_impl(boost::beast::error_code&) override {}
};

/// Holds one Beast parser per request (Beast's parsers are not reusable), in place.
struct request_parser::beast_parser {
  std::optional<beast_request> p;
};

request_parser::request_parser(limits l) : limits_(l), beast_(std::make_unique<beast_parser>()) {
  beast_->p.emplace(limits_);
}

request_parser::~request_parser() = default;
request_parser::request_parser(request_parser&&) noexcept = default;
request_parser& request_parser::operator=(request_parser&&) noexcept = default;

void request_parser::reset() {
  beast_->p.emplace(limits_);
  state_ = state::need_more;
  phase_ = phase::request_line;
  started_ = false;
  keep_alive_ = false;
  head_bytes_ = 0;
  scan_at_ = 0;
  error_status_ = 0;
  error_code_ = "";
  error_message_.clear();
}

void request_parser::fail(int status, const char* code, std::string message) {
  state_ = state::failed;
  error_status_ = status;
  error_code_ = code;
  error_message_ = std::move(message);
}

void request_parser::fail_header_limit(bool trailers) {
  std::size_t kib = limits_.max_header_bytes / 1024;
  fail(431, "headers_too_large",
       std::string(trailers ? "request trailers exceed " : "request headers exceed ") +
           (kib * 1024 == limits_.max_header_bytes
                ? std::to_string(kib) + " KiB"
                : std::to_string(limits_.max_header_bytes) + " bytes"));
}

std::size_t request_parser::parse(std::string_view data, request& out) {
  std::size_t pos = 0;
  while (state_ == state::need_more && pos < data.size()) {
    std::size_t n = step(data.substr(pos), out);
    if (n == 0) break;  // a partial head or line: needs more input
    pos += n;
  }
  return pos;
}

request_parser::lines request_parser::scan_lines(std::string_view data, std::size_t& at,
                                                 std::size_t& used, bool trailers) {
  while (true) {
    auto rest = data.substr(at);
    std::size_t budget = limits_.max_header_bytes > used ? limits_.max_header_bytes - used : 0;
    std::size_t scan = rest.size() < budget ? rest.size() : budget;
    const void* nl = scan == 0 ? nullptr : std::memchr(rest.data(), '\n', scan);
    if (nl == nullptr) {
      if (rest.size() >= budget) {
        fail_header_limit(trailers);
        return lines::failed;
      }
      return lines::more;
    }
    std::size_t lf = static_cast<const char*>(nl) - rest.data();
    if (lf == 0 || rest[lf - 1] != '\r') {
      fail_bad("bad line ending");
      return lines::failed;
    }
    used += lf + 1;
    at += lf + 1;
    if (lf == 1) return lines::blank;
    if (is_ows(rest[0])) {
      // Obsolete line folding (RFC 9112 5.2): rejected rather than unfolded.
      fail_bad("bad obs-fold");
      return lines::failed;
    }
  }
}

std::size_t request_parser::step(std::string_view data, request& out) {
  switch (phase_) {
    case phase::request_line: {
      if (!started_) {
        // Robustness (RFC 9112 2.2): empty lines before a request line are skipped, so
        // a client's stray CRLF after a body does not fail the next request.
        if (data[0] == '\r') {
          if (data.size() < 2) return 0;
          if (data[1] == '\n') return 2;
        }
        started_ = true;
      }
      std::size_t budget = limits_.max_header_bytes;
      std::size_t scan = data.size() < budget ? data.size() : budget;
      const void* nl = std::memchr(data.data(), '\n', scan);
      if (nl == nullptr) {
        if (data.size() >= budget) fail_header_limit(false);
        return 0;
      }
      std::size_t lf = static_cast<const char*>(nl) - data.data();
      if (lf == 0 || data[lf - 1] != '\r') {
        fail_bad("bad line ending");
        return 0;
      }
      head_bytes_ = lf + 1;
      // Beast parses the request line at once, so a bad one fails before the fields.
      std::size_t n = put(data.substr(0, lf + 1), out);
      if (failed()) return 0;
      if (n != lf + 1) {
        fail_bad("bad version");
        return 0;
      }
      phase_ = phase::fields;
      scan_at_ = 0;
      return n;
    }
    case phase::fields: {
      if (scan_lines(data, scan_at_, head_bytes_, false) != lines::blank) return 0;
      std::size_t head = scan_at_;
      scan_at_ = 0;
      std::size_t n = put(data.substr(0, head), out);
      if (failed()) return 0;
      if (n != head) {  // Beast stopped inside a complete head: not a head it can read
        fail_bad("bad field");
        return 0;
      }
      if (state_ == state::need_more) phase_ = phase::body;
      return n;
    }
    case phase::body: {
      auto& b = *beast_->p;
      if (b.chunked() && b.chunk_left == 0) return chunk_step(data, out);
      return put(data, out);
    }
    case phase::complete:
      return 0;
  }
  return 0;
}

std::size_t request_parser::chunk_step(std::string_view data, request& out) {
  if (scan_at_ == 0) {
    std::size_t pos = 0;
    if (!beast_->p->first_chunk) {
      // The CRLF that ends the previous chunk's data.
      if (data[0] != '\r' || (data.size() >= 2 && data[1] != '\n')) {
        fail_bad("bad chunk");
        return 0;
      }
      if (data.size() < 2) return 0;
      pos = 2;
    }
    auto rest = data.substr(pos);
    std::size_t scan = rest.size() < max_chunk_line ? rest.size() : max_chunk_line;
    const void* nl = scan == 0 ? nullptr : std::memchr(rest.data(), '\n', scan);
    if (nl == nullptr) {
      if (rest.size() >= max_chunk_line) fail_bad("bad chunk");
      return 0;
    }
    std::size_t lf = static_cast<const char*>(nl) - rest.data();
    if (lf == 0 || rest[lf - 1] != '\r') {
      fail_bad("bad line ending");
      return 0;
    }
    auto line = rest.substr(0, lf - 1);
    auto cr = line.find('\r');
    if (cr != std::string_view::npos) {
      fail_bad(cr == 0 ? "bad chunk" : "bad chunk extension");
      return 0;
    }
    std::size_t digits = 0;
    while (digits < line.size() && is_hex(line[digits])) ++digits;
    bool last = digits > 0 && line.substr(0, digits).find_first_not_of('0') == std::string::npos;
    if (!last) {
      // Beast parses the chunk-size line, and only it: an open quote in an extension
      // must not run on into the chunk's data.
      std::size_t n = put(data.substr(0, pos + lf + 1), out);
      if (!failed() && n == 0) fail_bad(digits == 0 ? "bad chunk" : "bad chunk extension");
      return n;
    }
    // The last chunk: Beast wants its trailer section whole, scanned first like a head.
    scan_at_ = pos + lf + 1;
    head_bytes_ = 0;  // the trailer section has its own budget
  }
  if (scan_lines(data, scan_at_, head_bytes_, true) != lines::blank) return 0;
  std::size_t end = scan_at_;
  scan_at_ = 0;
  std::size_t n = put(data.substr(0, end), out);
  if (!failed() && state_ != state::done) fail_bad("bad chunk");
  return n;
}

std::size_t request_parser::put(std::string_view data, request& out) {
  auto& p = *beast_->p;
  p.owner = this;
  p.out = &out;
  boost::beast::error_code ec;
  std::size_t n = p.put(boost::asio::const_buffer(data.data(), data.size()), ec);
  if (failed()) return 0;  // a callback failed with its own answer
  if (ec == bhttp::error::need_more) ec = {};
  if (ec == bhttp::error::body_limit) {
    fail(413, "body_too_large",
         "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
  } else if (ec == bhttp::error::header_limit) {
    fail_header_limit(p.is_header_done());
  } else if (ec == bhttp::error::bad_line_ending) {
    // The scanner already failed every bare LF: this is a CR inside a field value.
    fail_bad("bad value");
  } else if (ec) {
    fail(400, "bad_request", "malformed HTTP request: " + ec.message());
  }
  if (failed()) return 0;
  if (p.is_done()) {
    phase_ = phase::complete;
    state_ = state::done;
  }
  return n;
}

}  // namespace parley::http
