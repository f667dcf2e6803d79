#pragma once
/// The cluster tests' fixture: a region (region.hpp) and a tenant of its own with an
/// API key and the counter bot (counter.yaml) deployed and active, plus single Bot API
/// calls for the tests that drive a conversation by hand.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "cluster/placement/placement.hpp"
#include "src/admin/deploy.hpp"
#include "src/http/client.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "tests/cluster/driver.hpp"
#include "tests/cluster/region.hpp"

namespace parley::cluster::testing {

/// One Bot API answer.
struct bot_reply {
  int status = 0;  ///< 0: no HTTP answer
  std::string error;
  nlohmann::json body;
  std::string texts;   ///< reply_texts(body)
  std::string node;    ///< X-Parley-Node
  std::string region;  ///< X-Parley-Region (set when another region answered)
  std::string retry_after;
};

class Cluster : public ::testing::Test {
 protected:
  /// Starts the region, waits until every node sees all as up, then makes the tenant.
  void start_region(std::size_t nodes, std::map<std::string, std::string> env = {}) {
    region::options o;
    o.nodes = nodes;
    o.env = std::move(env);
    region_ = std::make_unique<region>(std::move(o));
    ASSERT_TRUE(region_->ok());
    ASSERT_TRUE(region_->await_converged());
    make_tenant();
  }

  void make_tenant() {
    auto url = env_or_fail("DATABASE_URL");
    ASSERT_FALSE(url.empty());
    auto pg = parley::store::postgres_client::create({url});
    ASSERT_TRUE(pg.ok()) << pg.err().message;
    pg_ = std::move(*pg);
    tenant_ = parley::store::testing::unique_name("ct");
    std::string why;
    // The nodes applied the migrations before they reported up.
    auto t = parley::store::run_job_sync(
        *pg_, parley::store::create_tenant(tenant_, "Cluster test tenant", "test"));
    ASSERT_TRUE(t.ok()) << t.err().code << ": " << t.err().message;
    provision_tenant();
  }

  /// Gives tenant_ (in pg_) an API key (key_) and the counter bot, active.
  void provision_tenant() {
    auto key = parley::store::run_job_sync(*pg_, parley::store::create_api_key(tenant_, "t", "t"));
    ASSERT_TRUE(key.ok()) << key.err().message;
    key_ = key->key;
    std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/tests/cluster/counter.yaml");
    std::stringstream s;
    s << in.rdbuf();
    parley::admin::deploy_request d;
    d.tenant = tenant_;
    d.bot = "counter";
    d.source = s.str();
    d.deployed_by = "test";
    d.activate = true;
    auto r = parley::store::run_job_sync(*pg_, parley::admin::deploy_version(d));
    ASSERT_TRUE(r.ok() && r->deployed) << (r.ok() ? "diagnostics" : r.err().message);
  }

  /// start_region(nodes), then the load driver (make_driver(o)) running until every
  /// conversation has answered 3 turns. Null, after the failures, when any step failed.
  std::unique_ptr<driver> start_under_load(std::size_t nodes, driver::options o = {}) {
    start_region(nodes);
    if (HasFatalFailure()) return nullptr;
    auto d = make_driver(o);
    d->start();
    if (!d->await_answered_after(clock::now(), 3, 60s)) {
      ADD_FAILURE() << "the load did not get going";
      return nullptr;
    }
    return d;
  }

  std::unique_ptr<driver> make_driver(driver::options o = {}) {
    region* r = region_.get();
    return std::make_unique<driver>([r] { return r->endpoints(); }, tenant_, key_, o);
  }

  /// A session start with `external_key` through `endpoint`.
  bot_reply start_session(const std::string& endpoint, const std::string& external_key) {
    return call(endpoint + "/v5.3.0/bots/counter/sessions",
                {{"externalSessionKey", external_key},
                 {"message", nlohmann::json::object()},
                 {"forceConfig", {{"endpoint", endpoint}}}});
  }
  /// Text turn `seq` of `session` through `endpoint`.
  bot_reply text(const std::string& endpoint, const std::string& session, std::int64_t seq,
                 const std::string& text, std::chrono::milliseconds timeout = 10s) {
    return call(endpoint + "/v5.3.0/sessions/" + session + "/messages",
                {{"message", {{"type", "text"}, {"sequenceId", seq}, {"text", text}}}}, timeout);
  }

  bot_reply call(const std::string& url, const nlohmann::json& body,
                 std::chrono::milliseconds timeout = 10s) {
    parley::http::client_request r;
    r.method = "POST";
    r.url = url;
    r.timeout = timeout;
    r.headers = {{"X-Org-Id", tenant_},
                 {"Authorization", "Bearer " + key_},
                 {"Content-Type", "application/json"}};
    r.body = body.dump();
    auto res = parley::http::fetch(r);
    bot_reply out;
    if (!res.ok()) {
      out.error = res.err().code + ": " + res.err().message;
      return out;
    }
    out.status = res->status;
    out.body = nlohmann::json::parse(res->body, nullptr, false);
    if (out.status != 200) out.error = res->body;
    out.texts = reply_texts(out.body);
    if (auto n = res->header("X-Parley-Node")) out.node = *n;
    if (auto g = res->header("X-Parley-Region")) out.region = *g;
    if (auto a = res->header("Retry-After")) out.retry_after = *a;
    return out;
  }

  /// `POST /admin/v1/cluster/nodes/{id}/drain` through `endpoint`: the status.
  int drain(const std::string& endpoint, const std::string& id) {
    parley::http::client_request r;
    r.method = "POST";
    r.url = endpoint + "/admin/v1/cluster/nodes/" + id + "/drain";
    r.headers = {{"Authorization", "Bearer " + admin_token}};
    auto res = parley::http::fetch(r);
    return res.ok() ? res->status : 0;
  }

  /// The shard count the region reports (the key cluster.shards, 1024 by default).
  long shards() {
    auto s = region_->node(0).cluster_status();
    return s.is_object() ? s.value("shards", 0L) : 0L;
  }

  /// The shards each of the up nodes `ids` owns under rendezvous placement
  /// (cluster/placement): what the region must show once the placement has settled.
  static std::map<std::string, long> placement(const std::vector<std::string>& ids, long total) {
    std::map<std::string, long> out;
    for (const auto& id : ids) out[id] = 0;
    for (int owner : parley::cluster::assign(static_cast<uint32_t>(total), ids))
      if (owner >= 0) ++out[ids[static_cast<std::size_t>(owner)]];
    return out;
  }
  /// Whether `status` shows exactly the owners of `want` up, each with its shards.
  static bool settled(const json& status, const std::map<std::string, long>& want) {
    std::size_t up = 0;
    for (const auto& m : status.value("nodes", json::array()))
      if (m.value("state", "") == "up") ++up;
    if (up != want.size()) return false;
    for (const auto& [id, n] : want)
      if (state_of(status, id) != "up" || field_of(status, id, "shards_owned") != n) return false;
    return true;
  }

  /// The most common value of `owners` ("" ignored).
  static std::string most_common(const std::vector<std::string>& owners) {
    std::map<std::string, int> count;
    for (const auto& o : owners)
      if (!o.empty()) ++count[o];
    std::string best;
    for (const auto& [o, n] : count)
      if (best.empty() || n > count[best]) best = o;
    return best;
  }

  /// The driver's checks once it stopped: answers, a probe turn, answers again (the
  /// probe's), transcripts.
  void check_everything(driver& d) {
    d.stop();
    d.check_answers();
    d.probe();
    d.check_answers();
    d.check_transcripts(*pg_);
  }

  std::unique_ptr<region> region_;
  std::unique_ptr<parley::store::postgres_client> pg_;
  std::string tenant_, key_;
};

/// Runs `f` at scope exit, also after a failed assertion returned early.
class scope_exit {
 public:
  explicit scope_exit(std::function<void()> f) : f_(std::move(f)) {}
  ~scope_exit() { f_(); }
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;

 private:
  std::function<void()> f_;
};

/// p50 and max of `v` (0 for an empty one).
inline std::pair<double, double> p50_max(std::vector<double> v) {
  if (v.empty()) return {0, 0};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.back()};
}

}  // namespace parley::cluster::testing
