#pragma once
/// The agent API: how a human agent (a business's help-desk tool) takes over a
/// conversation of an asynchronous channel (SMS, Messenger) that the bot handed over.
///
/// When a bot's `transfer` is committed, the conversation waits for an agent: the
/// bot no longer runs, the user's messages are kept in the transcript, and the handoff
/// is recorded (Postgres `handoffs`, from the outbox: as durable as the turn).
/// Authentication as the Bot API's: `X-Org-Id: <tenant>` and `Authorization: Bearer
/// <API key of that tenant>`.
/// - `GET /agent/v1/handoffs[?all=true]`: the tenant's open handoffs (or all).
/// - `GET /agent/v1/handoffs/{session}/transcript`: the conversation so far.
/// - `POST /agent/v1/handoffs/{session}/messages` `{"text", "id"?}`: the agent's message
///   to the user, sent from the outbox like the bot's (Messenger: HUMAN_AGENT tag); `id`
///   makes a retried post send it once. 422 when the session is not handed over.
/// - `POST /agent/v1/handoffs/{session}/close` `{"outcome": "resolved" | "returned_to_bot"}`:
///   resolved ends the conversation (the transfer succeeded); returned_to_bot gives it
///   back to the bot (the transfer failed: the bot's failure path runs).
/// Errors: `{"error":{"code","message"}}` with 400 (naming the field), 401, 404, 422, 503.

#include <functional>
#include <memory>
#include <string>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::store {
class postgres_client;
}

namespace parley::actors {

class turn_sink;

struct agent_gateway_options {
  turn_sink* rt = nullptr;
  store::postgres_client* pg = nullptr;
  /// Is `key` an API key of `tenant`? `done` once, any thread.
  std::function<void(const std::string& tenant, const std::string& key,
                     std::function<void(result<bool>)> done)>
      verify_key;
};

/// Adds the routes above. Keep the returned object alive as long as the server.
std::shared_ptr<void> add_agent_routes(http::router& routes, agent_gateway_options options);

}  // namespace parley::actors
