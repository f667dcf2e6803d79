#pragma once
/// The Direct Line 3.0 gateway (web chat): tokens, conversations, posted activities,
/// polls from a watermark and the WebSocket stream, translated into runtime turns
/// (codec: src/channels/directline; facts: ../shared/protocols.md).
///
/// Credentials. A Direct Line secret names its tenant and bot (`dl1~<tenant>~<bot>~...`);
/// it is accepted when it equals, in constant time, the tenant's secret
/// `directline.<bot>` (`tenant_secret`). A token is signed by the region's key
/// (`token_key`, the same on every node) and names its tenant, bot and one
/// conversation: any node verifies it without a lookup. Without a key every route
/// answers 503 (the node logs why once at startup).
///
/// Turns. A conversation's start (POST /conversations) is an `inbound::kind::start`
/// with message id "start"; each posted message is a text turn whose message id is
/// the client's `channelData.clientActivityID`, so a retried post is answered from
/// the conversation's record without running the bot again. After the answer the
/// user's echo and the bot's replies are appended as one group to the conversation's
/// activity log in Redis (directline_log.hpp), keyed by that same id: a retry appends
/// nothing and answers the echo's first id again.
///
/// Handoff. A conversation the bot handed to an agent (agent_gateway.hpp) keeps taking
/// the user's posts (kept for the agent, the bot does not run); the agent's messages
/// and whatever the bot says when the agent gives the conversation back leave from the
/// outbox, and directline_deliver() appends them to the log.
///
/// Streams. One WebSocket per conversation (a second replaces the first); it replays
/// the log from the watermark at open and then gets every group appended, in log
/// order, whichever node of the region appended it (the log records which node holds
/// the stream, and an append elsewhere tells that node over Redis pub/sub), plus
/// `typing` while a turn of it is pending on the stream's node.
/// Threads: HTTP handlers on the HTTP threads; turn completions, Redis callbacks and
/// socket callbacks on theirs; the stream table is under a mutex.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/delivery/delivery.hpp"
#include "actors/limits/limits_cache.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "src/http/http.hpp"

namespace parley::store {
class redis_client;
class redis_subscription;
}  // namespace parley::store

namespace parley::actors {

class turn_sink;

struct directline_gateway_options {
  turn_sink* rt = nullptr;               ///< the runtime, or the cluster's router
  store::redis_client* redis = nullptr;  ///< the activity logs
  std::size_t redis_lanes = 0;
  std::string key_prefix = "parley";
  /// This node's name: a stream on this node hears of the activities other nodes append
  /// (subscribe_directline_pushes). Empty: streams get only this node's appends.
  std::string node;
  /// The region's token signing key; empty: the routes answer 503.
  std::string token_key;
  /// The tenant's secrets (actors/secrets); the gateway asks for `directline.<bot>`.
  /// Secrets that cannot be read answer 503, not 403.
  secret_lookup tenant_secret;
  /// The tenant's attachment limits (actors/limits); empty: the defaults. An activity
  /// with a refused attachment is 400 naming it (`attachments[2].contentUrl: ...`).
  limits_lookup limits;
  /// The registry of parley_attachments_refused_total; may be null.
  prometheus::Registry* metrics = nullptr;
  std::chrono::seconds token_ttl{1800};
  std::chrono::seconds default_log_ttl{3600};  ///< when the outcome names no program
};

/// Adds the `/v3/directline/...` routes (and their CORS preflight) and the stream's
/// upgrade route to `routes`. The returned object owns the gateway; keep it alive as
/// long as the server.
std::shared_ptr<void> add_directline_routes(http::router& routes,
                                            directline_gateway_options options);

/// Answers as `POST /v3/directline/tokens/generate` with the secret of (tenant, bot)
/// would: a token for a new conversation, when the tenant has the secret
/// `directline.<bot>`; else 404 "web chat is not enabled for bot B: set the tenant
/// secret directline.B". The secret itself is never in the answer. `directline` is
/// what add_directline_routes returned. For the web chat page (chat_page.hpp).
void directline_page_token(const std::shared_ptr<void>& directline, const std::string& tenant,
                           const std::string& bot, http::responder reply);

/// The outbox's sender for Direct Line: reply `index` of `entry` (an agent's message, or
/// the bot's after the agent API ended a handoff) is appended to the conversation's
/// activity log as one group keyed by `key`, so a retried delivery appends nothing, and
/// pushed to the conversation's socket if it is on this node (a socket on another node
/// gets it when it reconnects from its watermark, as does a poll). `directline` is what
/// add_directline_routes returned.
/// Subscribes this node to the news of appends other nodes make to conversations it
/// streams. Keep the result while the gateway serves; destroy it before the Redis client
/// and not on the Redis client's thread. Null when the options name no node.
std::unique_ptr<store::redis_subscription> subscribe_directline_pushes(
    const std::shared_ptr<void>& directline);

void directline_deliver(const std::shared_ptr<void>& directline,
                        const parley::runtime::v1::OutboxEntry& entry, int index,
                        const std::string& key, std::function<void(delivery_result)> done);

}  // namespace parley::actors
