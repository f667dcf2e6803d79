// The region router between two in-process "regions" over a real CAF middleman
// connection on loopback: region eu (an endpoint published on port 0 that serves region
// requests, with its own catalog) and region us (a router whose peer is eu). No Redis,
// no Postgres: each region's catalog is a set of tenant ids, so the test can count how
// often each is asked.

#include "cluster/region/region_router.hpp"

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "cluster/endpoint/endpoint.hpp"
#include "tests/support/servers.hpp"

namespace parley::cluster {
namespace {

using namespace std::chrono_literals;
using parley::store::testing::eventually;

/// A region's catalog: which tenants it has, and how often each was asked.
struct catalog {
  std::set<std::string> tenants;
  std::mutex m;
  std::map<std::string, int> asked;
  /// Lookups of these tenants wait until release() (to hold a lookup in flight).
  std::set<std::string> held;
  std::vector<std::pair<std::string, std::function<void(result<bool>)>>> waiting;

  int times_asked(const std::string& t) {
    std::lock_guard<std::mutex> lock(m);
    return asked[t];
  }
  auto lookup() {
    return [this](const std::string& t, std::function<void(result<bool>)> done) {
      {
        std::lock_guard<std::mutex> lock(m);
        ++asked[t];
        if (held.count(t)) {
          waiting.emplace_back(t, std::move(done));
          return;
        }
      }
      done(tenants.count(t) > 0);
    };
  }
  void release() {
    std::vector<std::pair<std::string, std::function<void(result<bool>)>>> w;
    {
      std::lock_guard<std::mutex> lock(m);
      held.clear();
      w.swap(waiting);
    }
    for (auto& [t, done] : w) done(tenants.count(t) > 0);
  }
};

std::string org_of(const http::request& req) {
  const std::string* org = req.header("X-Org-Id");
  return org ? *org : std::string();
}

class RegionRouter : public ::testing::Test {
 protected:
  RegionRouter() : sys_(config()) {}

  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    static bool once = [] {
      cfg.load<caf::io::middleman>();
      cfg.set("logger.verbosity", caf::atom("quiet"));
      cfg.set("scheduler.max-threads", 2);
      return true;
    }();
    (void)once;
    return cfg;
  }

  void SetUp() override {
    eu_.tenants = {"acme"};
    us_.tenants = {"here-co"};
    region_router::deps ed;
    ed.system = &sys_;
    ed.tenant_here = eu_.lookup();
    ed.serve = [](http::request&& req, http::responder reply) {
      auto res = http::response::json(200, "{\"ran\":\"eu\",\"path\":\"" + req.path + "\"}");
      res.headers.emplace_back("X-Seen-Org", org_of(req));
      reply(std::move(res));
    };
    region_options eo;
    eo.region = "eu";
    eu_router_ = std::make_unique<region_router>(std::move(ed), eo);
    endpoint::handlers h;
    h.region = [this](std::string bytes, std::function<void(std::string)> done) {
      eu_router_->serve(std::move(bytes), std::move(done));
    };
    eu_endpoint_ = std::make_unique<endpoint>(sys_, std::move(h), 5s);
    auto port = eu_endpoint_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.err().message;

    region_router::deps ud;
    ud.system = &sys_;
    ud.tenant_here = us_.lookup();
    region_options uo;
    uo.region = "us";
    uo.peers = {settings::peer_region{"eu", {{"127.0.0.1", *port}}}};
    uo.unknown_ttl = 200ms;
    uo.reconnect = 50ms;
    us_router_ = std::make_unique<region_router>(std::move(ud), uo);
    us_router_->start();
    ASSERT_TRUE(eventually([&] { return us_router_->connected("eu"); }, 10s));
    front_ = us_router_->front(
        [this](http::request&& req, http::responder reply) {
          ++local_;
          reply(http::response::json(200, "{\"ran\":\"us\",\"org\":\"" + org_of(req) + "\"}"));
        },
        org_of);
  }

  void TearDown() override {
    us_router_->stop();
    eu_router_->stop();
    eu_endpoint_->stop();
  }

  /// Sends a request for `org` through us's front; its answer (deadline 10 s).
  std::future<http::response> send(const std::string& org) {
    auto p = std::make_shared<std::promise<http::response>>();
    auto f = p->get_future();
    http::request req;
    req.method = "POST";
    req.target = req.path = "/v5.3.0/sessions/s/messages";
    if (!org.empty()) req.headers = {{"X-Org-Id", org}};
    front_(std::move(req), http::responder::to([p](http::response r) { p->set_value(r); }));
    return f;
  }
  http::response call(const std::string& org) {
    auto f = send(org);
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }
  static std::string header(const http::response& r, const std::string& name) {
    auto* v = http::find_header(r.headers, name);
    return v ? *v : "";
  }

  caf::actor_system sys_;
  catalog eu_, us_;
  std::unique_ptr<region_router> eu_router_, us_router_;
  std::unique_ptr<endpoint> eu_endpoint_;
  http::handler front_;
  std::atomic<int> local_{0};
};

TEST_F(RegionRouter, ATenantOfThePeerRegionIsRunThereAndItsHomeIsRemembered) {
  auto r = call("acme");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"ran\":\"eu\",\"path\":\"/v5.3.0/sessions/s/messages\"}");
  EXPECT_EQ(header(r, "X-Parley-Region"), "eu");
  EXPECT_EQ(header(r, "X-Seen-Org"), "acme") << "the request's headers travel with it";
  EXPECT_EQ(call("acme").status, 200);
  EXPECT_EQ(us_.times_asked("acme"), 1) << "the home region is looked up once";
  EXPECT_EQ(eu_.times_asked("acme"), 1);
  EXPECT_EQ(local_, 0);
}

TEST_F(RegionRouter, ATenantOfThisRegionAndARequestWithoutOneAreServedHere) {
  auto r = call("here-co");
  EXPECT_EQ(r.body, "{\"ran\":\"us\",\"org\":\"here-co\"}");
  EXPECT_EQ(header(r, "X-Parley-Region"), "");
  EXPECT_EQ(eu_.times_asked("here-co"), 0) << "a tenant found here is not asked about";
  EXPECT_EQ(call("").body, "{\"ran\":\"us\",\"org\":\"\"}");
  EXPECT_EQ(local_, 2);
}

TEST_F(RegionRouter, ConcurrentRequestsForAnUnknownTenantShareOneLookupThatIsForgottenSoon) {
  {
    std::lock_guard<std::mutex> lock(us_.m);
    us_.held = {"ghost"};
  }
  std::vector<std::future<http::response>> answers;
  for (int i = 0; i < 8; ++i) answers.push_back(send("ghost"));
  EXPECT_EQ(us_.times_asked("ghost"), 1) << "eight requests, one lookup in flight";
  us_.release();
  for (auto& a : answers) {
    ASSERT_EQ(a.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(a.get().body, "{\"ran\":\"us\",\"org\":\"ghost\"}") << "no region has it: here";
  }
  EXPECT_EQ(eu_.times_asked("ghost"), 1);
  EXPECT_EQ(local_, 8);
  // "Nowhere" is remembered for unknown_ttl (200 ms) only: a tenant created in eu
  // meanwhile becomes reachable.
  eu_.tenants.insert("ghost");
  ASSERT_TRUE(eventually([&] { return header(call("ghost"), "X-Parley-Region") == "eu"; }, 5s));
  EXPECT_EQ(eu_.times_asked("ghost"), 2);
}

TEST_F(RegionRouter, WhenTheHomeRegionIsLostTheAnswerIs503WithRetryAfter) {
  ASSERT_EQ(call("acme").status, 200);
  eu_endpoint_->stop();
  ASSERT_TRUE(eventually([&] { return !us_router_->connected("eu"); }, 10s));
  auto r = call("acme");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header(r, "Retry-After"), "1");
  EXPECT_NE(r.body.find("region 'eu'"), std::string::npos) << r.body;
  // A tenant whose home cannot be asked about is not guessed to be nowhere.
  auto unknown = call("other");
  EXPECT_EQ(unknown.status, 503) << unknown.body;
  EXPECT_EQ(local_, 0);
}

}  // namespace
}  // namespace parley::cluster
