// Canary deploys against a real parleyd, Redis and Postgres: the split of new sessions,
// a session staying on its version, the automatic rollback of a canary whose action
// fails (audit, metric, new sessions back on the active version), promote and abort
// through the admin API and parleyctl, bad input, and `parleyctl stats`.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "src/http/client.hpp"
#include "src/http/http.hpp"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace store = parley::store;
using parley::store::testing::eventually;

const std::string admin_token = "test-admin-token";

/// The check API the bots' welcome calls: /ok answers 200, /fail answers 500.
class check_api {
 public:
  check_api() {
    parley::http::router r;
    r.add("GET", "/ok", [](parley::http::request&&, parley::http::responder reply) {
      reply(parley::http::response::json(200, R"({"status":"green"})"));
    });
    r.add("GET", "/fail", [](parley::http::request&&, parley::http::responder reply) {
      reply(parley::http::response::json(500, R"({"error":"down"})"));
    });
    server_ = std::make_unique<parley::http::server>(parley::http::server_options{}, std::move(r),
                                                     std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~check_api() { server_->stop(1s); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

 private:
  std::unique_ptr<parley::http::server> server_;
};

/// A bot whose welcome calls `url` and says `tag` in its messages.
std::string bot(const std::string& tag, const std::string& url) {
  return R"(bot:
  name: canary-check
  version: "1.0"
  locale: en-US
  welcome: welcome
  main_menu: main_menu
  fallback: confused
  error: error

variables:
  status: {type: text, default: ""}

intents:
  greeting: [hi, hello, hey there, good morning]
  goodbye: [bye, goodbye, see you, that's all]

dialogs:
  welcome:
    - action:
        name: check
        method: GET
        url: ")" +
         url +
         R"("
        timeout: 3s
        result: {status: status}
        on_error: check_failed
    - message: ")" +
         tag +
         R"(: the check says {{status}}."
    - goto: main_menu
  check_failed:
    - message: ")" +
         tag +
         R"(: the check failed."
    - goto: main_menu
  main_menu:
    - menu:
        prompt: "How can I help you?"
        options:
          - label: Say goodbye
            payload: bye
            goto: bye
  bye:
    intent: goodbye
    steps:
      - end: ")" +
         tag +
         R"(: goodbye."
  confused:
    - message: "Sorry?"
    - goto: main_menu
  error:
    - message: "Sorry, something went wrong."
    - goto: main_menu
)";
}

struct reply {
  int status = 0;
  std::string body;
  json j;
};

struct run_result {
  int exit_code = -1;
  std::string output;
};

run_result run_shell(const std::string& cmd) {
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A parleyd process and its port.
struct node {
  std::string name;
  std::unique_ptr<parley::testing::child_process> proc;
  std::string port;
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port + path; }
};

class Canary : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = store::testing::require_env("DATABASE_URL");
    ASSERT_FALSE(url.empty());
    auto pg = store::postgres_client::create({url});
    ASSERT_TRUE(pg.ok());
    pg_ = std::move(*pg);
    tenant_ = store::testing::unique_name("canary");
    // A region of its own: only this test's nodes judge its canaries and hear its feed.
    region_ = store::testing::unique_name("canary_region");
    ASSERT_TRUE(start_node());
    std::string why;
    ASSERT_TRUE(eventually(
        [&] {
          auto t = store::run_job_sync(
              *pg_, store::create_tenant(tenant_, "Canary test", "test", region_));
          if (!t) why = t.err().message;
          return t.ok();
        },
        20s))
        << why;
    auto key = store::run_job_sync(*pg_, store::create_api_key(tenant_, "test", "test"));
    ASSERT_TRUE(key.ok()) << key.err().message;
    key_ = key->key;
  }

  /// Starts one more node of the test's region; false when it did not start.
  bool start_node() {
    node n;
    n.name = region_ + "-" + std::to_string(nodes_.size() + 1);
    std::map<std::string, std::string> env = {
        {"PORT", "0"},
        {"REDIS_URL", store::testing::require_env("REDIS_URL")},
        {"DATABASE_URL", store::testing::require_env("DATABASE_URL")},
        {"PARLEY_ADMIN_TOKEN", admin_token},
        {"PARLEY_LOG_LEVEL", "info"},
        {"PARLEY_NODE_REGION", region_},
        {"PARLEY_NODE_NAME", n.name},
        // The check API listens on loopback, which the egress policy refuses.
        {"PARLEY_ACTIONS_EGRESS_ALLOW", "127.0.0.0/8"},
    };
    n.proc = std::make_unique<parley::testing::child_process>(
        std::vector<std::string>{PARLEYD_PATH, "--config",
                                 std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"},
        env);
    auto line = n.proc->wait_for_line(
        [](const std::string& l) { return l.find("\"http_listening\"") != std::string::npos; });
    if (!line) return false;
    n.port = json::parse(line->substr(line->find('{')))["port"].get<std::string>();
    nodes_.push_back(std::move(n));
    return true;
  }

  std::string url(const std::string& path, std::size_t on = 0) const {
    return nodes_.at(on).url(path);
  }

  reply http(const std::string& method, const std::string& path, const std::string& body,
             bool admin, std::size_t on = 0) {
    parley::http::client_request r;
    r.method = method;
    r.url = url(path, on);
    r.timeout = 30s;
    if (admin) {
      r.headers = {{"Authorization", "Bearer " + admin_token}, {"X-Parley-Actor", "ops"}};
    } else {
      r.headers = {{"X-Org-Id", tenant_},
                   {"Authorization", "Bearer " + key_},
                   {"Content-Type", "application/json"}};
    }
    r.body = body;
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().message);
    reply out;
    if (!res.ok()) return out;
    out.status = res->status;
    out.body = res->body;
    out.j = json::parse(res->body, nullptr, false);
    return out;
  }
  reply admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return http(method, "/admin/v1/tenants/" + tenant_ + path, body, true);
  }

  /// Deploys through the admin API; the new version (0 on failure).
  int deploy(const std::string& text, const std::string& query) {
    auto r = admin("POST", "/bots/checks/versions" + query, text);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.j.is_object() ? r.j.value("version", 0) : 0;
  }

  /// Starts a session; its welcome's text.
  std::string start(const std::string& external_key, std::string* session = nullptr,
                    std::size_t on = 0) {
    auto r = http("POST", "/v5.3.0/bots/checks/sessions",
                  json{{"externalSessionKey", external_key},
                       {"message", json::object()},
                       {"forceConfig", {{"endpoint", "https://example.com/"}}}}
                      .dump(),
                  false, on);
    EXPECT_EQ(r.status, 200) << r.body;
    if (session != nullptr && r.j.is_object()) *session = r.j.value("sessionId", "");
    std::string text;
    if (r.j.is_object() && r.j.contains("messages"))
      for (const auto& m : r.j["messages"]) text += m.value("text", "") + "\n";
    return text;
  }

  double metric(const std::string& sample, std::size_t on = 0) {
    parley::http::client_request r;
    r.url = url("/metrics", on);
    auto res = parley::http::fetch(r);
    if (!res.ok()) return -1;
    auto pos = res->body.find("\n" + sample + " ");
    if (pos == std::string::npos) return 0;
    return std::stod(res->body.substr(pos + sample.size() + 2));
  }

  run_result ctl(const std::string& args) {
    return run_shell("env -u PARLEY_URL PARLEY_ADMIN_TOKEN=" + admin_token +
                     " '" PARLEYCTL_PATH "' " + args + " --url " + url("") + " 2>&1");
  }

  check_api api_;
  std::unique_ptr<store::postgres_client> pg_;
  std::vector<node> nodes_;
  std::string tenant_, region_, key_;
  int started_ = 0;
};

TEST_F(Canary, NewSessionsSplitBetweenTheVersionsAndASessionStaysOnItsOwn) {
  ASSERT_EQ(deploy(bot("v1", api_.url("/ok")), "?activate=true"), 1);
  // A margin nothing reaches: this canary is never judged.
  ASSERT_EQ(deploy(bot("v2", api_.url("/ok")), "?canary=50&min_conversations=1000000"), 2);
  // The node heard of it on the feed (its own message): new sessions start on both.
  std::string on_canary;
  ASSERT_TRUE(eventually([&] {
    std::string s;
    if (!has(start("probe-" + std::to_string(++started_), &s), "v2:")) return false;
    on_canary = s;
    return true;
  })) << "no new session started on the canary";
  int v1 = 0, v2 = 0;
  std::map<std::string, std::string> first;
  for (int i = 0; i < 60; ++i) {
    auto text = start("split-" + std::to_string(i));
    v1 += has(text, "v1: the check says green");
    v2 += has(text, "v2: the check says green");
    first["split-" + std::to_string(i)] = text;
  }
  EXPECT_EQ(v1 + v2, 60);
  // 50 % of 60 by a hash: both get some (each below 15 has odds under 1 in 10^5).
  EXPECT_GE(v1, 15);
  EXPECT_GE(v2, 15);
  // A retried start (same external key) lands on the same version with the same answer.
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(start("split-" + std::to_string(i)), first["split-" + std::to_string(i)]);

  // The canary is aborted: new sessions all go to v1; the session on v2 stays on v2.
  auto aborted = admin("POST", "/bots/checks/canary/abort");
  ASSERT_EQ(aborted.status, 200) << aborted.body;
  EXPECT_EQ(aborted.j["outcome"], "aborted");
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 20; ++i)
      if (!has(start("after-" + std::to_string(++started_)), "v1:")) return false;
    return true;
  })) << "new sessions still start on the aborted canary";
  auto bye = http("POST", "/v5.3.0/sessions/" + on_canary + "/messages",
                  R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":1}})", false);
  ASSERT_EQ(bye.status, 200) << bye.body;
  EXPECT_TRUE(has(bye.body, "v2: goodbye.")) << bye.body;
}

TEST_F(Canary, ACanaryWhoseActionFailsIsRolledBackByTheNodeWithTheFiguresInTheAuditLog) {
  ASSERT_EQ(deploy(bot("v1", api_.url("/ok")), "?activate=true"), 1);
  ASSERT_EQ(deploy(bot("v2", api_.url("/fail")), "?canary=50&min_conversations=10"), 2);
  auto running = admin("GET", "/bots/checks/canary");
  ASSERT_EQ(running.status, 200) << running.body;
  EXPECT_EQ(running.j["running"], true);
  EXPECT_EQ(running.j["judged"], false);
  EXPECT_EQ(running.j["settings"]["percent"], 50);
  EXPECT_EQ(running.j["settings"]["max_action_failure_rate_increase"], 5.0);

  // Sessions until the canary is rolled back: it needs 10 of its own first.
  int canary_sessions = 0, active_sessions = 0;
  json status;
  ASSERT_TRUE(eventually(
      [&] {
        auto text = start("s-" + std::to_string(++started_));
        canary_sessions += has(text, "v2: the check failed.");
        active_sessions += has(text, "v1: the check says green.");
        status = admin("GET", "/bots/checks/canary").j;
        return status.value("outcome", json()) == "rolled_back";
      },
      60s))
      << status.dump();
  EXPECT_GE(canary_sessions, 10) << "judged before its minimum number of conversations";
  EXPECT_GT(active_sessions, 0);
  EXPECT_EQ(status["running"], false);
  ASSERT_TRUE(status["reason"].is_object()) << status.dump();
  EXPECT_GE(status["reason"]["conversations"].get<int>(), 10);
  ASSERT_EQ(status["reason"]["breaches"].size(), 1u) << status.dump();
  EXPECT_EQ(status["reason"]["breaches"][0]["rate"], "action_failure_rate");
  EXPECT_GT(status["reason"]["breaches"][0]["increase_points"].get<double>(), 50.0);

  // The audit log says who and why, with the figures.
  auto audit = store::run_job_sync(*pg_, store::list_audit(tenant_));
  ASSERT_TRUE(audit.ok());
  const store::audit_entry* rolled = nullptr;
  for (const auto& e : *audit)
    if (e.action == "bot.canary.rollback") rolled = &e;
  ASSERT_NE(rolled, nullptr);
  EXPECT_EQ(rolled->actor, "node:" + nodes_[0].name);
  auto details = json::parse(rolled->details_json);
  EXPECT_EQ(details["version"], 2);
  EXPECT_EQ(details["baseline_version"], 1);
  EXPECT_EQ(details["breaches"][0]["rate"], "action_failure_rate");
  EXPECT_GT(details["canary"]["action_failures"].get<int>(), 0);
  EXPECT_EQ(details["baseline"]["action_failures"], 0);

  EXPECT_EQ(metric("parley_canary_rollbacks_total{bot=\"checks\",tenant=\"" + tenant_ + "\"}"), 1);
  ASSERT_TRUE(eventually([&] {
    return metric("parley_canary_percent{bot=\"checks\",tenant=\"" + tenant_ +
                  "\",version=\"2\"}") == 0;
  }));
  // New sessions all start on the active version.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(has(start("after-" + std::to_string(i)), "v1:"));
  // The rolled-back canary can be neither promoted nor aborted.
  EXPECT_EQ(admin("POST", "/bots/checks/canary/promote").status, 409);
  auto versions = admin("GET", "/bots/checks/versions");
  EXPECT_EQ(versions.j["active_version"], 1) << versions.body;
}

TEST_F(Canary, EveryNodeOfTheRegionFollowsTheCanaryAndExactlyOneRollsItBack) {
  ASSERT_TRUE(start_node());
  ASSERT_EQ(deploy(bot("v1", api_.url("/ok")), "?activate=true"), 1);
  // Nodes sharing a Redis form a cluster: wait until node 2 starts sessions promptly
  // (10 in a row within 250 ms each), so that a shard still moving to it after it
  // joined is not what the timing below measures.
  int prompt = 0;
  auto settle = std::chrono::steady_clock::now() + 30s;
  while (prompt < 10 && std::chrono::steady_clock::now() < settle) {
    auto sent = std::chrono::steady_clock::now();
    bool ok = has(start("settle-" + std::to_string(++started_), nullptr, 1), "v1:");
    prompt = ok && std::chrono::steady_clock::now() - sent < 250ms ? prompt + 1 : 0;
  }
  ASSERT_EQ(prompt, 10) << "node 2 did not settle";

  // The canary is deployed through node 1; node 2 hears of it on the feed.
  ASSERT_EQ(deploy(bot("v2", api_.url("/fail")), "?canary=50&min_conversations=10"), 2);
  auto deployed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] {
    return has(start("b-" + std::to_string(++started_), nullptr, 1), "v2:");
  })) << "node 2 never started a session on the canary";
  auto heard = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - deployed);
  std::printf("node 2 started its first canary session %lld ms after the deploy answered\n",
              static_cast<long long>(heard.count()));
  EXPECT_LT(heard, 1000ms) << "the canary reaches every node of the region within a second";

  // Sessions on both nodes until one of them rolls the canary back.
  json status;
  ASSERT_TRUE(eventually(
      [&] {
        ++started_;
        start("s-" + std::to_string(started_), nullptr, started_ % 2);
        status = admin("GET", "/bots/checks/canary").j;
        return status.value("outcome", json()) == "rolled_back";
      },
      60s))
      << status.dump();
  auto rolled_back = std::chrono::steady_clock::now();
  auto audit = store::run_job_sync(*pg_, store::list_audit(tenant_));
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> actors;
  for (const auto& e : *audit)
    if (e.action == "bot.canary.rollback") actors.push_back(e.actor);
  ASSERT_EQ(actors.size(), 1u) << "two nodes rolled the same canary back";
  const std::string sample =
      "parley_canary_rollbacks_total{bot=\"checks\",tenant=\"" + tenant_ + "\"}";
  std::size_t winner = actors[0] == "node:" + nodes_[0].name ? 0 : 1;
  EXPECT_EQ(actors[0], "node:" + nodes_[winner].name);
  EXPECT_EQ(metric(sample, winner), 1);
  EXPECT_EQ(metric(sample, 1 - winner), 0);
  // The other node stops sending new sessions to the canary within a second.
  std::size_t other = 1 - winner;
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 10; ++i)
      if (!has(start("o-" + std::to_string(++started_), nullptr, other), "v1:")) return false;
    return true;
  }));
  auto stopped = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - rolled_back);
  std::printf(
      "the other node sent 10 new sessions in a row to the active version %lld ms after "
      "the rollback was seen\n",
      static_cast<long long>(stopped.count()));
  EXPECT_LT(stopped, 2000ms);
}

TEST_F(Canary, PromoteAndAbortThroughParleyctlAreAudited) {
  std::string dir = "/tmp/" + tenant_;
  std::string mk = "mkdir -p " + dir;
  ASSERT_EQ(std::system(mk.c_str()), 0);
  auto write = [&](const std::string& name, const std::string& text) {
    std::FILE* f = std::fopen((dir + "/" + name).c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return dir + "/" + name;
  };
  auto v1 = write("v1.yaml", bot("v1", api_.url("/ok")));
  auto v2 = write("v2.yaml", bot("v2", api_.url("/ok")));
  ASSERT_EQ(ctl("deploy " + tenant_ + " checks " + v1 + " --activate").exit_code, 0);
  auto canary = ctl("deploy " + tenant_ + " checks " + v2 +
                    " --canary 20 --max-error-rate-increase 2 --min-conversations 200");
  ASSERT_EQ(canary.exit_code, 0) << canary.output;
  EXPECT_TRUE(has(canary.output, "version 2")) << canary.output;
  EXPECT_TRUE(has(canary.output, "canary for 20% of new conversations")) << canary.output;
  auto again = ctl("deploy " + tenant_ + " checks " + v2 + " --canary 20");
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_TRUE(has(again.output, "already has canary version 2")) << again.output;

  auto status = ctl("canary status " + tenant_ + " checks");
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(has(status.output, "canary version 2")) << status.output;
  EXPECT_TRUE(has(status.output, "20% of new conversations")) << status.output;
  EXPECT_TRUE(has(status.output, "error dialogs +2")) << status.output;
  EXPECT_TRUE(has(status.output, "200 more canary conversations needed")) << status.output;

  auto promoted = ctl("canary promote " + tenant_ + " checks");
  ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
  EXPECT_TRUE(has(promoted.output, "promoted " + tenant_ + "/checks version 2")) << promoted.output;
  EXPECT_EQ(admin("GET", "/bots/checks/versions").j["active_version"], 2);
  ASSERT_TRUE(eventually([&] { return has(start("new-" + std::to_string(++started_)), "v2:"); }));
  auto none = ctl("canary promote " + tenant_ + " checks");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(has(none.output, "has no running canary")) << none.output;

  ASSERT_EQ(ctl("deploy " + tenant_ + " checks " + v1 + " --canary 10").exit_code, 0);
  auto aborted = ctl("canary abort " + tenant_ + " checks");
  ASSERT_EQ(aborted.exit_code, 0) << aborted.output;
  EXPECT_TRUE(has(aborted.output, "aborted canary version 3")) << aborted.output;
  EXPECT_TRUE(has(aborted.output, "new conversations go to version 2")) << aborted.output;
  EXPECT_EQ(ctl("canary abort " + tenant_ + " checks").exit_code, 1);

  auto audit = store::run_job_sync(*pg_, store::list_audit(tenant_));
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> actions;
  for (const auto& e : *audit) actions.push_back(e.action);
  for (const char* a :
       {"bot.canary.start", "bot.canary.promote", "bot.activate", "bot.canary.abort"})
    EXPECT_NE(std::find(actions.begin(), actions.end(), a), actions.end()) << a;
  std::system(("rm -rf " + dir).c_str());
}

TEST_F(Canary, BadRequestsNameTheProblem) {
  auto v1 = bot("v1", api_.url("/ok"));
  // No bot yet, then a bot without an active version to split with.
  auto unknown = admin("POST", "/bots/checks/versions?canary=10", v1);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(unknown.j["error"]["code"], "bot_not_found");
  EXPECT_EQ(admin("GET", "/bots/checks/canary").status, 404) << "no such bot yet";
  ASSERT_EQ(deploy(v1, ""), 1);
  auto lonely = admin("POST", "/bots/checks/versions?canary=10", v1);
  EXPECT_EQ(lonely.status, 409) << lonely.body;
  EXPECT_EQ(lonely.j["error"]["code"], "no_active_version");
  ASSERT_EQ(admin("POST", "/bots/checks/activate", R"({"version":1})").status, 200);
  auto never = admin("GET", "/bots/checks/canary");
  EXPECT_EQ(never.status, 409) << never.body;
  EXPECT_EQ(never.j["error"]["code"], "no_canary");
  struct bad {
    std::string query, field;
  };
  for (const auto& b :
       {bad{"?canary=0", "canary"}, bad{"?canary=51", "canary"}, bad{"?canary=ten", "canary"},
        bad{"?canary=10.5", "canary"}, bad{"?canary=10&min_conversations=0", "min_conversations"},
        bad{"?canary=10&max_error_rate_increase=-1", "max_error_rate_increase"},
        bad{"?canary=10&max_fallback_rate_increase=x", "max_fallback_rate_increase"},
        bad{"?canary=10&max_action_failure_rate_increase=101", "max_action_failure_rate_increase"},
        bad{"?canary=10&activate=true", "activate"}}) {
    auto r = admin("POST", "/bots/checks/versions" + b.query, v1);
    EXPECT_EQ(r.status, 400) << b.query << ": " << r.body;
    EXPECT_EQ(r.j["error"].value("field", ""), b.field) << b.query << ": " << r.body;
  }
  auto broken = admin("POST", "/bots/checks/versions?canary=10", "bot: [");
  EXPECT_EQ(broken.status, 422) << broken.body;
  // Nothing was stored by any of them.
  EXPECT_EQ(admin("GET", "/bots/checks/versions").j["versions"].size(), 1u) << "nothing stored";
  EXPECT_EQ(admin("POST", "/bots/checks/canary/abort").status, 409);
  EXPECT_EQ(admin("GET", "/bots/checks/canary/promote").status, 405);
  EXPECT_EQ(admin("GET", "/bots/nobot/stats").status, 404);
  auto bad_ctl = ctl("deploy " + tenant_ + " checks /dev/null --canary 70");
  EXPECT_NE(bad_ctl.exit_code, 0) << bad_ctl.output;
  EXPECT_TRUE(has(bad_ctl.output, "--canary: Value 70 not in range 1 to 50")) << bad_ctl.output;
  auto both = ctl("deploy " + tenant_ + " checks /dev/null --canary 10 --activate");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_TRUE(has(both.output, "--activate and --canary exclude each other")) << both.output;
}

TEST_F(Canary, StatsShowEachVersionsRatesFromTheRegionsCounts) {
  ASSERT_EQ(deploy(bot("v1", api_.url("/fail")), "?activate=true"), 1);
  // Four sessions on v1: the welcome's action fails in each; two end in the bot.
  for (int i = 0; i < 4; ++i) {
    std::string s;
    ASSERT_TRUE(has(start("stats-" + std::to_string(i), &s), "v1: the check failed."));
    if (i < 2) {
      auto bye = http("POST", "/v5.3.0/sessions/" + s + "/messages",
                      R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":1}})", false);
      ASSERT_EQ(bye.status, 200) << bye.body;
    }
  }
  json v;
  ASSERT_TRUE(eventually([&] {
    auto r = admin("GET", "/bots/checks/stats");
    if (r.status != 200 || r.j["versions"].empty()) return false;
    v = r.j["versions"][0];
    return v.value("turns", 0) == 6;
  })) << v.dump();
  EXPECT_EQ(v["version"], 1);
  EXPECT_EQ(v["active"], true);
  EXPECT_EQ(v["conversations"], 4);
  EXPECT_EQ(v["action_failures"], 4);
  EXPECT_DOUBLE_EQ(v["action_failure_rate"].get<double>(), 4.0 / 6.0);
  EXPECT_EQ(v["ended"], 2);
  EXPECT_DOUBLE_EQ(v["containment"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(v["transfer_rate"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(v["fallback_rate"].get<double>(), 0.0);
  auto out = ctl("stats " + tenant_ + " checks");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(has(out.output, "CONTAINMENT")) << out.output;
  EXPECT_TRUE(has(out.output, "4 (66.7%)")) << out.output;
  EXPECT_TRUE(has(out.output, "100.0%")) << out.output;
  auto as_json = ctl("stats " + tenant_ + " checks --json");
  ASSERT_EQ(as_json.exit_code, 0) << as_json.output;
  auto j = json::parse(as_json.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << as_json.output;
  EXPECT_EQ(j["versions"][0]["conversations"], 4) << as_json.output;
  auto unknown = ctl("stats " + tenant_ + " nobot");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_TRUE(has(unknown.output, "has no bot 'nobot'")) << unknown.output;
}

/// The catalog alone (no node): a canary in the change log, and judges racing.
TEST(CanaryCatalog, ConcurrentJudgesRollACanaryBackOnceAndTheChangeLogSaysSo) {
  auto url = store::testing::require_env("DATABASE_URL");
  ASSERT_FALSE(url.empty());
  store::postgres_options o{url};
  o.workers = 4;
  auto pg = store::postgres_client::create(o);
  ASSERT_TRUE(pg.ok());
  auto& p = **pg;
  auto tenant = store::testing::unique_name("canary_cat");
  auto region = store::testing::unique_name("canary_cat_region");
  auto migrated = store::apply_migrations(p);
  ASSERT_TRUE(migrated.ok()) << migrated.err().message;
  auto t = store::run_job_sync(p, store::create_tenant(tenant, "Catalog", "test", region));
  ASSERT_TRUE(t.ok()) << t.err().message;
  auto stored = [&](bool activate) {
    store::new_version v;
    v.tenant = tenant;
    v.bot = "b";
    v.source = "bot: {}";
    v.program = "x";
    v.program_id = "b@0";
    v.deployed_by = "test";
    v.activate = activate;
    auto r = store::run_job_sync(p, store::store_version(v));
    EXPECT_TRUE(r.ok()) << r.err().message;
    return r.ok() ? r->version : 0;
  };
  ASSERT_EQ(stored(true), 1);
  ASSERT_EQ(stored(false), 2);
  auto before = store::run_job_sync(p, store::active_changes_since(0, 100000));
  ASSERT_TRUE(before.ok());
  std::int64_t seq = 0;
  for (const auto& c : *before) seq = std::max(seq, c.change_seq);
  store::canary_settings s;
  s.percent = 25;
  s.min_conversations = 5;
  auto started = store::run_job_sync(p, store::start_canary(tenant, "b", 2, s, "ops"));
  ASSERT_TRUE(started.ok()) << started.err().message;
  // The change log reports the canary with the bot's active version.
  auto changes = store::run_job_sync(p, store::active_changes_since(seq));
  ASSERT_TRUE(changes.ok());
  const store::active_change* mine = nullptr;
  for (const auto& c : *changes)
    if (c.tenant == tenant) mine = &c;
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->version, 1);
  EXPECT_EQ(mine->canary_version, 2);
  EXPECT_EQ(mine->canary_percent, 25);
  seq = mine->change_seq;

  // Four canary sessions: not judged yet, whatever they did.
  store::version_counts bad{8, 4, 0, 0, 0, 8, 0};
  ASSERT_TRUE(store::run_job_sync(p, store::add_version_stats({{tenant, "b", 2, bad}})).ok());
  ASSERT_TRUE(
      store::run_job_sync(p, store::add_version_stats({{tenant, "b", 1, {40, 20, 0, 0, 0, 0, 0}}}))
          .ok());
  auto early = store::run_job_sync(p, store::judge_canaries("node:x", region));
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());
  auto status = store::run_job_sync(p, store::canary_status(tenant, "b"));
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->judged);
  EXPECT_EQ(status->canary_counts.sessions, 4);
  // Another region's nodes do not judge this tenant's canary.
  ASSERT_TRUE(store::run_job_sync(p, store::add_version_stats({{tenant, "b", 2, bad}})).ok());
  auto elsewhere = store::run_job_sync(p, store::judge_canaries("node:y", region + "_other"));
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(elsewhere->empty());

  // Eight canary sessions, all failing their actions: eight judges at once, one rollback.
  std::atomic<int> rollbacks{0}, answered{0};
  for (int i = 0; i < 8; ++i)
    store::run_job(p, store::judge_canaries("node:" + std::to_string(i), region),
                   [&](parley::result<std::vector<store::canary_rollback>> r) {
                     EXPECT_TRUE(r.ok()) << r.err().message;
                     if (r.ok())
                       for (const auto& rb : *r) rollbacks += rb.report.canary.tenant == tenant;
                     ++answered;
                   });
  ASSERT_TRUE(eventually([&] { return answered.load() == 8; }));
  EXPECT_EQ(rollbacks.load(), 1);
  auto audit = store::run_job_sync(p, store::list_audit(tenant));
  ASSERT_TRUE(audit.ok());
  int audited = 0;
  for (const auto& e : *audit) audited += e.action == "bot.canary.rollback";
  EXPECT_EQ(audited, 1);
  auto after = store::run_job_sync(p, store::active_changes_since(seq));
  ASSERT_TRUE(after.ok());
  mine = nullptr;
  for (const auto& c : *after)
    if (c.tenant == tenant) mine = &c;
  ASSERT_NE(mine, nullptr) << "the rollback is in the change log";
  EXPECT_EQ(mine->version, 1);
  EXPECT_EQ(mine->canary_version, 0);
  auto ended = store::run_job_sync(p, store::canary_status(tenant, "b"));
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->canary.outcome, "rolled_back");
  auto reason = json::parse(ended->canary.reason_json);
  EXPECT_EQ(reason["conversations"], 8);
  EXPECT_EQ(reason["breaches"][0]["rate"], "action_failure_rate");
  EXPECT_DOUBLE_EQ(reason["breaches"][0]["increase_points"].get<double>(), 100.0);
  auto abort = store::run_job_sync(p, store::abort_canary(tenant, "b", "ops"));
  ASSERT_FALSE(abort.ok());
  EXPECT_EQ(abort.err().code, "no_canary");
}

}  // namespace
