#pragma once
/// Text helpers shared by the compiler, the NLU and the VM (internal to src/bot).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace parley::bot::detail {

/// Lower-cases ASCII, drops apostrophes, turns other ASCII punctuation into
/// spaces, collapses runs of spaces and trims. UTF-8 bytes >= 0x80 are kept.
std::string normalize(std::string_view text);

/// The words of a text: views into it. Up to 24 live inside the list, so splitting a
/// message (the classifier and each entity extractor do, every turn) allocates
/// nothing; longer texts spill to the heap.
using word_list = boost::container::small_vector<std::string_view, 24>;

/// Splits a normalized text on single spaces.
word_list words(std::string_view normalized);

/// Cuts a string to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t max);

/// 32-bit FNV-1a; stable across platforms (used for feature hashing and ids).
std::uint32_t fnv1a32(std::string_view s, std::uint32_t seed = 2166136261u);
std::uint64_t fnv1a64(std::string_view s);

std::string to_lower(std::string_view s);
std::string trim(std::string_view s);

/// Formats a number the way templates show it: integers without a decimal
/// point, others with up to 6 significant decimals and no trailing zeros.
std::string format_number(double d);

/// Civil date helpers (proleptic Gregorian, UTC).
struct civil_date {
  int year;
  unsigned month;
  unsigned day;
};
civil_date date_from_unix(std::int64_t unix_seconds);
std::int64_t days_from_civil(civil_date d);
civil_date civil_from_days(std::int64_t days);
bool valid_date(civil_date d);
std::string format_date(civil_date d);  // YYYY-MM-DD

}  // namespace parley::bot::detail
