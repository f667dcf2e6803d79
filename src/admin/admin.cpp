#include "src/admin/admin.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "src/admin/canary_routes.hpp"
#include "src/admin/deploy.hpp"
#include "src/admin/replies.hpp"
#include "src/channels/text/attachments.hpp"
#include "src/common/clock.hpp"
#include "src/common/strings.hpp"
#include "src/store/catalog.hpp"

namespace parley::admin {

namespace {

using json = nlohmann::json;

constexpr std::string_view tenants_path = "/admin/v1/tenants";
constexpr std::string_view tenant_prefix = "/admin/v1/tenants/";
constexpr std::string_view debug_prefix = "/admin/v1/debug/";

/// What every handler shares; owned by the routes' closures.
struct admin_state {
  explicit admin_state(admin_options o) : opts(std::move(o)) {}
  admin_options opts;
  store::postgres_client& pg() { return opts.postgres; }
  /// Tells the other nodes (admin_options::changed), after the commit.
  void changed(change c) const {
    if (opts.changed) opts.changed(c);
  }
  void activated(const std::string& tenant, const std::string& bot, int version) const {
    change c;
    c.what = change::kind::bot_activated;
    c.tenant = tenant;
    c.bot = bot;
    c.version = version;
    changed(std::move(c));
  }
};
using state_ptr = std::shared_ptr<admin_state>;

using replies::dump;
using replies::error_response;
using replies::iso_time;
using replies::json_response;
using replies::percent_decode;
using replies::query_param;
using replies::status_of;

http::response failure(const error& e) { return error_response(status_of(e), e.code, e.message); }

bool same_secret(std::string_view a, std::string_view b) {
  // Constant time in the length of `b` (the presented value).
  unsigned diff = a.size() != b.size();
  for (std::size_t i = 0; i < b.size(); ++i)
    diff |= static_cast<unsigned char>(a.empty() ? 0 : a[i % a.size()]) ^
            static_cast<unsigned char>(b[i]);
  return diff == 0;
}

/// 503 when disabled, 401 when the bearer token is missing or wrong; nullopt: go on.
std::optional<http::response> check_auth(const admin_state& s, const http::request& req) {
  if (s.opts.token.empty())
    return error_response(503, "admin_disabled", "admin API disabled: set PARLEY_ADMIN_TOKEN");
  const std::string* h = req.header("Authorization");
  constexpr std::string_view scheme = "Bearer ";
  if (h == nullptr || h->size() <= scheme.size() || !common::istarts_with(*h, scheme)) {
    auto r = error_response(401, "unauthorized",
                            "missing admin token: send 'Authorization: Bearer <token>'");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  if (!same_secret(s.opts.token, std::string_view(*h).substr(scheme.size()))) {
    auto r = error_response(401, "unauthorized", "wrong admin token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return r;
  }
  return std::nullopt;
}

/// The audit actor: X-Parley-Actor, printable ASCII and at most 64 bytes, or "admin".
std::string actor_of(const http::request& req) {
  const std::string* h = req.header("X-Parley-Actor");
  if (h == nullptr || h->empty()) return "admin";
  std::string out;
  for (char c : *h)
    if (c >= 0x20 && c < 0x7f && out.size() < 64) out.push_back(c);
  return out.empty() ? "admin" : out;
}

std::vector<std::string> split_path(std::string_view rest) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= rest.size()) {
    auto end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    out.push_back(percent_decode(rest.substr(start, end - start)));
    start = end + 1;
  }
  // A trailing slash is not a segment.
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

/// The request body as a JSON object; an empty body counts as {}.
std::optional<json> json_body(const http::request& req, http::responder& respond) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    respond(error_response(400, "invalid_json", "the request body must be a JSON object"));
    return std::nullopt;
  }
  return j;
}

/// A required, non-empty string field; answers 400 naming it otherwise.
std::optional<std::string> string_field(const json& body, const char* name, bool required,
                                        http::responder& respond, std::string fallback = {}) {
  auto it = body.find(name);
  if (it == body.end()) {
    if (!required) return fallback;
    respond(error_response(400, "missing_field", std::string("field '") + name + "' is required",
                           name));
    return std::nullopt;
  }
  if (!it->is_string() || it->get<std::string>().empty()) {
    respond(error_response(400, "invalid_field",
                           std::string("field '") + name + "' must be a non-empty string", name));
    return std::nullopt;
  }
  return it->get<std::string>();
}

bool check_id(const std::string& what, const std::string& id, const char* field,
              http::responder& respond) {
  if (store::valid_catalog_id(id)) return true;
  respond(error_response(400, "invalid_field",
                         what + " '" + id +
                             "' is not valid: use 1 to 64 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit",
                         field));
  return false;
}

/// A tenant created before regions has no home region recorded: it lives in this one.
json tenant_json(const store::tenant_record& t, const std::string& region) {
  return {{"id", t.id},
          {"name", t.name},
          {"home_region", t.home_region.empty() ? region : t.home_region},
          {"created_at", iso_time(t.created_at_ms)}};
}

json diagnostics_json(const std::vector<store::deploy_diagnostic>& ds) {
  json out = json::array();
  for (const auto& d : ds)
    out.push_back(
        {{"line", d.line}, {"column", d.column}, {"severity", d.severity}, {"message", d.message}});
  return out;
}

json activation_json(const std::string& tenant, const std::string& bot,
                     const store::activation& a) {
  json j = {{"tenant", tenant},
            {"bot", bot},
            {"version", a.version},
            {"change_seq", a.change_seq},
            {"changed", a.changed}};
  j["previous_version"] = a.previous_version ? json(*a.previous_version) : json(nullptr);
  return j;
}

// ------------------------------------------------------------------ handlers

void create_tenant(const state_ptr& s, const http::request& req, http::responder respond) {
  auto body = json_body(req, respond);
  if (!body) return;
  auto id = string_field(*body, "id", true, respond);
  if (!id || !check_id("tenant id", *id, "id", respond)) return;
  auto name = string_field(*body, "name", true, respond);
  if (!name) return;
  // A tenant lives in the region whose stores hold it: it is created through a node of
  // its home region, never recorded here for another one.
  const std::string& here = s->opts.region;
  auto region = string_field(*body, "region", false, respond, here);
  if (!region) return;
  if (*region != here)
    return respond(error_response(
        422, "invalid_field",
        "region '" + *region + "': this node is in region '" + here +
            "'; create the tenant through the admin API of a node of region '" + *region + "'",
        "region"));
  store::run_job(s->pg(), store::create_tenant(*id, *name, actor_of(req), here),
                 [respond, here](result<store::tenant_record> r) {
                   if (!r) return respond(failure(r.err()));
                   respond(json_response(201, tenant_json(*r, here)));
                 });
}

void list_tenants(const state_ptr& s, http::responder respond) {
  store::run_job(s->pg(), store::list_tenants(),
                 [respond, region = s->opts.region](result<std::vector<store::tenant_record>> r) {
                   if (!r) return respond(failure(r.err()));
                   json list = json::array();
                   for (const auto& t : *r) list.push_back(tenant_json(t, region));
                   respond(json_response(200, {{"tenants", list}}));
                 });
}

void get_tenant(const state_ptr& s, const std::string& tenant, http::responder respond) {
  store::run_job(
      s->pg(), store::get_tenant(tenant),
      [respond, tenant, region = s->opts.region](result<std::optional<store::tenant_record>> r) {
        if (!r) return respond(failure(r.err()));
        if (!*r)
          return respond(
              error_response(404, "tenant_not_found", "tenant '" + tenant + "' does not exist"));
        respond(json_response(200, tenant_json(**r, region)));
      });
}

void create_api_key(const state_ptr& s, const http::request& req, const std::string& tenant,
                    http::responder respond) {
  auto body = json_body(req, respond);
  if (!body) return;
  auto name = string_field(*body, "name", false, respond, "default");
  if (!name) return;
  store::run_job(
      s->pg(), store::create_api_key(tenant, *name, actor_of(req)),
      [respond, name = *name](result<store::api_key_created> r) {
        if (!r) return respond(failure(r.err()));
        respond(json_response(
            201, {{"id", r->id}, {"key", r->key}, {"prefix", r->prefix}, {"name", name}}));
      });
}

void list_api_keys(const state_ptr& s, const std::string& tenant, http::responder respond) {
  store::run_job(s->pg(), store::list_api_keys(tenant),
                 [respond](result<std::vector<store::api_key_record>> r) {
                   if (!r) return respond(failure(r.err()));
                   json list = json::array();
                   for (const auto& k : *r)
                     list.push_back({{"id", k.id},
                                     {"name", k.name},
                                     {"prefix", k.prefix},
                                     {"created_at", iso_time(k.created_at_ms)},
                                     {"revoked", k.revoked}});
                   respond(json_response(200, {{"api_keys", list}}));
                 });
}

void revoke_api_key(const state_ptr& s, const http::request& req, const std::string& tenant,
                    const std::string& id_text, http::responder respond) {
  char* end = nullptr;
  long long id = std::strtoll(id_text.c_str(), &end, 10);
  if (id_text.empty() || *end != '\0' || id <= 0)
    return respond(error_response(404, "api_key_not_found",
                                  "tenant '" + tenant + "' has no API key '" + id_text + "'"));
  store::run_job(s->pg(), store::revoke_api_key(tenant, id, actor_of(req)),
                 [s, respond, tenant, id](result<void> r) {
                   if (!r) return respond(failure(r.err()));
                   change c;
                   c.tenant = tenant;
                   c.key_id = id;
                   s->changed(std::move(c));
                   respond(json_response(200, {{"id", id}, {"revoked", true}}));
                 });
}

void deploy(const state_ptr& s, const http::request& req, const std::string& tenant,
            const std::string& bot, http::responder respond) {
  if (wants_canary(req))
    return deploy_canary({s->pg(), s->opts.changed}, req, tenant, bot, actor_of(req), respond);
  bool activate = false;
  if (auto a = query_param(req.query, "activate")) {
    if (*a == "true" || *a == "1" || a->empty()) {
      activate = true;
    } else if (*a != "false" && *a != "0") {
      return respond(error_response(
          400, "invalid_field", "query parameter 'activate' must be true or false", "activate"));
    }
  }
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos)
    return respond(error_response(400, "missing_field",
                                  "the request body must be the bot definition file", "body"));
  admin::deploy_request d;
  d.tenant = tenant;
  d.bot = bot;
  d.source = req.body;
  d.deployed_by = actor_of(req);
  d.activate = activate;
  d.file_name = bot + ".yaml";
  d.compile.min_timer = s->opts.min_timer;
  store::run_job(s->pg(), admin::deploy_version(std::move(d)),
                 [s, respond, tenant, bot](result<admin::deploy_outcome> r) {
                   if (!r) return respond(failure(r.err()));
                   if (!r->deployed) {
                     std::size_t errors = 0;
                     for (const auto& d : r->diagnostics) errors += d.severity == "error";
                     json body = {
                         {"error",
                          {{"code", "bot_invalid"},
                           {"message", "bot file of '" + bot + "' has " + std::to_string(errors) +
                                           " error(s); nothing was deployed"}}},
                         {"diagnostics", diagnostics_json(r->diagnostics)}};
                     return respond(json_response(422, body));
                   }
                   if (r->activated) s->activated(tenant, bot, r->version);
                   std::vector<store::deploy_diagnostic> warnings;
                   for (const auto& d : r->diagnostics)
                     if (d.severity != "error") warnings.push_back(d);
                   respond(json_response(201, {{"version", r->version},
                                               {"program_id", r->program_id},
                                               {"activated", r->activated},
                                               {"warnings", diagnostics_json(warnings)}}));
                 });
}

void list_versions(const state_ptr& s, const std::string& tenant, const std::string& bot,
                   http::responder respond) {
  store::run_job(
      s->pg(), store::list_versions(tenant, bot),
      [respond, tenant, bot](result<std::vector<store::version_info>> r) {
        if (!r) return respond(failure(r.err()));
        json list = json::array();
        json active = nullptr;
        for (const auto& v : *r) {
          if (v.active) active = v.version;
          list.push_back({{"version", v.version},
                          {"program_id", v.program_id},
                          {"deployed_by", v.deployed_by},
                          {"deployed_at", iso_time(v.deployed_at_ms)},
                          {"active", v.active},
                          {"warnings", diagnostics_json(v.warnings)}});
        }
        respond(json_response(
            200,
            {{"tenant", tenant}, {"bot", bot}, {"active_version", active}, {"versions", list}}));
      });
}

void activate(const state_ptr& s, const http::request& req, const std::string& tenant,
              const std::string& bot, http::responder respond) {
  auto body = json_body(req, respond);
  if (!body) return;
  auto it = body->find("version");
  if (it == body->end())
    return respond(error_response(400, "missing_field", "field 'version' is required", "version"));
  if (!it->is_number_integer() || it->get<long long>() <= 0 || it->get<long long>() > 1 << 30)
    return respond(error_response(400, "invalid_field",
                                  "field 'version' must be a positive integer", "version"));
  int version = static_cast<int>(it->get<long long>());
  store::run_job(s->pg(), store::activate(tenant, bot, version, actor_of(req)),
                 [s, respond, tenant, bot](result<store::activation> r) {
                   if (!r) return respond(failure(r.err()));
                   if (r->changed) s->activated(tenant, bot, r->version);
                   respond(json_response(200, activation_json(tenant, bot, *r)));
                 });
}

void rollback(const state_ptr& s, const http::request& req, const std::string& tenant,
              const std::string& bot, http::responder respond) {
  store::run_job(s->pg(), store::rollback(tenant, bot, actor_of(req)),
                 [s, respond, tenant, bot](result<store::activation> r) {
                   if (!r) return respond(failure(r.err()));
                   if (r->changed) s->activated(tenant, bot, r->version);
                   respond(json_response(200, activation_json(tenant, bot, *r)));
                 });
}

void live_conversations(const state_ptr& s, const std::string& tenant, http::responder respond) {
  if (!s->opts.live_conversations)
    return respond(
        error_response(503, "not_available", "live conversations are not available on this node"));
  // Unknown tenants are a 404, not an empty list: a typo should not look like quiet.
  store::run_job(s->pg(), store::get_tenant(tenant),
                 [s, respond, tenant](result<std::optional<store::tenant_record>> r) {
                   if (!r) return respond(failure(r.err()));
                   if (!*r)
                     return respond(error_response(404, "tenant_not_found",
                                                   "tenant '" + tenant + "' does not exist"));
                   s->opts.live_conversations(tenant, [respond, tenant](json list) {
                     if (!list.is_array()) list = json::array();
                     respond(json_response(200, {{"tenant", tenant}, {"conversations", list}}));
                   });
                 });
}

json conversation_json(const store::conversation_record& c) {
  json j = {{"session_id", c.session_id},     {"bot", c.bot},
            {"version", c.version},           {"channel", c.channel},
            {"external_key", c.external_key}, {"started_at", iso_time(c.started_at_ms)}};
  j["ended_at"] = c.ended_at_ms ? json(iso_time(*c.ended_at_ms)) : json(nullptr);
  j["end_reason"] = c.end_reason.empty() ? json(nullptr) : json(c.end_reason);
  return j;
}

void show_transcript(const state_ptr& s, const std::string& tenant, const std::string& session,
                     http::responder respond) {
  store::run_job(
      s->pg(), store::get_conversation(tenant, session),
      [s, respond, tenant, session](result<std::optional<store::conversation_record>> conv) {
        if (!conv) return respond(failure(conv.err()));
        json meta = *conv ? conversation_json(**conv) : json(nullptr);
        store::run_job(
            s->pg(), store::transcript(tenant, session),
            [respond, tenant, session, meta](result<std::vector<store::transcript_row>> rows) {
              if (!rows) return respond(failure(rows.err()));
              if (meta.is_null() && rows->empty())
                return respond(error_response(
                    404, "conversation_not_found",
                    "tenant '" + tenant + "' has no conversation '" + session + "'"));
              json messages = json::array();
              for (const auto& m : *rows) {
                json payload = nullptr;
                if (!m.payload_json.empty()) payload = json::parse(m.payload_json, nullptr, false);
                if (payload.is_discarded()) payload = nullptr;
                messages.push_back({{"sequence", m.sequence},
                                    {"direction", m.direction},
                                    {"idx", m.idx},
                                    {"text", m.text},
                                    {"payload", payload},
                                    {"at", iso_time(m.at_ms)}});
              }
              respond(json_response(200, {{"tenant", tenant},
                                          {"session_id", session},
                                          {"conversation", meta},
                                          {"messages", messages}}));
            });
      });
}

/// "24h", "30m", "7d", "90s" (common::parse_duration_ms) as seconds; "0" or "all" for
/// any time; nullopt when bad.
std::optional<std::int64_t> duration_seconds(const std::string& v) {
  if (v == "all") return 0;
  auto ms = common::parse_duration_ms(v);
  if (!ms || *ms > 100ull * 365 * 86400 * 1000) return std::nullopt;
  return static_cast<std::int64_t>(*ms / 1000);
}

/// GET /admin/v1/tenants/{t}/bots/{b}/conversations?since=24h&limit=100&after=CURSOR:
/// recorded conversations with their turns (inbound, replies, replay record), oldest
/// first, one page (src/store/catalog/recorded.hpp).
void recorded_conversations(const state_ptr& s, const http::request& req, const std::string& tenant,
                            const std::string& bot, http::responder respond) {
  std::int64_t since = 86400;
  if (auto v = query_param(req.query, "since")) {
    auto d = duration_seconds(*v);
    if (!d)
      return respond(error_response(
          400, "invalid_field",
          "query parameter 'since' must be a duration such as 30m, 24h or 7d (or 'all')", "since"));
    since = *d;
  }
  int limit = 100;
  if (auto v = query_param(req.query, "limit")) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || n < 1 || n > 500)
      return respond(error_response(
          400, "invalid_field", "query parameter 'limit' must be an integer of 1 to 500", "limit"));
    limit = static_cast<int>(n);
  }
  std::string after = query_param(req.query, "after").value_or("");
  store::run_job(
      s->pg(), store::recorded_conversations(tenant, bot, since, after, limit),
      [respond, tenant, bot](result<store::recorded_page> page) {
        if (!page) {
          auto e = page.err();
          if (e.code == "invalid_argument" && e.message.rfind("after", 0) == 0)
            return respond(error_response(400, "invalid_field", e.message, "after"));
          return respond(failure(e));
        }
        json list = json::array();
        for (const auto& c : page->conversations) {
          json turns = json::array();
          for (const auto& t : c.turns) {
            json replies = json::array();
            auto out = json::parse(t.outbound_json, nullptr, false);
            if (out.is_array())
              for (const auto& r : out)
                replies.push_back(r.is_string()   ? r.get<std::string>()
                                  : r.is_object() ? r.value("text", "")
                                                  : std::string());
            json record = nullptr;
            if (!t.replay_json.empty()) record = json::parse(t.replay_json, nullptr, false);
            if (record.is_discarded()) record = nullptr;
            turns.push_back({{"sequence", t.sequence},
                             {"inbound", t.inbound},
                             {"replies", replies},
                             {"at", iso_time(t.at_ms)},
                             {"record", record}});
          }
          list.push_back({{"session_id", c.session_id},
                          {"version", c.version},
                          {"channel", c.channel},
                          {"started_at", iso_time(c.started_at_ms)},
                          {"end_reason", c.end_reason.empty() ? json(nullptr) : json(c.end_reason)},
                          {"truncated", c.truncated},
                          {"turns", turns}});
        }
        respond(
            json_response(200, {{"tenant", tenant},
                                {"bot", bot},
                                {"conversations", list},
                                {"next", page->next.empty() ? json(nullptr) : json(page->next)}}));
      });
}

void kill(const state_ptr& s, const std::string& tenant, const std::string& session,
          http::responder respond) {
  if (!s->opts.kill_conversation)
    return respond(error_response(503, "not_available", "killing conversations is not wired"));
  s->opts.kill_conversation(tenant, session, [respond, tenant, session](bool killed) {
    if (!killed)
      return respond(error_response(
          404, "conversation_not_live",
          "conversation '" + session + "' of tenant '" + tenant + "' is not live on this node"));
    respond(json_response(200, {{"tenant", tenant}, {"session_id", session}, {"killed", true}}));
  });
}

void cluster_status(const state_ptr& s, http::responder respond) {
  if (!s->opts.cluster_status)
    return respond(error_response(503, "not_available", "cluster status is not wired"));
  s->opts.cluster_status([respond](result<json> r) {
    if (!r)
      return respond(error_response(503, "cluster_unavailable",
                                    "the region's Redis cannot be read: " + r.err().message));
    respond(json_response(200, *r));
  });
}

/// POST /admin/v1/cluster/nodes/{id}/drain
void dispatch_cluster(const state_ptr& s, http::request&& req, http::responder respond) {
  constexpr std::string_view prefix = "/admin/v1/cluster/nodes/";
  constexpr std::string_view suffix = "/drain";
  std::string_view path = req.path;
  if (req.method != "POST" || path.size() <= prefix.size() + suffix.size() ||
      path.substr(path.size() - suffix.size()) != suffix)
    return respond(
        error_response(404, "not_found", "no admin route " + req.method + " " + req.path));
  std::string node(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
  if (node.find('/') != std::string::npos)
    return respond(
        error_response(404, "not_found", "no admin route " + req.method + " " + req.path));
  if (!s->opts.cluster_drain)
    return respond(error_response(503, "not_available", "draining is not wired"));
  s->opts.cluster_drain(node, [respond, node](result<bool> r) {
    if (!r)
      return respond(error_response(503, "cluster_unavailable",
                                    "the region's Redis cannot be reached: " + r.err().message));
    if (!*r)
      return respond(
          error_response(404, "node_not_found", "node '" + node + "' is not a live member"));
    respond(json_response(202, {{"node", node}, {"draining", true}}));
  });
}

// ------------------------------------------------------------------ secrets

/// 503 unless this node has a master key; true: go on.
bool secrets_enabled(const state_ptr& s, http::responder& respond) {
  if (s->opts.secrets.has_current()) return true;
  respond(error_response(503, "secrets_disabled",
                         "tenant secrets are disabled on this node: set PARLEY_SECRETS_KEY (64 hex "
                         "digits or the base64 of 32 bytes) and restart it"));
  return false;
}

bool check_secret_name(const std::string& name, http::responder& respond) {
  if (secrets::valid_name(name)) return true;
  respond(error_response(400, "invalid_field", secrets::name_problem(name), "name"));
  return false;
}

void secrets_changed(const state_ptr& s, const std::string& tenant, const std::string& name) {
  change c;
  c.what = change::kind::secrets_changed;
  c.tenant = tenant;
  c.name = name;
  s->changed(std::move(c));
}

void put_secret(const state_ptr& s, const http::request& req, const std::string& tenant,
                const std::string& name, http::responder respond) {
  if (!check_secret_name(name, respond)) return;
  auto body = json_body(req, respond);
  if (!body) return;
  auto it = body->find("value");
  if (it == body->end())
    return respond(error_response(400, "missing_field", "field 'value' is required", "value"));
  if (!it->is_string())
    return respond(error_response(400, "invalid_field", "field 'value' must be a string", "value"));
  auto value = it->get<std::string>();
  if (value.size() > secrets::max_value_bytes)
    return respond(error_response(400, "invalid_field",
                                  "field 'value' is " + std::to_string(value.size()) +
                                      " bytes; a secret holds at most " +
                                      std::to_string(secrets::max_value_bytes),
                                  "value"));
  store::run_job(
      s->pg(), store::put_secret(s->opts.secrets, tenant, name, std::move(value), actor_of(req)),
      [s, respond, tenant, name](result<bool> r) {
        if (!r) return respond(failure(r.err()));
        secrets_changed(s, tenant, name);
        if (!*r) return respond(http::response{204, "application/json", {}, ""});
        respond(json_response(201, {{"tenant", tenant}, {"name", name}, {"created", true}}));
      });
}

void list_secrets(const state_ptr& s, const std::string& tenant, http::responder respond) {
  store::run_job(s->pg(), store::list_secrets(tenant),
                 [respond, tenant](result<std::vector<store::secret_record>> r) {
                   if (!r) return respond(failure(r.err()));
                   json list = json::array();
                   for (const auto& x : *r)
                     list.push_back({{"name", x.name}, {"updated_at", iso_time(x.updated_at_ms)}});
                   respond(json_response(200, {{"tenant", tenant}, {"secrets", list}}));
                 });
}

void delete_secret(const state_ptr& s, const http::request& req, const std::string& tenant,
                   const std::string& name, http::responder respond) {
  if (!check_secret_name(name, respond)) return;
  store::run_job(s->pg(), store::delete_secret(tenant, name, actor_of(req)),
                 [s, respond, tenant, name](result<void> r) {
                   if (!r) return respond(failure(r.err()));
                   secrets_changed(s, tenant, name);
                   respond(http::response{204, "application/json", {}, ""});
                 });
}

void rotate_secrets(const state_ptr& s, const http::request& req, http::responder respond) {
  if (!secrets_enabled(s, respond)) return;
  store::run_job(s->pg(), store::rotate_secrets(s->opts.secrets, actor_of(req)),
                 [s, respond](result<store::rotation_result> r) {
                   if (!r) return respond(failure(r.err()));
                   // The values did not change, but a node may cache under what it read.
                   for (const auto& t : r->tenants) secrets_changed(s, t, "");
                   respond(json_response(200, {{"reencrypted", r->reencrypted},
                                               {"key_id", s->opts.secrets.current().id}}));
                 });
}

// ------------------------------------------------------------------ limits

namespace text = channels::text;

/// The limits a record stands for; the defaults without one.
text::attachment_limits limits_of(const std::optional<store::tenant_limits_record>& r) {
  text::attachment_limits out;
  if (!r) return out;
  out.max_attachments = static_cast<std::size_t>(r->max_attachments);
  out.max_url_bytes = static_cast<std::size_t>(r->max_url_bytes);
  out.schemes = r->schemes;
  out.content_types = r->content_types;
  return out;
}

json limits_json(const std::string& tenant, const text::attachment_limits& l, bool custom) {
  return {{"tenant", tenant},
          {"custom", custom},
          {"attachments",
           {{"max_attachments", l.max_attachments},
            {"max_url_bytes", l.max_url_bytes},
            {"schemes", l.schemes},
            {"content_types", l.content_types}}}};
}

void get_limits(const state_ptr& s, const std::string& tenant, http::responder respond) {
  store::run_job(s->pg(), store::get_tenant_limits(tenant, true),
                 [respond, tenant](result<std::optional<store::tenant_limits_record>> r) {
                   if (!r) return respond(failure(r.err()));
                   respond(json_response(200, limits_json(tenant, limits_of(*r), r->has_value())));
                 });
}

/// Applies the fields of `body` ({"attachments": {...}}) over `l`; answers 400 naming
/// the first bad field ("attachments.schemes[1]") and returns false.
bool merge_limits(const json& body, text::attachment_limits& l, http::responder& respond) {
  auto bad = [&](const std::string& field, const std::string& what) {
    respond(error_response(400, "invalid_field", "field '" + field + "' " + what, field));
    return false;
  };
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "attachments") return bad(it.key(), "is not a limit (known: attachments)");
  auto a = body.find("attachments");
  if (a == body.end()) return true;
  if (!a->is_object()) return bad("attachments", "must be an object");
  for (auto it = a->begin(); it != a->end(); ++it) {
    const auto& k = it.key();
    const auto& v = it.value();
    std::string field = "attachments." + k;
    if (k == "max_attachments" || k == "max_url_bytes") {
      bool count = k == "max_attachments";
      std::int64_t lo = count ? 0 : 1;
      std::int64_t hi = static_cast<std::int64_t>(count ? text::max_attachments_ceiling
                                                        : text::max_url_bytes_ceiling);
      if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
        return bad(field,
                   "must be an integer of " + std::to_string(lo) + " to " + std::to_string(hi));
      (count ? l.max_attachments : l.max_url_bytes) =
          static_cast<std::size_t>(v.get<std::int64_t>());
    } else if (k == "schemes" || k == "content_types") {
      bool schemes = k == "schemes";
      if (!v.is_array()) return bad(field, "must be an array of strings");
      if (v.size() > 32) return bad(field, "holds at most 32 entries");
      std::vector<std::string> items;
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::string f = field + "[" + std::to_string(i) + "]";
        if (!v[i].is_string()) return bad(f, "must be a string");
        auto x = v[i].get<std::string>();
        auto problem = schemes ? text::invalid_scheme(x) : text::invalid_content_type_pattern(x);
        if (problem) return bad(f, *problem);
        if (std::find(items.begin(), items.end(), x) == items.end()) items.push_back(x);
      }
      (schemes ? l.schemes : l.content_types) = std::move(items);
    } else {
      return bad(field,
                 "is not an attachment limit (known: max_attachments, max_url_bytes, schemes, "
                 "content_types)");
    }
  }
  return true;
}

/// PUT /admin/v1/tenants/{t}/limits: the fields given replace the current values, the
/// others stay; then every node drops its cached limits (limits_changed).
void put_limits(const state_ptr& s, const http::request& req, const std::string& tenant,
                http::responder respond) {
  auto body = json_body(req, respond);
  if (!body) return;
  auto actor = actor_of(req);
  store::run_job(s->pg(), store::get_tenant_limits(tenant, true),
                 [s, respond, tenant, actor, body = std::move(*body)](
                     result<std::optional<store::tenant_limits_record>> r) mutable {
                   if (!r) return respond(failure(r.err()));
                   auto l = limits_of(*r);
                   if (!merge_limits(body, l, respond)) return;
                   store::tenant_limits_record rec;
                   rec.max_attachments = static_cast<std::int64_t>(l.max_attachments);
                   rec.max_url_bytes = static_cast<std::int64_t>(l.max_url_bytes);
                   rec.schemes = l.schemes;
                   rec.content_types = l.content_types;
                   store::run_job(s->pg(), store::put_tenant_limits(tenant, std::move(rec), actor),
                                  [s, respond, tenant, l](result<void> w) {
                                    if (!w) return respond(failure(w.err()));
                                    change c;
                                    c.what = change::kind::limits_changed;
                                    c.tenant = tenant;
                                    s->changed(std::move(c));
                                    respond(json_response(200, limits_json(tenant, l, true)));
                                  });
                 });
}

http::response not_found(const http::request& req) {
  return error_response(404, "not_found", "no admin route " + req.method + " " + req.path);
}

http::response wrong_method(const http::request& req) {
  return error_response(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
}

/// /admin/v1/tenants/{t}/...: checks the ids, then picks the handler.
void dispatch_tenant(const state_ptr& s, http::request&& req, http::responder respond) {
  auto seg = split_path(std::string_view(req.path).substr(tenant_prefix.size()));
  if (seg.empty()) return respond(not_found(req));
  const std::string& tenant = seg[0];
  if (!check_id("tenant id", tenant, "tenant", respond)) return;
  bool get = req.method == "GET";
  bool post = req.method == "POST";
  auto n = seg.size();

  if (n == 1) return get ? get_tenant(s, tenant, respond) : respond(wrong_method(req));
  if (seg[1] == "api-keys") {
    if (n == 2) {
      if (post) return create_api_key(s, req, tenant, respond);
      if (get) return list_api_keys(s, tenant, respond);
      return respond(wrong_method(req));
    }
    if (n == 4 && seg[3] == "revoke")
      return post ? revoke_api_key(s, req, tenant, seg[2], respond) : respond(wrong_method(req));
    return respond(not_found(req));
  }
  if (seg[1] == "bots" && n >= 4 && (seg[3] == "canary" || seg[3] == "stats")) {
    if (!check_id("bot id", seg[2], "bot", respond)) return;
    std::vector<std::string> rest(seg.begin() + 3, seg.end());
    if (canary_route({s->pg(), s->opts.changed}, req, tenant, seg[2], rest, actor_of(req), respond))
      return;
    return respond(not_found(req));
  }
  if (seg[1] == "bots" && n == 4) {
    const std::string& bot = seg[2];
    if (!check_id("bot id", bot, "bot", respond)) return;
    if (seg[3] == "versions") {
      if (post) return deploy(s, req, tenant, bot, respond);
      if (get) return list_versions(s, tenant, bot, respond);
      return respond(wrong_method(req));
    }
    if (seg[3] == "conversations")
      return get ? recorded_conversations(s, req, tenant, bot, respond)
                 : respond(wrong_method(req));
    if (seg[3] == "activate")
      return post ? activate(s, req, tenant, bot, respond) : respond(wrong_method(req));
    if (seg[3] == "rollback")
      return post ? rollback(s, req, tenant, bot, respond) : respond(wrong_method(req));
    return respond(not_found(req));
  }
  if (seg[1] == "secrets") {
    if (!secrets_enabled(s, respond)) return;
    if (n == 2) return get ? list_secrets(s, tenant, respond) : respond(wrong_method(req));
    if (n == 3) {
      const std::string& name = seg[2];
      if (req.method == "PUT") return put_secret(s, req, tenant, name, respond);
      if (req.method == "DELETE") return delete_secret(s, req, tenant, name, respond);
      return respond(wrong_method(req));
    }
    return respond(not_found(req));
  }
  if (seg[1] == "limits" && n == 2) {
    if (get) return get_limits(s, tenant, respond);
    if (req.method == "PUT") return put_limits(s, req, tenant, respond);
    return respond(wrong_method(req));
  }
  if (seg[1] == "conversations") {
    if (n == 2) return get ? live_conversations(s, tenant, respond) : respond(wrong_method(req));
    if (n == 4 && seg[3] == "transcript" && !seg[2].empty())
      return get ? show_transcript(s, tenant, seg[2], respond) : respond(wrong_method(req));
  }
  respond(not_found(req));
}

/// POST /admin/v1/debug/lanes/stall {"ms": N}: one lane of this node runs nothing for N
/// ms (a runaway turn, as the cluster tests need one).
void stall_lane(const state_ptr& s, const http::request& req, http::responder respond) {
  auto body = json_body(req, respond);
  if (!body) return;
  auto ms = body->find("ms");
  if (ms == body->end() || !ms->is_number_integer() || ms->get<int64_t>() < 1 ||
      ms->get<int64_t>() > 60000)
    return respond(
        error_response(400, "invalid_field", "field 'ms' must be an integer of 1 to 60000", "ms"));
  if (!s->opts.stall_lane)
    return respond(error_response(503, "not_available", "this node runs no lanes to stall"));
  int lane = s->opts.stall_lane(std::chrono::milliseconds(ms->get<int64_t>()));
  if (lane < 0)
    return respond(error_response(503, "not_available", "this node runs no lanes to stall"));
  respond(json_response(200, {{"lane", lane}, {"ms", ms->get<int64_t>()}}));
}

/// /admin/v1/debug/tenants/{t}/conversations/{s}/kill, /admin/v1/debug/lanes/stall
void dispatch_debug(const state_ptr& s, http::request&& req, http::responder respond) {
  auto seg = split_path(std::string_view(req.path).substr(debug_prefix.size()));
  if (s->opts.debug_kill && seg.size() == 2 && seg[0] == "lanes" && seg[1] == "stall") {
    if (req.method != "POST") return respond(wrong_method(req));
    return stall_lane(s, req, std::move(respond));
  }
  if (!s->opts.debug_kill || seg.size() != 5 || seg[0] != "tenants" || seg[2] != "conversations" ||
      seg[4] != "kill" || seg[3].empty())
    return respond(not_found(req));
  if (req.method != "POST") return respond(wrong_method(req));
  if (!check_id("tenant id", seg[1], "tenant", respond)) return;
  kill(s, seg[1], seg[3], respond);
}

/// Wraps a handler with the admin checks that come before routing.
http::handler guarded(const state_ptr& s,
                      std::function<void(const state_ptr&, http::request&&, http::responder)> h) {
  return [s, h = std::move(h)](http::request&& req, http::responder respond) {
    if (auto denied = check_auth(*s, req)) return respond(std::move(*denied));
    h(s, std::move(req), std::move(respond));
  };
}

}  // namespace

std::string admin_token_from_env() {
  const char* v = std::getenv("PARLEY_ADMIN_TOKEN");
  return v == nullptr ? std::string() : std::string(v);
}

void add_admin_routes(http::router& routes, admin_options options) {
  auto s = std::make_shared<admin_state>(std::move(options));
  std::string tenants(tenants_path);
  routes.add("POST", tenants,
             guarded(s, [](const state_ptr& s, http::request&& req, http::responder r) {
               create_tenant(s, req, std::move(r));
             }));
  routes.add("GET", tenants, guarded(s, [](const state_ptr& s, http::request&&, http::responder r) {
               list_tenants(s, std::move(r));
             }));
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "PATCH"}) {
    routes.add_prefix(method, std::string(tenant_prefix), "/admin/v1/tenants/{tenant}",
                      guarded(s, dispatch_tenant));
  }
  for (const char* method : {"GET", "POST"})
    routes.add_prefix(method, std::string(debug_prefix), "/admin/v1/debug",
                      guarded(s, dispatch_debug));
  routes.add("POST", "/admin/v1/secrets/rotate",
             guarded(s, [](const state_ptr& s, http::request&& req, http::responder r) {
               rotate_secrets(s, req, std::move(r));
             }));
  routes.add("GET", "/admin/v1/cluster",
             guarded(s, [](const state_ptr& s, http::request&&, http::responder r) {
               cluster_status(s, std::move(r));
             }));
  routes.add_prefix("POST", "/admin/v1/cluster/nodes/", "/admin/v1/cluster/nodes/{id}/drain",
                    guarded(s, dispatch_cluster));
}

}  // namespace parley::admin
