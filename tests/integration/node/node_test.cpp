// parleyd as a process: the three ops endpoints over real HTTP, readiness following a
// real Redis that the test stops and restarts, configuration errors, and SIGTERM.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <iostream>
#include <optional>
#include <regex>

#include "src/http/client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace {

using parley::testing::child_process;
using namespace std::chrono_literals;

std::string config_path() { return std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"; }

/// A running parleyd on a free port with the given Redis; Postgres from the environment.
class node {
 public:
  explicit node(const std::string& redis_url, std::map<std::string, std::string> extra = {}) {
    const char* db = std::getenv("DATABASE_URL");
    if (db == nullptr) {
      ADD_FAILURE() << "DATABASE_URL is not set: run the tests with scripts/test";
      return;
    }
    extra["PORT"] = "0";
    extra["REDIS_URL"] = redis_url;
    extra["DATABASE_URL"] = db;
    proc_ = std::make_unique<child_process>(
        std::vector<std::string>{PARLEYD_PATH, "--config", config_path()}, extra);
    auto line = proc_->wait_for_line(
        [](const std::string& l) { return l.find("\"http_listening\"") != std::string::npos; });
    if (!line) {
      std::string out;
      for (const auto& l : proc_->lines()) out += l + "\n";
      ADD_FAILURE() << "parleyd did not report its port; output:\n" << out;
      return;
    }
    port_ = nlohmann::json::parse(line->substr(line->find('{')))["port"].get<std::string>();
  }
  bool up() const { return !port_.empty(); }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port_ + path; }
  child_process& proc() { return *proc_; }

  parley::http::client_response get(const std::string& path) {
    parley::http::client_request r;
    r.url = url(path);
    r.timeout = 5s;
    auto res = parley::http::fetch(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().message);
    return res.ok() ? *res : parley::http::client_response{};
  }

 private:
  std::unique_ptr<child_process> proc_;
  std::string port_;
};

std::string shared_redis() {
  const char* r = std::getenv("REDIS_URL");
  if (r == nullptr) ADD_FAILURE() << "REDIS_URL is not set: run the tests with scripts/test";
  return r ? r : "";
}

/// The value of the sample `name` (with its labels, exactly) in a Prometheus text body; -1 if
/// absent.
double sample(const std::string& body, const std::string& name) {
  auto pos = body.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(body.substr(pos + name.size() + 2));
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds deadline = 15s) {
  return parley::store::testing::eventually(cond, deadline);
}

TEST(Node, HealthzAnswersAndCountsInMetrics) {
  node n(shared_redis());
  ASSERT_TRUE(n.up());
  auto h = n.get("/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(nlohmann::json::parse(h.body)["status"], "alive");
  ASSERT_NE(h.header("X-Request-Id"), nullptr);

  const std::string healthz_ok = R"(parley_http_requests_total{route="/healthz",status="200"})";
  auto before = sample(n.get("/metrics").body, healthz_ok);
  EXPECT_EQ(before, 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(n.get("/healthz").status, 200);
  auto m = n.get("/metrics");
  EXPECT_EQ(m.status, 200);
  ASSERT_NE(m.header("Content-Type"), nullptr);
  EXPECT_NE(m.header("Content-Type")->find("text/plain"), std::string::npos);
  EXPECT_EQ(sample(m.body, healthz_ok), before + 3);
  EXPECT_GE(sample(m.body, R"(parley_http_request_duration_seconds_count{route="/healthz"})"), 4);
  EXPECT_GT(sample(m.body, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(sample(m.body, "process_open_fds"), 2);
}

TEST(Node, ReadyzTurnsReadyOnceMigrationsAreApplied) {
  node n(shared_redis());
  ASSERT_TRUE(n.up());
  parley::http::client_response r;
  ASSERT_TRUE(eventually([&] {
    r = n.get("/readyz");
    return r.status == 200;
  })) << r.status
      << " " << r.body;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["status"], "ready");
  EXPECT_EQ(body["components"]["redis"], "up");
  EXPECT_EQ(body["components"]["postgres"], "up");
  EXPECT_EQ(body["components"]["migrations"], "up");
  // The readiness pings went through the store clients, whose counters /metrics shows.
  auto m = n.get("/metrics").body;
  EXPECT_EQ(sample(m, "parley_redis_connected"), 1);
  EXPECT_EQ(sample(m, "parley_postgres_connected"), 1);
  EXPECT_GE(sample(m, "parley_redis_commands_total"), 1);
  EXPECT_GE(sample(m, "parley_redis_round_trips_total"), 1);
  EXPECT_LE(sample(m, "parley_redis_round_trips_total"), sample(m, "parley_redis_commands_total"));
}

TEST(Node, ReadyzFollowsRedisDownAndBackUp) {
  parley::store::testing::temp_dir dir;
  parley::store::testing::redis_process redis(dir.path());
  ASSERT_TRUE(redis.start());
  node n(redis.url());
  ASSERT_TRUE(n.up());
  parley::http::client_response r;
  ASSERT_TRUE(eventually([&] { return (r = n.get("/readyz")).status == 200; })) << r.body;

  redis.stop();
  ASSERT_TRUE(eventually([&] { return (r = n.get("/readyz")).status == 503; })) << r.body;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["status"], "not_ready");
  EXPECT_EQ(body["components"]["redis"], "down");
  EXPECT_EQ(body["components"]["postgres"], "up");
  EXPECT_TRUE(body["down"].contains("redis")) << r.body;
  EXPECT_EQ(sample(n.get("/metrics").body, "parley_redis_connected"), 0);
  EXPECT_FALSE(body["down"]["redis"].get<std::string>().empty());
  EXPECT_EQ(n.get("/healthz").status, 200) << "liveness does not depend on Redis";

  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(eventually([&] { return (r = n.get("/readyz")).status == 200; })) << r.body;
  auto m = n.get("/metrics").body;
  EXPECT_GE(sample(m, R"(parley_http_requests_total{route="/readyz",status="503"})"), 1);
}

TEST(Node, UnknownRoutesAndMethodsGetJsonErrors) {
  node n(shared_redis());
  ASSERT_TRUE(n.up());
  auto r = n.get("/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "not_found");
  parley::http::client_request post;
  post.method = "POST";
  post.url = n.url("/healthz");
  auto p = parley::http::fetch(post);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, 405);
}

TEST(Node, SigtermStopsCleanlyWithExitZero) {
  node n(shared_redis());
  ASSERT_TRUE(n.up());
  EXPECT_EQ(n.get("/healthz").status, 200);
  n.proc().kill(SIGTERM);
  auto code = n.proc().wait_exit(20s);
  ASSERT_TRUE(code.has_value()) << "parleyd did not stop within 20 s of SIGTERM";
  EXPECT_EQ(*code, 0);
  n.proc().drain();
  bool complete = false;
  for (const auto& l : n.proc().lines())
    complete |= l.find("\"shutdown_complete\"") != std::string::npos;
  EXPECT_TRUE(complete);
}

TEST(Node, BadConfigurationExitsTwoWithOneLineNamingTheKey) {
  child_process p({PARLEYD_PATH, "--config", config_path()}, {{"PARLEY_HTTP_THREADS", "lots"},
                                                              {"REDIS_URL", "redis://x"},
                                                              {"DATABASE_URL", "postgresql://x"}});
  auto code = p.wait_exit(20s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  p.drain();
  ASSERT_EQ(p.lines().size(), 1u);
  EXPECT_NE(p.lines()[0].find("PARLEY_HTTP_THREADS"), std::string::npos) << p.lines()[0];
}

TEST(Node, MissingConfigFileExitsTwo) {
  child_process p({PARLEYD_PATH, "--config", "/nonexistent.yaml"}, {});
  auto code = p.wait_exit(20s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
}

TEST(Node, HelpDocumentsTheConfigurationKeys) {
  child_process p({PARLEYD_PATH, "--help"}, {});
  auto code = p.wait_exit(20s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  p.drain();
  std::string all;
  for (const auto& l : p.lines()) all += l + "\n";
  EXPECT_NE(all.find("--config"), std::string::npos);
  EXPECT_NE(all.find("redis.url"), std::string::npos);
  EXPECT_NE(all.find("DATABASE_URL"), std::string::npos);
}

// ---------------------------------------------------------------- the change feed
// Two parleyd processes sharing Redis and Postgres: what one node's admin API changes
// reaches the other within a second (docs/changes.md). The nodes are told apart only
// by their admin and Bot API answers.

/// One HTTP exchange with parleyd; the body parsed as JSON when it is JSON.
struct exchange {
  int status = 0;
  nlohmann::json j;
  std::string body;
};

exchange call(const node& n, const std::string& method, const std::string& path,
              const std::string& body, std::vector<std::pair<std::string, std::string>> headers) {
  parley::http::client_request r;
  r.method = method;
  r.url = n.url(path);
  r.timeout = 10s;
  r.body = body;
  r.headers = std::move(headers);
  auto res = parley::http::fetch(r);
  EXPECT_TRUE(res.ok()) << method << " " << path << ": " << (res.ok() ? "" : res.err().message);
  if (!res.ok()) return {};
  return {res->status, nlohmann::json::parse(res->body, nullptr, false), res->body};
}

const std::string admin_token = "changes-test-token";

exchange admin(const node& n, const std::string& method, const std::string& path,
               const std::string& body = "") {
  return call(n, method, "/admin/v1" + path, body,
              {{"Authorization", "Bearer " + admin_token}, {"Content-Type", "application/json"}});
}

/// A Bot API session start with a fresh external key.
exchange start_session(const node& n, const std::string& tenant, const std::string& key,
                       const std::string& bot) {
  static std::atomic<int> sessions{0};
  nlohmann::json body = {{"externalSessionKey", "changes-" + std::to_string(++sessions)},
                         {"message", nlohmann::json::object()},
                         {"forceConfig", {{"endpoint", "https://example.com/"}}}};
  return call(n, "POST", "/v5.3.0/bots/" + bot + "/sessions", body.dump(),
              {{"X-Org-Id", tenant},
               {"Authorization", "Bearer " + key},
               {"Content-Type", "application/json"}});
}

/// A bot whose welcome says `text`.
std::string bot_saying(const std::string& text) {
  return "bot:\n  name: greeter\n  welcome: hi\ndialogs:\n  hi:\n    - message: \"" + text + "\"\n";
}

std::string first_text(const exchange& e) {
  if (!e.j.is_object() || !e.j.contains("messages") || e.j["messages"].empty()) return "";
  return e.j["messages"][0].value("text", "");
}

/// A node of region `region` with the admin API on; `name` is its node id.
std::unique_ptr<node> region_node(const std::string& redis_url, const std::string& region,
                                  const std::string& name) {
  auto n = std::make_unique<node>(
      redis_url, std::map<std::string, std::string>{{"PARLEY_ADMIN_TOKEN", admin_token},
                                                    {"PARLEY_NODE_REGION", region},
                                                    {"PARLEY_NODE_NAME", name}});
  if (!n->up()) return nullptr;
  parley::http::client_response r;
  EXPECT_TRUE(eventually([&] { return (r = n->get("/readyz")).status == 200; })) << r.body;
  return n;
}

/// Two nodes of a fresh region, node 1 on `redis1` and node 2 on `redis2`, and a fresh
/// tenant with one API key, made through node 1's admin API.
struct two_nodes {
  std::unique_ptr<node> n1, n2;
  std::string tenant;
  long long key_id = 0;
  std::string key;

  two_nodes(const std::string& stem, const std::string& redis1, const std::string& redis2) {
    auto region = parley::store::testing::unique_name("changes");
    n1 = region_node(redis1, region, region + "-1");
    n2 = region_node(redis2, region, region + "-2");
    if (!n1 || !n2) return;
    tenant = parley::store::testing::unique_name(stem);
    auto t = admin(*n1, "POST", "/tenants", nlohmann::json{{"id", tenant}, {"name", stem}}.dump());
    EXPECT_EQ(t.status, 201) << t.body;
    auto k = admin(*n1, "POST", "/tenants/" + tenant + "/api-keys", "{}");
    EXPECT_EQ(k.status, 201) << k.body;
    if (k.status != 201) return;
    key_id = k.j["id"].get<long long>();
    key = k.j["key"].get<std::string>();
  }
  bool ready() const { return n1 && n2 && !key.empty(); }
  /// Waits until node 2 starts sessions promptly: 10 in a row, each within 250 ms.
  /// Nodes sharing a Redis form a cluster, and a session whose shard is still moving
  /// after node 2 joined waits for it (seconds): that is the cluster's handoff, not
  /// the change feed these tests time.
  bool settled() const {
    int prompt = 0;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (prompt < 10 && std::chrono::steady_clock::now() < deadline) {
      auto sent = std::chrono::steady_clock::now();
      bool ok = start_on(*n2).status == 200;
      prompt = ok && std::chrono::steady_clock::now() - sent < 250ms ? prompt + 1 : 0;
    }
    return prompt == 10;
  }
  std::string bot_path(const std::string& rest) const {
    return "/tenants/" + tenant + "/bots/greeter/" + rest;
  }
  exchange revoke() const {
    return admin(*n1, "POST",
                 "/tenants/" + tenant + "/api-keys/" + std::to_string(key_id) + "/revoke");
  }
  exchange start_on(const node& n) const { return start_session(n, tenant, key, "greeter"); }
  /// Whether `n` accepts the key, without changing the session: a `redirect` to a
  /// dialog the bot does not have is answered 400 (naming message.dialogId) once
  /// authenticated, by whichever node owns the session, and 401 when the key is refused.
  exchange auth_probe(const node& n, const std::string& session) const {
    nlohmann::json body = {
        {"message", {{"type", "redirect"}, {"sequenceId", 1}, {"dialogId", "no-such-dialog"}}}};
    return call(n, "POST", "/v5.3.0/sessions/" + session + "/messages", body.dump(),
                {{"X-Org-Id", tenant},
                 {"Authorization", "Bearer " + key},
                 {"Content-Type", "application/json"}});
  }
};

/// Retries `attempt` (a request) until `done` holds of its answer; how long that took
/// from `since`, or nullopt after 10 s.
std::optional<std::chrono::milliseconds> time_until(
    std::chrono::steady_clock::time_point since, const std::function<exchange()>& attempt,
    const std::function<bool(const exchange&)>& done) {
  auto deadline = since + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done(attempt()))
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - since);
    std::this_thread::sleep_for(5ms);  // the polling period, as eventually()
  }
  return std::nullopt;
}

/// Whether `n` logged `event`, waiting up to 10 s for it.
bool logged(node& n, const std::string& event) {
  auto is = [&](const std::string& l) { return l.find("\"" + event + "\"") != std::string::npos; };
  for (const auto& l : n.proc().lines())
    if (is(l)) return true;
  return n.proc().wait_for_line(is, 10s).has_value();
}

TEST(NodeChanges, ARevokedKeyIsRefusedOnTheOtherNodeWithinASecond) {
  two_nodes r("revoke", shared_redis(), shared_redis());
  ASSERT_TRUE(r.ready());
  auto deployed = admin(*r.n1, "POST", r.bot_path("versions?activate=true"), bot_saying("hello"));
  ASSERT_EQ(deployed.status, 201) << deployed.body;

  // Node 2 accepts the key, and now holds it in its authentication cache (60 s TTL).
  std::string session;
  for (int i = 0; i < 3; ++i) {
    auto ok = r.start_on(*r.n2);
    ASSERT_EQ(ok.status, 200) << ok.body;
    session = ok.j.value("sessionId", "");
  }
  auto probe = r.auth_probe(*r.n2, session);
  ASSERT_EQ(probe.status, 400) << probe.body;
  ASSERT_NE(probe.body.find("message.dialogId"), std::string::npos) << probe.body;

  auto revoked_at = std::chrono::steady_clock::now();
  auto revoke = r.revoke();
  ASSERT_EQ(revoke.status, 200) << revoke.body;
  auto took = time_until(
      revoked_at, [&] { return r.auth_probe(*r.n2, session); },
      [](const exchange& e) { return e.status == 401; });
  ASSERT_TRUE(took) << "node 2 still accepts the revoked key after 10 s";
  EXPECT_LT(*took, 1s) << "node 2 refused the revoked key only after " << took->count() << " ms";
  std::cout << "revoked key refused by the other node after " << took->count() << " ms\n";
  EXPECT_EQ(r.start_on(*r.n2).status, 401);
  EXPECT_EQ(r.start_on(*r.n1).status, 401);
  auto m = r.n2->get("/metrics").body;
  EXPECT_GE(sample(m, R"(parley_invalidations_received_total{kind="api_key_revoked"})"), 1);
  EXPECT_EQ(sample(m, "parley_changes_subscribed"), 1);
  EXPECT_TRUE(logged(*r.n2, "changes_subscribed"));
}

TEST(NodeChanges, ATenantsNewLimitsReachTheOtherNodeWithinASecond) {
  two_nodes r("limits", shared_redis(), shared_redis());
  ASSERT_TRUE(r.ready());
  auto before = sample(r.n2->get("/metrics").body,
                       R"(parley_invalidations_received_total{kind="limits_changed"})");
  auto put_at = std::chrono::steady_clock::now();
  auto put = admin(*r.n1, "PUT", "/tenants/" + r.tenant + "/limits",
                   R"({"attachments":{"max_attachments":2}})");
  ASSERT_EQ(put.status, 200) << put.body;
  auto took = time_until(
      put_at, [&] { return call(*r.n2, "GET", "/metrics", "", {}); },
      [&](const exchange& e) {
        return sample(e.body, R"(parley_invalidations_received_total{kind="limits_changed"})") >
               before;
      });
  ASSERT_TRUE(took) << "node 2 did not hear limits_changed within 10 s";
  EXPECT_LT(*took, 1s) << "node 2 heard limits_changed only after " << took->count() << " ms";
  // Any node answers with what was stored.
  auto shown = admin(*r.n2, "GET", "/tenants/" + r.tenant + "/limits");
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.j["attachments"]["max_attachments"], 2) << shown.body;
}

TEST(NodeChanges, ANewActiveVersionRunsOnTheOtherNodeWithinASecond) {
  two_nodes r("activate", shared_redis(), shared_redis());
  ASSERT_TRUE(r.ready());
  auto v1 = admin(*r.n1, "POST", r.bot_path("versions?activate=true"), bot_saying("version one"));
  ASSERT_EQ(v1.status, 201) << v1.body;
  auto v2 = admin(*r.n1, "POST", r.bot_path("versions"), bot_saying("version two"));
  ASSERT_EQ(v2.status, 201) << v2.body;
  ASSERT_FALSE(v2.j.value("activated", true));
  ASSERT_TRUE(r.settled()) << "node 2 never started sessions promptly";
  auto before = r.start_on(*r.n2);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(first_text(before), "version one");
  EXPECT_EQ(before.j.value("botVersion", ""), v1.j.value("program_id", ""));

  // Until node 2 starts a session saying `text`: how long after `since`, and the answer.
  exchange last;
  auto runs = [&](std::chrono::steady_clock::time_point since, const std::string& text) {
    return time_until(
        since, [&] { return last = r.start_on(*r.n2); },
        [&](const exchange& e) { return e.status == 200 && first_text(e) == text; });
  };
  auto activated_at = std::chrono::steady_clock::now();
  auto act = admin(*r.n1, "POST", r.bot_path("activate"),
                   nlohmann::json{{"version", v2.j["version"]}}.dump());
  ASSERT_EQ(act.status, 200) << act.body;
  auto took = runs(activated_at, "version two");
  ASSERT_TRUE(took) << "node 2 still starts sessions on version one after 10 s: " << last.body;
  EXPECT_LT(*took, 1s) << "node 2 ran the new version only after " << took->count() << " ms";
  std::cout << "new version running on the other node after " << took->count() << " ms\n";
  EXPECT_EQ(last.j.value("botVersion", ""), v2.j.value("program_id", ""));
  // The registry's 250 ms poll would get there too: the feed is what told node 2.
  EXPECT_TRUE(eventually([&] {
    return sample(r.n2->get("/metrics").body,
                  R"(parley_invalidations_received_total{kind="bot_activated"})") >= 2;
  })) << "deploy with activate=true and activate each announce the change";

  auto rolled_at = std::chrono::steady_clock::now();
  auto back = admin(*r.n1, "POST", r.bot_path("rollback"));
  ASSERT_EQ(back.status, 200) << back.body;
  took = runs(rolled_at, "version one");
  ASSERT_TRUE(took) << "the rollback did not reach node 2: " << last.body;
  EXPECT_LT(*took, 1s) << "node 2 ran the rolled-back version only after " << took->count()
                       << " ms";
}

TEST(NodeChanges, ANodeThatMissedTheFeedCatchesUpWhenItResubscribes) {
  // Node 2 has a Redis of its own, which the test stops: it cannot hear node 1.
  parley::store::testing::temp_dir dir;
  parley::store::testing::redis_process private_redis(dir.path());
  ASSERT_TRUE(private_redis.start());
  two_nodes r("missed", shared_redis(), private_redis.url());
  ASSERT_TRUE(r.ready());
  auto deployed = admin(*r.n1, "POST", r.bot_path("versions?activate=true"), bot_saying("hello"));
  ASSERT_EQ(deployed.status, 201) << deployed.body;
  auto started = r.start_on(*r.n2);
  ASSERT_EQ(started.status, 200) << started.body;
  auto session = started.j.value("sessionId", "");
  auto probe = r.auth_probe(*r.n2, session);
  ASSERT_EQ(probe.status, 400) << probe.body;
  ASSERT_NE(probe.body.find("message.dialogId"), std::string::npos) << probe.body;

  private_redis.stop();
  ASSERT_TRUE(logged(*r.n2, "changes_subscription_lost"));
  auto revoke = r.revoke();
  ASSERT_EQ(revoke.status, 200) << revoke.body;
  // Unheard: node 2 still accepts the key from its cache, where Postgres refuses it.
  EXPECT_EQ(r.auth_probe(*r.n2, session).status, 400);

  auto restarted_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(private_redis.start());
  auto took = time_until(
      restarted_at, [&] { return r.auth_probe(*r.n2, session); },
      [](const exchange& e) { return e.status == 401; });
  ASSERT_TRUE(took) << "node 2 still accepts the revoked key after its Redis came back";
  std::cout << "revoked key refused " << took->count() << " ms after Redis came back\n";
  EXPECT_LT(*took, 5s) << "the resubscription did not drop the cache (TTL: 60 s)";
  auto m = r.n2->get("/metrics").body;
  EXPECT_GE(sample(m, R"(parley_invalidations_received_total{kind="subscribed"})"), 2);
}

}  // namespace
