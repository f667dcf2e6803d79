// The npm package `twilio` against a real parleyd (twilio_client.js holds the checks):
// it signs an SMS conversation's webhooks, and its REST client talks to the same fake
// Messages API that Parley delivers the replies to. The fake is a real HTTP server on
// loopback that records every send and lists them at GET /sent.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>

#include <prometheus/registry.h>

#include "src/channels/text/form.hpp"
#include "src/http/http.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/parleyd.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace store = parley::store;

const std::string account_sid = "AC00000000000000000000000000000e2e";
const std::string auth_token = "e2e-auth-token";
const std::string our_number = "+15005550006";

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
  auto pg = store::postgres_client::create({store::testing::require_env("DATABASE_URL")});
  ASSERT_TRUE(pg.ok());
  const std::string tenant = store::testing::unique_name("tw");
  auto node = parley::test::start_parleyd({{"PARLEY_CHANNELS_TWILIO_API_BASE", fake.base()},
                                           {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.1/32"}});
  ASSERT_FALSE(node.port.empty()) << "parleyd did not start";
  const auto& port = node.port;
  ASSERT_EQ(
      parley::test::provision_tenant(
          **pg, tenant, {{"twilio.account_sid", account_sid}, {"twilio.auth_token", auth_token}},
          "orders", parley::test::source_file("config/bots/order-status.yaml")),
      "");

  auto client = parley::testing::run_to_end(
      {PARLEY_NODE, dir + "/twilio/twilio_client.js", "http://127.0.0.1:" + port,
       "/channels/twilio/" + tenant + "/orders", auth_token, account_sid, fake.base(), our_number},
      {{"NODE_PATH", dir + "/node_modules"}}, 90s);
  const auto& out = client.output;
  ASSERT_TRUE(client.code.has_value()) << out;
  EXPECT_EQ(*client.code, 0) << out;
  EXPECT_NE(out.find("ok: "), std::string::npos) << "the client ran to its end:\n" << out;
}

}  // namespace
