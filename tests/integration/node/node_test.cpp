// parleyd as a process: the three ops endpoints over real HTTP, readiness following a
// real Redis that the test stops and restarts, configuration errors, and SIGTERM.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

}  // namespace
