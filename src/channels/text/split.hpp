#pragma once
/// parley::channels::text — splitting a reply into messages a channel accepts.
///
/// Lengths are counted in UTF-16 code units, what JavaScript's `length` and
/// Java's `String.length()` count: a character outside the Basic Multilingual
/// Plane (most emoji) counts 2. Where a provider counts code points instead, this
/// only splits a little earlier; it never makes a message the provider refuses.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace parley::channels::text {

/// UTF-16 code units of `s`; each byte of an ill-formed UTF-8 sequence counts 1.
std::size_t utf16_length(std::string_view s);

/// `text` cut into parts of at most `max_units` UTF-16 code units each (at least 2
/// are used: a surrogate pair must fit). Ill-formed UTF-8 is replaced by U+FFFD
/// first, so every part is well-formed UTF-8 and no character is cut. A part ends
/// at the last line break of its window when that keeps at least half of the
/// window, else at its last blank (space or tab), else in a word (a word longer
/// than the window); the blanks at a cut are dropped, as are those around the
/// whole text. Empty or blank text gives no part.
std::vector<std::string> split_text(std::string_view text, std::size_t max_units);

}  // namespace parley::channels::text
