// SMS through Twilio end to end: a real parleyd process with real Redis and Postgres,
// webhooks signed as Twilio signs them, and a fake Twilio (a real HTTP server on
// loopback speaking the Messages API) that records what Parley sends and can fail on
// demand. Checks what a business would: replies arrive in order and once, a retried
// webhook runs once, a forged one runs nothing, an outage is retried, a refused reply
// becomes a dead letter, STOP silences the number until START.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "src/channels/messenger/messenger.hpp"
#include "src/channels/text/form.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/fake_twilio.hpp"
#include "tests/support/parleyd.hpp"
#include "tests/support/servers.hpp"

#include <prometheus/registry.h>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace store = parley::store;
namespace text = parley::channels::text;
namespace twilio = parley::channels::twilio;

const std::string account_sid = "AC0123456789abcdef0123456789abcdef";
const std::string auth_token = "test-auth-token-0123456789";
const std::string our_number = "+15005550006";
const std::string app_secret = "test-app-secret";
const std::string page_token = "EAAtestpagetoken";
const std::string verify_token = "test-verify-token";
const std::string page_id = "1234567890";

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

using parley::test::inbound_transcript;

/// The value of the sample `series` (name and labels, as /metrics prints it) on the
/// node at `port`; -1 when absent.
double metric(const std::string& port, const std::string& series) {
  parley::http::client_request r;
  r.url = "http://127.0.0.1:" + port + "/metrics";
  auto res = parley::http::fetch(r);
  if (!res.ok()) return -1;
  auto at = res->body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(res->body.substr(at + series.size() + 2));
}

using sent = parley::test::twilio_send;

/// Twilio's and Messenger's APIs for this test's account and page.
class fake_twilio : public parley::test::fake_twilio {
 public:
  fake_twilio() : parley::test::fake_twilio(account_sid, page_token) {}
};

class AsyncChannels : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = store::postgres_client::create({store::testing::require_env("DATABASE_URL")});
    ASSERT_TRUE(pg.ok());
    pg_ = std::move(*pg);
    tenant_ = store::testing::unique_name("sms");
    node_ = parley::test::start_parleyd({
        {"PARLEY_CHANNELS_TWILIO_API_BASE", twilio_.base()},
        {"PARLEY_CHANNELS_MESSENGER_API_BASE", twilio_.base() + "/v19.0"},
        {"PARLEY_CHANNELS_RETRY_MAX_MS", "300"},
        {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.1/32"},
    });
    ASSERT_FALSE(node_.port.empty()) << "parleyd did not start";
    port_ = node_.port;
    // The channels' credentials are the tenant's secrets.
    auto why = parley::test::provision_tenant(
        *pg_, tenant_,
        {{"twilio.account_sid", account_sid},
         {"twilio.auth_token", auth_token},
         {"messenger.app_secret", app_secret},
         {"messenger.page_token", page_token},
         {"messenger.verify_token", verify_token}},
        "orders", parley::test::source_file("config/bots/order-status.yaml"));
    ASSERT_EQ(why, "");
    // The node learns of the version within its registry's poll.
    parley::http::client_response last;
    ASSERT_TRUE(store::testing::eventually(
        [&] {
          last = send("+15551230000", "hi");
          return last.status == 200;
        },
        10s))
        << last.status << " " << last.body;
    // The probe's start ("hi" as its first input) ends with the menu shown again after
    // "Hello again!": once that is sent, nothing of it is left to send.
    ASSERT_GE(wait_body("+15551230000", "Hello again!"), 0);
    ASSERT_TRUE(store::testing::eventually([&] {
      auto b = bodies_to("+15551230000");
      return !b.empty() && has(b.back(), "Reply 1 for") && has(b[b.size() - 2], "Hello again!");
    }));
    base_ = twilio_.all().size();
  }

  /// A MessageSid unique to this test: "SM" and letters and digits, as Twilio's.
  std::string message_sid(const std::string& stem) const {
    char h[20];
    std::snprintf(h, sizeof h, "%016zx", std::hash<std::string>{}(tenant_));
    return "SM" + stem + h;
  }

  std::string path() const { return "/channels/twilio/" + tenant_ + "/orders"; }
  std::string url(const std::string& p) const { return "http://127.0.0.1:" + port_ + p; }

  /// Posts an inbound SMS webhook as Twilio would, signed with `token`.
  parley::http::client_response send(const std::string& from, const std::string& body,
                                     std::string sid = {}, const std::string& token = auth_token) {
    if (sid.empty()) sid = message_sid("n" + std::to_string(++sids_));
    return post_form(path(),
                     {{"MessageSid", sid},
                      {"SmsSid", sid},
                      {"AccountSid", account_sid},
                      {"From", from},
                      {"To", our_number},
                      {"Body", body},
                      {"NumMedia", "0"},
                      {"SmsStatus", "received"}},
                     token);
  }

  /// Posts `params` to `p` as Twilio does, signed with `token`.
  parley::http::client_response post_form(const std::string& p, const text::form& params,
                                          const std::string& token = auth_token) {
    return parley::test::post_twilio_webhook(url(p), params, token);
  }

  /// Posts a Messenger webhook (one entry of `messaging` items), signed with `secret`.
  parley::http::client_response messenger(const json& messaging,
                                          const std::string& secret = app_secret) {
    json body = {
        {"object", "page"},
        {"entry", json::array({{{"id", page_id}, {"time", 1}, {"messaging", messaging}}})}};
    parley::http::client_request r;
    r.method = "POST";
    r.url = url("/channels/messenger/" + tenant_ + "/orders");
    r.body = body.dump();
    r.headers = {
        {"Content-Type", "application/json"},
        {"X-Hub-Signature-256", parley::channels::messenger::compute_signature(secret, r.body)}};
    r.timeout = 20s;
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : parley::http::client_response{};
  }

  /// The bodies sent to `to` since the set-up, in order.
  std::vector<std::string> bodies_to(const std::string& to) {
    std::vector<std::string> out;
    auto all = twilio_.all();
    for (std::size_t i = base_; i < all.size(); ++i)
      if (all[i].to == to) out.push_back(all[i].body);
    return out;
  }

  /// Waits until `to` got a body holding `needle`, at index `from` or later; its
  /// index, or -1.
  int wait_body(const std::string& to, const std::string& needle, std::size_t from = 0) {
    int at = -1;
    store::testing::eventually(
        [&] {
          auto b = bodies_to(to);
          for (std::size_t i = from; i < b.size(); ++i)
            if (has(b[i], needle)) {
              at = static_cast<int>(i);
              return true;
            }
          return false;
        },
        20s);
    return at;
  }

  /// Waits until `to` got `n` messages since the set-up; their bodies.
  std::vector<std::string> wait_bodies(const std::string& to, std::size_t n) {
    store::testing::eventually([&] { return bodies_to(to).size() >= n; }, 20s);
    return bodies_to(to);
  }

  std::unique_ptr<store::postgres_client> pg_;
  std::string tenant_;
  fake_twilio twilio_;
  parley::test::parleyd_process node_;
  std::string port_;
  std::size_t base_ = 0;
  int sids_ = 0;
};

TEST_F(AsyncChannels, SmsAConversationIsRepliedThroughTwiliosMessagesApiAndAnsweredByNumber) {
  const std::string user = "+15551110001";
  auto r = send(user, "hello");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string(twilio::twiml_empty)) << "the webhook answers empty TwiML";
  ASSERT_GE(wait_body(user, "Reply 1 for"), 0);
  auto b = bodies_to(user);
  std::string all;
  for (const auto& x : b) all += x + "\n";
  EXPECT_TRUE(has(all, "I'm the order assistant.")) << all;
  EXPECT_TRUE(has(all, "Reply 1 for Track an order or 2 for Talk to an agent.")) << all;
  auto sent = twilio_.all().back();
  EXPECT_EQ(sent.from, our_number);
  EXPECT_EQ(sent.authorization, twilio::basic_auth(account_sid, auth_token));
  EXPECT_EQ(sent.status_callback, url(path() + "/status"));
  EXPECT_FALSE(sent.idempotency.empty());

  // "1" picks the first option of the numbered menu.
  const int menu = wait_body(user, "Reply 1 for", 1);
  ASSERT_GE(menu, 0);
  EXPECT_EQ(send(user, "1").status, 200);
  EXPECT_GT(wait_body(user, "What's your order number?"), menu);
}

TEST_F(AsyncChannels, SmsMediaTheTenantRefusesReachOnlyTheTranscript) {
  // The default limits: up to 10, images, audio, video, PDF and plain text.
  const std::string user = "+15551110099";
  const std::string sid = message_sid("media");
  auto r = post_form(path(), {{"MessageSid", sid},
                              {"SmsSid", sid},
                              {"AccountSid", account_sid},
                              {"From", user},
                              {"To", our_number},
                              {"Body", "my receipt"},
                              {"NumMedia", "3"},
                              {"MediaUrl0", "https://media.example/ok.png"},
                              {"MediaContentType0", "image/png"},
                              {"MediaUrl1", "https://media.example/secret.zip"},
                              {"MediaContentType1", "application/zip"},
                              {"MediaUrl2", "https://media.example/third.png"},
                              {"MediaContentType2", "image/png"},
                              {"SmsStatus", "received"}});
  EXPECT_EQ(r.status, 200) << "the webhook is acknowledged: Twilio must not retry";
  auto in = inbound_transcript(*pg_, tenant_, "my receipt");
  EXPECT_TRUE(has(in, "my receipt\nhttps://media.example/ok.png\nhttps://media.example/third.png"))
      << in;
  EXPECT_FALSE(has(in, "secret.zip")) << "a refused attachment never reaches the bot: " << in;
  EXPECT_TRUE(has(in,
                  "[attachment 2 refused: content_type: content type \"application/zip\" is not "
                  "allowed]"))
      << in;
  EXPECT_GE(
      metric(port_, "parley_attachments_refused_total{channel=\"sms\",reason=\"content_type\"}"),
      1);
}

TEST_F(AsyncChannels, SmsARetriedWebhookRunsOnceAndIsRepliedOnce) {
  const std::string user = "+15551110002";
  EXPECT_EQ(send(user, "hi", message_sid("retry1")).status, 200);
  ASSERT_GE(wait_body(user, "Hello again!"), 0);
  // Twilio sends the same MessageSid again (it did not see our answer).
  EXPECT_EQ(send(user, "hi", message_sid("retry1")).status, 200);
  EXPECT_EQ(send(user, "2", message_sid("retry2")).status, 200);
  // Replies of a conversation go out in order: once the reply to "2" has, any reply of
  // the retry would have gone before it.
  ASSERT_GE(wait_body(user, "connecting you with an agent"), 0);
  int welcomes = 0;
  for (const auto& x : bodies_to(user)) welcomes += has(x, "I'm the order assistant.") ? 1 : 0;
  EXPECT_EQ(welcomes, 1) << "a retried MessageSid must not be answered twice";
  std::set<std::string> keys;
  for (const auto& s : twilio_.all()) {
    if (s.to == user) {
      EXPECT_TRUE(keys.insert(s.idempotency).second) << s.idempotency;
    }
  }
}

TEST_F(AsyncChannels, SmsAForgedWebhookIs403AndRunsNothing) {
  const std::string user = "+15551110003";
  auto r = send(user, "hi", {}, "not-the-token");
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(has(r.body, "X-Twilio-Signature")) << r.body;
  parley::http::client_request unsigned_req;
  unsigned_req.method = "POST";
  unsigned_req.url = url(path());
  unsigned_req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  unsigned_req.body = "MessageSid=SMx&AccountSid=" + account_sid + "&From=%2B1555&To=%2B1666";
  auto u = parley::http::fetch(unsigned_req);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->status, 403);
  // A genuine message afterwards is the conversation's first: the forged one never ran.
  EXPECT_EQ(send(user, "hi").status, 200);
  auto b = wait_bodies(user, 1);
  ASSERT_GE(b.size(), 1u);
  EXPECT_TRUE(has(b.front(), "I'm the order assistant.")) << b.front();
}

TEST_F(AsyncChannels, SmsAnOutageIsRetriedAndRepliesKeepTheirOrder) {
  const std::string user = "+15551110004";
  auto unavailable = parley::http::response::json(503, R"({"code":20503,"message":"down"})");
  unavailable.headers.emplace_back("Retry-After", "1");
  twilio_.fail_next(3, unavailable);
  EXPECT_EQ(send(user, "hi").status, 200) << "the webhook does not wait for the delivery";
  EXPECT_EQ(send(user, "1").status, 200);
  const int asked = wait_body(user, "What's your order number?");
  ASSERT_GE(asked, 0);
  EXPECT_EQ(twilio_.refused(), 3);
  auto b = bodies_to(user);
  EXPECT_TRUE(has(b.front(), "I'm the order assistant.")) << b.front();
  EXPECT_EQ(asked, static_cast<int>(b.size()) - 1) << "the answer to \"1\" comes last";
}

TEST_F(AsyncChannels, SmsStatusCallbacksAreKeptAsReceipts) {
  const std::string user = "+15551110007";
  auto r = post_form(path() + "/status", {{"MessageSid", "SMdelivered1"},
                                          {"AccountSid", account_sid},
                                          {"From", our_number},
                                          {"To", user},
                                          {"MessageStatus", "delivered"}});
  EXPECT_EQ(r.status, 200) << r.body;
  auto u = post_form(path() + "/status", {{"MessageSid", "SMfailed1"},
                                          {"AccountSid", account_sid},
                                          {"From", our_number},
                                          {"To", user},
                                          {"MessageStatus", "undelivered"},
                                          {"ErrorCode", "30003"}});
  EXPECT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(
      post_form(path() + "/status",
                {{"MessageSid", "SMx"}, {"AccountSid", account_sid}, {"MessageStatus", "sent"}},
                "wrong")
          .status,
      403);
  std::vector<store::message_receipt> got;
  ASSERT_TRUE(store::testing::eventually(
      [&] {
        auto x = store::run_job_sync(*pg_, store::list_receipts(tenant_, our_number + "|" + user));
        if (x.ok()) got = *x;
        return got.size() >= 2;
      },
      10s));
  ASSERT_EQ(got.size(), 2u);
  // Callbacks are kept as they come; two sent at once may be stored in either order.
  std::map<std::string, store::message_receipt> by_sid;
  for (auto& g : got) by_sid[g.provider_message_id] = g;
  ASSERT_EQ(by_sid.count("SMdelivered1"), 1u);
  ASSERT_EQ(by_sid.count("SMfailed1"), 1u);
  EXPECT_EQ(by_sid["SMdelivered1"].status, "delivered");
  EXPECT_FALSE(by_sid["SMdelivered1"].error_code.has_value());
  EXPECT_EQ(by_sid["SMfailed1"].status, "undelivered");
  ASSERT_TRUE(by_sid["SMfailed1"].error_code.has_value());
  EXPECT_EQ(*by_sid["SMfailed1"].error_code, 30003);
}

TEST_F(AsyncChannels, SmsARefusedReplyBecomesADeadLetter) {
  const std::string user = "+15551110005";
  twilio_.fail_next(
      1, parley::http::response::json(
             400, R"({"code":21211,"message":"The 'To' number is not a valid phone number."})"));
  EXPECT_EQ(send(user, "hi").status, 200);
  std::vector<store::dead_letter> dead;
  ASSERT_TRUE(store::testing::eventually(
      [&] {
        auto d = store::run_job_sync(*pg_, store::list_dead_letters(tenant_));
        if (d.ok()) dead = *d;
        return !dead.empty();
      },
      20s));
  EXPECT_EQ(dead[0].channel, "sms");
  EXPECT_TRUE(has(dead[0].reason, "21211")) << dead[0].reason;
  EXPECT_TRUE(has(dead[0].address, user)) << dead[0].address;
}

TEST_F(AsyncChannels, SmsStopSilencesTheNumberUntilStart) {
  const std::string user = "+15551110006";
  EXPECT_EQ(send(user, "hi").status, 200);
  ASSERT_GE(wait_body(user, "Hello again!"), 0);
  ASSERT_TRUE(store::testing::eventually([&] { return has(bodies_to(user).back(), "Reply 1"); }));
  auto n = bodies_to(user).size();
  EXPECT_EQ(send(user, "STOP").status, 200);
  EXPECT_EQ(send(user, "1").status, 200);
  // The reply to "1" is refused by the opt-out and kept as a dead letter.
  ASSERT_TRUE(store::testing::eventually(
      [&] {
        auto d = store::run_job_sync(*pg_, store::list_dead_letters(tenant_));
        return d.ok() && !d->empty() && has(d->back().reason, "STOP");
      },
      20s));
  EXPECT_EQ(bodies_to(user).size(), n) << "nothing reaches a number that sent STOP";
  EXPECT_EQ(send(user, "START").status, 200);
  EXPECT_EQ(send(user, "hello").status, 200);
  EXPECT_GE(wait_body(user, "Hello again!", n), static_cast<int>(n))
      << "START lets replies through again";
}

/// One call of the agent API with the tenant's API key.
parley::http::client_response agent_call(const std::string& base, const std::string& tenant,
                                         const std::string& key, const std::string& method,
                                         const std::string& path, const json& body = nullptr) {
  parley::http::client_request r;
  r.method = method;
  r.url = base + path;
  r.headers = {{"X-Org-Id", tenant}, {"Authorization", "Bearer " + key}};
  if (!body.is_null()) {
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = body.dump();
  }
  r.timeout = 20s;
  auto res = parley::http::fetch(r);
  EXPECT_TRUE(res.ok());
  return res.ok() ? *res : parley::http::client_response{};
}

TEST_F(AsyncChannels, SmsHandoffToAnAgentAndBackToTheBot) {
  auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_, "agents", "test"));
  ASSERT_TRUE(key.ok());
  auto agent = [&](const std::string& method, const std::string& p, const json& body = nullptr) {
    return agent_call(url(""), tenant_, key->key, method, p, body);
  };
  const std::string user = "+15551110008";
  EXPECT_EQ(send(user, "hi").status, 200);
  ASSERT_GE(wait_body(user, "Hello again!"), 0);
  EXPECT_EQ(send(user, "2").status, 200);
  ASSERT_GE(wait_body(user, "connecting you with an agent"), 0);

  // The handoff reaches the agent API.
  json handoff;
  ASSERT_TRUE(store::testing::eventually([&] {
    auto r = agent("GET", "/agent/v1/handoffs");
    auto j = json::parse(r.body, nullptr, false);
    for (const auto& h : j.value("handoffs", json::array()))
      if (h.value("address", "") == our_number + "|" + user) handoff = h;
    return !handoff.is_null();
  })) << "no open handoff for "
      << user;
  EXPECT_EQ(handoff["queue"], "orders");
  EXPECT_EQ(handoff["targets"], json::array({"orders-tier1", "orders-tier2"}));
  const std::string session = handoff["sessionId"];
  EXPECT_EQ(agent("GET", "/agent/v1/handoffs", nullptr).status, 200);
  EXPECT_EQ(agent_call(url(""), tenant_, "wrong-key", "GET", "/agent/v1/handoffs").status, 401);

  // The user's message goes to the agent, not the bot.
  EXPECT_EQ(send(user, "my parcel is late").status, 200);
  ASSERT_TRUE(store::testing::eventually([&] {
    auto r = agent("GET", "/agent/v1/handoffs/" + session + "/transcript");
    return has(r.body, "my parcel is late");
  }));
  // The agent answers, once even if the tool retries its post.
  auto m = agent("POST", "/agent/v1/handoffs/" + session + "/messages",
                 {{"text", "Hi, I'm Ann from support."}, {"id", "a1"}});
  EXPECT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(agent("POST", "/agent/v1/handoffs/" + session + "/messages",
                  {{"text", "Hi, I'm Ann from support."}, {"id", "a1"}})
                .status,
            200);
  EXPECT_EQ(agent("POST", "/agent/v1/handoffs/" + session + "/messages", {{"text", ""}}).status,
            400);
  ASSERT_GE(wait_body(user, "I'm Ann from support"), 0);

  // Back to the bot: it answers again, and the handoff is closed.
  auto c =
      agent("POST", "/agent/v1/handoffs/" + session + "/close", {{"outcome", "returned_to_bot"}});
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(
      agent("POST", "/agent/v1/handoffs/" + session + "/close", {{"outcome", "maybe"}}).status,
      400);
  const auto before = bodies_to(user).size();
  EXPECT_EQ(send(user, "hi").status, 200);
  EXPECT_GE(wait_body(user, "Hello again!", before), static_cast<int>(before));
  int anns = 0, bot_answers_to_late = 0;
  for (const auto& b : bodies_to(user)) {
    anns += has(b, "I'm Ann from support") ? 1 : 0;
    bot_answers_to_late += has(b, "didn't get that") ? 1 : 0;
  }
  EXPECT_EQ(anns, 1) << "a retried agent post sends once";
  auto open = json::parse(agent("GET", "/agent/v1/handoffs").body, nullptr, false);
  for (const auto& h : open.value("handoffs", json::array()))
    EXPECT_NE(h.value("sessionId", ""), session) << "closed handoffs are not listed as open";
  (void)bot_answers_to_late;
}

json user_message(const std::string& psid, const std::string& mid, const std::string& text) {
  return {{"sender", {{"id", psid}}},
          {"recipient", {{"id", page_id}}},
          {"timestamp", 1700000000000},
          {"message", {{"mid", mid}, {"text", text}}}};
}

TEST_F(AsyncChannels, MessengerVerifiesTheSubscription) {
  auto get = [&](const std::string& token) {
    parley::http::client_request r;
    r.url = url("/channels/messenger/" + tenant_ + "/orders?hub.mode=subscribe&hub.verify_token=" +
                token + "&hub.challenge=1158201444");
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : parley::http::client_response{};
  };
  auto ok = get(verify_token);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "1158201444");
  EXPECT_EQ(get("wrong").status, 403);
}

TEST_F(AsyncChannels, MessengerRunsEveryEventOfABatchOnceWithQuickReplies) {
  const std::string psid = "psid-" + tenant_;
  // A batch: the user's message, an echo of ours (ignored), a delivery receipt.
  json batch =
      json::array({user_message(psid, "mid.1" + tenant_, "hi"),
                   {{"sender", {{"id", page_id}}},
                    {"recipient", {{"id", psid}}},
                    {"timestamp", 1700000000001},
                    {"message", {{"mid", "mid.echo"}, {"is_echo", true}, {"text", "an echo"}}}},
                   {{"sender", {{"id", psid}}},
                    {"recipient", {{"id", page_id}}},
                    {"timestamp", 1700000000002},
                    {"delivery", {{"mids", json::array({"m_1"})}, {"watermark", 1700000000000}}}}});
  auto r = messenger(batch);
  EXPECT_EQ(r.status, 200) << r.body;
  // Replies: the welcome, and the menu with its quick replies.
  (void)twilio_.wait_messenger(2);
  std::vector<json> to_user;
  auto collect = [&] {
    to_user.clear();
    for (const auto& j : twilio_.wait_messenger(0))
      if (j["recipient"].value("id", "") == psid && j.contains("message")) to_user.push_back(j);
  };
  ASSERT_TRUE(store::testing::eventually(
      [&] {
        collect();
        for (const auto& j : to_user)
          if (j["message"].contains("quick_replies")) return true;
        return false;
      },
      20s));
  const json* menu = nullptr;
  for (const auto& j : to_user)
    if (j["message"].contains("quick_replies")) menu = &j;
  ASSERT_NE(menu, nullptr);
  EXPECT_EQ((*menu)["messaging_type"], "RESPONSE");
  EXPECT_EQ((*menu)["message"]["quick_replies"][0]["title"], "Track an order");
  const auto payload = (*menu)["message"]["quick_replies"][0]["payload"].get<std::string>();
  for (const auto& j : to_user) EXPECT_NE(j["message"].value("text", ""), "an echo");
  // The whole start is sent before the tap (the menu is shown again after "Hello again!").
  ASSERT_TRUE(store::testing::eventually([&] {
    collect();
    return to_user.size() >= 4 && to_user.back()["message"].contains("quick_replies");
  }));

  // Meta sends the batch again: nothing runs twice. Then the quick reply.
  EXPECT_EQ(messenger(batch).status, 200);
  json tap = user_message(psid, "mid.2" + tenant_, "Track an order");
  tap["message"]["quick_reply"] = {{"payload", payload}};
  EXPECT_EQ(messenger(json::array({tap})).status, 200);
  ASSERT_TRUE(store::testing::eventually(
      [&] {
        collect();
        return !to_user.empty() &&
               has(to_user.back()["message"].value("text", ""), "What's your order number?");
      },
      20s));
  int welcomes = 0;
  for (const auto& j : to_user)
    welcomes += has(j["message"].value("text", ""), "I'm the order assistant.") ? 1 : 0;
  EXPECT_EQ(welcomes, 1) << "the retried batch ran nothing again";
  // The delivery receipt of the first batch is kept (once per batch received).
  std::vector<store::message_receipt> receipts;
  ASSERT_TRUE(store::testing::eventually([&] {
    auto x = store::run_job_sync(*pg_, store::list_receipts(tenant_, page_id + "|" + psid));
    if (x.ok()) receipts = *x;
    return !receipts.empty();
  }));
  EXPECT_EQ(receipts.front().status, "delivered");
  EXPECT_EQ(receipts.front().provider_message_id, "m_1");
}

TEST_F(AsyncChannels, MessengerAttachmentsOfARefusedTypeReachOnlyTheTranscript) {
  const std::string psid = "psid-att-" + tenant_;
  json event = {
      {"sender", {{"id", psid}}},
      {"recipient", {{"id", page_id}}},
      {"timestamp", 1700000000000},
      {"message",
       {{"mid", "mid.att" + tenant_},
        {"text", "see these"},
        {"attachments",
         json::array(
             {{{"type", "image"}, {"payload", {{"url", "https://cdn.example/photo.jpg"}}}},
              {{"type", "file"}, {"payload", {{"url", "https://cdn.example/tool.exe"}}}}})}}}};
  auto r = messenger(json::array({event}));
  EXPECT_EQ(r.status, 200) << "acknowledged: Meta must not retry. " << r.body;
  auto in = inbound_transcript(*pg_, tenant_, "see these");
  EXPECT_TRUE(has(in, "see these\nhttps://cdn.example/photo.jpg")) << in;
  EXPECT_FALSE(has(in, "tool.exe")) << "a refused attachment never reaches the bot: " << in;
  EXPECT_TRUE(has(in,
                  "[attachment 2 refused: content_type: content type \"application/octet-stream\" "
                  "is not allowed]"))
      << in;
  EXPECT_GE(metric(port_,
                   "parley_attachments_refused_total{channel=\"messenger\",reason=\"content_"
                   "type\"}"),
            1);
}

TEST_F(AsyncChannels, MessengerRefusesAForgedWebhook) {
  auto r = messenger(json::array({user_message("psid-x", "mid.x", "hi")}), "wrong-secret");
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(has(r.body, "X-Hub-Signature-256")) << r.body;
}

}  // namespace
