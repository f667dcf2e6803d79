#pragma once
/// An incremental HTTP/1.1 request parser that fills `parley::http::request` directly.
///
/// Free of Asio and Beast so it can be unit-tested and fuzzed on its own. One parser per
/// connection, reused for every request on it (`reset()` between requests). Not
/// thread-safe; the connection's I/O thread owns it.
///
/// Input is fed as it arrives: `parse()` consumes what it can and reports how many bytes
/// it took. Bytes it did not take (a partial line in the head or in a chunk header) must
/// be offered again, followed by the bytes read next; bytes after a complete request
/// belong to the next request (pipelining). The result does not depend on how the input
/// is split.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/http/http.hpp"

namespace parley::http {

class request_parser {
 public:
  struct limits {
    std::size_t max_header_bytes =
        16 * 1024;                         ///< request line, fields and blank line (431 past it)
    std::size_t max_body_bytes = 1 << 20;  ///< decoded body (413 past it)
  };

  enum class state { need_more, done, failed };

  explicit request_parser(limits l) : limits_(l) {}

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

  /// Valid when `done`: HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
  /// `Connection: keep-alive`.
  bool keep_alive() const { return keep_alive_; }

  /// Valid when `failed`: the HTTP status (400, 413, 431, 501), the JSON error code
  /// (`bad_request`, `body_too_large`, `headers_too_large`, `not_implemented`) and the
  /// message the server answers with.
  int error_status() const { return error_status_; }
  std::string_view error_code() const { return error_code_; }
  const std::string& error_message() const { return error_message_; }

 private:
  enum class phase {
    request_line,
    fields,
    body_length,
    chunk_size,
    chunk_data,
    chunk_data_end,
    trailers,
    complete,
  };

  std::size_t parse_head(std::string_view data, request& out);
  std::size_t parse_body(std::string_view data, request& out);
  bool on_request_line(std::string_view line, request& out);
  bool on_field(std::string_view line, request& out, bool trailer);
  bool on_head_complete();
  bool on_chunk_size(std::string_view line);
  void fail(int status, const char* code, std::string message);
  void fail_bad(const char* what) {
    fail(400, "bad_request", std::string("malformed HTTP request: ") + what);
  }
  void finish();

  limits limits_;
  state state_ = state::need_more;
  phase phase_ = phase::request_line;
  bool started_ = false;
  bool keep_alive_ = false;
  bool http10_ = false;
  bool has_length_ = false;
  bool chunked_ = false;
  bool saw_transfer_encoding_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  std::size_t head_bytes_ = 0;   // head (or trailer section) bytes consumed so far
  std::uint64_t remaining_ = 0;  // body or chunk bytes still to read
  std::uint64_t content_length_ = 0;
  int error_status_ = 0;
  const char* error_code_ = "";
  std::string error_message_;
};

}  // namespace parley::http
