// parleyctl canary status|promote|abort and parleyctl stats: a bot's canary and its
// versions' region-wide figures, over the admin REST API (src/admin/canary_routes.hpp,
// docs/operations.md "Canary deploys"). `deploy --canary P` lives with deploy
// (parleyctl_admin.cpp).
//
// Exit codes: 0 ok, 1 the server said no (its error is printed), 2 usage or connection
// error.

#include "src/app/parleyctl.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "src/http/client.hpp"

namespace parley::ctl {

namespace {

using json = nlohmann::json;

using target = admin_target;

/// The answer's JSON body, or nullopt with `code` set (error already printed).
std::optional<json> call(const target& t, const std::string& method, const std::string& path,
                         int& code) {
  auto a = admin_call(t, method, path, "", code);
  if (!a || a->status >= 400) {
    if (a) code = 1;
    return std::nullopt;
  }
  return a->body;
}

std::string bot_path(const std::string& tenant, const std::string& bot) {
  return "/admin/v1/tenants/" + seg(tenant) + "/bots/" + seg(bot);
}

/// A rate as a percentage with one decimal, "-" when there is none.
std::string pct(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", j[key].get<double>() * 100.0);
  return buf;
}

std::string num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

void print_canary(const json& c) {
  std::cout << "canary version " << num(c, "version") << " of " << num(c, "tenant") << "/"
            << num(c, "bot") << " against version " << num(c, "baseline_version") << ": "
            << (c.value("running", false) ? "running" : num(c, "outcome")) << ", "
            << num(c["settings"], "percent") << "% of new conversations, started "
            << num(c, "started_at") << " by " << num(c, "started_by") << "\n";
}

int cmd_status(const target& t, const std::string& tenant, const std::string& bot) {
  int code = 0;
  auto b = call(t, "GET", bot_path(tenant, bot) + "/canary", code);
  if (!b || t.raw_json) return code;
  const json& c = *b;
  print_canary(c);
  const json& s = c["settings"];
  std::cout << "margins: error dialogs +" << num(s, "max_error_rate_increase")
            << " points, fallbacks +" << num(s, "max_fallback_rate_increase")
            << " points, action failures +" << num(s, "max_action_failure_rate_increase")
            << " points, judged after " << num(s, "min_conversations") << " conversations\n";
  std::cout << std::left << std::setw(10) << "" << std::setw(15) << "CONVERSATIONS" << std::setw(8)
            << "TURNS" << std::setw(14) << "ERROR DIALOGS" << std::setw(11) << "FALLBACKS"
            << "ACTION FAILURES\n";
  for (const char* which : {"canary", "baseline"}) {
    const json& f = c[which];
    std::cout << std::setw(10) << (std::string(which) == "canary" ? "canary" : "active")
              << std::setw(15) << num(f, "conversations") << std::setw(8) << num(f, "turns")
              << std::setw(14) << pct(f, "error_dialog_rate") << std::setw(11)
              << pct(f, "fallback_rate") << pct(f, "action_failure_rate") << "\n";
  }
  if (c.value("running", false) && !c.value("judged", false))
    std::cout << "not judged yet: " << num(c, "conversations_needed")
              << " more canary conversations needed\n";
  for (const auto& br : c.value("breaches", json::array()))
    std::cout << "past its margin: " << num(br, "rate") << " +" << num(br, "increase_points")
              << " points (max " << num(br, "max_increase_points") << ")\n";
  if (c.contains("reason") && c["reason"].is_object())
    std::cout << "rolled back because: " << c["reason"].dump() << "\n";
  return 0;
}

int cmd_end(const target& t, const std::string& tenant, const std::string& bot, bool promote) {
  int code = 0;
  auto b = call(t, "POST", bot_path(tenant, bot) + (promote ? "/canary/promote" : "/canary/abort"),
                code);
  if (!b || t.raw_json) return code;
  if (promote)
    std::cout << "promoted " << tenant << "/" << bot << " version " << num(*b, "version")
              << ": now active for every new conversation\n";
  else
    std::cout << "aborted canary version " << num(*b, "version") << " of " << tenant << "/" << bot
              << ": new conversations go to version " << num(*b, "baseline_version")
              << "; those already on the canary stay on it\n";
  return 0;
}

int cmd_stats(const target& t, const std::string& tenant, const std::string& bot) {
  int code = 0;
  auto b = call(t, "GET", bot_path(tenant, bot) + "/stats", code);
  if (!b || t.raw_json) return code;
  std::cout << std::left << std::setw(9) << "VERSION" << std::setw(8) << "" << std::setw(15)
            << "CONVERSATIONS" << std::setw(8) << "TURNS" << std::setw(10) << "FALLBACK"
            << std::setw(13) << "CONTAINMENT" << std::setw(10) << "TRANSFER" << std::setw(16)
            << "ACTION FAILURES"
            << "ERROR DIALOGS\n";
  for (const auto& v : b->value("versions", json::array()))
    std::cout << std::setw(9) << num(v, "version") << std::setw(8)
              << (v.value("active", false)   ? "active"
                  : v.value("canary", false) ? "canary"
                                             : "")
              << std::setw(15) << num(v, "conversations") << std::setw(8) << num(v, "turns")
              << std::setw(10) << pct(v, "fallback_rate") << std::setw(13) << pct(v, "containment")
              << std::setw(10) << pct(v, "transfer_rate") << std::setw(16)
              << (num(v, "action_failures") + " (" + pct(v, "action_failure_rate") + ")")
              << pct(v, "error_dialog_rate") << "\n";
  return 0;
}

}  // namespace

void add_canary_commands(CLI::App& app, int& exit_code) {
  static target t;
  static std::string tenant, bot;
  auto options = [](CLI::App* cmd) {
    cmd->add_option("TENANT", tenant, "tenant id")->required();
    cmd->add_option("BOT", bot, "bot id")->required();
    add_target_options(cmd, t);
  };
  auto* canary = app.add_subcommand(
      "canary", "A bot's canary version (deploy --canary P): status, promote, abort");
  canary->require_subcommand(1);
  auto* st = canary->add_subcommand(
      "status", "The canary's share, conversations and rates against the active version");
  options(st);
  st->callback([&exit_code] { exit_code = cmd_status(t, tenant, bot); });
  auto* pr = canary->add_subcommand("promote", "Make the canary the active version (audited)");
  options(pr);
  pr->callback([&exit_code] { exit_code = cmd_end(t, tenant, bot, true); });
  auto* ab = canary->add_subcommand(
      "abort", "End the canary: new conversations all go to the active version (audited)");
  options(ab);
  ab->callback([&exit_code] { exit_code = cmd_end(t, tenant, bot, false); });

  auto* stats = app.add_subcommand(
      "stats",
      "Per version, region-wide: fallback rate, containment, transfer rate, action failures, "
      "error-dialog rate");
  options(stats);
  stats->callback([&exit_code] { exit_code = cmd_stats(t, tenant, bot); });
}

}  // namespace parley::ctl

namespace parley::ctl {

std::string canary_deploy_query(const canary_deploy_options& o) {
  if (o.percent == 0) return {};
  std::ostringstream q;
  q << "?canary=" << o.percent;
  if (o.max_error_rate_increase >= 0) q << "&max_error_rate_increase=" << o.max_error_rate_increase;
  if (o.max_fallback_rate_increase >= 0)
    q << "&max_fallback_rate_increase=" << o.max_fallback_rate_increase;
  if (o.max_action_failure_rate_increase >= 0)
    q << "&max_action_failure_rate_increase=" << o.max_action_failure_rate_increase;
  if (o.min_conversations > 0) q << "&min_conversations=" << o.min_conversations;
  return q.str();
}

}  // namespace parley::ctl
