#pragma once
/// parley::channels::crypto — the digests, MACs and encodings that webhook
/// signatures need (OpenSSL 3, kept inside crypto.cpp).
///
/// Pure functions, callable from any thread: each thread keeps its own OpenSSL
/// contexts, and the algorithms are fetched once per process. They never throw
/// but std::bad_alloc; an OpenSSL failure (never expected) aborts.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace parley::channels::crypto {

inline constexpr std::size_t sha1_size = 20;
inline constexpr std::size_t sha256_size = 32;

/// HMAC-SHA1 of `data` keyed with `key` (any length, empty included).
std::array<unsigned char, sha1_size> hmac_sha1(std::string_view key, std::string_view data);

/// HMAC-SHA256 of `data` keyed with `key` (any length, empty included).
std::array<unsigned char, sha256_size> hmac_sha256(std::string_view key, std::string_view data);

/// SHA-256 of `data`.
std::array<unsigned char, sha256_size> sha256(std::string_view data);

/// Standard base64 (RFC 4648 section 4) with padding.
std::string base64(std::string_view bytes);

/// Lowercase hexadecimal.
std::string hex(std::string_view bytes);

/// The bytes of a digest, as a string_view for base64() and hex().
template <std::size_t N>
std::string_view bytes_of(const std::array<unsigned char, N>& digest) {
  return {reinterpret_cast<const char*>(digest.data()), N};
}

/// a == b, in a time that depends on the sizes only, never on the contents.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace parley::channels::crypto
