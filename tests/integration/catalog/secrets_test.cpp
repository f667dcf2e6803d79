/// Tenant secrets against the real PostgreSQL of scripts/test: the catalog
/// (src/store/catalog/secrets.hpp), the admin routes (src/admin/) served in-process on
/// port 0, and parleyctl's `secret` commands. Rows this file leaves behind are sealed
/// under PARLEY_SECRETS_KEY, the key every parleyd of the test run has, so that the
/// nodes of other tests pass their start check.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <mutex>

#include "src/admin/admin.hpp"
#include "src/http/client.hpp"
#include "src/store/catalog.hpp"
#include "tests/integration/catalog/support.hpp"

namespace parley {
namespace {

using namespace parley::catalog_testing;
using json = nlohmann::json;

const std::string other_key_hex =
    "5f0e2d1c3b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The test run's keyring (PARLEY_SECRETS_KEY, as scripts/test exports it).
secrets::keyring run_keys() {
  auto text = require_env("PARLEY_SECRETS_KEY");
  auto k = secrets::keyring::from_text(text, "");
  EXPECT_TRUE(k.ok() && k->has_current())
      << "PARLEY_SECRETS_KEY must hold a key: run the tests with scripts/test";
  return k.ok() ? *k : secrets::keyring();
}

/// The raw row of a secret, for tampering and checking what is stored.
struct raw_row {
  std::string key_id, nonce_hex, ciphertext_hex;
};

std::optional<raw_row> row_of(store::postgres_client& pg, const std::string& tenant,
                              const std::string& name) {
  std::optional<raw_row> out;
  auto r = pg.run_sync([&](pqxx::transaction_base& tx) {
    auto rows = tx.exec_params(
        "SELECT key_id, encode(nonce, 'hex'), encode(ciphertext, 'hex') FROM tenant_secrets "
        "WHERE tenant_id = $1 AND name = $2",
        tenant, name);
    if (!rows.empty())
      out = raw_row{rows[0][0].as<std::string>(), rows[0][1].as<std::string>(),
                    rows[0][2].as<std::string>()};
  });
  EXPECT_TRUE(r) << r.err().message;
  return out;
}

class secrets_catalog : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    keys_ = run_keys();
    ASSERT_TRUE(keys_.has_current());
    tenant_ = unique_tenant("sec");
    other_ = unique_tenant("sec");
    for (const auto& t : {tenant_, other_}) {
      auto r = store::run_job_sync(*pg_, store::create_tenant(t, "Secrets test", "test"));
      ASSERT_TRUE(r) << r.err().message;
    }
  }

  template <class T>
  T ok(result<T> r) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().code + ": " + r.err().message);
    return r.ok() ? std::move(*r) : T{};
  }
  void ok(result<void> r) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().code + ": " + r.err().message);
  }

  store::postgres_client* pg_ = nullptr;
  secrets::keyring keys_;
  std::string tenant_, other_;
};

TEST_F(secrets_catalog, put_list_get_delete_and_audit_without_values) {
  EXPECT_TRUE(ok(store::run_job_sync(
      *pg_, store::put_secret(keys_, tenant_, "API_TOKEN", "tok-value-1", "alice"))));
  EXPECT_FALSE(ok(store::run_job_sync(
      *pg_, store::put_secret(keys_, tenant_, "API_TOKEN", "tok-value-2", "alice"))))
      << "a second put replaces";
  EXPECT_TRUE(ok(store::run_job_sync(
      *pg_, store::put_secret(keys_, tenant_, "b.other-name_1", "x", "alice"))));

  auto list = ok(store::run_job_sync(*pg_, store::list_secrets(tenant_)));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "API_TOKEN");
  EXPECT_EQ(list[0].key_id, keys_.current().id);
  EXPECT_GT(list[0].updated_at_ms, 0);
  EXPECT_EQ(list[1].name, "b.other-name_1");

  auto v = ok(store::run_job_sync(*pg_, store::get_secret(keys_, tenant_, "API_TOKEN")));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, "tok-value-2");
  auto all = ok(store::run_job_sync(*pg_, store::tenant_secrets(keys_, tenant_)));
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(all["b.other-name_1"], "x");
  EXPECT_TRUE(ok(store::run_job_sync(*pg_, store::tenant_secrets(keys_, other_))).empty())
      << "another tenant sees none of them";
  EXPECT_FALSE(
      ok(store::run_job_sync(*pg_, store::get_secret(keys_, other_, "API_TOKEN"))).has_value());

  // Stored sealed: neither the row nor the audit log holds the value.
  auto row = row_of(*pg_, tenant_, "API_TOKEN");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->nonce_hex.size(), 24u);
  std::string value_hex;
  for (unsigned char c : std::string("tok-value-2")) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", c);
    value_hex += b;
  }
  EXPECT_EQ(row->ciphertext_hex.find(value_hex), std::string::npos);

  ok(store::run_job_sync(*pg_, store::delete_secret(tenant_, "API_TOKEN", "bob")));
  auto gone = store::run_job_sync(*pg_, store::delete_secret(tenant_, "API_TOKEN", "bob"));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.err().code, "secret_not_found");
  EXPECT_NE(gone.err().message.find("API_TOKEN"), std::string::npos);

  auto audit = ok(store::run_job_sync(*pg_, store::list_audit(tenant_)));
  int sets = 0, deletes = 0;
  for (const auto& a : audit) {
    EXPECT_EQ(a.details_json.find("tok-value"), std::string::npos) << a.details_json;
    if (a.action == "secret.set") {
      ++sets;
      EXPECT_EQ(a.actor, "alice");
    }
    if (a.action == "secret.delete") {
      ++deletes;
      EXPECT_EQ(a.target, "secret/API_TOKEN");
    }
  }
  EXPECT_EQ(sets, 3);
  EXPECT_EQ(deletes, 1);
}

TEST_F(secrets_catalog, bad_names_values_tenants_and_a_missing_key_are_refused) {
  auto bad_name =
      store::run_job_sync(*pg_, store::put_secret(keys_, tenant_, "has space", "v", "a"));
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.err().code, "invalid_argument");
  EXPECT_NE(bad_name.err().message.find("'has space'"), std::string::npos);
  EXPECT_FALSE(
      store::run_job_sync(*pg_, store::put_secret(keys_, tenant_, std::string(65, 'x'), "v", "a"))
          .ok());
  EXPECT_TRUE(store::run_job_sync(*pg_, store::put_secret(keys_, tenant_, std::string(64, 'x'),
                                                          std::string(8192, 'v'), "a"))
                  .ok());
  auto big = store::run_job_sync(
      *pg_, store::put_secret(keys_, tenant_, "BIG", std::string(8193, 'v'), "a"));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, "invalid_argument");
  EXPECT_NE(big.err().message.find("8192"), std::string::npos);
  auto no_tenant =
      store::run_job_sync(*pg_, store::put_secret(keys_, unique_tenant("nobody"), "A", "v", "a"));
  ASSERT_FALSE(no_tenant.ok());
  EXPECT_EQ(no_tenant.err().code, "tenant_not_found");
  auto no_key =
      store::run_job_sync(*pg_, store::put_secret(secrets::keyring(), tenant_, "A", "v", "a"));
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.err().code, "secrets_key_missing");
  EXPECT_NE(no_key.err().message.find("PARLEY_SECRETS_KEY"), std::string::npos);
}

TEST_F(secrets_catalog, a_row_copied_to_another_tenant_or_tampered_does_not_open) {
  ok(store::run_job_sync(*pg_, store::put_secret(keys_, tenant_, "TOKEN", "a-value", "t")));
  ok(store::run_job_sync(*pg_, store::put_secret(keys_, other_, "TOKEN", "b-value", "t")));
  // Tenant A's sealed bytes pasted into tenant B's row: the associated data differs.
  auto r = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params(
        "UPDATE tenant_secrets dst SET nonce = src.nonce, ciphertext = src.ciphertext "
        "FROM tenant_secrets src WHERE src.tenant_id = $1 AND src.name = 'TOKEN' "
        "AND dst.tenant_id = $2 AND dst.name = 'TOKEN'",
        tenant_, other_);
  });
  ASSERT_TRUE(r) << r.err().message;
  auto copied = store::run_job_sync(*pg_, store::get_secret(keys_, other_, "TOKEN"));
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.err().code, "secret_undecryptable");
  EXPECT_EQ(copied.err().message.find("a-value"), std::string::npos);
  auto loads = store::run_job_sync(*pg_, store::tenant_secrets(keys_, other_));
  EXPECT_FALSE(loads.ok()) << "the node's load fails rather than using a wrong value";

  // One flipped byte of the ciphertext.
  r = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params(
        "UPDATE tenant_secrets SET ciphertext = overlay(ciphertext placing "
        "decode(lpad(to_hex(get_byte(ciphertext, 0) # 1), 2, '0'), 'hex') from 1 for 1) "
        "WHERE tenant_id = $1 AND name = 'TOKEN'",
        tenant_);
  });
  ASSERT_TRUE(r) << r.err().message;
  auto tampered = store::run_job_sync(*pg_, store::get_secret(keys_, tenant_, "TOKEN"));
  ASSERT_FALSE(tampered.ok());
  EXPECT_EQ(tampered.err().code, "secret_undecryptable");
  // A rotation refuses to go past a row it cannot open (it names it): delete them.
  auto stuck = store::run_job_sync(
      *pg_,
      store::rotate_secrets(
          *secrets::keyring::from_text(other_key_hex, require_env("PARLEY_SECRETS_KEY")), "t"));
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.err().code, "secret_undecryptable");
  ok(store::run_job_sync(*pg_, store::delete_secret(tenant_, "TOKEN", "t")));
  ok(store::run_job_sync(*pg_, store::delete_secret(other_, "TOKEN", "t")));
}

TEST_F(secrets_catalog, rotation_reseals_every_row_under_the_current_key) {
  // Keys: the run's key K, and another key N. Rotating to N (K previous) and back to K
  // leaves the database as the other tests need it: everything under K.
  auto k_text = require_env("PARLEY_SECRETS_KEY");
  auto to_n = ok(secrets::keyring::from_text(other_key_hex, k_text));
  auto back_to_k = ok(secrets::keyring::from_text(k_text, other_key_hex));
  ok(store::run_job_sync(*pg_, store::put_secret(keys_, tenant_, "ROT", "rot-value", "t")));
  ok(store::run_job_sync(*pg_, store::put_secret(keys_, other_, "ROT", "other-value", "t")));

  struct rotate_back {
    store::postgres_client* pg;
    secrets::keyring keys;
    ~rotate_back() { (void)store::run_job_sync(*pg, store::rotate_secrets(keys, "test")); }
  } guard{pg_, back_to_k};

  auto rotated = ok(store::run_job_sync(*pg_, store::rotate_secrets(to_n, "carol")));
  EXPECT_GE(rotated.reencrypted, 2);
  auto ids = ok(store::run_job_sync(*pg_, store::secret_key_ids()));
  EXPECT_EQ(ids.size(), 1u) << "every row is under the new key";
  EXPECT_EQ(ids.count(to_n.current().id), 1u);
  EXPECT_EQ(row_of(*pg_, tenant_, "ROT")->key_id, to_n.current().id);
  // The old key alone no longer opens it; the new one does, and nothing is left to do.
  auto old_only = store::run_job_sync(*pg_, store::get_secret(keys_, tenant_, "ROT"));
  ASSERT_FALSE(old_only.ok());
  EXPECT_EQ(old_only.err().code, "secrets_key_unknown");
  EXPECT_NE(old_only.err().message.find(to_n.current().id), std::string::npos);
  EXPECT_EQ(*ok(store::run_job_sync(*pg_, store::get_secret(to_n, tenant_, "ROT"))), "rot-value");
  EXPECT_EQ(ok(store::run_job_sync(*pg_, store::rotate_secrets(to_n, "carol"))).reencrypted, 0);
  auto audit = ok(store::run_job_sync(*pg_, store::list_audit(tenant_)));
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].action, "secrets.rotate");
  EXPECT_EQ(audit[0].details_json.find("rot-value"), std::string::npos);

  // A rotation whose keyring cannot open a row changes nothing.
  auto stranger = ok(secrets::keyring::from_text(
      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", ""));
  auto refused = store::run_job_sync(*pg_, store::rotate_secrets(stranger, "carol"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, "secrets_key_unknown");
  EXPECT_EQ(row_of(*pg_, tenant_, "ROT")->key_id, to_n.current().id);

  EXPECT_GE(ok(store::run_job_sync(*pg_, store::rotate_secrets(back_to_k, "test"))).reencrypted, 2);
  EXPECT_EQ(*ok(store::run_job_sync(*pg_, store::get_secret(keys_, other_, "ROT"))), "other-value");
}

// ------------------------------------------------------------------ admin API

class secrets_admin : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    tenant_ = unique_tenant("sadm");
    ASSERT_TRUE(store::run_job_sync(*pg_, store::create_tenant(tenant_, "Admin secrets", "t")));
    with_key_ = start(run_keys());
    without_key_ = start(secrets::keyring());
  }
  void TearDown() override {
    for (auto* s : {&with_key_, &without_key_})
      if (*s) (*s)->stop(std::chrono::milliseconds(1000));
  }

  std::unique_ptr<http::server> start(secrets::keyring keys) {
    http::router routes;
    admin::admin_options opts{*pg_, "tok", {}, {}, false, {}, {}};
    opts.secrets = std::move(keys);
    opts.changed = [this](const admin::change& c) {
      std::lock_guard<std::mutex> lock(m_);
      changes_.push_back(c);
    };
    admin::add_admin_routes(routes, std::move(opts));
    auto s = std::make_unique<http::server>(http::server_options{}, std::move(routes),
                                            std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(s->start());
    return s;
  }

  struct reply {
    int status = 0;
    std::string raw;
    json body;
  };
  reply call(const std::string& method, const std::string& path, const std::string& body = "",
             http::server* on = nullptr) {
    http::client_request req;
    req.method = method;
    req.url = "http://127.0.0.1:" + std::to_string((on ? on : with_key_.get())->port()) + path;
    req.body = body;
    req.headers.emplace_back("Authorization", "Bearer tok");
    req.headers.emplace_back("X-Parley-Actor", "dana");
    auto r = http::fetch(req);
    EXPECT_TRUE(r) << r.err().message;
    if (!r) return {};
    return reply{r->status, r->body, json::parse(r->body, nullptr, false)};
  }
  std::vector<admin::change> changes() {
    std::lock_guard<std::mutex> lock(m_);
    return changes_;
  }

  store::postgres_client* pg_ = nullptr;
  std::string tenant_;
  std::unique_ptr<http::server> with_key_, without_key_;
  std::mutex m_;
  std::vector<admin::change> changes_;
};

TEST_F(secrets_admin, routes_set_list_delete_and_rotate_without_showing_values) {
  const std::string base = "/admin/v1/tenants/" + tenant_ + "/secrets";
  auto created = call("PUT", base + "/WEBHOOK_TOKEN", json{{"value", "wh-s3cret"}}.dump());
  EXPECT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.body["name"], "WEBHOOK_TOKEN");
  auto replaced = call("PUT", base + "/WEBHOOK_TOKEN", json{{"value", "wh-s3cret-2"}}.dump());
  EXPECT_EQ(replaced.status, 204) << replaced.raw;
  EXPECT_TRUE(replaced.raw.empty());
  auto list = call("GET", base);
  ASSERT_EQ(list.status, 200) << list.raw;
  ASSERT_EQ(list.body["secrets"].size(), 1u);
  EXPECT_EQ(list.body["secrets"][0]["name"], "WEBHOOK_TOKEN");
  EXPECT_TRUE(list.body["secrets"][0]["updated_at"].is_string());
  EXPECT_EQ(list.raw.find("wh-s3cret"), std::string::npos);

  auto c = changes();
  ASSERT_EQ(c.size(), 2u) << "each change is announced";
  EXPECT_EQ(c[0].what, admin::change::kind::secrets_changed);
  EXPECT_EQ(c[0].tenant, tenant_);
  EXPECT_EQ(admin::encode_change(c[0]).find("wh-s3cret"), std::string::npos);
  auto decoded = admin::decode_change(admin::encode_change(c[1]));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->what, admin::change::kind::secrets_changed);
  EXPECT_EQ(decoded->name, "WEBHOOK_TOKEN");

  auto deleted = call("DELETE", base + "/WEBHOOK_TOKEN");
  EXPECT_EQ(deleted.status, 204) << deleted.raw;
  auto again = call("DELETE", base + "/WEBHOOK_TOKEN");
  EXPECT_EQ(again.status, 404) << again.raw;
  EXPECT_EQ(again.body["error"]["code"], "secret_not_found");
  EXPECT_EQ(changes().size(), 3u) << "a failed delete announces nothing";

  auto rotate = call("POST", "/admin/v1/secrets/rotate", "{}");
  ASSERT_EQ(rotate.status, 200) << rotate.raw;
  EXPECT_TRUE(rotate.body["reencrypted"].is_number_integer());
  EXPECT_EQ(rotate.body["key_id"], run_keys().current().id);
}

TEST_F(secrets_admin, errors_name_the_field_and_a_node_without_key_answers_503) {
  const std::string base = "/admin/v1/tenants/" + tenant_ + "/secrets";
  auto bad_name = call("PUT", base + "/bad%20name", json{{"value", "v"}}.dump());
  EXPECT_EQ(bad_name.status, 400) << bad_name.raw;
  EXPECT_EQ(bad_name.body["error"]["field"], "name");
  auto no_value = call("PUT", base + "/A", "{}");
  EXPECT_EQ(no_value.status, 400);
  EXPECT_EQ(no_value.body["error"]["field"], "value");
  auto not_text = call("PUT", base + "/A", json{{"value", 5}}.dump());
  EXPECT_EQ(not_text.status, 400);
  auto too_big = call("PUT", base + "/A", json{{"value", std::string(8193, 'x')}}.dump());
  EXPECT_EQ(too_big.status, 400) << too_big.raw;
  EXPECT_EQ(too_big.body["error"]["field"], "value");
  EXPECT_EQ(too_big.raw.find("xxxxxxxx"), std::string::npos);
  auto no_tenant = call("PUT", "/admin/v1/tenants/" + unique_tenant("none") + "/secrets/A",
                        json{{"value", "v"}}.dump());
  EXPECT_EQ(no_tenant.status, 404) << no_tenant.raw;
  EXPECT_EQ(call("POST", base + "/A").status, 405);
  EXPECT_TRUE(changes().empty());

  for (auto [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"PUT", base + "/A"},
                                                        {"GET", base},
                                                        {"DELETE", base + "/A"},
                                                        {"POST", "/admin/v1/secrets/rotate"}}) {
    auto r =
        call(method, path, method == "PUT" ? json{{"value", "v"}}.dump() : "", without_key_.get());
    EXPECT_EQ(r.status, 503) << method << " " << path << ": " << r.raw;
    EXPECT_EQ(r.body["error"]["code"], "secrets_disabled");
    EXPECT_NE(r.raw.find("PARLEY_SECRETS_KEY"), std::string::npos);
  }
}

// ------------------------------------------------------------------ parleyctl

run_result ctl(const std::string& args, const std::string& input = "") {
  std::string cmd =
      "env -u PARLEY_URL PARLEY_ADMIN_TOKEN=tok '" PARLEYCTL_PATH "' " + args + " 2>&1";
  if (!input.empty()) cmd = "printf '%s\\n' '" + input + "' | " + cmd;
  return run_shell(cmd);
}

TEST_F(secrets_admin, parleyctl_secret_commands) {
  std::string at = " --url http://127.0.0.1:" + std::to_string(with_key_->port());
  auto set = ctl("secret set " + tenant_ + " FROM_FLAG --value flag-v4lue" + at);
  EXPECT_EQ(set.exit_code, 0) << set.output;
  EXPECT_NE(set.output.find("created secret FROM_FLAG"), std::string::npos) << set.output;
  auto from_stdin = ctl("secret set " + tenant_ + " FROM_STDIN" + at, "stdin-v4lue");
  EXPECT_EQ(from_stdin.exit_code, 0) << from_stdin.output;
  auto keys = run_keys();
  EXPECT_EQ(*store::run_job_sync(*pg_, store::get_secret(keys, tenant_, "FROM_STDIN")),
            std::optional<std::string>("stdin-v4lue"))
      << "the trailing newline is not part of the value";
  EXPECT_EQ(*store::run_job_sync(*pg_, store::get_secret(keys, tenant_, "FROM_FLAG")),
            std::optional<std::string>("flag-v4lue"));
  auto update = ctl("secret set " + tenant_ + " FROM_FLAG --value changed" + at);
  EXPECT_NE(update.output.find("updated secret FROM_FLAG"), std::string::npos) << update.output;

  auto list = ctl("secret list " + tenant_ + at);
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("FROM_FLAG"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("FROM_STDIN"), std::string::npos) << list.output;
  EXPECT_EQ(list.output.find("v4lue"), std::string::npos) << list.output;

  auto del = ctl("secret delete " + tenant_ + " FROM_FLAG" + at);
  EXPECT_EQ(del.exit_code, 0) << del.output;
  auto del_again = ctl("secret delete " + tenant_ + " FROM_FLAG" + at);
  EXPECT_EQ(del_again.exit_code, 1) << del_again.output;
  EXPECT_NE(del_again.output.find("FROM_FLAG"), std::string::npos) << del_again.output;

  auto rotate = ctl("secret rotate-key" + at);
  EXPECT_EQ(rotate.exit_code, 0) << rotate.output;
  EXPECT_NE(rotate.output.find("re-encrypted"), std::string::npos) << rotate.output;
  auto no_key = ctl("secret set " + tenant_ +
                    " X --value v --url http://127.0.0.1:" + std::to_string(without_key_->port()));
  EXPECT_EQ(no_key.exit_code, 1) << no_key.output;
  EXPECT_NE(no_key.output.find("PARLEY_SECRETS_KEY"), std::string::npos) << no_key.output;
}

}  // namespace
}  // namespace parley
