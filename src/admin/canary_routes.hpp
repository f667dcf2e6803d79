#pragma once
/// The admin API's canary and statistics routes (docs/operations.md, "Canary deploys"),
/// dispatched by admin.cpp under /admin/v1/tenants/{t}/bots/{bot}/:
///
///   POST versions?canary=P[&max_error_rate_increase=X][&max_fallback_rate_increase=X]
///        [&max_action_failure_rate_increase=X][&min_conversations=N]   body: the bot file
///        201 {version,program_id,activated:false,canary:{...},warnings}; 422 as a deploy
///   GET  canary           200 the running (else the last) canary with its figures
///   POST canary/promote   200 the canary, now the active version
///   POST canary/abort     200 the canary, ended: new conversations go to the active one
///   GET  stats            200 {tenant,bot,versions:[{version,active,canary,turns,...,
///                              fallback_rate,containment,transfer_rate,action_failures,
///                              action_failure_rate,error_dialog_rate}]}
///
/// Errors: 400 naming the query parameter (`canary`, `min_conversations`, ...), 404
/// `tenant_not_found` / `bot_not_found`, 409 `no_active_version` (a canary needs one to
/// split with), `canary_running` (one at a time), `no_canary` (nothing to promote,
/// abort or show). Every change is audited and announced as `canary_changed`
/// (promote: also `bot_activated`).
///
/// Threads: as admin.hpp: the handlers enqueue catalog jobs and answer from the Postgres
/// worker's callback.

#include <functional>
#include <string>
#include <vector>

#include "src/admin/changes.hpp"
#include "src/http/http.hpp"
#include "src/store/postgres.hpp"

namespace parley::admin {

struct canary_context {
  store::postgres_client& pg;
  std::function<void(const change&)> changed;  ///< may be empty
};

/// Whether a deploy request asks for a canary (a `canary` query parameter).
bool wants_canary(const http::request& req);

/// A deploy with ?canary=P: compiles and stores the version and starts it as the bot's
/// canary, in one transaction.
void deploy_canary(const canary_context& ctx, const http::request& req, const std::string& tenant,
                   const std::string& bot, const std::string& actor, http::responder respond);

/// `rest`: the path's segments after the bot ("canary", "canary/promote", "stats", ...).
/// False when no canary route matches (the caller answers 404).
bool canary_route(const canary_context& ctx, const http::request& req, const std::string& tenant,
                  const std::string& bot, const std::vector<std::string>& rest,
                  const std::string& actor, http::responder respond);

}  // namespace parley::admin
