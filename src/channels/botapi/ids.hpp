#pragma once
/// Internal to the Bot API codec: the ids it derives from a session, pure
/// functions of their arguments (a replayed turn gets the same ids).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::channels::botapi::detail {

/// The UUID-form ids of message_id() for one turn: FNV-1a with two seeds over
/// "<session id>\0<sequence id>\0<index>", the turn's part hashed once.
class message_id_hash {
 public:
  message_id_hash(std::string_view session_id, std::int64_t sequence_id);

  /// Appends the id of the turn's message `index` to `out` (36 characters).
  void append(std::string& out, std::size_t index) const;

 private:
  std::uint64_t h1_ = 0xcbf29ce484222325ULL, h2_ = 0x84222325cbf29ce4ULL;
};

/// The default X-Runtime-CRC: 16 hex digits hashed from session id and bot version.
std::string default_runtime_crc(std::string_view session_id, std::string_view bot_version);

}  // namespace parley::channels::botapi::detail
