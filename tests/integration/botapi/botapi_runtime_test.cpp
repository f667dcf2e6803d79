// The Bot API end to end against a real parleyd process, real Redis and Postgres:
// multi-turn conversations, replay of a repeated sequenceId, supervision (kill
// between turns and mid-turn), kill -9 of the node, poison messages, deploys and
// rollbacks during live conversations. Every response is validated against the
// Einstein Bots API v5.3 contract.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "src/admin/deploy.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"
#include "tests/support/openapi.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

#include <prometheus/registry.h>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using parley::testing::child_process;
namespace store = parley::store;

const std::string admin_token = "test-admin-token";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) ADD_FAILURE() << name << " is not set: run the tests with scripts/test";
  return v ? v : "";
}

/// The test run's keyring: PARLEY_SECRETS_KEY, which scripts/test exports and every
/// parleyd started here inherits.
parley::secrets::keyring run_keys() {
  auto k = parley::secrets::keyring::from_text(env_or_fail("PARLEY_SECRETS_KEY"), "");
  EXPECT_TRUE(k.ok() && k->has_current()) << "PARLEY_SECRETS_KEY: run the tests with scripts/test";
  return k.ok() ? *k : parley::secrets::keyring();
}

const parley::test::openapi& contract() {
  static auto c = parley::test::openapi::load(std::string(PARLEY_CONTRACTS_DIR) +
                                              "/einstein-bots-api-v5.3.0.yml");
  return c;
}

/// A fake order API: a real HTTP server on port 0. `hold` makes it keep requests
/// unanswered until release() — a slow endpoint the test controls.
class order_api {
 public:
  order_api() {
    parley::http::router r;
    r.add_prefix("GET", "/v1/orders/", "/v1/orders",
                 [this](parley::http::request&& req, parley::http::responder reply) {
                   std::unique_lock<std::mutex> lock(m_);
                   ++calls_;
                   last_auth_ = req.header("Authorization") ? *req.header("Authorization") : "";
                   auto id = req.path.substr(std::string("/v1/orders/").size());
                   parley::http::response res;
                   if (id == "ZZ000000")
                     res = parley::http::response::json(404, R"({"error":"no such order"})");
                   else
                     res = parley::http::response::json(
                         200,
                         R"({"status":"shipped","shipment":{"tracking":"1Z999","carrier":"UPS"}})");
                   if (hold_) {
                     held_.push_back({reply, res});
                     cv_.notify_all();
                     return;
                   }
                   lock.unlock();
                   reply(res);
                 });
    server_ = std::make_unique<parley::http::server>(parley::http::server_options{}, std::move(r),
                                                     std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~order_api() {
    release();
    server_->stop(1s);
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  int calls() {
    std::lock_guard<std::mutex> lock(m_);
    return calls_;
  }
  std::string last_auth() {
    std::lock_guard<std::mutex> lock(m_);
    return last_auth_;
  }
  void hold() {
    std::lock_guard<std::mutex> lock(m_);
    hold_ = true;
  }
  /// Waits until `n` requests are held.
  bool wait_held(std::size_t n) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_for(lock, 20s, [&] { return held_.size() >= n; });
  }
  void release() {
    std::vector<std::pair<parley::http::responder, parley::http::response>> h;
    {
      std::lock_guard<std::mutex> lock(m_);
      hold_ = false;
      h.swap(held_);
    }
    for (auto& [reply, res] : h) reply(res);
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int calls_ = 0;
  bool hold_ = false;
  std::string last_auth_;
  std::vector<std::pair<parley::http::responder, parley::http::response>> held_;
  std::unique_ptr<parley::http::server> server_;
};

/// Client requests sent on threads of their own, typically while the order API holds
/// its answers. At the end of the scope, even after a failed assertion, `before_release`
/// runs (if given), the API lets its held requests go and every thread is joined.
class senders {
 public:
  explicit senders(order_api& api, std::function<void()> before_release = {})
      : api_(api), before_release_(std::move(before_release)) {}
  senders(const senders&) = delete;
  senders& operator=(const senders&) = delete;
  ~senders() {
    if (before_release_) before_release_();
    api_.release();
    join();
  }
  void send(std::function<void()> request) { threads_.emplace_back(std::move(request)); }
  /// Waits for every request sent so far.
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  order_api& api_;
  std::function<void()> before_release_;
  std::vector<std::thread> threads_;
};

/// A parleyd process on a free port.
class node {
 public:
  explicit node(std::map<std::string, std::string> extra = {}) : extra_(std::move(extra)) {
    start();
  }
  bool up() const { return !port_.empty(); }
  void start() {
    std::map<std::string, std::string> env = {
        {"PORT", "0"},
        {"REDIS_URL", env_or_fail("REDIS_URL")},
        {"DATABASE_URL", env_or_fail("DATABASE_URL")},
        {"PARLEY_ADMIN_TOKEN", admin_token},
        {"PARLEY_RUNTIME_DEBUG_FAULTS", "true"},
        {"PARLEY_LOG_LEVEL", "info"},
        // The fake order API listens on loopback, which the egress policy refuses.
        {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.0/8"},
    };
    for (const auto& [k, v] : extra_) env[k] = v;
    proc_ = std::make_unique<child_process>(
        std::vector<std::string>{PARLEYD_PATH, "--config",
                                 std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"},
        env);
    auto line = proc_->wait_for_line(
        [](const std::string& l) { return l.find("\"http_listening\"") != std::string::npos; });
    ASSERT_TRUE(line.has_value()) << "parleyd did not start";
    port_ = json::parse(line->substr(line->find('{')))["port"].get<std::string>();
  }
  void kill9() {
    proc_->kill(SIGKILL);
    proc_->wait_exit(10s);
  }
  /// SIGTERM; the exit code, nullopt when it did not exit within `deadline`.
  std::optional<int> terminate(std::chrono::milliseconds deadline) {
    proc_->kill(SIGTERM);
    return proc_->wait_exit(deadline);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port_ + path; }
  /// parleyd's output so far, for failure messages.
  std::string output() {
    proc_->wait_for_line([](const std::string&) { return false; }, 100ms);
    std::string out;
    for (const auto& l : proc_->lines()) out += l + "\n";
    return out;
  }

 private:
  std::map<std::string, std::string> extra_;
  std::unique_ptr<child_process> proc_;
  std::string port_;
};

struct reply {
  int status = 0;
  std::string body;
  json j;
  parley::http::header_list headers;
};

/// One Bot API client for one tenant, validating every response against the contract.
class client {
 public:
  client(node& n, std::string tenant, std::string key)
      : n_(n), tenant_(std::move(tenant)), key_(std::move(key)) {}

  reply call(const std::string& method, const std::string& path, const json& body,
             parley::http::header_list extra = {}) {
    parley::http::client_request r;
    r.method = method;
    r.url = n_.url(path);
    r.timeout = 30s;
    r.headers = {{"X-Org-Id", tenant_},
                 {"Authorization", "Bearer " + key_},
                 {"Content-Type", "application/json"}};
    for (auto& h : extra) r.headers.push_back(h);
    if (!body.is_null()) r.body = body.dump();
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().message);
    reply out;
    if (!res.ok()) return out;
    out.status = res->status;
    out.body = res->body;
    out.headers = res->headers;
    out.j = json::parse(res->body, nullptr, false);
    auto tmpl = contract().match_path(path);
    EXPECT_FALSE(tmpl.empty()) << path;
    std::string m = method;
    for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto v = contract().validate_response(tmpl, m, out.status, std::string_view(out.body));
    EXPECT_TRUE(v.empty()) << method << " " << path << " " << out.status << ": "
                           << parley::test::to_string(v) << "\n"
                           << out.body;
    auto hv = contract().validate_response_headers(tmpl, m, out.status, out.headers);
    EXPECT_TRUE(hv.empty()) << parley::test::to_string(hv);
    return out;
  }

  reply start(const std::string& bot, json body = json::object()) {
    if (!body.contains("externalSessionKey"))
      body["externalSessionKey"] = "ext-" + std::to_string(++n_started_);
    if (!body.contains("message")) body["message"] = json::object();
    if (!body.contains("forceConfig")) body["forceConfig"] = {{"endpoint", "https://example.com/"}};
    return call("POST", "/v5.3.0/bots/" + bot + "/sessions", body);
  }
  reply text(const std::string& session, int64_t seq, const std::string& text) {
    return call("POST", "/v5.3.0/sessions/" + session + "/messages",
                {{"message", {{"type", "text"}, {"sequenceId", seq}, {"text", text}}}});
  }
  reply choice(const std::string& session, int64_t seq, int index) {
    return call("POST", "/v5.3.0/sessions/" + session + "/messages",
                {{"message", {{"type", "choice"}, {"sequenceId", seq}, {"choiceIndex", index}}}});
  }

 private:
  node& n_;
  std::string tenant_, key_;
  int n_started_ = 0;
};

/// All texts of a response's messages, joined by newlines (choices as [a|b]).
std::string texts(const json& body) {
  std::string out;
  if (!body.contains("messages")) return out;
  for (const auto& m : body["messages"]) {
    if (m.contains("text")) out += m["text"].get<std::string>() + "\n";
    if (m.contains("choices")) {
      out += "[";
      for (const auto& c : m["choices"]) out += c.value("label", "") + "|";
      out += "]\n";
    }
    if (m["type"] == "escalate") out += "<escalate>\n";
    if (m["type"] == "sessionEnded") out += "<ended>\n";
  }
  return out;
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class BotApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = env_or_fail("DATABASE_URL");
    ASSERT_FALSE(url.empty());
    // Parsed once per process, before any node runs: parsing it on the first answer
    // took about a second under ASan, an idle gap that passivated the conversation of
    // tests that keep their turns closer than runtime.passivate_after.
    (void)contract();
    auto pg = store::postgres_client::create({url});
    ASSERT_TRUE(pg.ok());
    pg_ = std::move(*pg);
    tenant_ = parley::store::testing::unique_name("t");
    n_ = std::make_unique<node>();  // applies the migrations
    // One at a time: on a fresh database the tenants table comes long before the
    // secrets table, and another test's node may be the one applying them.
    ASSERT_TRUE(parley::store::testing::eventually(
        [&] {
          auto current = store::migrations_current(*pg_);
          return current.ok() && *current;
        },
        20s))
        << "the migrations are not all applied";
    std::string why;
    ASSERT_TRUE(parley::store::testing::eventually(
        [&] {
          auto t = store::run_job_sync(*pg_, store::create_tenant(tenant_, "Test tenant", "test"));
          if (!t) why = t.err().code + ": " + t.err().message;
          return t.ok();
        },
        20s))
        << why;
    auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_, "test", "test"));
    ASSERT_TRUE(key.ok()) << key.err().message;
    key_ = key->key;
    // The sample bot's token is the tenant's secret, sealed under the run's key.
    auto secret = store::run_job_sync(
        *pg_, store::put_secret(run_keys(), tenant_, "ORDERS_API_TOKEN", "s3cret", "test"));
    ASSERT_TRUE(secret.ok()) << secret.err().message;
    deploy(first_bot(), true);
    c_ = std::make_unique<client>(*n_, tenant_, key_);
  }

  /// The bot the tenant starts with (active before any session starts).
  virtual std::string first_bot() { return bot_text(); }

  /// The order-status sample bot, calling the fake order API.
  std::string bot_text(const std::string& welcome = "I'm the order assistant.") {
    auto text = read_file(std::string(PARLEY_SOURCE_DIR) + "/config/bots/order-status.yaml");
    auto replace = [&](const std::string& from, const std::string& to) {
      auto pos = text.find(from);
      EXPECT_NE(pos, std::string::npos) << from;
      if (pos != std::string::npos) text.replace(pos, from.size(), to);
    };
    replace("https://orders.example.com", api_.base());
    replace("Hi! I'm the order assistant.", "Hi! " + welcome);
    return text;
  }

  int deploy(const std::string& text, bool activate) {
    parley::admin::deploy_request d;
    d.tenant = tenant_;
    d.bot = "orders";
    d.source = text;
    d.deployed_by = "test";
    d.activate = activate;
    auto r = store::run_job_sync(*pg_, parley::admin::deploy_version(d));
    EXPECT_TRUE(r.ok() && r->deployed) << (r.ok() ? "diagnostics" : r.err().message);
    return r.ok() ? r->version : 0;
  }

  std::string start_session() {
    auto r = c_->start("orders");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(has(texts(r.j), "How can I help you?")) << r.body;
    return r.j.value("sessionId", "");
  }

  /// Sends message 2 of session `s` (at the order-number question) on a thread of
  /// `in_flight`, with the order API holding the lookup it runs; true once the lookup
  /// is held. The answer lands in `r` once the API lets go.
  bool send_with_lookup_held(senders& in_flight, const std::string& s, reply& r) {
    api_.hold();
    in_flight.send([this, s, &r] { r = c_->text(s, 2, "AB-123456"); });
    return api_.wait_held(1);
  }

  reply kill(const std::string& session) {
    parley::http::client_request r;
    r.method = "POST";
    r.url = n_->url("/admin/v1/debug/tenants/" + tenant_ + "/conversations/" + session + "/kill");
    r.headers = {{"Authorization", "Bearer " + admin_token}};
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    reply out;
    if (res.ok()) {
      out.status = res->status;
      out.body = res->body;
    }
    return out;
  }

  double metric(const std::string& sample) {
    parley::http::client_request r;
    r.url = n_->url("/metrics");
    auto res = parley::http::fetch(r);
    if (!res.ok()) return -1;
    auto pos = res->body.find("\n" + sample + " ");
    if (pos == std::string::npos) return 0;
    return std::stod(res->body.substr(pos + sample.size() + 2));
  }

  order_api api_;
  std::unique_ptr<store::postgres_client> pg_;
  std::string tenant_, key_;
  std::unique_ptr<node> n_;
  std::unique_ptr<client> c_;
};

TEST_F(BotApi, FullConversationCallsTheActionAndKeepsATranscript) {
  auto s = start_session();
  ASSERT_FALSE(s.empty());
  auto r = c_->choice(s, 1, 1);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "What's your order number?")) << r.body;
  r = c_->text(s, 2, "it is ab-123456");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "Your order AB123456 has shipped with UPS. Tracking number: 1Z999."))
      << r.body;
  EXPECT_EQ(api_.calls(), 1);
  EXPECT_EQ(api_.last_auth(), "Bearer s3cret") << "the tenant's secret ORDERS_API_TOKEN";
  r = c_->choice(s, 3, 2);  // "No, that's all"
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "Goodbye")) << r.body;
  EXPECT_TRUE(has(texts(r.j), "<ended>")) << r.body;

  // The transcript reaches Postgres off the critical path.
  std::vector<store::transcript_row> rows;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto t = store::run_job_sync(*pg_, store::transcript(tenant_, s));
        if (!t.ok()) return false;
        rows = *t;
        return rows.size() >= 8;
      },
      10s))
      << rows.size();
  bool saw_order = false;
  for (const auto& row : rows) saw_order |= row.direction == "in" && has(row.text, "ab-123456");
  EXPECT_TRUE(saw_order);
  auto conv = store::run_job_sync(*pg_, store::get_conversation(tenant_, s));
  ASSERT_TRUE(conv.ok() && conv->has_value());
  EXPECT_EQ((*conv)->bot, "orders");
}

TEST_F(BotApi, RepeatedSequenceIdReplaysWithoutRunningTheBotAgain) {
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto first = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(api_.calls(), 1);
  auto again = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, first.body) << "a retried sequenceId gets the recorded answer";
  EXPECT_EQ(api_.calls(), 1) << "the bot (and its action) did not run again";

  auto stale = c_->text(s, 1, "hello");
  EXPECT_EQ(stale.status, 400) << stale.body;
  EXPECT_TRUE(has(stale.body, "sequenceId")) << stale.body;
}

TEST_F(BotApi, SetVariablesChangesTheConversationWithoutRunningTheBot) {
  auto s = start_session();
  auto set = [&](int64_t seq, json vars) {
    return c_->call(
        "POST", "/v5.3.0/sessions/" + s + "/messages",
        {{"message", {{"type", "setVariables"}, {"sequenceId", seq}, {"variables", vars}}},
         {"responseOptions",
          {{"variables",
            {{"include", true}, {"onlyChanged", false}, {"filter", {"customer_name"}}}}}}});
  };
  auto r = set(1, {{{"name", "customer_name"}, {"type", "text"}, {"value", "Ada"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.j.value("messages", json::array()).empty()) << "the bot did not run: " << r.body;
  ASSERT_TRUE(r.j.contains("variables")) << r.body;
  EXPECT_TRUE(has(r.j["variables"].dump(), "Ada")) << r.body;
  EXPECT_EQ(r.j.value("processedSequenceIds", json::array()), json::array({1}));
  EXPECT_EQ(api_.calls(), 0);
  EXPECT_EQ(set(1, {{{"name", "customer_name"}, {"type", "text"}, {"value", "Ada"}}}).body, r.body)
      << "a repeated sequenceId gets the recorded answer";
  // Also from a new incarnation, which loads the bot's program for the variables.
  ASSERT_EQ(kill(s).status, 200);
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return metric("parley_conversation_restarts_total") >= 1; }, 10s));
  EXPECT_EQ(set(1, {{{"name", "customer_name"}, {"type", "text"}, {"value", "Ada"}}}).body, r.body)
      << "the replay of a restarted conversation";

  // A variable the client may not set (or an unknown one) changes nothing: 400, the
  // sequenceId stays unused.
  auto bad = set(2, {{{"name", "customer_name"}, {"type", "text"}, {"value", "Bob"}},
                     {{"name", "order_status"}, {"type", "text"}, {"value", "shipped"}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_TRUE(has(bad.body, "message.variables")) << bad.body;
  EXPECT_TRUE(has(bad.body, "order_status")) << bad.body;
  auto ok = set(2, {{{"name", "customer_name"}, {"type", "text"}, {"value", "Ada Lovelace"}}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(has(ok.j["variables"].dump(), "Ada Lovelace")) << ok.body;

  // The conversation goes on where it was, and its transcript shows the names.
  auto next = c_->choice(s, 3, 1);
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(has(texts(next.j), "What's your order number?")) << next.body;
  std::vector<std::string> inbound;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto t = store::run_job_sync(*pg_, store::transcript(tenant_, s));
        inbound.clear();
        if (t.ok())
          for (const auto& m : *t)
            if (m.direction == "in") inbound.push_back(m.text);
        return inbound.size() >= 3;
      },
      10s));
  EXPECT_EQ(inbound[0], "[setVariables] customer_name");
  EXPECT_EQ(inbound[1], "[setVariables] customer_name");
}

TEST_F(BotApi, TransferReportsEndOrResumeTheBotsPart) {
  auto msg = [&](const std::string& s, int64_t seq, json m) {
    m["sequenceId"] = seq;
    return c_->call("POST", "/v5.3.0/sessions/" + s + "/messages", {{"message", m}});
  };
  // Failed: the bot takes the conversation back and goes on.
  auto s = start_session();
  auto handed = c_->choice(s, 1, 2);  // "Talk to an agent"
  ASSERT_EQ(handed.status, 200) << handed.body;
  EXPECT_TRUE(has(handed.body, "\"type\":\"escalate\"")) << handed.body;
  auto early =
      msg(start_session(), 1, {{"type", "transferFailed"}, {"reason", "NoAgentAvailable"}});
  EXPECT_EQ(early.status, 400) << "no transfer was asked for: " << early.body;
  EXPECT_TRUE(has(early.body, "agent")) << early.body;
  auto failed = msg(s, 2,
                    {{"type", "transferFailed"},
                     {"reason", "NoAgentAvailable"},
                     {"description", "queue closed"}});
  ASSERT_EQ(failed.status, 200) << failed.body;
  EXPECT_TRUE(has(texts(failed.j), "Sorry, no agent is available right now.")) << failed.body;
  EXPECT_TRUE(has(texts(failed.j), "How can I help you?")) << failed.body;
  auto next = c_->choice(s, 3, 1);
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(has(texts(next.j), "What's your order number?")) << next.body;

  // Succeeded: the bot's part is over; the session takes no more messages.
  auto t = start_session();
  ASSERT_EQ(c_->choice(t, 1, 2).status, 200);
  auto done = msg(t, 2, {{"type", "transferSucceeded"}});
  ASSERT_EQ(done.status, 200) << done.body;
  ASSERT_EQ(done.j["messages"].size(), 1u) << done.body;
  EXPECT_EQ(done.j["messages"][0].value("type", ""), "sessionEnded") << done.body;
  EXPECT_EQ(msg(t, 2, {{"type", "transferSucceeded"}}).body, done.body) << "replayed";
  auto after = c_->text(t, 3, "hello?");
  EXPECT_EQ(after.status, 404) << after.body;
}

TEST_F(BotApi, EachBotVersionCountsItsFallbacksTransfersEndsAndFailures) {
  int v2 = deploy(first_bot(), true);
  ASSERT_GT(v2, 0);
  auto of = [&](const char* family, int version) {
    return metric(std::string(family) + "{bot=\"orders\",tenant=\"" + tenant_ + "\",version=\"" +
                  std::to_string(version) + "\"}");
  };
  // One session ends in the bot after a shipped order; one reaches an order the API
  // does not know (a failed action) and then an agent; one types nonsense at the menu.
  auto a = start_session();
  ASSERT_EQ(c_->choice(a, 1, 1).status, 200);
  ASSERT_EQ(c_->text(a, 2, "AB-123456").status, 200);
  auto bye = c_->choice(a, 3, 2);
  ASSERT_TRUE(has(texts(bye.j), "<ended>")) << bye.body;
  auto b = start_session();
  ASSERT_EQ(c_->choice(b, 1, 1).status, 200);
  auto unknown = c_->text(b, 2, "ZZ-000000");
  ASSERT_TRUE(has(texts(unknown.j), "I couldn't find an order")) << unknown.body;
  auto handed = c_->call("POST", "/v5.3.0/sessions/" + b + "/messages",
                         {{"message", {{"type", "text"}, {"sequenceId", 3}, {"text", "agent"}}}});
  ASSERT_TRUE(has(handed.body, "\"type\":\"escalate\"")) << handed.body;
  auto c = start_session();
  auto lost = c_->text(c, 1, "qwzx plmk vbnq");
  ASSERT_EQ(lost.status, 200) << lost.body;
  EXPECT_EQ(c_->text(c, 1, "qwzx plmk vbnq").body, lost.body) << "a retry is no new turn";

  EXPECT_EQ(of("parley_bot_sessions_started_total", v2), 3);
  EXPECT_EQ(of("parley_bot_turns_total", v2), 4 + 4 + 2);  // starts included
  EXPECT_EQ(of("parley_bot_fallbacks_total", v2), 1) << lost.body;
  EXPECT_EQ(of("parley_bot_transfers_total", v2), 1);
  EXPECT_EQ(of("parley_bot_sessions_ended_total", v2), 1);
  EXPECT_EQ(of("parley_bot_action_failures_total", v2), 1);
  EXPECT_EQ(of("parley_bot_error_dialogs_total", v2), 0);
  EXPECT_EQ(of("parley_bot_turns_total", v2 - 1), 0) << "the earlier version ran nothing";
}

TEST_F(BotApi, RedirectRunsTheNamedDialogFromWhereverTheConversationIs) {
  auto msg = [&](const std::string& s, int64_t seq, json m) {
    m["sequenceId"] = seq;
    return c_->call("POST", "/v5.3.0/sessions/" + s + "/messages", {{"message", m}});
  };
  auto s = start_session();
  auto asked = c_->choice(s, 1, 1);  // "Track an order": the bot asks for the number
  ASSERT_TRUE(has(texts(asked.j), "What's your order number?")) << asked.body;
  // The client leaves the question for another dialog.
  auto moved = msg(s, 2, {{"type", "redirect"}, {"dialogId", "anything_else"}});
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_TRUE(has(texts(moved.j), "Anything else?")) << moved.body;
  EXPECT_FALSE(has(texts(moved.j), "order number")) << moved.body;
  auto unknown = msg(s, 3, {{"type", "redirect"}, {"dialogId", "no_such_dialog"}});
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_TRUE(has(unknown.body, "message.dialogId")) << unknown.body;
  EXPECT_TRUE(has(unknown.body, "no_such_dialog")) << unknown.body;
  // The conversation goes on in the dialog it was sent to ("No, that's all": goodbye).
  auto bye = c_->choice(s, 3, 2);
  ASSERT_EQ(bye.status, 200) << bye.body;
  EXPECT_TRUE(has(texts(bye.j), "Goodbye!")) << bye.body;
  auto ended = msg(s, 4, {{"type", "redirect"}, {"dialogId", "anything_else"}});
  EXPECT_EQ(ended.status, 404) << "the session ended: " << ended.body;
}

TEST_F(BotApi, AnEscalatedSessionStaysOpenUntilItsTransferOutcomeOrDelete) {
  // Handed over, the session waits: a text is refused with what it waits for, and
  // changes nothing (transferFailed still resumes the bot afterwards).
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 2).status, 200);  // "Talk to an agent"
  auto early = c_->text(s, 2, "hello?");
  EXPECT_EQ(early.status, 422) << early.body;
  EXPECT_TRUE(has(early.body, "transferSucceeded")) << early.body;
  EXPECT_TRUE(has(early.body, "DELETE")) << early.body;
  auto failed =
      c_->call("POST", "/v5.3.0/sessions/" + s + "/messages",
               {{"message",
                 {{"type", "transferFailed"}, {"reason", "NoAgentAvailable"}, {"sequenceId", 3}}}});
  ASSERT_EQ(failed.status, 200) << failed.body;
  EXPECT_TRUE(has(texts(failed.j), "Sorry, no agent is available right now.")) << failed.body;

  // DELETE of an escalated session ends it.
  auto t = start_session();
  ASSERT_EQ(c_->choice(t, 1, 2).status, 200);
  auto end = c_->call("DELETE", "/v5.3.0/sessions/" + t, nullptr,
                      {{"X-Session-End-Reason", "UserRequest"}});
  ASSERT_EQ(end.status, 200) << end.body;
  EXPECT_TRUE(has(end.body, "sessionEnded")) << end.body;
  auto after = c_->text(t, 3, "hello?");
  EXPECT_EQ(after.status, 404) << after.body;
}

TEST_F(BotApi, AuthenticationAndUnknownThingsGetContractErrors) {
  client wrong_key(*n_, tenant_, "pk_not-a-key");
  auto r = wrong_key.start("orders");
  EXPECT_EQ(r.status, 401) << r.body;
  client other_tenant(*n_, "no-such-tenant", key_);
  EXPECT_EQ(other_tenant.start("orders").status, 401);
  auto nobot = c_->start("no-such-bot");
  EXPECT_EQ(nobot.status, 404) << nobot.body;
  auto nosession = c_->text("00000000-0000-4000-8000-000000000000", 1, "hi");
  EXPECT_EQ(nosession.status, 404) << nosession.body;
  auto bad = c_->call("POST", "/v5.3.0/sessions/abc/messages",
                      {{"message", {{"type", "text"}, {"text", "x"}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_TRUE(has(bad.body, "sequenceId")) << bad.body;
}

TEST_F(BotApi, SessionIdsAreTimeOrderedUuidVersion7) {
  // Time-ordered ids keep new transcript rows together in Postgres's primary key.
  static const std::regex v7("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto a = start_session();
  auto b = start_session();
  ASSERT_TRUE(std::regex_match(a, v7)) << a;
  ASSERT_TRUE(std::regex_match(b, v7)) << b;
  EXPECT_NE(a, b);
  EXPECT_LE(a.substr(0, 13), b.substr(0, 13)) << "the later session's time prefix is not smaller";
  auto ms = std::stoll(a.substr(0, 8) + a.substr(9, 4), nullptr, 16);
  EXPECT_GE(ms, before - 1000);
  EXPECT_LE(ms, before + 60000);
}

TEST_F(BotApi, KillBetweenTurnsLosesNothing) {
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto k = kill(s);
  ASSERT_EQ(k.status, 200) << k.body;
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body << "\nparleyd:\n" << n_->output();
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  EXPECT_EQ(api_.calls(), 1);
  EXPECT_GE(metric("parley_conversation_restarts_total"), 1);
}

TEST_F(BotApi, AnActionToARefusedDestinationTakesItsErrorBranch) {
  // Without actions.egress_allow the egress policy refuses the fake order API on
  // loopback: the bot's on_error branch answers, the API never sees a connection, and
  // the metric says why.
  n_ = std::make_unique<node>(
      std::map<std::string, std::string>{{"PARLEY_ACTIONS_EGRESS_ALLOW", ""}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "The order system isn't answering right now.")) << r.body;
  EXPECT_EQ(api_.calls(), 0);
  EXPECT_EQ(metric(R"(parley_action_requests_total{outcome="refused"})"), 1);
  EXPECT_EQ(metric(R"(parley_action_requests_total{outcome="ok"})"), 0);
}

TEST_F(BotApi, ActionsReuseTheirConnectionAndCountOutcomes) {
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  r = c_->choice(s, 3, 1);  // "Track another order"
  ASSERT_EQ(r.status, 200) << r.body;
  r = c_->text(s, 4, "ZZ-000000");  // the API answers 404
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "I couldn't find an order")) << r.body;
  EXPECT_EQ(api_.calls(), 2);
  EXPECT_EQ(metric(R"(parley_action_requests_total{outcome="ok"})"), 1);
  EXPECT_EQ(metric(R"(parley_action_requests_total{outcome="http_error"})"), 1);
  EXPECT_EQ(metric("parley_action_duration_seconds_count"), 2);
  EXPECT_EQ(metric("parley_outbound_open_connections"), 1) << "both calls used one connection";
}

TEST_F(BotApi, WithLaneRedisConnectionsTurnsCommitReplayAndSurviveAKill) {
  // redis.lane_connections: a conversation's snapshot reads and commits go to one
  // lane's Redis connection instead of the client's I/O thread.
  n_ = std::make_unique<node>(
      std::map<std::string, std::string>{{"PARLEY_REDIS_LANE_CONNECTIONS", "true"}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  auto first = c_->choice(s, 1, 1);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(c_->choice(s, 1, 1).body, first.body)
      << "a repeated sequenceId gets the recorded answer";
  ASSERT_EQ(kill(s).status, 200);
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body << "\nparleyd:\n" << n_->output();
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  EXPECT_EQ(api_.calls(), 1);
  EXPECT_GE(metric(R"(parley_conversation_activations_total{source="snapshot"})"), 1);
}

TEST_F(BotApi, KillWhileItsCommitIsInFlightRunsTheMessageOnce) {
  // A conversation killed after sending its commit and before Redis answered it. Its
  // restarted successor must read the snapshot after that commit lands, or it would
  // run the message (and call the order API) a second time. With lane connections the
  // read may go on another connection than the commit, so the node holds such reads
  // until the orphaned commit completes. CLIENT PAUSE WRITE keeps the commit in Redis
  // while reads go on. A private Redis: the pause would stall every other test.
  for (const char* lanes : {"true", "false"}) {
    SCOPED_TRACE(std::string("redis.lane_connections: ") + lanes);
    parley::store::testing::temp_dir dir;
    parley::store::testing::redis_process redis(dir.path());
    ASSERT_TRUE(redis.start());
    store::redis_options ro;
    ro.url = redis.url();
    auto admin = store::redis_client::create(ro);
    ASSERT_TRUE(admin.ok()) << admin.err().message;
    // The heartbeat writes to Redis too (its member record, lease renewals): one every
    // 20 s keeps it out of the pause below, so the one blocked client is the commit. The
    // command timeout outlasts the pause: on a busy machine the kill may come seconds
    // after the commit was sent, and a commit that timed out is no longer in flight.
    n_ = std::make_unique<node>(
        std::map<std::string, std::string>{{"REDIS_URL", redis.url()},
                                           {"PARLEY_REDIS_LANE_CONNECTIONS", lanes},
                                           {"PARLEY_REDIS_COMMAND_TIMEOUT_MS", "30000"},
                                           {"PARLEY_CLUSTER_HEARTBEAT_MS", "20000"},
                                           {"PARLEY_CLUSTER_LEASE_MS", "60000"}});
    c_ = std::make_unique<client>(*n_, tenant_, key_);
    // A round is conclusive when the commit is seen held in Redis before the kill. A
    // drain's own write (XREADGROUP, XAUTOCLAIM) paused first on the connection the
    // commit shares (without lane connections) hides it; such a round is run to its end,
    // checked, and tried again with a new session, up to three times.
    bool conclusive = false;
    for (int round = 1; round <= 3 && !conclusive; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      const int calls_before = api_.calls();
      const auto fenced_before = metric("parley_snapshot_reads_fenced_total");
      auto s = start_session();
      ASSERT_EQ(c_->choice(s, 1, 1).status, 200);

      reply r;
      senders in_flight(api_, [&] { (void)(*admin)->command_sync({"CLIENT", "UNPAUSE"}); });
      ASSERT_TRUE(send_with_lookup_held(in_flight, s, r))
          << "the action never reached the order API";
      ASSERT_TRUE((*admin)->command_sync({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
      api_.release();
      // The turn's commit (its script) is now held in Redis: a blocked EVALSHA.
      auto commit_blocked = [&] {
        auto list = (*admin)->command_sync({"CLIENT", "LIST"});
        if (!list.ok()) return false;
        std::istringstream lines(list->str);
        for (std::string l; std::getline(lines, l);)
          if (l.find(" flags=b") != std::string::npos &&
              l.find(" cmd=evalsha") != std::string::npos)
            return true;
        return false;
      };
      conclusive = parley::store::testing::eventually(commit_blocked, 5s);
      if (conclusive) {
        ASSERT_EQ(kill(s).status, 200);
        // The successor's snapshot read waits for the dead actor's commit.
        ASSERT_TRUE(parley::store::testing::eventually(
            [&] { return metric("parley_snapshot_reads_fenced_total") > fenced_before; }, 10s))
            << "the restarted conversation did not wait for its predecessor's commit\n"
            << n_->output();
      }
      ASSERT_TRUE((*admin)->command_sync({"CLIENT", "UNPAUSE"}).ok());
      in_flight.join();
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
      EXPECT_EQ(api_.calls() - calls_before, 1) << "the message ran twice";
      EXPECT_EQ(c_->text(s, 2, "AB-123456").body, r.body)
          << "a repeated sequenceId gets the recorded answer";
      auto next = c_->choice(s, 3, 1);
      ASSERT_EQ(next.status, 200) << next.body;
      EXPECT_TRUE(has(texts(next.j), "What's your order number?")) << next.body;
    }
    EXPECT_TRUE(conclusive) << "in three rounds the commit was never seen held in Redis: "
                            << (*admin)->command_sync({"CLIENT", "LIST"})->str;
    c_.reset();
    n_.reset();
  }
}

TEST_F(BotApi, KillMidTurnRerunsTheMessageOnceAndRepliesOnce) {
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  reply r;
  senders in_flight(api_);
  ASSERT_TRUE(send_with_lookup_held(in_flight, s, r)) << "the action never reached the order API";
  ASSERT_EQ(kill(s).status, 200);
  // The restarted conversation reloads its snapshot and runs the message again.
  ASSERT_TRUE(api_.wait_held(2)) << "the message was not re-run after the kill";
  api_.release();
  in_flight.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  auto again = c_->text(s, 2, "AB-123456");
  EXPECT_EQ(again.body, r.body);
  auto next = c_->choice(s, 3, 1);
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(has(texts(next.j), "What's your order number?")) << next.body;
}

TEST_F(BotApi, KillMidTurnWithAMessageWaitingRunsBothOnceInOrder) {
  // Message 3 arrives while message 2 waits in its action, then the conversation is
  // killed: the new incarnation runs 2 again and then 3, each answered once, and 3
  // (a menu choice) sees the menu that 2's answer showed.
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  reply r2, r3;
  senders in_flight(api_);
  ASSERT_TRUE(send_with_lookup_held(in_flight, s, r2)) << "the action never reached the order API";
  in_flight.send([&] { r3 = c_->choice(s, 3, 1); });
  // Both requests are in parleyd (the third one in flight is this /metrics request).
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return metric("parley_http_requests_in_flight") >= 3; }, 10s));
  ASSERT_EQ(kill(s).status, 200);
  ASSERT_TRUE(api_.wait_held(2)) << "message 2 was not run again after the kill";
  api_.release();
  in_flight.join();
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_TRUE(has(texts(r2.j), "has shipped")) << r2.body;
  ASSERT_EQ(r3.status, 200) << r3.body;
  EXPECT_TRUE(has(texts(r3.j), "What's your order number?")) << r3.body;
  EXPECT_EQ(api_.calls(), 2) << "the action ran once per incarnation, and message 3 ran no action";
  EXPECT_EQ(metric(R"(parley_turns_total{outcome="ok"})"), 4)
      << "start, 1, 2 and 3: each answered once";
}

TEST_F(BotApi, KillNineOfTheNodeThenContinueFromRedis) {
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  n_->kill9();
  n_ = std::make_unique<node>();
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  EXPECT_GE(metric(R"(parley_conversation_activations_total{source="snapshot"})"), 1);
}

TEST_F(BotApi, SigtermAfterLiveConversationsExitsZeroPromptly) {
  // Conversations spawned from HTTP and Postgres worker threads (the first turn of an
  // API key is checked in Postgres) once kept CAF's logger referenced from those
  // threads, and the node hung in the actor system's destructor after
  // "shutdown_complete".
  auto s = start_session();
  ASSERT_FALSE(s.empty());
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto code = n_->terminate(10s);
  ASSERT_TRUE(code.has_value()) << "parleyd did not exit within 10 s of SIGTERM:\n" << n_->output();
  EXPECT_EQ(*code, 0) << n_->output();
}

TEST_F(BotApi, PoisonMessageIsQuarantinedAndTheErrorDialogAnswers) {
  // The sample's error dialog hands off to an agent, which ends the bot's part; this
  // version goes back to the menu, so the conversation visibly lives on.
  auto text = bot_text();
  const std::string handoff =
      "    - message: \"Sorry, something went wrong on our side.\"\n    - goto: agent";
  auto pos = text.find(handoff);
  ASSERT_NE(pos, std::string::npos);
  text.replace(
      pos, handoff.size(),
      "    - message: \"Sorry, something went wrong on our side.\"\n    - goto: main_menu");
  auto before = c_->start("orders").j.value("botVersion", "");
  deploy(text, true);
  // The node learns of the activation by polling (every 250 ms): a session started
  // before it would run the old version, whose error dialog ends the conversation.
  std::string s;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto r = c_->start("orders");
        s = r.j.value("sessionId", "");
        return r.status == 200 && r.j.value("botVersion", "") != before;
      },
      5s))
      << "new sessions never got the new version";
  auto r = c_->text(s, 1, "__parley_poison__");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "Sorry, something went wrong on our side.")) << r.body;
  auto q = store::run_job_sync(*pg_, store::list_quarantine(tenant_));
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        q = store::run_job_sync(*pg_, store::list_quarantine(tenant_));
        return q.ok() && q->size() == 1;
      },
      10s));
  EXPECT_EQ((*q)[0].session_id, s);
  EXPECT_EQ((*q)[0].attempts, 3);
  EXPECT_EQ(metric("parley_messages_quarantined_total"), 1);
  // The conversation lives on.
  auto again = c_->text(s, 2, "hello");
  EXPECT_EQ(again.status, 200) << again.body;
}

TEST_F(BotApi, DeployKeepsLiveConversationsOnTheirVersionAndRollbackRestores) {
  auto old_session = c_->start("orders");
  ASSERT_EQ(old_session.status, 200);
  auto old_version = old_session.j.value("botVersion", "");
  auto s = old_session.j.value("sessionId", "");

  deploy(bot_text("I'm the NEW order assistant."), true);
  reply fresh;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        fresh = c_->start("orders");
        return has(texts(fresh.j), "NEW order assistant");
      },
      2s))
      << "a new activation reaches new sessions within a second (polled every 250 ms; 2 s allows "
         "for a slow CI)";
  EXPECT_NE(fresh.j.value("botVersion", ""), old_version);

  auto cont = c_->choice(s, 1, 1);
  ASSERT_EQ(cont.status, 200) << cont.body;
  EXPECT_EQ(cont.j.value("botVersion", ""), old_version)
      << "a live conversation stays on its version";

  ASSERT_TRUE(store::run_job_sync(*pg_, store::rollback(tenant_, "orders", "test")).ok());
  reply back;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        back = c_->start("orders");
        return !has(texts(back.j), "NEW") && has(texts(back.j), "I'm the order assistant.");
      },
      5s))
      << back.body;
  EXPECT_EQ(back.j.value("botVersion", ""), old_version);
}

TEST_F(BotApi, IdleConversationsPassivateAndComeBackFromTheirSnapshot) {
  n_ = std::make_unique<node>(
      std::map<std::string, std::string>{{"PARLEY_RUNTIME_PASSIVATE_AFTER_MS", "100"}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        return metric("parley_conversations_passivated_total") >= 1 &&
               metric("parley_conversations_live") == 0;
      },
      10s))
      << "the idle conversation actor was not stopped";
  auto r = c_->text(s, 2, "AB-123456");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  EXPECT_GE(metric(R"(parley_conversation_activations_total{source="snapshot"})"), 1);
}

TEST_F(BotApi, EveryIdleConversationPassivatesWhenManyAreLive) {
  // A supervisor tick visits at most 4,096 conversations of its stripe, then comes
  // back a millisecond later: no idle conversation may stay live beyond the cap. One
  // stripe holding 5,000 conversations (live together: they idle for 3 s) passivates
  // them over several ticks.
  n_ = std::make_unique<node>(std::map<std::string, std::string>{
      {"PARLEY_RUNTIME_PASSIVATE_AFTER_MS", "3000"}, {"PARLEY_RUNTIME_STRIPES", "1"}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  constexpr int sessions = 5000;
  for (int i = 0; i < sessions; ++i) ASSERT_EQ(c_->start("orders").status, 200);
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        return metric("parley_conversations_passivated_total") >= sessions &&
               metric("parley_conversations_live") == 0;
      },
      30s))
      << metric("parley_conversations_live") << " conversations still live";
}

TEST_F(BotApi, AConversationWaitingForItsActionIsNotPassivated) {
  // Idle means every job finished: a turn waiting for its action longer than the
  // idle time keeps its conversation live, which passivates once the turn is answered.
  // (300 ms: the idle gap between two turns of this test must stay below it.)
  n_ = std::make_unique<node>(std::map<std::string, std::string>{
      {"PARLEY_RUNTIME_PASSIVATE_AFTER_MS", "300"}, {"PARLEY_RUNTIME_STRIPES", "1"}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  reply r;
  senders in_flight(api_);
  ASSERT_TRUE(send_with_lookup_held(in_flight, s, r)) << "the action never reached the order API";
  // A conversation started after the held turn passivates: the supervisor has
  // looked at both since the held one's idle time was up.
  (void)start_session();
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return metric("parley_conversations_passivated_total") >= 1; }, 10s))
      << "the idle conversation was not passivated";
  EXPECT_EQ(metric("parley_conversations_live"), 1)
      << "the conversation waiting for its action was passivated";
  EXPECT_EQ(metric("parley_conversations_passivated_total"), 1);
  api_.release();
  in_flight.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        return metric("parley_conversations_passivated_total") >= 2 &&
               metric("parley_conversations_live") == 0;
      },
      10s))
      << "the conversation was not passivated after its turn";
  auto next = c_->choice(s, 3, 1);
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(has(texts(next.j), "What's your order number?")) << next.body;
}

TEST_F(BotApi, TurnsGoOnWhilePostgresIsDownAndTranscriptsCatchUp) {
  // This node's Postgres is private, so the test can stop it.
  parley::store::testing::temp_dir dir;
  parley::store::testing::postgres_process db(dir.path());
  ASSERT_TRUE(db.start()) << "could not start PostgreSQL in " << dir.path();
  n_ = std::make_unique<node>(std::map<std::string, std::string>{{"DATABASE_URL", db.url()}});
  ASSERT_TRUE(n_->up());
  auto pg = store::postgres_client::create({db.url()});
  ASSERT_TRUE(pg.ok());
  auto& p = **pg;
  // The node migrates its fresh database one migration at a time (the tenants table
  // comes long before the secrets table): wait for all of them.
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto current = store::migrations_current(p);
        return current.ok() && *current;
      },
      20s));
  ASSERT_TRUE(store::run_job_sync(p, store::create_tenant(tenant_, "T", "test")));
  auto key = store::run_job_sync(p, store::create_api_key(tenant_, "test", "test"));
  ASSERT_TRUE(key.ok());
  parley::admin::deploy_request d{tenant_, "orders", bot_text(), "test", true, {}, {}};
  ASSERT_TRUE(store::run_job_sync(p, parley::admin::deploy_version(d)).ok());
  ASSERT_TRUE(store::run_job_sync(
      p, store::put_secret(run_keys(), tenant_, "ORDERS_API_TOKEN", "s3cret", "test")));
  c_ = std::make_unique<client>(*n_, tenant_, key->key);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  // A first lookup while Postgres is up: the node holds the tenant's secrets from then.
  ASSERT_TRUE(has(texts(c_->text(s, 2, "AB-654321").j), "has shipped"));
  ASSERT_EQ(c_->choice(s, 3, 1).status, 200);  // "Track another order"

  db.stop();
  auto r = c_->text(s, 4, "AB-123456");
  ASSERT_EQ(r.status, 200) << "turns commit to Redis while Postgres is down: " << r.body;
  EXPECT_TRUE(has(texts(r.j), "has shipped")) << r.body;
  // A turn's transcript line waits in its shard's Redis stream (written with the
  // snapshot); conversation records wait in the writer.
  auto waiting = [&] {
    return metric("parley_transcript_backlog_lines") + metric("parley_transcript_lag_rows");
  };
  ASSERT_TRUE(parley::store::testing::eventually([&] { return waiting() > 0; }, 10s))
      << "the transcript backlog metric shows the lines waiting";

  ASSERT_TRUE(db.start());
  std::size_t rows = 0;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto t = store::run_job_sync(p, store::transcript(tenant_, s));
        rows = t.ok() ? t->size() : 0;
        return t.ok() && waiting() == 0 && rows >= 7;
      },
      20s))
      << rows << " transcript rows; parleyd said:\n"
      << n_->output();
}

TEST_F(BotApi, RedisDownAnswers503AndServiceResumesWhenItIsBack) {
  parley::store::testing::temp_dir dir;
  parley::store::testing::redis_process redis(dir.path());
  ASSERT_TRUE(redis.start());
  n_ = std::make_unique<node>(std::map<std::string, std::string>{{"REDIS_URL", redis.url()}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);

  redis.stop();
  auto down = c_->text(s, 2, "AB-123456");
  EXPECT_EQ(down.status, 503) << down.body;
  bool retry_after = false;
  for (const auto& [k, v] : down.headers) retry_after |= k == "Retry-After";
  EXPECT_TRUE(retry_after) << "a 503 tells the client when to retry";
  auto start_down = c_->start("orders");  // its session key is claimed in Redis first
  EXPECT_EQ(start_down.status, 503) << start_down.body;
  EXPECT_TRUE(std::any_of(start_down.headers.begin(), start_down.headers.end(),
                          [](const auto& h) { return h.first == "Retry-After"; }));
  EXPECT_GE(metric("parley_turn_commit_failures_total") +
                metric(R"(parley_turns_total{outcome="unavailable"})"),
            1);

  ASSERT_TRUE(redis.start());  // same socket; the data is gone with the process (no persistence)
  // The snapshot was lost with Redis's memory, so the honest answer is "no such session";
  // a fresh session works again once the client reconnects.
  reply fresh;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return (fresh = c_->start("orders")).status == 200; }, 10s))
      << fresh.body;
}

TEST_F(BotApi, TooManyWaitingMessagesGet429) {
  n_ = std::make_unique<node>(
      std::map<std::string, std::string>{{"PARLEY_RUNTIME_MAX_QUEUED", "2"}});
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto s = start_session();
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  std::vector<reply> replies(4);
  senders in_flight(api_);
  // The first message waits in its action; then three more arrive: two may wait, one may not.
  ASSERT_TRUE(send_with_lookup_held(in_flight, s, replies[0]));
  for (int k = 1; k <= 3; ++k)
    in_flight.send([&, k] { replies[static_cast<std::size_t>(k)] = c_->text(s, 2 + k, "hello"); });
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return metric(R"(parley_turns_total{outcome="busy"})") == 1; }, 10s))
      << "the fourth message is refused while two wait";
  api_.release();
  in_flight.join();
  int busy = 0;
  for (const auto& r : replies) {
    if (r.status == 429) ++busy;
    EXPECT_LT(r.status, 500) << r.body;
  }
  EXPECT_EQ(busy, 1);
  EXPECT_EQ(replies[0].status, 200) << replies[0].body;
}

TEST_F(BotApi, EndSessionEndsIt) {
  auto s = start_session();
  auto r = c_->call("DELETE", "/v5.3.0/sessions/" + s, nullptr,
                    {{"X-Session-End-Reason", "UserRequest"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto after = c_->text(s, 5, "hello");
  EXPECT_EQ(after.status, 404) << after.body;
}

TEST_F(BotApi, StatusAndVersions) {
  auto st = c_->call("GET", "/status", nullptr);
  EXPECT_EQ(st.status, 200);
  EXPECT_EQ(st.j.value("status", ""), "UP");
  auto v = c_->call("GET", "/versions", nullptr);
  EXPECT_EQ(v.status, 200);
}

// --- Retried session starts (issue 12): (tenant, bot, externalSessionKey) names one session.

class BotApiStartRetry : public BotApi {
 protected:
  /// The order bot whose welcome looks an order up: the order API counts how often the
  /// welcome ran.
  std::string first_bot() override {
    auto text = bot_text();
    const std::string tail = "    - goto: main_menu\n\n  main_menu:";
    auto pos = text.find(tail);
    EXPECT_NE(pos, std::string::npos);
    if (pos == std::string::npos) return text;
    text.insert(pos,
                "    - action:\n"
                "        name: welcome_lookup\n"
                "        method: GET\n"
                "        url: \"" +
                    api_.base() +
                    "/v1/orders/AB123456\"\n"
                    "        timeout: 3s\n"
                    "        result:\n"
                    "          order_status: status\n");
    return text;
  }

  reply start_with(client& c, const std::string& key) {
    return c.start("orders", {{"externalSessionKey", key}});
  }

  /// The tenant's session snapshots in Redis.
  std::size_t snapshots() {
    auto redis = store::redis_client::create({env_or_fail("REDIS_URL")});
    EXPECT_TRUE(redis.ok());
    if (!redis.ok()) return 0;
    auto keys = (*redis)->command_sync({"KEYS", "parley:conv:" + tenant_ + ":*"});
    EXPECT_TRUE(keys.ok());
    return keys.ok() ? keys->elements.size() : 0;
  }

  /// The lines the bot said in session `s` that reached Postgres so far.
  std::size_t said(const std::string& s) {
    auto t = store::run_job_sync(*pg_, store::transcript(tenant_, s));
    EXPECT_TRUE(t.ok());
    if (!t.ok()) return 0;
    return static_cast<std::size_t>(std::count_if(
        t->begin(), t->end(), [](const store::transcript_row& r) { return r.direction == "out"; }));
  }
};

TEST_F(BotApiStartRetry, ARetriedStartGetsTheRecordedAnswerAndRunsTheWelcomeOnce) {
  auto first = start_with(*c_, "retry-1");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_TRUE(has(texts(first.j), "How can I help you?")) << first.body;
  EXPECT_EQ(api_.calls(), 1) << first.body;
  auto again = start_with(*c_, "retry-1");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, first.body) << "a retried start gets the recorded answer";
  EXPECT_EQ(api_.calls(), 1) << "the welcome (and its action) did not run again";
  EXPECT_EQ(snapshots(), 1u);
  auto s = first.j.value("sessionId", "");
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] { return metric("parley_transcript_lag_rows") == 0 && said(s) >= 2; }, 10s));
  EXPECT_EQ(said(s), 2u) << "the welcome is in the transcript once";

  // Also once the conversation is no longer live: the retry reads its snapshot.
  ASSERT_EQ(kill(s).status, 200);
  EXPECT_EQ(start_with(*c_, "retry-1").body, first.body);
  EXPECT_EQ(api_.calls(), 1);

  // The session goes on: a retry after that still finds it, and its next sequenceId works.
  auto next = c_->choice(s, 1, 1);
  ASSERT_EQ(next.status, 200) << next.body;
  auto late = start_with(*c_, "retry-1");
  ASSERT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(late.j.value("sessionId", ""), s);
  EXPECT_EQ(api_.calls(), 1);
  EXPECT_EQ(snapshots(), 1u);
  EXPECT_TRUE(has(texts(c_->text(s, 2, "AB-123456").j), "has shipped"));
}

TEST_F(BotApiStartRetry, ConcurrentIdenticalStartsMakeOneSession) {
  std::vector<reply> replies(8);
  {
    senders in_flight(api_);
    api_.hold();  // the first start waits in its welcome's action while the others arrive
    for (std::size_t k = 0; k < replies.size(); ++k)
      in_flight.send([&, k] { replies[k] = start_with(*c_, "at-once"); });
    ASSERT_TRUE(api_.wait_held(1));
  }
  for (const auto& r : replies) {
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, replies[0].body);
  }
  EXPECT_EQ(api_.calls(), 1) << "one welcome";
  EXPECT_EQ(snapshots(), 1u);
}

TEST_F(BotApiStartRetry, AKeyStartsANewSessionOnceItsSessionEnded) {
  auto first = start_with(*c_, "reused");
  ASSERT_EQ(first.status, 200) << first.body;
  auto s1 = first.j.value("sessionId", "");
  auto end = c_->call("DELETE", "/v5.3.0/sessions/" + s1, nullptr,
                      {{"X-Session-End-Reason", "UserRequest"}});
  ASSERT_EQ(end.status, 200) << end.body;
  auto second = start_with(*c_, "reused");
  ASSERT_EQ(second.status, 200) << second.body;
  auto s2 = second.j.value("sessionId", "");
  EXPECT_NE(s2, s1);
  EXPECT_TRUE(has(texts(second.j), "How can I help you?")) << second.body;
  EXPECT_EQ(api_.calls(), 2);
  EXPECT_EQ(start_with(*c_, "reused").body, second.body) << "the new session's start is retried";
  EXPECT_EQ(api_.calls(), 2);
  EXPECT_EQ(snapshots(), 2u);
  EXPECT_EQ(c_->text(s1, 1, "hello").status, 404) << "the first session stays ended";

  // A bot that ended the session by itself: the next start is a new session too.
  ASSERT_EQ(c_->choice(s2, 1, 1).status, 200);
  ASSERT_EQ(c_->text(s2, 2, "AB-123456").status, 200);
  auto bye = c_->choice(s2, 3, 2);  // "No, that's all"
  ASSERT_TRUE(has(texts(bye.j), "<ended>")) << bye.body;
  auto third = start_with(*c_, "reused");
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_NE(third.j.value("sessionId", ""), s2);
  EXPECT_NE(third.j.value("sessionId", ""), s1);
}

TEST_F(BotApiStartRetry, EachKeyHasItsOwnSession) {
  // ':' and unicode in a key are bytes like any other: no two keys share a session.
  const std::vector<std::string> keys = {"a:b", "a", "a:", ":a:b", "ключ:🔑", "ключ"};
  std::set<std::string> sessions;
  for (const auto& key : keys) {
    auto r = start_with(*c_, key);
    ASSERT_EQ(r.status, 200) << key << ": " << r.body;
    sessions.insert(r.j.value("sessionId", ""));
    EXPECT_EQ(start_with(*c_, key).body, r.body) << key;
  }
  EXPECT_EQ(sessions.size(), keys.size());
  EXPECT_EQ(api_.calls(), static_cast<int>(keys.size()));
  EXPECT_EQ(snapshots(), keys.size());
}

TEST_F(BotApiStartRetry, ARetryReachingAnotherNodeGetsTheSameSession) {
  // Two nodes of one region (the same Redis and Postgres). The first hands the second its
  // shards in one batch, so that the shards are placed once both hold some.
  const std::map<std::string, std::string> one_batch{{"PARLEY_CLUSTER_HANDOFF_BATCH", "1024"}};
  n_ = std::make_unique<node>(one_batch);
  c_ = std::make_unique<client>(*n_, tenant_, key_);
  auto second_env = one_batch;
  second_env["PARLEY_NODE_NAME"] = "second";
  node second(second_env);
  client there(second, tenant_, key_);
  // Once every shard has its owner: a start while shards move may be refused (503).
  std::string seen;
  auto settled = [&seen](node& n) {
    parley::http::client_request r;
    r.url = n.url("/admin/v1/cluster");
    r.headers = {{"Authorization", "Bearer " + admin_token}};
    auto res = parley::http::fetch(r);
    seen = res.ok() ? res->body : res.err().message;
    auto j = json::parse(res.ok() ? res->body : "", nullptr, false);
    if (!j.is_object() || j.value("nodes", json::array()).size() != 2) return false;
    int held = 0;
    for (const auto& m : j["nodes"]) {
      if (m.value("state", "") != "up" || m.value("shards_owned", 0) == 0) return false;
      held += m.value("shards_owned", 0);
    }
    return held == j.value("shards", -1);
  };
  ASSERT_TRUE(
      parley::store::testing::eventually([&] { return settled(*n_) && settled(second); }, 20s))
      << "the two nodes did not share the shards: " << seen;
  auto ran_on = [](const reply& r) {
    for (const auto& [k, v] : r.headers)
      if (k == "X-Parley-Node") return v;
    return std::string();
  };
  // Each session's owner is either node: some starts arrive at it, some are routed.
  for (int k = 1; k <= 4; ++k) {
    auto key = "two-nodes-" + std::to_string(k);
    auto first = start_with(*c_, key);
    ASSERT_EQ(first.status, 200) << first.body;
    auto again = start_with(there, key);
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.body, first.body);
    EXPECT_FALSE(ran_on(first).empty());
    EXPECT_EQ(ran_on(again), ran_on(first)) << "the retry ran on the session's owner";
  }
  EXPECT_EQ(api_.calls(), 4);
  EXPECT_EQ(snapshots(), 4u);
}

}  // namespace

// ------------------------------------------------------------------ tenant secrets

/// A bot action endpoint: a real HTTP server on port 0 that records each request's
/// target and headers and answers {"status":"seen"}.
class probe_api {
 public:
  struct call {
    std::string target, authorization, word;
  };
  probe_api() {
    parley::http::router r;
    r.add_prefix("GET", "/probe/", "/probe",
                 [this](parley::http::request&& req, parley::http::responder reply) {
                   {
                     std::lock_guard<std::mutex> lock(m_);
                     auto h = [&](const char* name) {
                       return req.header(name) ? *req.header(name) : std::string();
                     };
                     calls_.push_back({req.target, h("Authorization"), h("X-Word")});
                   }
                   reply(parley::http::response::json(200, R"({"status":"seen"})"));
                 });
    server_ = std::make_unique<parley::http::server>(parley::http::server_options{}, std::move(r),
                                                     std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~probe_api() { server_->stop(1s); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<call> calls() {
    std::lock_guard<std::mutex> lock(m_);
    return calls_;
  }

 private:
  std::mutex m_;
  std::vector<call> calls_;
  std::unique_ptr<parley::http::server> server_;
};

/// Two tenants, A (the fixture's) and B, each running the same probe bot: it asks for
/// a word and calls the probe with the tenant's secrets PATH_PART (in the url) and
/// API_TOKEN (in a header), and the word in the url and a header.
class BotApiSecrets : public BotApi {
 protected:
  void SetUp() override {
    BotApi::SetUp();
    if (HasFatalFailure()) return;
    tenant_b_ = parley::store::testing::unique_name("tb");
    ASSERT_TRUE(store::run_job_sync(*pg_, store::create_tenant(tenant_b_, "Tenant B", "test")));
    auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_b_, "test", "test"));
    ASSERT_TRUE(key.ok());
    key_b_ = key->key;
    for (const auto& t : {tenant_, tenant_b_}) {
      parley::admin::deploy_request d;
      d.tenant = t;
      d.bot = "probe";
      d.source = probe_bot();
      d.deployed_by = "test";
      d.activate = true;
      auto r = store::run_job_sync(*pg_, parley::admin::deploy_version(d));
      ASSERT_TRUE(r.ok() && r->deployed) << (r.ok() ? "diagnostics" : r.err().message);
    }
    b_ = std::make_unique<client>(*n_, tenant_b_, key_b_);
  }

  std::string probe_bot() {
    return "bot:\n"
           "  name: probe\n"
           "  welcome: ask\n"
           "  error: error\n"
           "variables:\n"
           "  word: text\n"
           "  got: text\n"
           "entities:\n"
           "  anything:\n"
           "    regex: '\\S+'\n"
           "dialogs:\n"
           "  ask:\n"
           "    - question:\n"
           "        prompt: \"Say a word.\"\n"
           "        entity: anything\n"
           "        into: word\n"
           "    - action:\n"
           "        name: probe\n"
           "        method: GET\n"
           "        url: \"" +
           probe_.base() +
           "/probe/{{secret.PATH_PART}}/{{word}}\"\n"
           "        headers:\n"
           "          Authorization: \"Bearer {{secret.API_TOKEN}}\"\n"
           "          X-Word: \"{{word}}\"\n"
           "        timeout: 3s\n"
           "        result:\n"
           "          got: status\n"
           "        on_error: failed\n"
           "    - message: \"probe said {{got}}\"\n"
           "    - goto: ask\n"
           "  failed:\n"
           "    - message: \"the probe failed\"\n"
           "    - goto: ask\n"
           "  error:\n"
           "    - message: \"something broke\"\n";
  }

  void put(const std::string& tenant, const std::string& name, const std::string& value) {
    auto r = store::run_job_sync(*pg_, store::put_secret(run_keys(), tenant, name, value, "test"));
    ASSERT_TRUE(r.ok()) << r.err().message;
  }

  /// Starts a probe session; its id.
  std::string start(client& c) {
    auto r = c.start("probe");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(has(texts(r.j), "Say a word.")) << r.body;
    return r.j.value("sessionId", "");
  }

  reply admin(const std::string& method, const std::string& path, const std::string& body) {
    parley::http::client_request r;
    r.method = method;
    r.url = n_->url(path);
    r.body = body;
    r.headers = {{"Authorization", "Bearer " + admin_token}, {"Content-Type", "application/json"}};
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok());
    reply out;
    if (res.ok()) {
      out.status = res->status;
      out.body = res->body;
    }
    return out;
  }

  probe_api probe_;
  std::string tenant_b_, key_b_;
  std::unique_ptr<client> b_;
};

TEST_F(BotApiSecrets, TenantBsBotCannotReadTenantAsSecrets) {
  put(tenant_, "PATH_PART", "a-path");
  put(tenant_, "API_TOKEN", "a-token");
  double errors_before = metric("parley_secret_cache_loads_total{result=\"error\"}");

  // B has no secrets: its action takes the error branch and never reaches the endpoint.
  auto sb = start(*b_);
  auto r = b_->text(sb, 1, "hello");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "the probe failed")) << r.body;
  EXPECT_TRUE(probe_.calls().empty()) << "B's request went out with A's secrets";
  EXPECT_FALSE(has(r.body, "a-token")) << r.body;
  EXPECT_EQ(metric("parley_secret_cache_loads_total{result=\"error\"}"), errors_before)
      << "a tenant without secrets is a successful, empty load";

  // A's bot gets A's values.
  auto sa = start(*c_);
  r = c_->text(sa, 1, "hello");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "probe said seen")) << r.body;
  auto calls = probe_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].target, "/probe/a-path/hello");
  EXPECT_EQ(calls[0].authorization, "Bearer a-token");

  // B with its own values (set through the admin API) gets those, never A's.
  ASSERT_EQ(
      admin("PUT", "/admin/v1/tenants/" + tenant_b_ + "/secrets/PATH_PART", R"({"value":"b-path"})")
          .status,
      201);
  ASSERT_EQ(admin("PUT", "/admin/v1/tenants/" + tenant_b_ + "/secrets/API_TOKEN",
                  R"({"value":"b-token"})")
                .status,
            201);
  // The change reaches B's cache through the feed; until then B's next action may
  // still see no secrets, so ask again until it goes through (bounded).
  bool through = false;
  int seq = 2;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       !through && std::chrono::steady_clock::now() < until; ++seq) {
    r = b_->text(sb, seq, "again");
    ASSERT_EQ(r.status, 200) << r.body;
    through = has(texts(r.j), "probe said seen");
  }
  ASSERT_TRUE(through) << r.body;
  calls = probe_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].target, "/probe/b-path/again");
  EXPECT_EQ(calls[1].authorization, "Bearer b-token");
}

TEST_F(BotApiSecrets, TheActionGetsItsOwnSecretsAndUserTextStaysLiteral) {
  put(tenant_, "PATH_PART", "p4th");
  put(tenant_, "API_TOKEN", "t0ken");
  auto s = start(*c_);
  // The user's words name a secret: they are sent as they are, never expanded.
  auto r = c_->text(s, 1, "{{secret.API_TOKEN}}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(has(texts(r.j), "probe said seen")) << r.body;
  auto calls = probe_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].target, "/probe/p4th/{{secret.API_TOKEN}}");
  EXPECT_EQ(calls[0].authorization, "Bearer t0ken");
  EXPECT_EQ(calls[0].word, "{{secret.API_TOKEN}}");
  EXPECT_FALSE(has(r.body, "t0ken")) << r.body;

  // No value reaches the transcript, the metrics or the node's log.
  std::vector<store::transcript_row> rows;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto t = store::run_job_sync(*pg_, store::transcript(tenant_, s));
        if (!t.ok()) return false;
        rows = *t;
        return rows.size() >= 3;
      },
      10s));
  for (const auto& row : rows) EXPECT_FALSE(has(row.text, "t0ken")) << row.text;
  parley::http::client_request m;
  m.url = n_->url("/metrics");
  auto metrics = parley::http::fetch(m);
  ASSERT_TRUE(metrics.ok());
  EXPECT_FALSE(has(metrics->body, "t0ken"));
  EXPECT_FALSE(has(n_->output(), "t0ken"));
  EXPECT_FALSE(has(n_->output(), "p4th"));
}

TEST_F(BotApiSecrets, AChangedSecretReachesTheNextActionWithinASecond) {
  put(tenant_, "PATH_PART", "p");
  put(tenant_, "API_TOKEN", "first");
  auto s = start(*c_);
  auto r = c_->text(s, 1, "one");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(probe_.calls().size(), 1u) << r.body;
  EXPECT_EQ(probe_.calls()[0].authorization, "Bearer first");
  double loads = metric("parley_secret_cache_loads_total{result=\"ok\"}");
  EXPECT_GE(loads, 1);

  // Cached: a second action asks Postgres nothing.
  r = c_->text(s, 2, "two");
  ASSERT_EQ(probe_.calls().size(), 2u) << r.body;
  EXPECT_EQ(metric("parley_secret_cache_loads_total{result=\"ok\"}"), loads);

  const std::string heard = "parley_invalidations_received_total{kind=\"secrets_changed\"}";
  double before = metric(heard);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(
      admin("PUT", "/admin/v1/tenants/" + tenant_ + "/secrets/API_TOKEN", R"({"value":"second"})")
          .status,
      204);
  // The node hears the change on the feed and drops the tenant's cached secrets.
  while (metric(heard) <= before && std::chrono::steady_clock::now() - t0 < 1s)
    std::this_thread::sleep_for(10ms);
  ASSERT_GT(metric(heard), before) << "the change was not heard within a second";
  r = c_->text(s, 3, "three");
  ASSERT_EQ(r.status, 200) << r.body;
  auto elapsed = std::chrono::steady_clock::now() - t0;
  auto calls = probe_.calls();
  ASSERT_EQ(calls.size(), 3u) << r.body;
  EXPECT_EQ(calls[2].authorization, "Bearer second");
  EXPECT_LT(elapsed, 1s) << "from the change to the action that used it";
  EXPECT_EQ(metric("parley_secret_cache_loads_total{result=\"ok\"}"), loads + 1);

  // A deleted secret: the next action takes its error branch.
  ASSERT_EQ(admin("DELETE", "/admin/v1/tenants/" + tenant_ + "/secrets/API_TOKEN", "").status, 204);
  bool failed = false;
  int seq = 4;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       !failed && std::chrono::steady_clock::now() < until; ++seq) {
    r = c_->text(s, seq, "four");
    failed = has(texts(r.j), "the probe failed");
  }
  EXPECT_TRUE(failed) << r.body;
}

TEST_F(BotApiSecrets, ANodeRefusesToStartWithoutTheKeyOfStoredSecrets) {
  // The fixture stored secrets; a node without PARLEY_SECRETS_KEY must not run.
  auto run = [](std::map<std::string, std::string> env) {
    env["PORT"] = "0";
    env["PARLEY_NODE_NAME"] = "keyless";
    child_process p(
        {PARLEYD_PATH, "--config", std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"}, env);
    p.wait_for_line([](const std::string& l) { return has(l, "secrets_key_"); }, 20s);
    auto code = p.wait_exit(20s);
    std::string out;
    for (const auto& l : p.lines()) out += l + "\n";
    if (!code) p.kill(SIGKILL);
    return std::make_pair(code, out);
  };
  auto [code, out] = run({{"PARLEY_SECRETS_KEY", ""}});
  ASSERT_TRUE(code.has_value()) << "parleyd kept running without the key:\n" << out;
  EXPECT_EQ(*code, 2) << out;
  EXPECT_TRUE(has(out, "PARLEY_SECRETS_KEY is not set")) << out;
  EXPECT_FALSE(has(out, "http_listening")) << out;

  // Another key, without the stored rows' key among the previous ones: named by id.
  const std::string other = "1111111111111111111111111111111111111111111111111111111111111111";
  auto [code2, out2] = run({{"PARLEY_SECRETS_KEY", other}});
  ASSERT_TRUE(code2.has_value()) << out2;
  EXPECT_EQ(*code2, 2) << out2;
  EXPECT_TRUE(has(out2, "key id " + run_keys().current().id)) << out2;

  // A malformed key is refused with the variable's name, not its text.
  auto [code3, out3] = run({{"PARLEY_SECRETS_KEY", "not-a-key"}});
  ASSERT_TRUE(code3.has_value()) << out3;
  EXPECT_EQ(*code3, 2) << out3;
  EXPECT_TRUE(has(out3, "PARLEY_SECRETS_KEY")) << out3;
  EXPECT_FALSE(has(out3, "not-a-key")) << out3;

  // With the key as a previous one beside a new current key, the node starts.
  node ok({{"PARLEY_SECRETS_KEY", other},
           {"PARLEY_NODE_NAME", "previous-key"},
           {"PARLEY_SECRETS_PREVIOUS_KEYS", env_or_fail("PARLEY_SECRETS_KEY")}});
  EXPECT_TRUE(ok.up()) << ok.output();
}

/// `parleyctl replay` of this test's tenant against the bot file `candidate` (written to
/// a file of its own), through the node's admin API.
parley::testing::finished_run replay_with(const node& n, const std::string& tenant,
                                          const std::string& candidate,
                                          std::vector<std::string> extra = {}) {
  const std::string path = ::testing::TempDir() + "/" + tenant + "-candidate.yaml";
  {
    std::ofstream out(path);
    out << candidate;
  }
  std::vector<std::string> argv = {PARLEYCTL_PATH, "replay",  tenant,    "orders",
                                   "--candidate",  path,      "--since", "1h",
                                   "--url",        n.url(""), "--token", admin_token};
  for (auto& e : extra) argv.push_back(std::move(e));
  return parley::testing::run_to_end(argv, {}, 60s);
}

TEST_F(BotApi, ReplayRunsRecordedConversationsThroughACandidateWithTheirActionAnswers) {
  // Two real conversations: one tracks an order (its action answered by the order API)
  // and ends, one asks something the bot does not know.
  auto s = start_session();
  ASSERT_FALSE(s.empty());
  ASSERT_EQ(c_->choice(s, 1, 1).status, 200);
  auto r = c_->text(s, 2, "it is ab-123456");
  ASSERT_TRUE(has(texts(r.j), "has shipped with UPS")) << r.body;
  ASSERT_EQ(c_->choice(s, 3, 2).status, 200);
  auto other = start_session();
  ASSERT_EQ(c_->text(other, 1, "what is the meaning of life").status, 200);
  ASSERT_EQ(api_.calls(), 1);

  // Both reach Postgres with their replay records, off the turns' path.
  std::string why;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        auto page =
            store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "orders", 0, "", 10));
        if (!page) return why = page.err().message, false;
        std::size_t turns = 0, records = 0;
        for (const auto& c : page->conversations)
          for (const auto& t : c.turns) turns += 1, records += !t.replay_json.empty();
        why = std::to_string(page->conversations.size()) + " conversations, " +
              std::to_string(turns) + " turns, " + std::to_string(records) + " records";
        return page->conversations.size() == 2 && turns == 6 && records == 6;
      },
      20s))
      << why;

  // The same file: every conversation is the same, and the order API is not called.
  auto same = replay_with(*n_, tenant_, bot_text());
  EXPECT_EQ(same.code, 0) << same.output;
  EXPECT_TRUE(has(same.output, "replayed 2 conversation(s)")) << same.output;
  EXPECT_TRUE(has(same.output, "2 same, 0 differ, 0 skipped")) << same.output;
  EXPECT_EQ(api_.calls(), 1) << "the replay used the recorded answer";

  // A candidate that asks for the order number differently differs at turn 2.
  std::string changed = bot_text();
  changed.replace(changed.find("What's your order number?"), 25, "Which order number?");
  auto differs = replay_with(*n_, tenant_, changed);
  EXPECT_EQ(differs.code, 1) << differs.output;
  EXPECT_TRUE(has(differs.output, "1 same, 1 differ")) << differs.output;
  EXPECT_TRUE(has(differs.output, "conversation " + s)) << differs.output;
  EXPECT_TRUE(has(differs.output, "turn 2  user: \"[menu] Track an order\"") ||
              has(differs.output, "turn 2  user:"))
      << differs.output;
  EXPECT_TRUE(has(differs.output, "- \"What's your order number?")) << differs.output;
  EXPECT_TRUE(has(differs.output, "+ \"Which order number?")) << differs.output;

  // --json: one object with the counts and the diff.
  auto j = replay_with(*n_, tenant_, changed, {"--json"});
  EXPECT_EQ(j.code, 1) << j.output;
  auto doc = json::parse(j.output, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << j.output;
  EXPECT_EQ(doc["same"], 1);
  EXPECT_EQ(doc["differ"], 1);
  ASSERT_EQ(doc["conversations"].size(), 1u);
  EXPECT_EQ(doc["conversations"][0]["session_id"], s);
  EXPECT_EQ(doc["conversations"][0]["diffs"][0]["turn"], 2);

  // A candidate whose action has another name cannot be answered: it differs, saying so.
  std::string renamed = bot_text();
  auto at = renamed.find("name: lookup_order");
  ASSERT_NE(at, std::string::npos) << "the sample's action is named lookup_order";
  renamed.replace(at, 18, "name: find_order");
  auto unanswered = replay_with(*n_, tenant_, renamed);
  EXPECT_EQ(unanswered.code, 1) << unanswered.output;
  EXPECT_TRUE(has(unanswered.output, "action 'find_order'")) << unanswered.output;

  // The route refuses a window it cannot read, naming the field.
  parley::http::client_request bad;
  bad.url = n_->url("/admin/v1/tenants/" + tenant_ + "/bots/orders/conversations?since=soon");
  bad.headers = {{"Authorization", "Bearer " + admin_token}};
  auto refused = parley::http::fetch(bad);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_EQ(json::parse(refused->body)["error"]["field"], "since") << refused->body;

  // Usage and connection errors exit 2.
  EXPECT_EQ(replay_with(*n_, tenant_, "not: [a bot").code, 2);
  auto unreachable = replay_with(*n_, tenant_, bot_text(), {"--url", "http://127.0.0.1:1"});
  EXPECT_EQ(unreachable.code, 2) << unreachable.output;
  EXPECT_EQ(replay_with(*n_, tenant_, bot_text(), {"--limit", "0"}).code, 2);
}
