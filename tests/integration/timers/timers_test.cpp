// Timers end to end: a real parleyd with real Redis and Postgres, SMS webhooks signed
// as Twilio signs them, and a fake Twilio (a real HTTP server on loopback) that records
// what Parley sends. A question left unanswered is nudged and then closed over SMS; an
// answer cancels its timers; a timer committed before the node was killed still fires
// from the restarted node. The node's timers.min_after_ms is lowered so that the
// timers take a second or a few, not minutes; each wait polls for the event.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <condition_variable>
#include <mutex>

#include "src/channels/directline/directline.hpp"
#include "src/channels/text/form.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"
#include "tests/support/fake_twilio.hpp"
#include "tests/support/parleyd.hpp"
#include "tests/support/servers.hpp"

#include <prometheus/registry.h>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
namespace store = parley::store;
namespace text = parley::channels::text;
namespace twilio = parley::channels::twilio;

const std::string account_sid = "AC0123456789abcdef0123456789abcdef";
const std::string auth_token = "test-auth-token-0123456789";
const std::string our_number = "+15005550006";

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

const char* const bot_file = R"BOT(bot:
  name: reminders
  welcome: ask
  nudge_after: 1s
  close_after: 2s
  nudge: "Still there? Reply with your order number."
  close_message: "Closing for now. Text us again any time."
variables:
  order: number
  email: text
intents:
  slow: [slow question please, ask me slowly, take your time, a slow one, give me time]
dialogs:
  ask:
    - question:
        prompt: What is your order number?
        reprompt: Please send the order number in digits.
        entity: number
        into: order
    - end: "Thanks, order {{order}} noted."
  slow:
    intent: slow
    steps:
      - question:
          prompt: What is your email address?
          entity: email
          into: email
          nudge_after: 5s
          close_after: 60s
          nudge: Your email address, please?
      - end: Noted.
)BOT";

using sent = parley::test::twilio_send;

/// Twilio's Messages API for this test's account.
class fake_twilio : public parley::test::fake_twilio {
 public:
  fake_twilio() : parley::test::fake_twilio(account_sid, "EAAunusedpagetoken") {}
};

class Timers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = store::postgres_client::create({store::testing::require_env("DATABASE_URL")});
    ASSERT_TRUE(pg.ok());
    pg_ = std::move(*pg);
    tenant_ = store::testing::unique_name("timers");
    dl_secret_ = parley::channels::directline::make_secret(tenant_, "reminders",
                                                           "0123456789abcdef01234567" + tenant_);
    start_node();
    parley::bot::compile_options quick;
    quick.min_timer = 500ms;
    auto why = parley::test::provision_tenant(*pg_, tenant_,
                                              {{"twilio.account_sid", account_sid},
                                               {"twilio.auth_token", auth_token},
                                               {"directline.reminders", dl_secret_}},
                                              "reminders", bot_file, quick);
    ASSERT_EQ(why, "");
    // The node learns of the version within its registry's poll.
    parley::http::client_response last;
    ASSERT_TRUE(store::testing::eventually(
        [&] {
          last = send(number(0), "hi");
          return last.status == 200;
        },
        10s))
        << last.status << " " << last.body;
  }

  void start_node() {
    node_ = parley::test::start_parleyd({
        {"PARLEY_CHANNELS_TWILIO_API_BASE", twilio_.base()},
        {"PARLEY_CHANNELS_RETRY_MAX_MS", "300"},
        {"PARLEY_TIMERS_MIN_AFTER_MS", "500"},
        {"PARLEY_TIMERS_POLL_MS", "50"},
        {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.1/32"},
    });
    ASSERT_FALSE(node_.port.empty()) << "parleyd did not start";
  }

  /// A phone number of this test's own (the tenant is new each run; so are they).
  std::string number(int i) const {
    char n[16];
    std::snprintf(n, sizeof n, "+1555%06zu%d", std::hash<std::string>{}(tenant_) % 1000000, i);
    return n;
  }

  /// Posts an inbound SMS webhook as Twilio would.
  parley::http::client_response send(const std::string& from, const std::string& body) {
    const std::string sid =
        "SM" + std::to_string(++sids_) + "x" + std::to_string(std::hash<std::string>{}(tenant_));
    text::form params = {{"MessageSid", sid}, {"SmsSid", sid},          {"AccountSid", account_sid},
                         {"From", from},      {"To", our_number},       {"Body", body},
                         {"NumMedia", "0"},   {"SmsStatus", "received"}};
    return parley::test::post_twilio_webhook(
        node_.url("/channels/twilio/" + tenant_ + "/reminders"), params, auth_token);
  }

  /// Every inbound transcript text of the tenant (of `session` only, when given), once
  /// one holds `needle`.
  std::string transcript(const std::string& needle, const std::string& session = "") {
    return parley::test::inbound_transcript(*pg_, tenant_, needle, session);
  }

  /// How many entries of this test's tenant the region's timer sets hold.
  long long timers_waiting() {
    store::redis_options o;
    o.url = store::testing::require_env("REDIS_URL");
    auto c = store::redis_client::create(o);
    if (!c.ok()) return -1;
    long long n = 0;
    auto keys = (*c)->command_sync({"KEYS", "parley:local:timers:*"});
    if (!keys.ok()) return -1;
    const std::string mine = tenant_ + '\0';
    for (const auto& k : keys->elements) {
      auto z = (*c)->command_sync({"ZRANGE", k.str, "0", "-1"});
      if (!z.ok()) return -1;
      for (const auto& m : z->elements) n += m.str.rfind(mine, 0) == 0 ? 1 : 0;
    }
    return n;
  }

  double metric(const std::string& series) {
    parley::http::client_request r;
    r.url = node_.url("/metrics");
    auto res = parley::http::fetch(r);
    if (!res.ok()) return -1;
    auto at = res->body.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(res->body.substr(at + series.size() + 2));
  }

  /// One Direct Line request with `auth` as the bearer credential.
  json directline(const std::string& method, const std::string& path, const std::string& auth) {
    parley::http::client_request r;
    r.method = method;
    r.url = node_.url("/v3/directline" + path);
    r.headers = {{"Authorization", "Bearer " + auth}};
    r.timeout = 20s;
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    if (!res.ok()) return json();
    auto j = json::parse(res->body, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

  fake_twilio twilio_;
  std::unique_ptr<store::postgres_client> pg_;
  std::string tenant_, dl_secret_;
  parley::test::parleyd_process node_;
  int sids_ = 0;
};

TEST_F(Timers, AnUnansweredQuestionIsNudgedThenClosedOverSms) {
  const std::string user = number(1);
  const auto asked_at = clock_type::now();
  ASSERT_EQ(send(user, "hello").status, 200);
  auto prompt = twilio_.wait_for(user, "What is your order number?");
  ASSERT_FALSE(prompt.body.empty());
  auto nudge = twilio_.wait_for(user, "Still there? Reply with your order number.", 10s);
  ASSERT_FALSE(nudge.body.empty()) << "no nudge";
  auto close = twilio_.wait_for(user, "Closing for now. Text us again any time.", 10s);
  ASSERT_FALSE(close.body.empty()) << "no close";
  // Never early: nudge_after 1s and close_after 2s from the question.
  EXPECT_GE(nudge.at - asked_at, 1s);
  EXPECT_GE(close.at - asked_at, 2s);
  EXPECT_LT(nudge.at, close.at);

  EXPECT_EQ(twilio_.bodies_to(user),
            (std::vector<std::string>{"What is your order number?",
                                      "Please send the order number in digits.",
                                      "Still there? Reply with your order number.",
                                      "Closing for now. Text us again any time."}));
  // The transcript says which turns were the timers'.
  auto t = transcript("[timer] close");
  EXPECT_TRUE(has(t, "[timer] nudge")) << t;
  EXPECT_TRUE(has(t, "[timer] close")) << t;
  EXPECT_GE(metric("parley_timers_fired_total{kind=\"nudge\"}"), 1);
  EXPECT_GE(metric("parley_timers_fired_total{kind=\"close\"}"), 1);
}

TEST_F(Timers, AnAnswerBeforeTheDeadlineCancelsTheTimers) {
  const std::string user = number(2);
  ASSERT_EQ(send(user, "hello").status, 200);
  ASSERT_FALSE(twilio_.wait_for(user, "in digits").body.empty());
  EXPECT_GE(timers_waiting(), 1);  // the question's (and the set-up probe's) timers
  ASSERT_EQ(send(user, "4711").status, 200);
  ASSERT_FALSE(twilio_.wait_for(user, "Thanks, order 4711 noted.").body.empty());
  // The session ended: its entry left the timer set with the commit. (The set-up's
  // probe conversation may still wait for its own timers: wait for those to fire.)
  EXPECT_TRUE(store::testing::eventually([&] { return timers_waiting() == 0; }, 10s))
      << timers_waiting();
  EXPECT_EQ(twilio_.bodies_to(user),
            (std::vector<std::string>{"What is your order number?",
                                      "Please send the order number in digits.",
                                      "Thanks, order 4711 noted."}));
}

TEST_F(Timers, DirectLineGetsTheNudgeAndTheCloseInItsActivities) {
  auto started = directline("POST", "/conversations", dl_secret_);
  const std::string conv = started.value("conversationId", "");
  const std::string token = started.value("token", "");
  ASSERT_FALSE(conv.empty()) << started.dump();
  // The bot's messages of the conversation's activity log, once it holds `needle`.
  auto bot_texts = [&](const std::string& needle) {
    std::vector<std::string> out;
    store::testing::eventually(
        [&] {
          out.clear();
          auto a = directline("GET", "/conversations/" + conv + "/activities", token);
          for (const auto& x : a.value("activities", json::array()))
            if (x.value("type", "") == "message" && x["from"].value("role", "") == "bot")
              out.push_back(x.value("text", ""));
          return std::find(out.begin(), out.end(), needle) != out.end();
        },
        15s);
    return out;
  };
  auto texts = bot_texts("Closing for now. Text us again any time.");
  EXPECT_EQ(texts, (std::vector<std::string>{"What is your order number?",
                                             "Still there? Reply with your order number.",
                                             "Closing for now. Text us again any time."}));
}

TEST_F(Timers, OnTheBotApiTheNudgeIsRecordedNotDeliveredAndTheCloseEndsTheSession) {
  auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_, "client", "test"));
  ASSERT_TRUE(key.ok());
  auto call = [&](const std::string& path, const json& body) {
    parley::http::client_request r;
    r.method = "POST";
    r.url = node_.url(path);
    r.headers = {{"X-Org-Id", tenant_},
                 {"Authorization", "Bearer " + key->key},
                 {"Content-Type", "application/json"}};
    r.body = body.dump();
    r.timeout = 20s;
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : parley::http::client_response{};
  };
  auto started = call("/v5.3.0/bots/reminders/sessions",
                      {{"externalSessionKey", "ext-" + tenant_},
                       {"message", json::object()},
                       {"forceConfig", {{"endpoint", "https://example.com/"}}}});
  ASSERT_EQ(started.status, 200) << started.body;
  const std::string session = json::parse(started.body).value("sessionId", "");
  ASSERT_FALSE(session.empty()) << started.body;
  // Nobody waits on the Bot API: the timers' turns are in the transcript only.
  auto t = transcript("[timer] close", session);
  EXPECT_TRUE(has(t, "[timer] nudge")) << t;
  auto late = call("/v5.3.0/sessions/" + session + "/messages",
                   {{"message", {{"type", "text"}, {"sequenceId", 1}, {"text", "4711"}}}});
  EXPECT_EQ(late.status, 404) << late.body;
  EXPECT_TRUE(has(late.body, "ended")) << late.body;
}

TEST_F(Timers, ATimerCommittedBeforeTheNodeDiedFiresAfterItsRestart) {
  const std::string user = number(3);
  ASSERT_EQ(send(user, "hello").status, 200);
  ASSERT_FALSE(twilio_.wait_for(user, "in digits").body.empty());
  const auto asked_at = clock_type::now();
  ASSERT_EQ(send(user, "slow question please").status, 200);
  ASSERT_FALSE(twilio_.wait_for(user, "What is your email address?").body.empty());
  // Committed (its reply went out): kill the node as a crash would, and start it again.
  node_.proc->kill(SIGKILL);
  node_.proc->wait_exit(10s);
  start_node();
  auto nudge = twilio_.wait_for(user, "Your email address, please?", 30s);
  ASSERT_FALSE(nudge.body.empty()) << "the restarted node did not fire the timer";
  EXPECT_GE(nudge.at - asked_at, 5s);
  // Once: the question's close is a minute away, and nothing else was said.
  auto bodies = twilio_.bodies_to(user);
  EXPECT_EQ(std::count(bodies.begin(), bodies.end(), "Your email address, please?"), 1);
  EXPECT_TRUE(has(transcript("[timer] nudge"), "[timer] nudge"));
}

}  // namespace
