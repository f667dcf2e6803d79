#include "src/admin/canary_routes.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "src/admin/deploy.hpp"
#include "src/admin/replies.hpp"
#include "src/store/catalog/canary.hpp"

namespace parley::admin {

namespace {

using json = nlohmann::json;

using replies::error_response;
using replies::json_response;
using replies::query_param;
using replies::status_of;

http::response failure(const error& e) {
  // A setting out of range names its query parameter (the message starts with it).
  std::string field;
  if (e.code == "invalid_argument") {
    for (const char* f : {"percent", "max_error_rate_increase", "max_fallback_rate_increase",
                          "max_action_failure_rate_increase", "min_conversations"})
      if (e.message.rfind(f, 0) == 0) field = f == std::string("percent") ? "canary" : f;
  }
  return error_response(status_of(e), e.code, e.message, field);
}

/// An ISO 8601 time, "" for 0 (never).
std::string iso_time(std::int64_t ms) { return ms == 0 ? std::string() : replies::iso_time(ms); }

/// A number query parameter; answers 400 naming it when it is not one.
bool number_param(const http::request& req, const char* name, bool integer, double& out,
                  http::responder& respond) {
  auto v = query_param(req.query, name);
  if (!v) return true;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !std::isfinite(d) || (integer && d != std::floor(d))) {
    respond(error_response(400, "invalid_field",
                           std::string("query parameter '") + name + "' must be " +
                               (integer ? "an integer" : "a number") + ", got '" + *v + "'",
                           name));
    return false;
  }
  out = d;
  return true;
}

json settings_json(const store::canary_settings& s) {
  return {{"percent", s.percent},
          {"max_error_rate_increase", s.max_error_rate_increase},
          {"max_fallback_rate_increase", s.max_fallback_rate_increase},
          {"max_action_failure_rate_increase", s.max_action_failure_rate_increase},
          {"min_conversations", s.min_conversations}};
}

json canary_json(const store::canary_record& c) {
  json j = {{"tenant", c.tenant},
            {"bot", c.bot},
            {"version", c.version},
            {"baseline_version", c.baseline_version},
            {"settings", settings_json(c.settings)},
            {"started_by", c.started_by},
            {"started_at", iso_time(c.started_at_ms)},
            {"running", c.ended_at_ms == 0}};
  j["ended_at"] = c.ended_at_ms == 0 ? json(nullptr) : json(iso_time(c.ended_at_ms));
  j["outcome"] = c.outcome.empty() ? json(nullptr) : json(c.outcome);
  j["reason"] = json::parse(c.reason_json, nullptr, false);
  if (j["reason"].is_discarded()) j["reason"] = nullptr;
  return j;
}

json ratio(std::int64_t n, std::int64_t d) {
  return d <= 0 ? json(nullptr) : json(static_cast<double>(n) / static_cast<double>(d));
}

/// Counts and the rates operators read (docs/operations.md).
json figures_json(const store::version_counts& c) {
  return {{"turns", c.turns},
          {"conversations", c.sessions},
          {"fallbacks", c.fallbacks},
          {"transfers", c.transfers},
          {"ended", c.ended},
          {"action_failures", c.action_failures},
          {"error_dialogs", c.error_dialogs},
          {"fallback_rate", ratio(c.fallbacks, c.turns)},
          {"error_dialog_rate", ratio(c.error_dialogs, c.turns)},
          {"action_failure_rate", ratio(c.action_failures, c.turns)},
          {"transfer_rate", ratio(c.transfers, c.sessions)},
          {"containment", ratio(c.ended, c.ended + c.transfers)}};
}

json report_json(const store::canary_report& r) {
  json j = canary_json(r.canary);
  j["canary"] = figures_json(r.canary_counts);
  json base = figures_json(r.baseline_counts);
  // The baseline's window starts with the canary: only what is compared is kept.
  for (const char* k : {"transfers", "ended", "transfer_rate", "containment"}) base.erase(k);
  j["baseline"] = base;
  j["judged"] = r.judged;
  j["conversations_needed"] =
      std::max<std::int64_t>(0, r.canary.settings.min_conversations - r.canary_counts.sessions);
  json breaches = json::array();
  for (const auto& b : r.breaches)
    breaches.push_back({{"rate", b.rate},
                        {"canary", b.canary},
                        {"baseline", b.baseline},
                        {"increase_points", b.increase_points},
                        {"max_increase_points", b.max_increase_points}});
  j["breaches"] = breaches;
  return j;
}

void announce(const canary_context& ctx, change::kind k, const std::string& tenant,
              const std::string& bot, int version) {
  if (!ctx.changed) return;
  change c;
  c.what = k;
  c.tenant = tenant;
  c.bot = bot;
  c.version = version;
  ctx.changed(c);
}

struct canary_deploy_outcome {
  deploy_outcome deploy;
  store::canary_record canary;
};

}  // namespace

bool wants_canary(const http::request& req) { return query_param(req.query, "canary").has_value(); }

void deploy_canary(const canary_context& ctx, const http::request& req, const std::string& tenant,
                   const std::string& bot, const std::string& actor, http::responder respond) {
  if (auto a = query_param(req.query, "activate"); a && *a != "false" && *a != "0")
    return respond(error_response(
        400, "invalid_field",
        "query parameters 'canary' and 'activate' exclude each other: a canary is not active",
        "activate"));
  store::canary_settings s;
  double percent = 0, min_conversations = s.min_conversations;
  if (!number_param(req, "canary", true, percent, respond) ||
      !number_param(req, "max_error_rate_increase", false, s.max_error_rate_increase, respond) ||
      !number_param(req, "max_fallback_rate_increase", false, s.max_fallback_rate_increase,
                    respond) ||
      !number_param(req, "max_action_failure_rate_increase", false,
                    s.max_action_failure_rate_increase, respond) ||
      !number_param(req, "min_conversations", true, min_conversations, respond))
    return;
  if (percent < 1 || percent > 50)
    return respond(error_response(400, "invalid_field",
                                  "query parameter 'canary' must be a percentage from 1 to 50",
                                  "canary"));
  if (min_conversations < 1 || min_conversations > 1000000)
    return respond(error_response(400, "invalid_field",
                                  "query parameter 'min_conversations' must be from 1 to 1000000",
                                  "min_conversations"));
  s.percent = static_cast<int>(percent);
  s.min_conversations = static_cast<int>(min_conversations);
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos)
    return respond(error_response(400, "missing_field",
                                  "the request body must be the bot definition file", "body"));
  deploy_request d;
  d.tenant = tenant;
  d.bot = bot;
  d.source = req.body;
  d.deployed_by = actor;
  d.file_name = bot + ".yaml";
  store::catalog_job<canary_deploy_outcome> job = [d, s,
                                                   actor](pqxx::transaction_base& tx) mutable {
    // Settings and target first: a bad one fails before anything compiles or is stored.
    store::check_canary_settings(s)(tx);
    store::check_canary_target(d.tenant, d.bot)(tx);
    canary_deploy_outcome out;
    out.deploy = deploy_version(d)(tx);
    if (out.deploy.deployed)
      out.canary = store::start_canary(d.tenant, d.bot, out.deploy.version, s, actor)(tx);
    return out;
  };
  store::run_job(
      ctx.pg, std::move(job), [ctx, respond, tenant, bot](result<canary_deploy_outcome> r) {
        if (!r) return respond(failure(r.err()));
        const auto& dep = r->deploy;
        json warnings = json::array(), all = json::array();
        std::size_t errors = 0;
        for (const auto& x : dep.diagnostics) {
          json j = {{"line", x.line},
                    {"column", x.column},
                    {"severity", x.severity},
                    {"message", x.message}};
          all.push_back(j);
          if (x.severity == "error")
            ++errors;
          else
            warnings.push_back(j);
        }
        if (!dep.deployed)
          return respond(json_response(
              422, {{"error",
                     {{"code", "bot_invalid"},
                      {"message", "bot file of '" + bot + "' has " + std::to_string(errors) +
                                      " error(s); nothing was deployed"}}},
                    {"diagnostics", all}}));
        announce(ctx, change::kind::canary_changed, tenant, bot, dep.version);
        respond(json_response(201, {{"version", dep.version},
                                    {"program_id", dep.program_id},
                                    {"activated", false},
                                    {"canary", canary_json(r->canary)},
                                    {"warnings", warnings}}));
      });
}

bool canary_route(const canary_context& ctx, const http::request& req, const std::string& tenant,
                  const std::string& bot, const std::vector<std::string>& rest,
                  const std::string& actor, http::responder respond) {
  const bool get = req.method == "GET", post = req.method == "POST";
  auto wrong_method = [&] {
    respond(
        error_response(405, "method_not_allowed", req.method + " is not allowed on " + req.path));
  };
  if (rest.size() == 1 && rest[0] == "stats") {
    if (!get) return wrong_method(), true;
    store::run_job(
        ctx.pg, store::bot_stats(tenant, bot),
        [respond, tenant, bot](result<std::vector<store::version_stats>> r) {
          if (!r) return respond(failure(r.err()));
          json list = json::array();
          for (const auto& v : *r) {
            json j = figures_json(v.counts);
            j["version"] = v.version;
            j["active"] = v.active;
            j["canary"] = v.canary;
            list.push_back(std::move(j));
          }
          respond(json_response(200, {{"tenant", tenant}, {"bot", bot}, {"versions", list}}));
        });
    return true;
  }
  if (rest.empty() || rest[0] != "canary" || rest.size() > 2) return false;
  if (rest.size() == 1) {
    if (!get) return wrong_method(), true;
    store::run_job(ctx.pg, store::canary_status(tenant, bot),
                   [respond](result<store::canary_report> r) {
                     if (!r) return respond(failure(r.err()));
                     respond(json_response(200, report_json(*r)));
                   });
    return true;
  }
  const bool promote = rest[1] == "promote";
  if (!promote && rest[1] != "abort") return false;
  if (!post) return wrong_method(), true;
  auto job =
      promote ? store::promote_canary(tenant, bot, actor) : store::abort_canary(tenant, bot, actor);
  store::run_job(ctx.pg, std::move(job),
                 [ctx, respond, tenant, bot, promote](result<store::canary_record> r) {
                   if (!r) return respond(failure(r.err()));
                   if (promote) announce(ctx, change::kind::bot_activated, tenant, bot, r->version);
                   announce(ctx, change::kind::canary_changed, tenant, bot, r->version);
                   respond(json_response(200, canary_json(*r)));
                 });
  return true;
}

}  // namespace parley::admin
