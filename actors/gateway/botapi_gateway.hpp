#pragma once
/// The Bot API gateway: HTTP routes of the Einstein Bots API v5.3 shape, translated
/// into runtime turns and back (codec: src/channels/botapi).
///
/// Handlers run on the HTTP threads and never block: authentication answers from a
/// cache or asks Postgres asynchronously, turns go to the runtime, and the answer is
/// rendered on the actor thread that completes the turn.
///
/// Session starts are idempotent per (tenant, bot, externalSessionKey) when
/// `botapi_gateway_options::sessions` is set (parleyd sets it): the start claims the
/// key's session id in Redis (session_keys.hpp) before it reaches the runtime, so a
/// retried start (a client that timed out and sent it again, to any node of the region)
/// lands on the same conversation. That conversation answers it with the first start's
/// recorded answer, without running the bot (its welcome, its actions) again; one whose
/// start is still running answers the retry once it has committed. A retry that comes
/// after the session has moved on gets the session id with the start's recorded
/// messages when the snapshot still keeps them (only the newest turn that showed
/// messages keeps its result), else none. A key whose session has ended (endSession,
/// the bot's end, a transfer that succeeded) starts a new session, and so does a key
/// whose mapping has expired: it lives for the bot's idle timeout from the start (its
/// later turns do not extend it). Redis unreachable: the start answers 503 with
/// Retry-After, as other outages do.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::actors {

class session_keys;
class turn_sink;

struct botapi_gateway_options {
  turn_sink* rt = nullptr;  ///< the runtime, or the cluster's router
  /// Is `key` an API key of `tenant`? Any thread; `done` once, from any thread.
  std::function<void(const std::string& tenant, const std::string& key,
                     std::function<void(result<bool>)> done)>
      verify_key;
  /// Whether the node can serve turns (`/status` answers UP or DOWN).
  std::function<bool()> ready;
  std::chrono::seconds auth_cache_ttl{60};
  /// Where a start's externalSessionKey finds its session (not owned; must outlive the
  /// routes). Null: every start starts a new session, as before clustering.
  session_keys* sessions = nullptr;
};

/// Adds `/status`, `/versions` and the `/v5.3.0/...` session routes to `routes`.
/// The returned object owns the authentication cache; keep it alive as long as the server.
std::shared_ptr<void> add_botapi_routes(http::router& routes, botapi_gateway_options options);

}  // namespace parley::actors
