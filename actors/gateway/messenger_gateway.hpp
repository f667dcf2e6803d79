#pragma once
/// The Messenger gateway: Meta's webhooks for a Facebook page, translated into runtime
/// turns (codec: src/channels/messenger). Replies leave from the outbox through the
/// Send API (actors/delivery/channel_delivery.hpp), like SMS.
///
/// Routes, for a bot `B` of tenant `T` (the app's webhook callback URL):
/// - `GET /channels/messenger/T/B`: Meta's verification: answers hub.challenge when
///   hub.verify_token equals the tenant secret `messenger.verify_token`, else 403.
/// - `POST /channels/messenger/T/B`: a batch of events. X-Hub-Signature-256 must match
///   the tenant secret `messenger.app_secret` over the raw body (403 otherwise, and
///   nothing is processed). Every event is processed, in order: a message or postback
///   runs as a turn of the conversation (T, B, page, the user's PSID), which starts at
///   the user's first message and lasts until it ends or expires; quick-reply and
///   postback payloads are the bot's choices; attachments reach the bot as their URLs;
///   echoes of our own messages are ignored; deliveries and reads are kept in
///   `message_receipts`. A
///   message runs once: Meta's retry of the same `mid` gets the recorded turn. The 200
///   goes out once every event of the batch is committed (replies included); 503 when
///   one could not be (Meta then retries the batch, and what ran is not run again).
///   While a turn runs the user sees the typing indicator (`typing_on`, best effort).

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/limits/limits_cache.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "src/common/result.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"

namespace prometheus {
class Registry;
}

namespace parley::store {
class postgres_client;
}

namespace parley::actors {

class session_keys;
class turn_sink;

struct messenger_gateway_options {
  turn_sink* rt = nullptr;
  session_keys* sessions = nullptr;  ///< required
  /// The tenant's secrets (actors/secrets/secret_cache.hpp).
  secret_lookup secret;
  /// The tenant's attachment limits (actors/limits); empty: the defaults. Refused
  /// attachments never reach the bot; the transcript records them and why.
  limits_lookup limits;
  /// For the typing indicator; empty: none is sent.
  std::function<void(http::client_request, std::function<void(result<http::client_response>)>)>
      send;
  std::string api_base = "https://graph.facebook.com/v19.0";
  /// Where deliveries and reads are kept (message_receipts); null: they are ignored.
  store::postgres_client* receipts = nullptr;
  prometheus::Registry* metrics = nullptr;
};

/// Adds the routes above. Keep the returned object alive as long as the server.
std::shared_ptr<void> add_messenger_routes(http::router& routes, messenger_gateway_options options);

}  // namespace parley::actors
