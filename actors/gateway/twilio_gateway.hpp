#pragma once
/// The SMS gateway: Twilio's inbound webhooks, translated into runtime turns (codec:
/// src/channels/twilio). Replies do not go back in the webhook's answer: the turn's
/// commit puts them in the outbox, and the shard's owner sends them through Twilio's
/// Messages API (actors/delivery/channel_delivery.hpp, cluster/node/outbox_drain.hpp).
///
/// Routes, for a bot `B` of tenant `T` (configure them as the number's "A message comes
/// in" webhook, POST):
/// - `POST /channels/twilio/T/B`: a message from a user. The X-Twilio-Signature must
///   match the tenant secret `twilio.auth_token` over `public_url` + the request's
///   path and query, as Twilio signs the URL it was given (403 otherwise, and nothing
///   is processed). The conversation is (T, B, our number, the user's number): the
///   first message starts it (and is its first input), later ones continue it until
///   it ends or expires, then the next message starts a new one. A message is run once:
///   Twilio's retry of the same MessageSid gets the recorded turn. The answer, an
///   empty TwiML `<Response/>`, goes out once the turn is committed, replies
///   included. STOP (and Twilio's other opt-out words) makes the number get nothing
///   more until START; neither reaches the bot.
/// - `POST /channels/twilio/T/B/status`: Twilio's status callbacks for the messages
///   sent, with the same signature check; kept in `message_receipts`.
/// Errors: 400 naming the parameter, 403, 404 (no such bot), 503 with Retry-After
/// when the conversation store cannot be reached (Twilio then tries the fallback URL).
///
/// Handlers run on the HTTP threads and never block.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/limits/limits_cache.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace prometheus {
class Registry;
}

namespace parley::store {
class postgres_client;
}

namespace parley::actors {

class session_keys;
class sms_opt_outs;
class turn_sink;

struct twilio_gateway_options {
  turn_sink* rt = nullptr;           ///< the runtime, or the cluster's router
  session_keys* sessions = nullptr;  ///< required: conversations by phone numbers
  /// scheme://host[:port] as configured at Twilio (signatures cover it). Any thread.
  std::function<std::string()> public_url;
  /// The tenant's secrets (actors/secrets/secret_cache.hpp).
  secret_lookup secret;
  /// The tenant's attachment limits (actors/limits); empty: the defaults. Refused
  /// attachments never reach the bot; the transcript records them and why.
  limits_lookup limits;
  /// Where STOP and START are recorded (the SMS sender reads them); null: the words
  /// reach the bot like any text.
  sms_opt_outs* opt_outs = nullptr;
  /// Where status callbacks are kept (message_receipts); null: they are only counted.
  store::postgres_client* receipts = nullptr;
  prometheus::Registry* metrics = nullptr;
};

/// Adds the routes above to `routes`. The returned object owns the gateway; keep it
/// alive as long as the server.
std::shared_ptr<void> add_twilio_routes(http::router& routes, twilio_gateway_options options);

}  // namespace parley::actors
