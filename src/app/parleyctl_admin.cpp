// parleyctl operator commands: tenant, apikey, secret, deploy, versions, activate,
// rollback, conversations, transcript, cluster status|drain. They talk to a node's admin REST API
// (src/admin/admin.hpp) over HTTP with the admin token.
//
// Exit codes: 0 ok, 1 the server said no (any 4xx/5xx; its error is printed),
// 2 usage or connection error (no token, unreadable file, node unreachable).

#include "src/app/parleyctl.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "src/http/client.hpp"

namespace parley::ctl {

namespace {

using json = nlohmann::json;

using answer = admin_answer;

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

void print_diagnostics(const std::string& file, const json& list, std::ostream& out) {
  if (!list.is_array()) return;
  for (const auto& d : list) {
    out << file;
    if (d.value("line", 0) > 0) out << ":" << d.value("line", 0) << ":" << d.value("column", 0);
    out << ": " << d.value("severity", "error") << ": " << d.value("message", "") << "\n";
  }
}

// ------------------------------------------------------------------ commands

int cmd_tenant_create(const admin_target& t, const std::string& id, const std::string& name,
                      const std::string& region) {
  int code = 0;
  json body{{"id", id}, {"name", name.empty() ? id : name}};
  if (!region.empty()) body["region"] = region;
  auto a = admin_call(t, "POST", "/admin/v1/tenants", body.dump(), code);
  if (!a || t.raw_json) return code;
  std::cout << "created tenant " << str(a->body, "id") << " (" << str(a->body, "name")
            << ") in region " << str(a->body, "home_region") << "\n";
  return 0;
}

int cmd_tenant_list(const admin_target& t) {
  int code = 0;
  auto a = admin_call(t, "GET", "/admin/v1/tenants", "", code);
  if (!a || t.raw_json) return code;
  std::cout << std::left << std::setw(28) << "ID" << std::setw(32) << "NAME" << std::setw(16)
            << "REGION"
            << "CREATED\n";
  for (const auto& x : a->body.value("tenants", json::array()))
    std::cout << std::setw(28) << str(x, "id") << std::setw(32) << str(x, "name") << std::setw(16)
              << str(x, "home_region") << str(x, "created_at") << "\n";
  return 0;
}

/// What `parleyctl tenant limits` may set; an empty field leaves the limit as it is.
struct limits_flags {
  std::optional<long long> max_attachments, max_url_bytes;
  std::optional<std::vector<std::string>> schemes, content_types;
  bool any() const { return max_attachments || max_url_bytes || schemes || content_types; }
};

int cmd_tenant_limits(const admin_target& t, const std::string& tenant, const limits_flags& f) {
  int code = 0;
  const std::string path = "/admin/v1/tenants/" + seg(tenant) + "/limits";
  std::optional<answer> a;
  if (f.any()) {
    json att = json::object();
    if (f.max_attachments) att["max_attachments"] = *f.max_attachments;
    if (f.max_url_bytes) att["max_url_bytes"] = *f.max_url_bytes;
    if (f.schemes) att["schemes"] = *f.schemes;
    if (f.content_types) att["content_types"] = *f.content_types;
    a = admin_call(t, "PUT", path, json{{"attachments", att}}.dump(), code);
  } else {
    a = admin_call(t, "GET", path, "", code);
  }
  if (!a || t.raw_json) return code;
  const json att = a->body.value("attachments", json::object());
  auto list = [](const json& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + x.get<std::string>();
    return out;
  };
  std::cout << "attachment limits of tenant " << tenant
            << (a->body.value("custom", false) ? "" : " (the defaults)") << ":\n"
            << "  max attachments per message: " << str(att, "max_attachments") << "\n"
            << "  max URL bytes:               " << str(att, "max_url_bytes") << "\n"
            << "  URL schemes:                 " << list(att.value("schemes", json::array()))
            << "\n"
            << "  content types:               " << list(att.value("content_types", json::array()))
            << "\n";
  return 0;
}

int cmd_apikey_create(const admin_target& t, const std::string& tenant, const std::string& name) {
  int code = 0;
  json body = json::object();
  if (!name.empty()) body["name"] = name;
  auto a =
      admin_call(t, "POST", "/admin/v1/tenants/" + seg(tenant) + "/api-keys", body.dump(), code);
  if (!a || t.raw_json) return code;
  std::cout << "API key " << str(a->body, "id") << " (" << str(a->body, "name") << ") for tenant "
            << tenant << ":\n  " << str(a->body, "key")
            << "\nStore it now: it is not shown again.\n";
  return 0;
}

int cmd_secret_set(const admin_target& t, const std::string& tenant, const std::string& name,
                   const std::optional<std::string>& value_opt) {
  std::string value;
  if (value_opt) {
    value = *value_opt;
  } else {
    // From stdin, so the value stays out of the shell's history and `ps`. One trailing
    // newline (what `echo` and a typed line add) is not part of it.
    std::ostringstream in;
    in << std::cin.rdbuf();
    value = in.str();
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  int code = 0;
  json body{{"value", value}};
  auto a = admin_call(t, "PUT", "/admin/v1/tenants/" + seg(tenant) + "/secrets/" + seg(name),
                      body.dump(), code);
  if (!a || t.raw_json) return code;
  std::cout << (a->status == 201 ? "created" : "updated") << " secret " << name << " of tenant "
            << tenant << "\n";
  return 0;
}

int cmd_secret_list(const admin_target& t, const std::string& tenant) {
  int code = 0;
  auto a = admin_call(t, "GET", "/admin/v1/tenants/" + seg(tenant) + "/secrets", "", code);
  if (!a || t.raw_json) return code;
  std::cout << std::left << std::setw(40) << "NAME"
            << "UPDATED\n";
  for (const auto& x : a->body.value("secrets", json::array()))
    std::cout << std::setw(40) << str(x, "name") << str(x, "updated_at") << "\n";
  return 0;
}

int cmd_secret_delete(const admin_target& t, const std::string& tenant, const std::string& name) {
  int code = 0;
  auto a = admin_call(t, "DELETE", "/admin/v1/tenants/" + seg(tenant) + "/secrets/" + seg(name), "",
                      code);
  if (!a || t.raw_json) return code;
  std::cout << "deleted secret " << name << " of tenant " << tenant << "\n";
  return 0;
}

int cmd_secret_rotate(const admin_target& t) {
  int code = 0;
  auto a = admin_call(t, "POST", "/admin/v1/secrets/rotate", "{}", code);
  if (!a || t.raw_json) return code;
  std::cout << "re-encrypted " << str(a->body, "reencrypted") << " secrets under key "
            << str(a->body, "key_id") << "\n";
  return 0;
}

int cmd_deploy(const admin_target& t, const std::string& tenant, const std::string& bot,
               const std::string& file, bool activate, const canary_deploy_options& canary) {
  if (activate && canary.percent != 0) {
    std::cerr << "parleyctl: --activate and --canary exclude each other\n";
    return 2;
  }
  auto text = read_file(file);
  if (!text) {
    std::cerr << "parleyctl: cannot read " << file << "\n";
    return 2;
  }
  int code = 0;
  std::string path = "/admin/v1/tenants/" + seg(tenant) + "/bots/" + seg(bot) + "/versions";
  if (activate) path += "?activate=true";
  path += canary_deploy_query(canary);
  auto a = admin_call(t, "POST", path, *text, code, "application/yaml");
  if (!a) return code;
  if (a->status == 422) {
    print_diagnostics(file, a->body["diagnostics"], std::cerr);
    return 1;
  }
  if (t.raw_json) return code;
  print_diagnostics(file, a->body["warnings"], std::cerr);
  std::cout << "deployed " << tenant << "/" << bot << " version " << str(a->body, "version")
            << " (program " << str(a->body, "program_id") << ")"
            << (a->body.value("activated", false) ? ", now active" : "")
            << (a->body.contains("canary")
                    ? ", canary for " + str(a->body["canary"]["settings"], "percent") +
                          "% of new conversations"
                    : std::string())
            << "\n";
  return 0;
}

int cmd_versions(const admin_target& t, const std::string& tenant, const std::string& bot) {
  int code = 0;
  auto a = admin_call(
      t, "GET", "/admin/v1/tenants/" + seg(tenant) + "/bots/" + seg(bot) + "/versions", "", code);
  if (!a || t.raw_json) return code;
  std::cout << std::left << std::setw(9) << "VERSION" << std::setw(8) << "ACTIVE" << std::setw(36)
            << "PROGRAM" << std::setw(20) << "DEPLOYED BY"
            << "DEPLOYED AT\n";
  for (const auto& v : a->body.value("versions", json::array()))
    std::cout << std::setw(9) << str(v, "version") << std::setw(8)
              << (v.value("active", false) ? "*" : "") << std::setw(36) << str(v, "program_id")
              << std::setw(20) << str(v, "deployed_by") << str(v, "deployed_at") << "\n";
  return 0;
}

void print_activation(const std::string& what, const answer& a) {
  std::cout << str(a.body, "tenant") << "/" << str(a.body, "bot") << ": " << what << " version "
            << str(a.body, "version");
  if (!a.body.value("changed", true)) std::cout << " (already active)";
  std::cout << "\n";
}

int cmd_activate(const admin_target& t, const std::string& tenant, const std::string& bot,
                 int version) {
  int code = 0;
  auto a =
      admin_call(t, "POST", "/admin/v1/tenants/" + seg(tenant) + "/bots/" + seg(bot) + "/activate",
                 json{{"version", version}}.dump(), code);
  if (!a || t.raw_json) return code;
  print_activation("active", *a);
  return 0;
}

int cmd_rollback(const admin_target& t, const std::string& tenant, const std::string& bot) {
  int code = 0;
  auto a = admin_call(
      t, "POST", "/admin/v1/tenants/" + seg(tenant) + "/bots/" + seg(bot) + "/rollback", "", code);
  if (!a || t.raw_json) return code;
  print_activation("rolled back to", *a);
  return 0;
}

int cmd_conversations(const admin_target& t, const std::string& tenant) {
  int code = 0;
  auto a = admin_call(t, "GET", "/admin/v1/tenants/" + seg(tenant) + "/conversations", "", code);
  if (!a || t.raw_json) return code;
  auto list = a->body.value("conversations", json::array());
  for (const auto& c : list) {
    if (!c.is_object()) {
      std::cout << c.dump() << "\n";
      continue;
    }
    // Session first, then every other field as key=value.
    std::cout << (c.contains("session_id") ? str(c, "session_id") : std::string("?"));
    for (const auto& [k, v] : c.items())
      if (k != "session_id")
        std::cout << "  " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump());
    std::cout << "\n";
  }
  std::cout << list.size() << " live conversation(s)\n";
  return 0;
}

int cmd_transcript(const admin_target& t, const std::string& tenant, const std::string& session) {
  int code = 0;
  auto a = admin_call(
      t, "GET",
      "/admin/v1/tenants/" + seg(tenant) + "/conversations/" + seg(session) + "/transcript", "",
      code);
  if (!a || t.raw_json) return code;
  const auto& c = a->body["conversation"];
  if (c.is_object())
    std::cout << "session " << session << ": bot " << str(c, "bot") << " version "
              << str(c, "version") << " on " << str(c, "channel") << ", started "
              << str(c, "started_at")
              << (c["ended_at"].is_string()
                      ? ", ended " + str(c, "ended_at") + " (" + str(c, "end_reason") + ")"
                      : std::string(", live or idle"))
              << "\n";
  for (const auto& m : a->body.value("messages", json::array())) {
    bool in = m.value("direction", "") == "in";
    std::cout << "[" << str(m, "sequence") << "] " << str(m, "at") << (in ? "  user> " : "  bot>  ")
              << m.value("text", "");
    if (m.contains("payload") && !m["payload"].is_null()) std::cout << "  " << m["payload"].dump();
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

/// Operator commands over the admin REST API (see the top of this file).
/// `parleyctl cluster status`: one line per member of the node's region.
int cmd_cluster_status(const admin_target& t) {
  int code = 0;
  auto a = admin_call(t, "GET", "/admin/v1/cluster", "", code);
  if (!a) return code;
  if (t.raw_json) return 0;
  const json& b = a->body;
  std::cout << "region " << str(b, "region") << ", " << str(b, "shards") << " shards (asked "
            << str(b, "self") << ")\n";
  std::cout << std::left << std::setw(16) << "NODE" << std::setw(22) << "ADDRESS" << std::setw(10)
            << "STATE" << std::setw(8) << "SHARDS" << std::setw(8) << "LIVE" << std::setw(10)
            << "VERSION"
            << "HEARTBEAT\n";
  if (b.contains("nodes") && b["nodes"].is_array())
    for (const auto& n : b["nodes"]) {
      std::string age =
          n.contains("heartbeat_age_ms") ? str(n, "heartbeat_age_ms") + " ms ago" : "-";
      std::cout << std::left << std::setw(16) << str(n, "id") << std::setw(22)
                << (n.contains("address") ? str(n, "address") : "-") << std::setw(10)
                << str(n, "state") << std::setw(8)
                << (n.contains("shards_owned") ? str(n, "shards_owned") : "-") << std::setw(8)
                << (n.contains("live_conversations") ? str(n, "live_conversations") : "-")
                << std::setw(10) << (n.contains("version") ? str(n, "version") : "-") << age
                << "\n";
    }
  if (b.contains("peer_regions") && b["peer_regions"].is_array() && !b["peer_regions"].empty()) {
    std::cout << "peer regions (as " << str(b, "self") << " sees them):\n";
    for (const auto& p : b["peer_regions"])
      std::cout << "  " << std::left << std::setw(16) << str(p, "region")
                << (p.value("connected", false) ? "connected to " + str(p, "endpoint")
                                                : std::string("NOT CONNECTED"))
                << "\n";
  }
  return 0;
}

/// `parleyctl cluster drain NODE`: the node hands its shards over and exits 0.
int cmd_cluster_drain(const admin_target& t, const std::string& node) {
  int code = 0;
  auto a = admin_call(t, "POST", "/admin/v1/cluster/nodes/" + seg(node) + "/drain", "", code);
  if (!a) return code;
  if (!t.raw_json) std::cout << "draining " << node << ": it hands its shards over, then exits\n";
  return 0;
}

void add_admin_commands(CLI::App& app, int& exit_code) {
  static admin_target target;
  static std::string tenant, bot, name, file, session, region;
  static bool activate_flag = false;
  static int version = 0;

  auto* tenant_cmd = app.add_subcommand("tenant", "Manage tenants (admin API)");
  tenant_cmd->require_subcommand(1);
  auto* tc = tenant_cmd->add_subcommand("create", "Create a tenant");
  tc->add_option("ID", tenant, "tenant id (letters, digits, '_', '-', '.')")->required();
  tc->add_option("--name", name, "display name (default: the id)");
  tc->add_option("--region", region,
                 "home region (default: the region of the node asked; must be that region)");
  add_target_options(tc, target);
  tc->callback([&exit_code] { exit_code = cmd_tenant_create(target, tenant, name, region); });
  auto* tl = tenant_cmd->add_subcommand("list", "List tenants");
  add_target_options(tl, target);
  tl->callback([&exit_code] { exit_code = cmd_tenant_list(target); });
  static limits_flags lf;
  static long long max_attachments = 0, max_url_bytes = 0;
  static std::vector<std::string> schemes, content_types;
  auto* tlim = tenant_cmd->add_subcommand(
      "limits", "Show a tenant's attachment limits, or set those given (docs/channels.md)");
  tlim->add_option("TENANT", tenant, "tenant id")->required();
  auto* o_max = tlim->add_option("--max-attachments", max_attachments,
                                 "attachments per message (0 to 100; default 10)");
  auto* o_url =
      tlim->add_option("--max-url-bytes", max_url_bytes, "bytes of one URL (1 to 65536; 2048)");
  auto* o_schemes =
      tlim->add_option("--schemes", schemes, "URL schemes: https and/or http")->delimiter(',');
  auto* o_types = tlim->add_option("--content-types", content_types,
                                   "content type patterns: image/*,application/pdf,*/* ...")
                      ->delimiter(',');
  add_target_options(tlim, target);
  tlim->callback([&exit_code, o_max, o_url, o_schemes, o_types] {
    if (o_max->count() > 0) lf.max_attachments = max_attachments;
    if (o_url->count() > 0) lf.max_url_bytes = max_url_bytes;
    if (o_schemes->count() > 0) lf.schemes = schemes;
    if (o_types->count() > 0) lf.content_types = content_types;
    exit_code = cmd_tenant_limits(target, tenant, lf);
  });

  auto* key_cmd = app.add_subcommand("apikey", "Manage a tenant's Bot API keys (admin API)");
  key_cmd->require_subcommand(1);
  auto* kc = key_cmd->add_subcommand("create", "Create an API key; prints it once");
  kc->add_option("TENANT", tenant, "tenant id")->required();
  kc->add_option("--name", name, "what the key is for (default: \"default\")");
  add_target_options(kc, target);
  kc->callback([&exit_code] { exit_code = cmd_apikey_create(target, tenant, name); });

  static std::string secret_value;
  auto* secret_cmd = app.add_subcommand(
      "secret",
      "Manage a tenant's secrets, the values of {{secret.NAME}} (admin API; values "
      "are never shown)");
  secret_cmd->require_subcommand(1);
  auto* ss = secret_cmd->add_subcommand(
      "set", "Set a secret; the value comes from --value or else from stdin");
  ss->add_option("TENANT", tenant, "tenant id")->required();
  ss->add_option("NAME", name, "secret name (1 to 64 letters, digits, '_', '.', '-')")->required();
  static CLI::Option* value_opt =
      ss->add_option("--value", secret_value, "the value (default: read stdin to its end)");
  add_target_options(ss, target);
  ss->callback([&exit_code] {
    exit_code = cmd_secret_set(
        target, tenant, name,
        value_opt->count() > 0 ? std::optional<std::string>(secret_value) : std::nullopt);
  });
  auto* sl = secret_cmd->add_subcommand("list", "List a tenant's secrets (names, never values)");
  sl->add_option("TENANT", tenant, "tenant id")->required();
  add_target_options(sl, target);
  sl->callback([&exit_code] { exit_code = cmd_secret_list(target, tenant); });
  auto* sd = secret_cmd->add_subcommand("delete", "Delete a secret");
  sd->add_option("TENANT", tenant, "tenant id")->required();
  sd->add_option("NAME", name, "secret name")->required();
  add_target_options(sd, target);
  sd->callback([&exit_code] { exit_code = cmd_secret_delete(target, tenant, name); });
  auto* sr = secret_cmd->add_subcommand(
      "rotate-key",
      "Re-encrypt every secret under the node's current PARLEY_SECRETS_KEY (after a key change, "
      "with the old key in PARLEY_SECRETS_PREVIOUS_KEYS)");
  add_target_options(sr, target);
  sr->callback([&exit_code] { exit_code = cmd_secret_rotate(target); });

  auto* deploy = app.add_subcommand(
      "deploy", "Upload a bot file as the bot's next version (prints diagnostics on failure)");
  deploy->add_option("TENANT", tenant, "tenant id")->required();
  deploy->add_option("BOT", bot, "bot id")->required();
  deploy->add_option("FILE", file, "bot definition (YAML or JSON)")->required();
  deploy->add_flag("--activate", activate_flag, "make the new version active at once");
  static canary_deploy_options canary;
  deploy
      ->add_option("--canary", canary.percent,
                   "make it the bot's canary for this % of new conversations (1-50) instead")
      ->check(CLI::Range(1, 50));
  struct margin {
    const char* flag;
    double* points;
    const char* what;
  };
  for (const margin& m :
       {margin{"--max-error-rate-increase", &canary.max_error_rate_increase, "error dialogs"},
        margin{"--max-fallback-rate-increase", &canary.max_fallback_rate_increase, "fallbacks"},
        margin{"--max-action-failure-rate-increase", &canary.max_action_failure_rate_increase,
               "failed actions"}})
    deploy
        ->add_option(m.flag, *m.points,
                     std::string("canary: roll back past this many points more ") + m.what +
                         " per turn (default 5)")
        ->check(CLI::Range(0.0, 100.0));
  deploy
      ->add_option("--min-conversations", canary.min_conversations,
                   "canary: judge it after this many of its conversations (default 50)")
      ->check(CLI::Range(1, 1000000));
  add_target_options(deploy, target);
  deploy->callback(
      [&exit_code] { exit_code = cmd_deploy(target, tenant, bot, file, activate_flag, canary); });

  auto* versions =
      app.add_subcommand("versions", "List a bot's versions; '*' marks the active one");
  versions->add_option("TENANT", tenant, "tenant id")->required();
  versions->add_option("BOT", bot, "bot id")->required();
  add_target_options(versions, target);
  versions->callback([&exit_code] { exit_code = cmd_versions(target, tenant, bot); });

  auto* activate = app.add_subcommand("activate", "Make a version the active one");
  activate->add_option("TENANT", tenant, "tenant id")->required();
  activate->add_option("BOT", bot, "bot id")->required();
  activate->add_option("VERSION", version, "version number")
      ->required()
      ->check(CLI::PositiveNumber);
  add_target_options(activate, target);
  activate->callback([&exit_code] { exit_code = cmd_activate(target, tenant, bot, version); });

  auto* rollback =
      app.add_subcommand("rollback", "Make the previously active version active again");
  rollback->add_option("TENANT", tenant, "tenant id")->required();
  rollback->add_option("BOT", bot, "bot id")->required();
  add_target_options(rollback, target);
  rollback->callback([&exit_code] { exit_code = cmd_rollback(target, tenant, bot); });

  auto* conversations = app.add_subcommand("conversations", "List a tenant's live conversations");
  conversations->add_option("TENANT", tenant, "tenant id")->required();
  add_target_options(conversations, target);
  conversations->callback([&exit_code] { exit_code = cmd_conversations(target, tenant); });

  auto* cluster_cmd = app.add_subcommand("cluster", "The node's region: members and draining");
  cluster_cmd->require_subcommand(1);
  auto* cs = cluster_cmd->add_subcommand(
      "status",
      "Each node: id, address, state, shards owned, live conversations, version, "
      "age of its last heartbeat");
  add_target_options(cs, target);
  cs->callback([&exit_code] { exit_code = cmd_cluster_status(target); });
  auto* cd = cluster_cmd->add_subcommand(
      "drain", "Ask a node to hand its shards to the others and exit (as SIGTERM does)");
  cd->add_option("NODE", name, "node id")->required();
  add_target_options(cd, target);
  cd->callback([&exit_code] { exit_code = cmd_cluster_drain(target, name); });

  auto* transcript = app.add_subcommand("transcript", "Show a conversation's transcript");
  transcript->add_option("TENANT", tenant, "tenant id")->required();
  transcript->add_option("SESSION", session, "session id")->required();
  add_target_options(transcript, target);
  transcript->callback([&exit_code] { exit_code = cmd_transcript(target, tenant, session); });
}

}  // namespace parley::ctl
