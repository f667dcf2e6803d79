/// The admin REST API (src/admin/) served in-process by a parley::http::server
/// on port 0, over the real PostgreSQL of scripts/test, called with
/// parley::http::fetch like parleyctl does.

#include "src/admin/admin.hpp"

#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <mutex>

#include "src/http/client.hpp"
#include "src/store/catalog.hpp"
#include "tests/integration/catalog/support.hpp"

namespace parley::admin {
namespace {

using namespace parley::catalog_testing;
using json = nlohmann::json;

/// One server with the admin routes; hooks answer from a fixed table.
class admin_server {
 public:
  admin_server(store::postgres_client& pg, std::string token, bool debug_kill) {
    http::router routes;
    admin_options opts{pg, std::move(token), {}, {}, debug_kill, {}, {}};
    opts.live_conversations = [this](std::string tenant, std::function<void(json)> done) {
      ++live_calls;
      done(json::array({{{"session_id", "s-1"}, {"tenant", tenant}}}));
    };
    opts.kill_conversation = [this](std::string tenant, std::string session,
                                    std::function<void(bool)> done) {
      std::lock_guard<std::mutex> lock(mutex);
      killed.push_back(tenant + "/" + session);
      done(session == "live-session");
    };
    opts.changed = [this](const change& c) {
      std::lock_guard<std::mutex> lock(mutex);
      changes.push_back(c);
    };
    add_admin_routes(routes, std::move(opts));
    server_ = std::make_unique<http::server>(http::server_options{}, std::move(routes),
                                             std::make_shared<prometheus::Registry>());
    auto r = server_->start();
    EXPECT_TRUE(r) << r.err().message;
  }
  ~admin_server() { server_->stop(std::chrono::milliseconds(1000)); }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  std::atomic<int> live_calls{0};
  std::mutex mutex;
  std::vector<std::string> killed;
  std::vector<change> changes;  // what the `changed` hook was told, in order

  /// A copy of `changes`, taken under the lock.
  std::vector<change> published() {
    std::lock_guard<std::mutex> lock(mutex);
    return changes;
  }

 private:
  std::unique_ptr<http::server> server_;
};

struct reply {
  int status = 0;
  json body;
  std::string raw;
  std::string www_authenticate;
};

class admin_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    server_ = std::make_unique<admin_server>(*pg_, token_, true);
    tenant_ = unique_tenant("adm");
    source_ = sample_bot("order-status.yaml");
    ASSERT_FALSE(source_.empty());
  }

  reply call(const std::string& method, const std::string& path, const std::string& body = "",
             std::optional<std::string> token = std::nullopt, admin_server* on = nullptr) {
    http::client_request req;
    req.method = method;
    req.url = (on ? on : server_.get())->url(path);
    req.body = body;
    std::string t = token.value_or(token_);
    if (!t.empty()) req.headers.emplace_back("Authorization", "Bearer " + t);
    req.headers.emplace_back("X-Parley-Actor", "alice");
    auto r = http::fetch(req);
    EXPECT_TRUE(r) << r.err().message;
    if (!r) return {};
    reply out;
    out.status = r->status;
    out.raw = r->body;
    out.body = json::parse(r->body, nullptr, false);
    if (const auto* h = r->header("WWW-Authenticate")) out.www_authenticate = *h;
    return out;
  }

  void create_tenant() {
    auto r =
        call("POST", "/admin/v1/tenants", json{{"id", tenant_}, {"name", "Admin test"}}.dump());
    ASSERT_EQ(r.status, 201) << r.raw;
  }

  std::string bot_path(const std::string& bot, const std::string& rest) {
    return "/admin/v1/tenants/" + tenant_ + "/bots/" + bot + "/" + rest;
  }

  store::postgres_client* pg_ = nullptr;
  std::string token_ = "test-admin-token";
  std::unique_ptr<admin_server> server_;
  std::string tenant_;
  std::string source_;
};

TEST_F(admin_test, requests_without_the_right_token_are_refused) {
  auto none = call("GET", "/admin/v1/tenants", "", std::string());
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_EQ(none.body["error"]["code"], "unauthorized");
  EXPECT_EQ(none.www_authenticate.rfind("Bearer", 0), 0u);
  auto wrong = call("GET", "/admin/v1/tenants", "", std::string("test-admin-tokeN"));
  EXPECT_EQ(wrong.status, 401);
  auto longer = call("POST", "/admin/v1/tenants/x/bots/y/rollback", "",
                     std::string("test-admin-token-and-more"));
  EXPECT_EQ(longer.status, 401);
  auto ok = call("GET", "/admin/v1/tenants");
  EXPECT_EQ(ok.status, 200) << ok.raw;
  EXPECT_TRUE(ok.body["tenants"].is_array());
}

TEST_F(admin_test, without_a_configured_token_the_api_is_disabled) {
  admin_server disabled(*pg_, "", true);
  auto r = call("GET", "/admin/v1/tenants", "", std::string("anything"), &disabled);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body["error"]["message"], "admin API disabled: set PARLEY_ADMIN_TOKEN");
  auto deploy =
      call("POST", "/admin/v1/tenants/t/bots/b/versions", source_, std::string("x"), &disabled);
  EXPECT_EQ(deploy.status, 503);
}

TEST_F(admin_test, tenants_and_api_keys) {
  create_tenant();
  auto dup = call("POST", "/admin/v1/tenants", json{{"id", tenant_}, {"name", "Again"}}.dump());
  EXPECT_EQ(dup.status, 409) << dup.raw;
  EXPECT_EQ(dup.body["error"]["code"], "tenant_exists");

  auto no_name = call("POST", "/admin/v1/tenants", json{{"id", tenant_ + "x"}}.dump());
  EXPECT_EQ(no_name.status, 400);
  EXPECT_EQ(no_name.body["error"]["field"], "name");
  auto bad_id = call("POST", "/admin/v1/tenants", json{{"id", "a b"}, {"name", "n"}}.dump());
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(bad_id.body["error"]["field"], "id");
  auto not_json = call("POST", "/admin/v1/tenants", "{nope");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(not_json.body["error"]["code"], "invalid_json");

  auto list = call("GET", "/admin/v1/tenants");
  ASSERT_EQ(list.status, 200);
  bool found = false;
  for (const auto& t : list.body["tenants"]) found |= t["id"] == tenant_;
  EXPECT_TRUE(found);

  auto key =
      call("POST", "/admin/v1/tenants/" + tenant_ + "/api-keys", json{{"name", "web"}}.dump());
  ASSERT_EQ(key.status, 201) << key.raw;
  std::string plaintext = key.body["key"];
  EXPECT_EQ(key.body["prefix"], plaintext.substr(0, 8));
  EXPECT_TRUE(*store::run_job_sync(*pg_, store::verify_api_key(tenant_, plaintext)));

  auto keys = call("GET", "/admin/v1/tenants/" + tenant_ + "/api-keys");
  ASSERT_EQ(keys.status, 200);
  ASSERT_EQ(keys.body["api_keys"].size(), 1u);
  EXPECT_EQ(keys.raw.find(plaintext), std::string::npos) << "the key is shown once only";

  EXPECT_TRUE(server_->published().empty()) << "creating tenants and keys announces nothing";
  auto revoke = call("POST", "/admin/v1/tenants/" + tenant_ + "/api-keys/" +
                                 std::to_string(key.body["id"].get<long long>()) + "/revoke");
  EXPECT_EQ(revoke.status, 200) << revoke.raw;
  EXPECT_FALSE(*store::run_job_sync(*pg_, store::verify_api_key(tenant_, plaintext)));
  // Announced to the other nodes (src/admin/changes.hpp) before the answer.
  auto announced = server_->published();
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0].what, change::kind::api_key_revoked);
  EXPECT_EQ(announced[0].tenant, tenant_);
  EXPECT_EQ(announced[0].key_id, key.body["id"].get<long long>());
  auto no_such_key = call("POST", "/admin/v1/tenants/" + tenant_ + "/api-keys/999999999/revoke");
  EXPECT_EQ(no_such_key.status, 404) << no_such_key.raw;
  EXPECT_EQ(server_->published().size(), 1u) << "a failed revocation announces nothing";

  auto unknown = call("POST", "/admin/v1/tenants/" + tenant_ + "-none/api-keys", "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["error"]["code"], "tenant_not_found");

  auto audit = store::run_job_sync(*pg_, store::list_audit(tenant_, 10));
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), 3u);
  EXPECT_EQ((*audit)[2].action, "tenant.create");
  EXPECT_EQ((*audit)[2].actor, "alice");
}

TEST_F(admin_test, a_bad_bot_file_is_422_with_diagnostics) {
  create_tenant();
  auto bad = edited(source_, "welcome: welcome", "welcome: no_such_dialog");
  auto r = call("POST", bot_path("orders", "versions"), bad);
  ASSERT_EQ(r.status, 422) << r.raw;
  EXPECT_EQ(r.body["error"]["code"], "bot_invalid");
  ASSERT_TRUE(r.body["diagnostics"].is_array());
  ASSERT_FALSE(r.body["diagnostics"].empty());
  const auto& d = r.body["diagnostics"][0];
  EXPECT_EQ(d["severity"], "error");
  EXPECT_GT(d["line"].get<int>(), 0);
  EXPECT_GT(d["column"].get<int>(), 0);
  EXPECT_NE(d["message"].get<std::string>().find("no_such_dialog"), std::string::npos);

  auto empty = call("POST", bot_path("orders", "versions"), "");
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(empty.body["error"]["field"], "body");
  auto versions = call("GET", bot_path("orders", "versions"));
  EXPECT_EQ(versions.status, 404) << "nothing was stored";
}

TEST_F(admin_test, deploy_list_activate_rollback) {
  create_tenant();
  auto v1 = call("POST", bot_path("orders", "versions"), source_);
  ASSERT_EQ(v1.status, 201) << v1.raw;
  EXPECT_EQ(v1.body["version"], 1);
  EXPECT_EQ(v1.body["activated"], false);
  EXPECT_TRUE(v1.body["warnings"].is_array());
  EXPECT_EQ(v1.body["program_id"].get<std::string>().rfind("order-status@", 0), 0u);

  auto v2 = call("POST", bot_path("orders", "versions?activate=true"), source_);
  ASSERT_EQ(v2.status, 201) << v2.raw;
  EXPECT_EQ(v2.body["version"], 2);
  EXPECT_EQ(v2.body["activated"], true);
  auto bad_flag = call("POST", bot_path("orders", "versions?activate=maybe"), source_);
  EXPECT_EQ(bad_flag.status, 400);
  EXPECT_EQ(bad_flag.body["error"]["field"], "activate");

  auto list = call("GET", bot_path("orders", "versions"));
  ASSERT_EQ(list.status, 200) << list.raw;
  EXPECT_EQ(list.body["active_version"], 2);
  ASSERT_EQ(list.body["versions"].size(), 2u);
  EXPECT_EQ(list.body["versions"][0]["deployed_by"], "alice");
  EXPECT_EQ(list.body["versions"][1]["active"], true);

  auto act = call("POST", bot_path("orders", "activate"), json{{"version", 1}}.dump());
  ASSERT_EQ(act.status, 200) << act.raw;
  EXPECT_EQ(act.body["version"], 1);
  EXPECT_EQ(act.body["previous_version"], 2);
  EXPECT_EQ(store::run_job_sync(*pg_, store::get_active(tenant_, "orders"))->version, 1);

  auto missing = call("POST", bot_path("orders", "activate"), "{}");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"]["field"], "version");
  auto wrong_type = call("POST", bot_path("orders", "activate"), json{{"version", "2"}}.dump());
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_EQ(wrong_type.body["error"]["field"], "version");
  auto unknown = call("POST", bot_path("orders", "activate"), json{{"version", 9}}.dump());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["error"]["code"], "version_not_found");

  auto back = call("POST", bot_path("orders", "rollback"));
  ASSERT_EQ(back.status, 200) << back.raw;
  EXPECT_EQ(back.body["version"], 2);
  auto again = call("POST", bot_path("orders", "rollback"));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"]["code"], "no_previous_version");
  auto never = call("POST", bot_path("other", "rollback"));
  EXPECT_EQ(never.status, 409);
  EXPECT_EQ(never.body["error"]["code"], "no_active_version");

  auto wrong_method = call("GET", bot_path("orders", "rollback"));
  EXPECT_EQ(wrong_method.status, 405);
  auto nowhere = call("GET", "/admin/v1/tenants/" + tenant_ + "/nothing");
  EXPECT_EQ(nowhere.status, 404);

  // Each committed activation was announced once, with the version now active:
  // the deploy with activate=true, the activate and the rollback; failures, plain
  // deploys and activating the active version again announce nothing.
  auto same = call("POST", bot_path("orders", "activate"), json{{"version", 2}}.dump());
  ASSERT_EQ(same.status, 200) << same.raw;
  EXPECT_EQ(same.body["changed"], false);
  auto announced = server_->published();
  ASSERT_EQ(announced.size(), 3u);
  std::vector<int> versions;
  for (const auto& c : announced) {
    EXPECT_EQ(c.what, change::kind::bot_activated);
    EXPECT_EQ(c.tenant, tenant_);
    EXPECT_EQ(c.bot, "orders");
    versions.push_back(c.version);
  }
  EXPECT_EQ(versions, (std::vector<int>{2, 1, 2}));
}

TEST_F(admin_test, conversations_transcripts_and_debug_kill) {
  create_tenant();
  auto live = call("GET", "/admin/v1/tenants/" + tenant_ + "/conversations");
  ASSERT_EQ(live.status, 200) << live.raw;
  EXPECT_EQ(live.body["conversations"][0]["tenant"], tenant_);
  EXPECT_EQ(server_->live_calls.load(), 1);
  auto unknown_tenant = call("GET", "/admin/v1/tenants/" + tenant_ + "-no/conversations");
  EXPECT_EQ(unknown_tenant.status, 404);

  std::string session = unique_name("sess");
  store::conversation_record c;
  c.tenant = tenant_;
  c.session_id = session;
  c.bot = "orders";
  c.version = 1;
  c.channel = "bot_api";
  ASSERT_TRUE(store::run_job_sync(*pg_, store::upsert_conversation(c)));
  seed_turn_sql(*pg_, tenant_, session, 1, std::string("hello"), "",
                R"([{"text": "Hi!", "payload": {"choices": ["a"]}}])", 0);
  auto t =
      call("GET", "/admin/v1/tenants/" + tenant_ + "/conversations/" + session + "/transcript");
  ASSERT_EQ(t.status, 200) << t.raw;
  EXPECT_EQ(t.body["conversation"]["bot"], "orders");
  ASSERT_EQ(t.body["messages"].size(), 2u);
  EXPECT_EQ(t.body["messages"][0]["direction"], "in");
  EXPECT_EQ(t.body["messages"][1]["text"], "Hi!");
  EXPECT_EQ(t.body["messages"][1]["payload"]["choices"][0], "a");
  auto none = call("GET", "/admin/v1/tenants/" + tenant_ + "/conversations/nope/transcript");
  EXPECT_EQ(none.status, 404);

  auto killed =
      call("POST", "/admin/v1/debug/tenants/" + tenant_ + "/conversations/live-session/kill");
  EXPECT_EQ(killed.status, 200) << killed.raw;
  EXPECT_EQ(killed.body["killed"], true);
  auto not_live = call("POST", "/admin/v1/debug/tenants/" + tenant_ + "/conversations/gone/kill");
  EXPECT_EQ(not_live.status, 404);
  {
    std::lock_guard<std::mutex> lock(server_->mutex);
    EXPECT_EQ(server_->killed,
              (std::vector<std::string>{tenant_ + "/live-session", tenant_ + "/gone"}));
  }

  admin_server no_debug(*pg_, token_, false);
  auto off = call("POST", "/admin/v1/debug/tenants/" + tenant_ + "/conversations/live-session/kill",
                  "", std::nullopt, &no_debug);
  EXPECT_EQ(off.status, 404);
  std::lock_guard<std::mutex> lock(no_debug.mutex);
  EXPECT_TRUE(no_debug.killed.empty());
}

TEST_F(admin_test, tenant_limits_default_set_validated_audited_and_announced) {
  create_tenant();
  const std::string path = "/admin/v1/tenants/" + tenant_ + "/limits";
  auto defaults = call("GET", path);
  ASSERT_EQ(defaults.status, 200) << defaults.raw;
  EXPECT_EQ(defaults.body["custom"], false);
  EXPECT_EQ(defaults.body["attachments"]["max_attachments"], 10);
  EXPECT_EQ(defaults.body["attachments"]["max_url_bytes"], 2048);
  EXPECT_EQ(defaults.body["attachments"]["schemes"], json::array({"https", "http"}));
  EXPECT_EQ(defaults.body["attachments"]["content_types"],
            json::array({"image/*", "audio/*", "video/*", "application/pdf", "text/plain"}));

  // Only the fields given change.
  auto put = call("PUT", path,
                  json{{"attachments", {{"max_attachments", 2}, {"schemes", {"https"}}}}}.dump());
  ASSERT_EQ(put.status, 200) << put.raw;
  EXPECT_EQ(put.body["custom"], true);
  EXPECT_EQ(put.body["attachments"]["max_attachments"], 2);
  EXPECT_EQ(put.body["attachments"]["max_url_bytes"], 2048);
  auto got = call("GET", path);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["attachments"]["max_attachments"], 2);
  EXPECT_EQ(got.body["attachments"]["schemes"], json::array({"https"}));
  EXPECT_EQ(got.body["attachments"]["content_types"],
            defaults.body["attachments"]["content_types"]);

  auto announced = server_->published();
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0].what, change::kind::limits_changed);
  EXPECT_EQ(announced[0].tenant, tenant_);
  auto decoded = decode_change(encode_change(announced[0]));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->what, change::kind::limits_changed);
  EXPECT_EQ(decoded->tenant, tenant_);

  auto audit = store::run_job_sync(*pg_, store::list_audit(tenant_, 10));
  ASSERT_TRUE(audit);
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ((*audit)[0].action, "limits.set");
  EXPECT_EQ((*audit)[0].actor, "alice");
  auto details = json::parse((*audit)[0].details_json);
  EXPECT_EQ(details["max_attachments"], 2);
  EXPECT_EQ(details["schemes"], json::array({"https"}));

  struct bad_case {
    json body;
    std::string field;
  };
  for (const auto& c : std::vector<bad_case>{
           {{{"attachments", {{"max_attachments", -1}}}}, "attachments.max_attachments"},
           {{{"attachments", {{"max_attachments", 101}}}}, "attachments.max_attachments"},
           {{{"attachments", {{"max_attachments", "3"}}}}, "attachments.max_attachments"},
           {{{"attachments", {{"max_url_bytes", 0}}}}, "attachments.max_url_bytes"},
           {{{"attachments", {{"schemes", {"https", "javascript"}}}}}, "attachments.schemes[1]"},
           {{{"attachments", {{"schemes", "https"}}}}, "attachments.schemes"},
           {{{"attachments", {{"content_types", {"image"}}}}}, "attachments.content_types[0]"},
           {{{"attachments", {{"max_size", 1}}}}, "attachments.max_size"},
           {{{"attachments", 3}}, "attachments"},
           {{{"rate", 1}}, "rate"}}) {
    auto r = call("PUT", path, c.body.dump());
    EXPECT_EQ(r.status, 400) << c.body.dump() << " " << r.raw;
    EXPECT_EQ(r.body["error"]["code"], "invalid_field") << r.raw;
    EXPECT_EQ(r.body["error"]["field"], c.field) << r.raw;
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(c.field), std::string::npos)
        << r.raw;
  }
  EXPECT_EQ(server_->published().size(), 1u) << "a refused PUT announces nothing";
  EXPECT_EQ(call("GET", path).body["attachments"]["max_attachments"], 2)
      << "a refused PUT changes nothing";

  auto unknown = call("GET", "/admin/v1/tenants/" + tenant_ + "-none/limits");
  EXPECT_EQ(unknown.status, 404) << unknown.raw;
  EXPECT_EQ(unknown.body["error"]["code"], "tenant_not_found");
  auto put_unknown = call("PUT", "/admin/v1/tenants/" + tenant_ + "-none/limits", "{}");
  EXPECT_EQ(put_unknown.status, 404) << put_unknown.raw;
  EXPECT_EQ(call("DELETE", path).status, 405);
}

}  // namespace
}  // namespace parley::admin
