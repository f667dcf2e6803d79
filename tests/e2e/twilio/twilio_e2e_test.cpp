// The npm package `twilio` against a real parleyd (twilio_client.js holds the checks):
// it signs an SMS conversation's webhooks, and its REST client talks to the same fake
// Messages API that Parley delivers the replies to. The fake is a real HTTP server on
// loopback that records every send and lists them at GET /sent.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <prometheus/registry.h>

#include "src/admin/deploy.hpp"
#include "src/channels/text/form.hpp"
#include "src/http/http.hpp"
#include "src/secrets/secrets.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace store = parley::store;

const std::string account_sid = "AC00000000000000000000000000000e2e";
const std::string auth_token = "e2e-auth-token";
const std::string our_number = "+15005550006";

std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) ADD_FAILURE() << name << " is not set: run the tests with scripts/test";
  return v ? v : "";
}

/// Twilio's Messages API as the SDK and Parley call it: 201 with a message resource.
class fake_messages_api {
 public:
  fake_messages_api() {
    parley::http::router r;
    r.add_prefix(
        "POST", "/2010-04-01/Accounts/", "/2010-04-01/Accounts",
        [this](parley::http::request&& req, parley::http::responder reply) {
          json form = json::object();
          if (auto f = parley::channels::text::parse_form(req.body))
            for (const auto& [k, v] : *f) form[k] = v;
          std::lock_guard<std::mutex> lock(m_);
          const std::string sid = "SM" + std::to_string(100000 + sent_.size());
          sent_.push_back(
              {{"path", req.path},
               {"authorization", req.header("Authorization") ? *req.header("Authorization") : ""},
               {"form", form}});
          reply(parley::http::response::json(
              201, json{{"sid", sid},
                        {"account_sid", account_sid},
                        {"status", "queued"},
                        {"to", form.value("To", "")},
                        {"from", form.value("From", "")},
                        {"body", form.value("Body", "")},
                        {"num_segments", "1"},
                        {"direction", "outbound-api"},
                        {"api_version", "2010-04-01"},
                        {"uri", req.path.substr(0, req.path.size() - 5) + "/" + sid + ".json"}}
                       .dump()));
        });
    r.add("GET", "/sent", [this](parley::http::request&&, parley::http::responder reply) {
      std::lock_guard<std::mutex> lock(m_);
      reply(parley::http::response::json(200, sent_.dump()));
    });
    server_ = std::make_unique<parley::http::server>(parley::http::server_options{}, std::move(r),
                                                     std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~fake_messages_api() { server_->stop(1s); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

 private:
  std::mutex m_;
  json sent_ = json::array();
  std::unique_ptr<parley::http::server> server_;
};

TEST(TwilioSdk, SignsAConversationsWebhooksAndSpeaksTheFakesMessagesApi) {
  const std::string dir = std::string(PARLEY_SOURCE_DIR) + "/tests/e2e";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/twilio"))
      << "run `npm ci` in tests/e2e (scripts/test does)";
  ASSERT_TRUE(std::filesystem::exists(PARLEY_NODE)) << "node is not installed";
  fake_messages_api fake;
  auto pg = store::postgres_client::create({env_or_fail("DATABASE_URL")});
  ASSERT_TRUE(pg.ok());
  const std::string tenant = store::testing::unique_name("tw");
  parley::testing::child_process node(
      {PARLEYD_PATH, "--config", std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"},
      {{"PORT", "0"},
       {"REDIS_URL", env_or_fail("REDIS_URL")},
       {"DATABASE_URL", env_or_fail("DATABASE_URL")},
       {"PARLEY_ADMIN_TOKEN", "e2e-admin-token"},
       {"PARLEY_CHANNELS_TWILIO_API_BASE", fake.base()},
       {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.1/32"}});
  auto line = node.wait_for_line(
      [](const std::string& l) { return l.find("\"http_listening\"") != std::string::npos; });
  ASSERT_TRUE(line.has_value()) << "parleyd did not start";
  const auto port = json::parse(line->substr(line->find('{')))["port"].get<std::string>();
  ASSERT_TRUE(store::testing::eventually(
      [&] { return store::run_job_sync(**pg, store::create_tenant(tenant, "E2E", "test")).ok(); },
      20s));
  auto keys = parley::secrets::keyring::from_text(env_or_fail("PARLEY_SECRETS_KEY"), "");
  ASSERT_TRUE(keys.ok()) << keys.err().message;
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"twilio.account_sid", account_sid}, {"twilio.auth_token", auth_token}})
    ASSERT_TRUE(
        store::run_job_sync(**pg, store::put_secret(*keys, tenant, name, value, "test")).ok());
  std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/config/bots/order-status.yaml");
  std::stringstream bot;
  bot << in.rdbuf();
  parley::admin::deploy_request d;
  d.tenant = tenant;
  d.bot = "orders";
  d.source = bot.str();
  d.deployed_by = "test";
  d.activate = true;
  auto deployed = store::run_job_sync(**pg, parley::admin::deploy_version(d));
  ASSERT_TRUE(deployed.ok() && deployed->deployed);

  parley::testing::child_process client(
      {PARLEY_NODE, dir + "/twilio/twilio_client.js", "http://127.0.0.1:" + port,
       "/channels/twilio/" + tenant + "/orders", auth_token, account_sid, fake.base(), our_number},
      {{"NODE_PATH", dir + "/node_modules"}});
  client.drain(90s);
  auto code = client.wait_exit(10s);
  std::string out;
  for (const auto& l : client.lines()) out += l + "\n";
  ASSERT_TRUE(code.has_value()) << out;
  EXPECT_EQ(*code, 0) << out;
  EXPECT_NE(out.find("ok: "), std::string::npos) << "the client ran to its end:\n" << out;
}

}  // namespace
