#pragma once
/// SHA-256 for the gateway's hot paths (the API key cache, the session key map). Any
/// thread; never fails.

#include <cstddef>
#include <string>
#include <string_view>

namespace parley::actors {

inline constexpr std::size_t sha256_size = 32;

/// The digest of `data` into `out` (sha256_size bytes).
void sha256(std::string_view data, unsigned char* out);

/// The digest of `data` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace parley::actors
