#pragma once
/// The map from a Bot API client's session key to its session: (tenant, bot,
/// externalSessionKey) -> session id, in the region's Redis, so that a retried session
/// start lands on the session the first one started, whichever node it reaches.
///
/// Each mapping is one Redis string, `<prefix>:sesskey:<tenant>:<h>`, where `h` is the
/// hex SHA-256 of the bot and the key (length-prefixed): any byte of a key (':',
/// unicode) is safe, and two (bot, key) pairs never share a Redis key. Every operation
/// is one Lua script, atomic in Redis:
/// - claim: a new mapping lives `pending_ttl`, long enough for a start and its
///   client's retries;
/// - keep: once the session's start is committed, the mapping lives for the bot's idle
///   timeout (less one second), so it never outlives the session's snapshot; a
///   session's later turns do not extend it. A mapping found without its snapshot
///   therefore names a session whose start never committed (its id was never used);
/// - replace: a compare-and-set, for a key whose session has ended.
///
/// Threads: any thread calls; nothing blocks. Each `done` runs once, on the Redis
/// client's loop thread or, when called from a lane with lane connections, on that lane
/// (it must be short and must not block). A Redis failure is an error result with the
/// client's code (`redis_unavailable`, `redis_timeout`, ...).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "src/common/result.hpp"

namespace parley::store {
class redis_client;
}

namespace parley::actors {

struct session_keys_options {
  std::string key_prefix = "parley";  ///< the runtime's Redis key prefix
  std::chrono::seconds pending_ttl{300};
  /// > 0: the client runs in lanes mode with this many lanes; a call from a lane goes on
  /// that lane's connection (its `done` then runs there).
  std::size_t redis_lanes = 0;
};

/// A new session id: a UUID version 7 (the creation time in milliseconds, then 74
/// random bits), time-ordered for transcript_turns' primary key, unguessable.
std::string new_session_id();

class session_keys {
 public:
  /// `redis` must outlive this object and every call's `done`.
  session_keys(store::redis_client& redis, session_keys_options options);

  using id_callback = std::function<void(result<std::string>)>;

  /// The session id (tenant, bot, key) maps to: `candidate` when it mapped to none
  /// (the mapping is created for `pending_ttl`), else the one it maps to.
  void claim(const std::string& tenant, const std::string& bot, const std::string& key,
             const std::string& candidate, id_callback done);

  /// Maps (tenant, bot, key) to `fresh` if it still maps to `old` or to nothing (for
  /// `pending_ttl`); `done` gets the id it maps to afterwards (`fresh`, or the one
  /// another caller replaced `old` with first).
  void replace(const std::string& tenant, const std::string& bot, const std::string& key,
               const std::string& old, const std::string& fresh, id_callback done);

  /// If (tenant, bot, key) still maps to `id`, the mapping lives `ttl` from now.
  /// `done` (may be empty) gets whether it did.
  void keep(const std::string& tenant, const std::string& bot, const std::string& key,
            const std::string& id, std::chrono::seconds ttl,
            std::function<void(result<bool>)> done = {});

  /// The Redis key of (tenant, bot, key).
  std::string redis_key(const std::string& tenant, const std::string& bot,
                        const std::string& key) const;

 private:
  store::redis_client& redis_;
  session_keys_options options_;
};

}  // namespace parley::actors
