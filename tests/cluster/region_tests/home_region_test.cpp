// Two regions, each a cluster of its own: its own redis-server and its own Postgres
// database (on the server scripts/test started). A tenant created in region eu is
// served through a node of region us, which forwards every request to eu over the
// cluster endpoints; us's Redis and Postgres hold nothing of it afterwards. Also: the
// admin API refuses to create a tenant for another region, an org no region has gets
// us's own 401, and a request whose home region is down answers 503 with Retry-After.

#include <pqxx/pqxx>

#include "src/store/redis.hpp"
#include "tests/cluster/fixture.hpp"

namespace {

using namespace parley::cluster::testing;

/// `url` (postgresql:///db?...) naming database `db` instead.
std::string with_database(const std::string& url, const std::string& db) {
  auto q = url.find('?');
  auto slash = url.rfind('/', q);
  return url.substr(0, slash + 1) + db + (q == std::string::npos ? "" : url.substr(q));
}

/// An admin API call: (status, body).
std::pair<int, json> admin(const std::string& url, const std::string& method,
                           const json& body = nullptr) {
  parley::http::client_request r;
  r.method = method;
  r.url = url;
  r.headers = {{"Authorization", "Bearer " + admin_token}, {"Content-Type", "application/json"}};
  if (!body.is_null()) r.body = body.dump();
  auto res = parley::http::fetch(r);
  if (!res.ok()) return {0, json(res.err().message)};
  return {res->status, json::parse(res->body, nullptr, false)};
}

/// Rows naming `tenant` in every table of `pg_url` that has a tenant_id column, plus
/// its tenants row: "table=count" for each non-empty one.
std::string rows_of(const std::string& pg_url, const std::string& tenant) {
  pqxx::connection c(pg_url);
  pqxx::work tx(c);
  std::string found;
  auto count = [&](const std::string& table, const std::string& column) {
    auto n = tx.exec_params("SELECT count(*) FROM " + tx.quote_name(table) + " WHERE " +
                                tx.quote_name(column) + " = $1",
                            tenant)[0][0]
                 .as<long>();
    if (n > 0) found += table + "=" + std::to_string(n) + " ";
  };
  count("tenants", "id");
  for (const auto& row : tx.exec("SELECT table_name FROM information_schema.columns WHERE "
                                 "table_schema = 'public' AND column_name = 'tenant_id'"))
    count(row[0].as<std::string>(), "tenant_id");
  return found;
}

class TwoRegions : public Cluster {
 protected:
  void TearDown() override {
    us_.reset();  // the nodes first, then their database
    if (!us_db_.empty()) {
      pqxx::connection c(env_or_fail("DATABASE_URL"));
      pqxx::nontransaction tx(c);
      tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(us_db_) + " WITH (FORCE)");
    }
  }

  std::unique_ptr<region> us_;
  std::string us_db_, us_pg_;
};

TEST_F(TwoRegions, ATenantOfRegionEuIsServedThroughRegionUsWhichStoresNothingOfIt) {
  // Region eu: one node, the Postgres of scripts/test, a redis-server of its own.
  region::options eu;
  eu.nodes = 1;
  eu.env = {{"PARLEY_NODE_REGION", "eu"}};
  region_ = std::make_unique<region>(eu);
  ASSERT_TRUE(region_->ok());
  ASSERT_TRUE(region_->await_converged());

  // Region us: a database of its own and a redis-server of its own; eu is its peer.
  us_db_ = parley::store::testing::unique_name("us");
  {
    pqxx::connection c(env_or_fail("DATABASE_URL"));
    pqxx::nontransaction tx(c);
    tx.exec("CREATE DATABASE " + tx.quote_name(us_db_));
  }
  us_pg_ = with_database(env_or_fail("DATABASE_URL"), us_db_);
  region::options us;
  us.nodes = 1;
  us.env = {{"PARLEY_NODE_REGION", "us"},
            {"DATABASE_URL", us_pg_},
            {"PARLEY_CLUSTER_PEER_REGIONS", "eu=127.0.0.1:" + region_->node(0).cluster_port()}};
  us_ = std::make_unique<region>(us);
  ASSERT_TRUE(us_->ok());
  ASSERT_TRUE(us_->await_converged());
  const std::string eu_url = region_->node(0).url(), us_url = us_->node(0).url();
  // us's database is new: its node applies the migrations while it starts, and is
  // ready (/readyz) once they are all in.
  for (const auto& url : {eu_url, us_url})
    ASSERT_TRUE(parley::store::testing::eventually(
        [&] {
          parley::http::client_request r;
          r.url = url + "/readyz";
          auto res = parley::http::fetch(r);
          return res.ok() && res->status == 200;
        },
        60s))
        << url << " never got ready";
  // us connects to eu, and its cluster status says so.
  json status;
  ASSERT_TRUE(us_->await_status(
      0,
      [](const json& st) {
        auto peers = st.value("peer_regions", json::array());
        return peers.size() == 1 && peers[0].value("region", "") == "eu" &&
               peers[0].value("connected", false);
      },
      20s, &status))
      << "us did not connect to eu: " << status.dump() << "\n"
      << us_->node(0).output();

  // The tenant is created through eu's admin API, for eu; us refuses to create one
  // for eu, naming the field.
  tenant_ = parley::store::testing::unique_name("hr");
  auto refused = admin(us_url + "/admin/v1/tenants", "POST",
                       {{"id", tenant_}, {"name", "Home region test"}, {"region", "eu"}});
  EXPECT_EQ(refused.first, 422) << refused.second.dump();
  EXPECT_EQ(refused.second["error"].value("field", ""), "region") << refused.second.dump();
  auto created = admin(eu_url + "/admin/v1/tenants", "POST",
                       {{"id", tenant_}, {"name", "Home region test"}, {"region", "eu"}});
  ASSERT_EQ(created.first, 201) << created.second.dump();
  EXPECT_EQ(created.second.value("home_region", ""), "eu");
  auto shown = admin(eu_url + "/admin/v1/tenants/" + tenant_, "GET");
  EXPECT_EQ(shown.second.value("home_region", ""), "eu") << shown.second.dump();
  auto pg = parley::store::postgres_client::create({env_or_fail("DATABASE_URL")});
  ASSERT_TRUE(pg.ok()) << pg.err().message;
  pg_ = std::move(*pg);
  provision_tenant();
  ASSERT_FALSE(HasFatalFailure());

  // A conversation through us: started, three turns, each answered by eu.
  auto started = start_session(us_url, "external-1");
  ASSERT_EQ(started.status, 200) << started.error;
  EXPECT_EQ(started.region, "eu");
  EXPECT_NE(started.texts.find("Counter ready."), std::string::npos) << started.texts;
  std::string session = started.body.value("sessionId", "");
  ASSERT_FALSE(session.empty()) << started.body.dump();
  for (int seq = 1; seq <= 3; ++seq) {
    auto r = text(us_url, session, seq, "hello " + std::to_string(seq));
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.region, "eu");
    EXPECT_NE(r.texts.find("turn " + std::to_string(seq) + ": hello"), std::string::npos)
        << r.texts;
  }
  // The same conversation goes on through eu itself: its state lives there.
  auto direct = text(eu_url, session, 4, "direct");
  ASSERT_EQ(direct.status, 200) << direct.error;
  EXPECT_EQ(direct.region, "");
  EXPECT_NE(direct.texts.find("turn 4: direct"), std::string::npos) << direct.texts;
  // A retried start through us lands on the same session (its key lives in eu).
  auto retried = start_session(us_url, "external-1");
  ASSERT_EQ(retried.status, 200) << retried.error;
  EXPECT_EQ(retried.body.value("sessionId", ""), session);

  // An org that no region has gets us's own answer: 401, not forwarded.
  {
    std::string real = tenant_;
    tenant_ = parley::store::testing::unique_name("nowhere");
    auto unknown = start_session(us_url, "external-2");
    EXPECT_EQ(unknown.status, 401) << unknown.error;
    EXPECT_EQ(unknown.region, "");
    tenant_ = real;
  }

  // eu holds the conversation; us holds nothing of the tenant.
  EXPECT_NE(rows_of(env_or_fail("DATABASE_URL"), tenant_).find("tenants=1"), std::string::npos);
  EXPECT_EQ(rows_of(us_pg_, tenant_), "");
  auto redis = parley::store::redis_client::create({us_->redis_url()});
  ASSERT_TRUE(redis.ok()) << redis.err().message;
  auto keys = (*redis)->command_sync({"KEYS", "*"});
  ASSERT_TRUE(keys.ok()) << keys.err().message;
  for (const auto& k : keys->elements) {
    EXPECT_EQ(k.str.find(tenant_), std::string::npos) << "us's Redis has key " << k.str;
    EXPECT_EQ(k.str.find(session), std::string::npos) << "us's Redis has key " << k.str;
    auto type = (*redis)->command_sync({"TYPE", k.str});
    ASSERT_TRUE(type.ok());
    if (type->str == "stream") {
      auto len = (*redis)->command_sync({"XLEN", k.str});
      ASSERT_TRUE(len.ok());
      EXPECT_EQ(len->integer, 0) << "us's transcript stream " << k.str << " has lines";
    } else if (type->str == "string") {
      auto v = (*redis)->command_sync({"GET", k.str});
      ASSERT_TRUE(v.ok());
      EXPECT_EQ(v->str.find(tenant_), std::string::npos) << k.str << " = " << v->str;
    }
  }
  parley::http::client_request m;
  m.url = us_url + "/metrics";
  auto metrics = parley::http::fetch(m);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("parley_region_requests_forwarded_total{outcome=\"answered\","
                               "region=\"eu\"} 5"),
            std::string::npos)
      << metrics->body.substr(metrics->body.find("parley_region"), 2000);

  // eu is down: us cannot reach the tenant's home, says so and asks for a retry.
  region_->node(0).kill9();
  auto down = text(us_url, session, 5, "anyone?");
  EXPECT_EQ(down.status, 503) << down.error;
  EXPECT_EQ(down.retry_after, "1");
  EXPECT_NE(down.error.find("eu"), std::string::npos) << down.error;
}

}  // namespace
