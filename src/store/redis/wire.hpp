#pragma once
/// Redis' wire format (RESP) for parley::store's Redis client: serializing commands,
/// reading replies straight into redis_reply, and the errors every connection reports.
/// Internal to src/store/redis/; callers use src/store/redis.hpp.

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "src/store/redis.hpp"

struct redisReplyObjectFunctions;

namespace parley::store::detail {

/// hiredis' reader functions that build each reply into redis_reply: the root of every
/// reply is the redis_reply the reader's privdata points to (the connection's reusable
/// slot); the elements of an array live in its `elements`.
redisReplyObjectFunctions* reply_functions();

inline std::size_t decimal_digits(std::size_t n) {
  std::size_t d = 1;
  for (; n >= 10; n /= 10) ++d;
  return d;
}

/// Bytes of `*N\r\n` or `$N\r\n`.
inline std::size_t header_size(std::size_t n) { return 1 + decimal_digits(n) + 2; }

/// Bytes of one bulk string `$N\r\n<bytes>\r\n`.
inline std::size_t bulk_size(std::size_t n) { return header_size(n) + n + 2; }

/// `Args`: a container of std::string or std::string_view.
template <class Args>
std::size_t wire_size(const Args& args) {
  std::size_t n = header_size(args.size());
  for (auto& a : args) n += bulk_size(a.size());
  return n;
}

inline char* put_header(char* at, char kind, std::size_t n) {
  *at++ = kind;
  // The caller sized the buffer with header_size, so the digits always fit.
  at = std::to_chars(at, at + 20, n).ptr;
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

inline char* put_bulk(char* at, std::string_view a) {
  at = put_header(at, '$', a.size());
  if (!a.empty()) std::memcpy(at, a.data(), a.size());  // an empty view may hold no pointer
  at += a.size();
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

/// Appends `args` as one command, the bytes redisAppendCommandArgv would produce,
/// without its sds formatting and temporary buffer. Writes through a pointer into
/// storage sized once: appending piece by piece costs more than the copy of the value.
template <class Args>
void append_wire(std::string& out, const Args& args) {
  auto old = out.size();
  out.resize(old + wire_size(args));
  char* at = put_header(out.data() + old, '*', args.size());
  for (auto& a : args) at = put_bulk(at, a);
}

/// Appends the header of a command of `n` arguments (`*N\r\n`), or one bulk argument.
void append_array_header(std::string& out, std::size_t n);
void append_bulk(std::string& out, std::string_view a);

error bad_command_error();
error unavailable_error(const std::string& shown_url, const std::string& why);
error shutting_down_error(const std::string& shown_url);
error timeout_error(const std::string& shown_url, std::chrono::milliseconds timeout);

/// A reply as a command's result: a top-level error reply becomes a failed result
/// (code `redis_error`); nested ones (EXEC) stay.
result<redis_reply> command_result(redis_reply&& r);

/// Whether `r` is Redis' answer to an EVALSHA of a script it does not hold.
bool is_noscript(const result<redis_reply>& r);

/// What a fresh connection sends before any other command, in RESP: AUTH when the URL
/// has a password, SELECT when it names a database other than 0, SCRIPT LOAD of every
/// script in `scripts`. `count` gets the number of commands.
std::string handshake_commands(const redis_endpoint& ep, const std::vector<redis_script>& scripts,
                               int& count);

/// The URL with the password of its userinfo (if any) replaced by "***".
std::string redact(std::string_view url);

}  // namespace parley::store::detail
