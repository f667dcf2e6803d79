#pragma once
/// parley::admin — the operators' REST API under /admin/v1: tenants, API keys,
/// bot deploys, versions, activation and rollback, live conversations and
/// transcripts. Backed by the Postgres catalog (src/store/catalog.hpp); no CAF:
/// the node wires live conversations and the debug kill in through hooks.
///
/// Auth: every route wants `Authorization: Bearer <admin token>` (401 without
/// it or with a wrong one, compared in constant time). With an empty token
/// every route answers 503 "admin API disabled: set PARLEY_ADMIN_TOKEN".
/// `X-Parley-Actor: <name>` (optional) names the person in the audit log and
/// as `deployed_by`; the default is "admin".
///
/// Bodies are JSON in and out; errors are `{"error":{"code","message"}}`, with
/// `"field"` naming the offending request field when there is one. A deploy
/// whose file does not compile answers 422 with the error object and
/// `"diagnostics":[{"line","column","severity","message"}]`.
///
/// Threads: handlers never block the HTTP thread. They enqueue catalog jobs
/// and answer through the responder from the Postgres worker's callback (a
/// deploy compiles the bot on that worker). `live_conversations` is called on
/// a Postgres worker thread (after the tenant check) and `kill_conversation`
/// on an HTTP thread: both must not block, and may call `done` from any thread.
///
/// Canaries and per-version statistics: src/admin/canary_routes.hpp (a deploy with
/// ?canary=P, .../bots/{bot}/canary[/promote|/abort], .../bots/{bot}/stats).
///
/// Changes: a revoked key or a new active version reaches every node of the region
/// within a second (the `changed` hook, src/admin/changes.hpp, docs/changes.md).
///
/// Lifetime: the postgres_client and whatever the hooks capture must outlive
/// the HTTP server the routes are added to (stop the server first).

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "src/admin/changes.hpp"
#include "src/common/result.hpp"
#include "src/http/http.hpp"
#include "src/secrets/secrets.hpp"
#include "src/store/postgres.hpp"

namespace parley::admin {

struct admin_options {
  store::postgres_client& postgres;
  /// The bearer token operators present; empty disables the admin API (503).
  std::string token;
  /// Lists a tenant's live conversations: calls `done` once, from any thread,
  /// with a JSON array (each element an object describing one conversation).
  /// Unset: GET .../conversations answers 503.
  std::function<void(std::string tenant, std::function<void(nlohmann::json)> done)>
      live_conversations;
  /// Kills one live conversation actor (debug only, so tests can prove
  /// recovery): `done(true)` when it was live and is killed, `false` when it
  /// was not live.
  std::function<void(std::string tenant, std::string session, std::function<void(bool)> done)>
      kill_conversation;
  /// Enables the POST /admin/v1/debug/... routes (kill, stall); when false they are 404.
  bool debug_kill = false;
  /// The region's members (GET /admin/v1/cluster): `done` once, any thread, with the
  /// status object or why it cannot be read (503). Unset: 503.
  std::function<void(std::function<void(result<nlohmann::json>)> done)> cluster_status = {};
  /// Asks a node to drain (POST /admin/v1/cluster/nodes/{id}/drain): done(true) when
  /// asked (202), false when no such member (404).
  std::function<void(std::string node, std::function<void(result<bool>)> done)> cluster_drain = {};
  /// Called once per committed revocation or activation (activate, rollback, a deploy
  /// with ?activate=true), on a Postgres worker thread before the answer is sent; must
  /// not block. The node wires it to change_publisher (src/admin/changes.hpp) so every
  /// node of the region hears of it at once. Unset: nothing is published.
  std::function<void(const change&)> changed = {};
  /// This node's region (node.region): the home region of the tenants created here. A
  /// create naming another region is refused (422, field `region`).
  std::string region = "local";
  /// Debug only (with debug_kill): makes one lane run nothing for the given time, not
  /// the caller's (POST /admin/v1/debug/lanes/stall); returns the lane, -1 when none.
  std::function<int(std::chrono::milliseconds)> stall_lane = {};
  /// The node's keys for tenant secrets (secrets::keyring::from_env()). Without a
  /// current key (PARLEY_SECRETS_KEY unset) every secrets route answers 503
  /// `secrets_disabled`. No response of these routes ever holds a value.
  secrets::keyring secrets = {};
  /// The shortest nudge_after / close_after a deployed bot may set (timers.min_after_ms).
  std::chrono::milliseconds min_timer{10000};
};

/// The admin token from the environment (PARLEY_ADMIN_TOKEN), "" when unset.
std::string admin_token_from_env();

/// Adds every /admin/v1 route to `routes`:
///   GET  /admin/v1/cluster                            200 {region,shards,self,nodes,peer_regions}
///   POST /admin/v1/cluster/nodes/{id}/drain                       202 {node,draining}
///   POST /admin/v1/tenants {id,name,region?}                      201 tenant
///   GET  /admin/v1/tenants                                        200 {tenants:[...]}
///   GET  /admin/v1/tenants/{t}                                    200 tenant
///   POST /admin/v1/tenants/{t}/api-keys {name?}                   201 {id,key,prefix,name}
///   GET  /admin/v1/tenants/{t}/api-keys                           200 {api_keys:[...]}
///   POST /admin/v1/tenants/{t}/api-keys/{id}/revoke               200
///   POST /admin/v1/tenants/{t}/bots/{bot}/versions[?activate=true] body: the bot file
///                                                                 201
///                                                                 {version,program_id,activated,warnings}
///                                                                 422 {error,diagnostics}
///   GET  /admin/v1/tenants/{t}/bots/{bot}/versions                200
///   {active_version,versions:[...]} POST /admin/v1/tenants/{t}/bots/{bot}/activate {version} 200
///   activation POST /admin/v1/tenants/{t}/bots/{bot}/rollback                200 activation GET
///   /admin/v1/tenants/{t}/conversations                      200 {tenant,conversations:[...]} GET
///   /admin/v1/tenants/{t}/conversations/{s}/transcript       200 {conversation,messages:[...]}
///   GET  /admin/v1/tenants/{t}/bots/{bot}/conversations?since=24h&limit=100&after=CURSOR
///                                                                 200 {conversations:[{session_id,
///                                                                 version,turns:[{sequence,inbound,
///                                                                 replies,at,record}]}],next}
///   PUT  /admin/v1/tenants/{t}/secrets/{name} {value}             201 {tenant,name,created} new;
///                                                                 204 replaced
///   GET  /admin/v1/tenants/{t}/secrets                            200 {tenant,secrets:[{name,
///                                                                 updated_at}]} (no values)
///   DELETE /admin/v1/tenants/{t}/secrets/{name}                   204; 404 secret_not_found
///   POST /admin/v1/secrets/rotate                                 200 {reencrypted,key_id}
///   POST /admin/v1/debug/tenants/{t}/conversations/{s}/kill       200 {killed:true}; 404
///   POST /admin/v1/debug/lanes/stall {ms}                          200 {lane,ms} (debug only)
void add_admin_routes(http::router& routes, admin_options options);

}  // namespace parley::admin
