#pragma once
/// An incremental HTTP/1.1 request parser that fills `parley::http::request` directly.
///
/// Beast's `basic_parser` does the parsing (a subclass in request_parser.cpp whose
/// callbacks write into the `request`); this header stays free of Asio and Beast so the
/// parser can be unit-tested and fuzzed on its own. In front of Beast, a line scanner
/// keeps the rules Beast does not have: bare LF and obs-fold answer 400, empty lines
/// before a request are skipped, a head (or trailer section) past `max_header_bytes`
/// answers 431, a chunk-size line past 4 KiB answers 400, and Beast sees a head only
/// once it is complete, so the result does not depend on how the input is split.
///
/// One parser per connection, reused for every request on it (`reset()` between
/// requests). Not thread-safe; the connection's I/O thread owns it.
///
/// Input is fed as it arrives: `parse()` consumes what it can and reports how many bytes
/// it took. Bytes it did not take (a partial head, or a partial line in a chunk header)
/// must be offered again, followed by the bytes read next; bytes after a complete request
/// belong to the next request (pipelining). The body grows as its bytes arrive: nothing
/// is reserved from Content-Length.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "src/http/http.hpp"

namespace parley::http {

class beast_request;

class request_parser {
 public:
  struct limits {
    std::size_t max_header_bytes =
        16 * 1024;                         ///< request line, fields and blank line (431 past it)
    std::size_t max_body_bytes = 1 << 20;  ///< decoded body (413 past it)
  };

  enum class state { need_more, done, failed };

  explicit request_parser(limits l);
  ~request_parser();
  request_parser(request_parser&&) noexcept;
  request_parser& operator=(request_parser&&) noexcept;

  /// Parses from `data` into `out` (which should start empty: fields are appended).
  /// Returns the number of bytes consumed; the rest must be offered again with more
  /// input (or, after `done`, to the next request). Once `done` or `failed`, consumes
  /// nothing until `reset()`.
  std::size_t parse(std::string_view data, request& out);

  /// Clears the state for the next request on the same connection.
  void reset();

  state current() const { return state_; }
  bool done() const { return state_ == state::done; }
  bool failed() const { return state_ == state::failed; }

  /// True once a byte of the request proper (not a leading empty line) was consumed
  /// or is waiting: end of input now means a truncated request, not a clean close.
  bool started() const { return started_; }

  /// True once the request's head (request line, fields, blank line) was parsed.
  bool head_done() const { return phase_ == phase::body || phase_ == phase::complete; }

  /// Valid when `done`: HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
  /// `Connection: keep-alive`.
  bool keep_alive() const { return keep_alive_; }

  /// Valid when `failed`: the HTTP status (400, 413, 431, 501), the JSON error code
  /// (`bad_request`, `body_too_large`, `headers_too_large`, `not_implemented`) and the
  /// message the server answers with.
  int error_status() const { return error_status_; }
  std::string_view error_code() const { return error_code_; }
  const std::string& error_message() const { return error_message_; }

  struct beast_parser;  ///< implementation detail: the Beast subclass

 private:
  enum class phase { request_line, fields, body, complete };
  /// What a scan of header lines found.
  enum class lines { more, blank, failed };

  std::size_t step(std::string_view data, request& out);
  std::size_t chunk_step(std::string_view data, request& out);
  lines scan_lines(std::string_view data, std::size_t& at, std::size_t& used, bool trailers);
  /// Hands `data` to Beast; returns what it consumed, records its failure.
  std::size_t put(std::string_view data, request& out);
  void fail(int status, const char* code, std::string message);
  void fail_bad(const char* what) {
    fail(400, "bad_request", std::string("malformed HTTP request: ") + what);
  }
  void fail_header_limit(bool trailers);

  limits limits_;
  std::unique_ptr<beast_parser> beast_;
  state state_ = state::need_more;
  phase phase_ = phase::request_line;
  bool started_ = false;
  bool keep_alive_ = false;
  std::size_t head_bytes_ = 0;  // head (or trailer section) bytes scanned so far
  std::size_t scan_at_ = 0;     // offset of the next line to scan in the unconsumed input
  int error_status_ = 0;
  const char* error_code_ = "";
  std::string error_message_;

  friend class beast_request;
};

}  // namespace parley::http
