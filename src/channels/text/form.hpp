#pragma once
/// parley::channels::text — `application/x-www-form-urlencoded` bodies and query
/// strings (WHATWG URL standard's form encoding), as Twilio's webhooks and Meta's
/// verification GET send them.
///
/// Pure functions, any thread. Decoding keeps the bytes it decodes (no UTF-8
/// check: a webhook signature covers the bytes received).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/common/result.hpp"

namespace parley::channels::text {

/// Name-value pairs in the order received; a name may repeat.
using form = std::vector<std::pair<std::string, std::string>>;

/// Splits `body` at '&' (empty pieces skipped), each piece at its first '=' (none:
/// an empty value), and decodes names and values: '+' is a space, "%XY" the byte
/// 0xXY. A '%' not followed by two hex digits fails with 400 naming the parameter
/// by its position ("parameter 3: malformed percent-encoding").
result<form> parse_form(std::string_view body);

/// The value of the first pair named `name`, or nullptr.
const std::string* find(const form& f, std::string_view name);

/// How many pairs are named `name`.
std::size_t count(const form& f, std::string_view name);

/// Appends `s` encoded for a form: [A-Za-z0-9*-._] as is, space as '+', every
/// other byte as "%XY" (uppercase hex).
void append_encoded(std::string& out, std::string_view s);

/// Appends `s` percent-encoded for a URL path segment or query value: the
/// unreserved characters [A-Za-z0-9-._~] as is, every other byte as "%XY".
void append_percent_encoded(std::string& out, std::string_view s);

/// The pairs encoded as a form body, "a=1&b=2", in their order.
std::string encode_form(const form& f);

}  // namespace parley::channels::text
