#pragma once
/// parley::channels::json — the JSON writer every channel codec uses.
///
/// Responses are appended straight into their body string, no DOM: the codec
/// writes the fixed parts as literals and the values with these functions. The text
/// is byte for byte what nlohmann's `dump(-1, ' ', false, error_handler_t::replace)`
/// writes for the same document: no blanks; strings as common::append_json_escaped
/// writes them (valid UTF-8 as it is, each ill-formed subpart as U+FFFD); integral
/// doubles below 2^53 as integers, other finite doubles in nlohmann's shortest
/// round-trip form, NaN and infinities as null. It measures faster than building an
/// nlohmann::json and dumping it (bench/README.md, "simdjson reader (issue 11)").

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/common/strings.hpp"
#include "src/proto/bot.pb.h"

namespace parley::channels::json {

/// Values nested deeper than this are written as null (append_value).
inline constexpr int max_depth = 32;

/// Appends a literal (JSON text written by hand, no escaping).
template <std::size_t N>
void lit(std::string& out, const char (&s)[N]) {
  out.append(s, N - 1);
}

/// Appends the characters of a JSON string, without the quotes.
inline void append_escaped(std::string& out, std::string_view s) {
  common::append_json_escaped(out, s);
}

/// Appends a JSON string.
inline void append_string(std::string& out, std::string_view s) {
  common::append_json_string(out, s);
}

/// Appends an integer.
void append_int(std::string& out, std::int64_t v);

/// Appends a number: integral doubles below 2^53 as integers ("3", not "3.0"),
/// non-finite ones as null, others in the shortest form that reads back the same.
void append_number(std::string& out, double d);

/// Appends `true` or `false`.
inline void append_bool(std::string& out, bool b) {
  if (b)
    lit(out, "true");
  else
    lit(out, "false");
}

/// Appends a bot value as plain JSON (text, number, boolean, list, object; unset
/// and null as null); deeper than max_depth becomes null. Object keys are unique:
/// a repeated key keeps its first place and takes its last value.
void append_value(std::string& out, const ::parley::bot::v1::Value& v, int depth = 0);

}  // namespace parley::channels::json
