#pragma once
/// Internal to the Bot API codec (not for its users: include botapi.hpp): the
/// helpers that routing, parsing and rendering share.

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "src/channels/botapi/botapi.hpp"

namespace parley::channels::botapi::detail {

inline constexpr std::size_t max_id_length = 128;
inline constexpr std::size_t max_request_id_length = 200;

inline constexpr std::array<std::string_view, 5> end_session_reasons = {
    "UserRequest", "Transfer", "Expiration", "Error", "Other"};

template <std::size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

/// "a, b, c".
template <std::size_t N>
std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto s : set) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

/// A Value holding null.
inline v1::Value null_value() {
  v1::Value v;
  v.set_null_value(true);
  return v;
}

/// A 400 failure "<field>: <what>".
failure bad(std::string_view field, std::string_view what);

/// `s` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view s);

/// 1..128 characters of [A-Za-z0-9._~:-].
bool valid_id(std::string_view s);

/// Printable ASCII without blanks.
bool printable(std::string_view s);

/// `s` when it can be echoed in a response header (at most 200 printable ASCII
/// characters or blanks), else empty.
std::string safe_header_value(std::string_view s);

/// "'<path>'" when printable and short, else "the path".
std::string path_label(std::string_view path);

/// The id in `path` when it is the path of endpoint `kind`.
std::optional<std::string> path_id(std::string_view path, endpoint kind);

/// The contract's error class name for an HTTP status ("BadRequestError").
const char* error_class(int status);

}  // namespace parley::channels::botapi::detail
