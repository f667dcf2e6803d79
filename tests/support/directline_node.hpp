#pragma once
/// A real parleyd serving Direct Line for the tests of that channel: a tenant of its
/// own in the Postgres that scripts/test started, the order-status sample bot (as
/// "orders") calling a fake order API on port 0, a token key and a Direct Line secret
/// for the bot (the tenant secret directline.orders). Compile with PARLEY_SOURCE_DIR and
/// PARLEYD_PATH defined; link parley::http, parley::store, parley::admin,
/// parley::channels and nlohmann_json.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include <prometheus/registry.h>

#include "src/channels/directline/directline.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/parleyd.hpp"
#include "tests/support/servers.hpp"

namespace parley::test {

using namespace std::chrono_literals;

/// The fake order system: every order has shipped with UPS, tracking 1Z999.
class fake_order_api {
 public:
  fake_order_api() {
    http::router r;
    r.add_prefix(
        "GET", "/v1/orders/", "/v1/orders", [this](http::request&&, http::responder reply) {
          {
            std::lock_guard<std::mutex> lock(m_);
            ++calls_;
          }
          reply(http::response::json(
              200, R"({"status":"shipped","shipment":{"tracking":"1Z999","carrier":"UPS"}})"));
        });
    server_ = std::make_unique<http::server>(http::server_options{}, std::move(r),
                                             std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~fake_order_api() { server_->stop(1s); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  int calls() {
    std::lock_guard<std::mutex> lock(m_);
    return calls_;
  }

 private:
  std::mutex m_;
  int calls_ = 0;
  std::unique_ptr<http::server> server_;
};

struct dl_reply {
  int status = 0;
  std::string body;
  nlohmann::json j;
  http::header_list headers;
  const std::string* header(std::string_view name) const {
    return http::find_header(headers, name);
  }
};

class directline_node {
 public:
  static constexpr const char* token_key = "e2e-test-token-key-0123456789abcdef";

  /// `with_key`: whether the node gets PARLEY_DIRECTLINE_TOKEN_KEY.
  explicit directline_node(bool with_key = true) {
    auto url = store::testing::require_env("DATABASE_URL");
    auto redis = store::testing::require_env("REDIS_URL");
    if (url.empty() || redis.empty()) return;
    auto pg = store::postgres_client::create({url});
    if (!pg.ok()) {
      ADD_FAILURE() << pg.err().message;
      return;
    }
    pg_ = std::move(*pg);
    tenant_ = store::testing::unique_name("dl");
    secret_ =
        channels::directline::make_secret(tenant_, "orders", "0123456789abcdef01234567" + tenant_);
    // Empty overrides the key scripts/test exports.
    auto node =
        start_parleyd({{"PARLEY_LOG_LEVEL", "info"},
                       {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.1/32"},  // the fake order API
                       {"PARLEY_DIRECTLINE_TOKEN_KEY", with_key ? token_key : ""}});
    proc_ = std::move(node.proc);
    port_ = node.port;
    if (port_.empty()) {
      ADD_FAILURE() << "parleyd did not start:\n" << output();
      return;
    }
    // The bot's Direct Line secret and its order API token are the tenant's secrets.
    auto text = source_file("config/bots/order-status.yaml");
    auto pos = text.find("https://orders.example.com");
    if (pos != std::string::npos) text.replace(pos, 26, api_.base());
    auto why = provision_tenant(*pg_, tenant_,
                                {{"directline.orders", secret_}, {"ORDERS_API_TOKEN", "s3cret"}},
                                "orders", text);
    if (!why.empty()) {
      ADD_FAILURE() << why;
      return;
    }
    ready_ = true;
  }

  bool ready() const { return ready_; }
  const std::string& tenant() const { return tenant_; }
  const std::string& secret() const { return secret_; }
  std::string port() const { return port_; }
  std::string domain() const { return "http://127.0.0.1:" + port_ + "/v3/directline"; }
  fake_order_api& orders() { return api_; }
  /// A new API key of the tenant (the agent API's credential); "" when it failed.
  std::string api_key() {
    auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_, "agents", "test"));
    EXPECT_TRUE(key.ok()) << (key.ok() ? "" : key.err().message);
    return key.ok() ? key->key : std::string();
  }

  /// One request to the node; `auth` is the bearer credential ("" for none).
  dl_reply call(const std::string& method, const std::string& path, const std::string& auth,
                const std::string& body = "", http::header_list extra = {}) {
    http::client_request r;
    r.method = method;
    r.url = "http://127.0.0.1:" + port_ + path;
    r.timeout = 30s;
    if (!auth.empty()) r.headers.emplace_back("Authorization", "Bearer " + auth);
    if (!body.empty()) r.headers.emplace_back("Content-Type", "application/json");
    for (auto& h : extra) r.headers.push_back(h);
    r.body = body;
    auto res = http::fetch(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().message);
    dl_reply out;
    if (!res.ok()) return out;
    out.status = res->status;
    out.body = res->body;
    out.headers = res->headers;
    out.j = nlohmann::json::parse(res->body, nullptr, false);
    return out;
  }

  /// SIGTERM; the exit code, nullopt when it did not exit within `deadline`.
  std::optional<int> terminate(std::chrono::milliseconds deadline) {
    if (!proc_) return std::nullopt;
    proc_->kill(SIGTERM);
    return proc_->wait_exit(deadline);
  }

  /// parleyd's output so far, for failure messages.
  std::string output() {
    if (!proc_) return {};
    proc_->wait_for_line([](const std::string&) { return false; }, 100ms);
    std::string out;
    for (const auto& l : proc_->lines()) out += l + "\n";
    return out;
  }

 private:
  fake_order_api api_;
  std::unique_ptr<store::postgres_client> pg_;
  std::string tenant_, secret_, port_;
  std::unique_ptr<testing::child_process> proc_;
  bool ready_ = false;
};

}  // namespace parley::test
