#pragma once
/// The Bot API gateway: HTTP routes of the Einstein Bots API v5.3 shape, translated
/// into runtime turns and back (codec: src/channels/botapi).
///
/// Handlers run on the HTTP threads and never block: authentication answers from a
/// cache or asks Postgres asynchronously, turns go to the runtime, and the answer is
/// rendered on the actor thread that completes the turn.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::actors {

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
};

/// Adds `/status`, `/versions` and the `/v5.3.0/...` session routes to `routes`.
/// The returned object owns the authentication cache; keep it alive as long as the server.
std::shared_ptr<void> add_botapi_routes(http::router& routes, botapi_gateway_options options);

}  // namespace parley::actors
