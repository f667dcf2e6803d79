// Message ids and the runtime CRC of the Bot API codec.

#include "src/channels/botapi/ids.hpp"

#include <charconv>

#include "src/channels/botapi/botapi.hpp"

namespace parley::channels::botapi {

namespace detail {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr std::uint64_t prime = 0x100000001b3ULL;

std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= prime;
  }
  return h;
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out += hex_digits[(v >> (i * 4)) & 0xf];
}

void feed(std::uint64_t& h1, std::uint64_t& h2, unsigned char c) {
  h1 = (h1 ^ c) * prime;
  h2 = (h2 ^ c) * prime;
}

}  // namespace

message_id_hash::message_id_hash(std::string_view session_id, std::int64_t sequence_id) {
  for (unsigned char c : session_id) feed(h1_, h2_, c);
  feed(h1_, h2_, 0);
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, sequence_id);
  for (const char* c = buf; c != end; ++c) feed(h1_, h2_, static_cast<unsigned char>(*c));
  feed(h1_, h2_, 0);
}

void message_id_hash::append(std::string& out, std::size_t index) const {
  std::uint64_t h1 = h1_, h2 = h2_;
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(index));
  for (const char* c = buf; c != end; ++c) feed(h1, h2, static_cast<unsigned char>(*c));
  std::uint64_t hi = mix(h1);
  std::uint64_t lo = mix(h2 ^ hi);
  // RFC 9562 layout: version 8 (custom), variant 10.
  hi = (hi & ~0xf000ULL) | 0x8000ULL;
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
  char id[36];
  auto put = [&](int at, std::uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v >>= 4) id[at + i] = hex_digits[v & 0xf];
  };
  put(0, hi >> 32, 8);
  id[8] = '-';
  put(9, (hi >> 16) & 0xffff, 4);
  id[13] = '-';
  put(14, hi & 0xffff, 4);
  id[18] = '-';
  put(19, lo >> 48, 4);
  id[23] = '-';
  put(24, lo & 0xffffffffffffULL, 12);
  out.append(id, sizeof id);
}

std::string default_runtime_crc(std::string_view session_id, std::string_view bot_version) {
  std::string out;
  append_hex(out, mix(fnv1a(bot_version, fnv1a(session_id, 0xcbf29ce484222325ULL) ^ 0xff)), 16);
  return out;
}

}  // namespace detail

std::string message_id(std::string_view session_id, std::int64_t sequence_id, std::size_t index) {
  std::string out;
  out.reserve(36);
  detail::message_id_hash(session_id, sequence_id).append(out, index);
  return out;
}

}  // namespace parley::channels::botapi
