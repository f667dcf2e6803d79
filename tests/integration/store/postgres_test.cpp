/// Integration tests of parley::store::postgres_client against the real
/// PostgreSQL that scripts/test started (DATABASE_URL). Each test works in its
/// own scratch schema, dropped at the end, so test order does not matter.

#include "src/store/postgres.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

class postgres_shared : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::require_env("DATABASE_URL");
    ASSERT_FALSE(url_.empty());
    app_ = testing::unique_name("parley_pg_test");
    postgres_options o{url_};
    o.application_name = app_;
    auto c = postgres_client::create(o);
    ASSERT_TRUE(c) << c.err().message;
    pg_ = std::move(*c);
    schema_ = testing::unique_name("store_test");
    auto r = pg_->run_sync(
        [&](pqxx::transaction_base& tx) { tx.exec("CREATE SCHEMA " + tx.quote_name(schema_)); });
    ASSERT_TRUE(r) << r.err().message;
  }
  void TearDown() override {
    if (!pg_) return;
    auto r = pg_->run_sync([&](pqxx::transaction_base& tx) {
      tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(schema_) + " CASCADE");
    });
    EXPECT_TRUE(r) << r.err().message;
  }
  std::string table(const std::string& name) const { return schema_ + "." + name; }

  std::string url_;
  std::string app_;
  std::string schema_;
  std::unique_ptr<postgres_client> pg_;
};

TEST_F(postgres_shared, writes_and_reads_in_transactions) {
  auto w = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec("CREATE TABLE " + table("t") + " (id int PRIMARY KEY, body text)");
    tx.exec_params("INSERT INTO " + table("t") + " VALUES ($1, $2), ($3, $4)", 1, "one", 2, "two");
  });
  ASSERT_TRUE(w) << w.err().message;
  auto rows = pg_->query_sync([&](pqxx::transaction_base& tx) {
    std::vector<std::string> out;
    for (const auto& row : tx.exec("SELECT body FROM " + table("t") + " ORDER BY id"))
      out.push_back(row[0].c_str());
    return out;
  });
  ASSERT_TRUE(rows) << rows.err().message;
  EXPECT_EQ(*rows, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(pg_->connected());
}

TEST_F(postgres_shared, callbacks_run_on_worker_threads_not_the_caller) {
  constexpr int n = 200;
  std::mutex m;
  std::set<std::thread::id> threads;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  for (int i = 0; i < n; ++i) {
    pg_->query(
        [i](pqxx::transaction_base& tx) {
          return tx.exec_params("SELECT $1::int", i)[0][0].as<int>();
        },
        std::function<void(result<int>)>([&, i](result<int> r) {
          {
            std::lock_guard<std::mutex> lock(m);
            threads.insert(std::this_thread::get_id());
          }
          if (r && *r == i) ++ok;
          ++done;
        }));
  }
  ASSERT_TRUE(eventually([&] { return done.load() == n; }));
  EXPECT_EQ(ok.load(), n);
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_LE(threads.size(), 2u);  // the default pool has two workers
}

TEST_F(postgres_shared, workers_run_jobs_in_parallel) {
  // Job A holds a row lock until job B, on the other worker, has run: with
  // one worker this would never finish; the deadline turns that into a failure.
  auto ready = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec("CREATE TABLE " + table("flag") + " (id int PRIMARY KEY, set boolean NOT NULL)");
    tx.exec("INSERT INTO " + table("flag") + " VALUES (1, false)");
  });
  ASSERT_TRUE(ready) << ready.err().message;
  std::promise<result<void>> a;
  pg_->run(
      [&](pqxx::transaction_base& tx) {
        for (int i = 0; i < 2000; ++i) {
          if (tx.exec("SELECT set FROM " + table("flag"))[0][0].as<bool>()) return;
          tx.exec("SELECT pg_sleep(0.005)");
        }
        throw std::runtime_error("job B never ran beside job A");
      },
      [&](result<void> r) { a.set_value(r); });
  auto b = pg_->run_sync(
      [&](pqxx::transaction_base& tx) { tx.exec("UPDATE " + table("flag") + " SET set = true"); });
  ASSERT_TRUE(b) << b.err().message;
  auto ar = a.get_future().get();
  EXPECT_TRUE(ar) << ar.err().message;
}

TEST_F(postgres_shared, sql_error_carries_server_message_and_connection_survives) {
  auto r = pg_->run_sync(
      [&](pqxx::transaction_base& tx) { tx.exec("SELECT * FROM " + table("no_such_table")); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "postgres_error");
  EXPECT_NE(r.err().message.find("no_such_table"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("42P01"), std::string::npos) << r.err().message;
  auto again = pg_->query_sync(
      [](pqxx::transaction_base& tx) { return tx.exec("SELECT 7")[0][0].as<int>(); });
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 7);
}

TEST_F(postgres_shared, throwing_job_rolls_back) {
  ASSERT_TRUE(pg_->run_sync(
      [&](pqxx::transaction_base& tx) { tx.exec("CREATE TABLE " + table("t") + " (id int)"); }));
  auto r = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec("INSERT INTO " + table("t") + " VALUES (1)");
    throw std::runtime_error("business rule says no");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "postgres_job_failed");
  EXPECT_EQ(r.err().message, "business rule says no");
  auto count = pg_->query_sync([&](pqxx::transaction_base& tx) {
    return tx.exec("SELECT count(*) FROM " + table("t"))[0][0].as<int>();
  });
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 0);
}

TEST_F(postgres_shared, ping_and_misuse_from_a_worker) {
  std::promise<result<void>> ping;
  pg_->ping([&](result<void> r) { ping.set_value(r); });
  auto pr = ping.get_future().get();
  EXPECT_TRUE(pr);
  std::promise<result<void>> inner;
  pg_->run([](pqxx::transaction_base&) {},
           [&](result<void>) { inner.set_value(pg_->run_sync([](pqxx::transaction_base&) {})); });
  auto r = inner.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "postgres_misuse");
}

TEST_F(postgres_shared, recovers_when_the_server_drops_every_connection) {
  // Warm both workers' connections.
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(pg_->run_sync([](pqxx::transaction_base& tx) { tx.exec("SELECT 1"); }));
  // Terminate every backend of this client, as a server restart does.
  auto admin = postgres_client::create({url_});
  ASSERT_TRUE(admin);
  auto killed = (*admin)->query_sync([&](pqxx::transaction_base& tx) {
    return tx
        .exec_params(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name "
            "= $1",
            app_)[0][0]
        .as<int>();
  });
  ASSERT_TRUE(killed) << killed.err().message;
  EXPECT_GE(*killed, 1);
  // pg_terminate_backend only signals: wait until the backends are gone.
  ASSERT_TRUE(eventually([&] {
    auto left = (*admin)->query_sync([&](pqxx::transaction_base& tx) {
      return tx
          .exec_params("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                       app_)[0][0]
          .as<int>();
    });
    return left && *left == 0;
  }));
  // Every following job succeeds: a dead pooled connection is replaced and the job rerun.
  for (int i = 0; i < 4; ++i) {
    auto r = pg_->query_sync(
        [](pqxx::transaction_base& tx) { return tx.exec("SELECT 1")[0][0].as<int>(); });
    ASSERT_TRUE(r) << r.err().message;
  }
  EXPECT_TRUE(pg_->connected());
}

TEST(postgres_down, create_succeeds_and_jobs_fail_with_unavailable) {
  testing::temp_dir dir;  // no server listens in here
  auto c = postgres_client::create({"postgresql://app:s3cret@/parley?host=" + dir.path().string()});
  ASSERT_TRUE(c) << c.err().message;
  auto& pg = **c;
  EXPECT_EQ(pg.display_url().find("s3cret"), std::string::npos);
  auto r = pg.run_sync([](pqxx::transaction_base& tx) { tx.exec("SELECT 1"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "postgres_unavailable");
  EXPECT_EQ(r.err().message.find("s3cret"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find(dir.path().string()), std::string::npos) << r.err().message;
  EXPECT_FALSE(pg.connected());
  std::promise<result<void>> ping;
  pg.ping([&](result<void> p) { ping.set_value(p); });
  auto pr = ping.get_future().get();
  ASSERT_FALSE(pr);
  EXPECT_EQ(pr.err().code, "postgres_unavailable");
}

/// A PostgreSQL server this test starts, stops and starts again.
TEST(postgres_private, fails_while_down_and_recovers_after_restart) {
  testing::temp_dir dir;
  testing::postgres_process server(dir.path());
  ASSERT_TRUE(server.start()) << "could not start PostgreSQL in " << dir.path()
                              << ", see its logs there";
  postgres_options o{server.url()};
  o.workers = 2;
  auto c = postgres_client::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto& pg = **c;
  auto select1 = [&] {
    return pg.run_sync([](pqxx::transaction_base& tx) { tx.exec("SELECT 1"); });
  };
  // Open a connection on each worker.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(select1());

  server.stop();
  auto down = select1();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.err().code, "postgres_unavailable") << down.err().message;
  EXPECT_FALSE(pg.connected());
  std::promise<result<void>> ping;
  pg.ping([&](result<void> r) { ping.set_value(r); });
  auto pr = ping.get_future().get();
  ASSERT_FALSE(pr);
  EXPECT_EQ(pr.err().code, "postgres_unavailable");

  ASSERT_TRUE(server.start()) << "could not restart PostgreSQL";
  ASSERT_TRUE(eventually([&] { return select1().ok(); })) << "client did not reconnect";
  EXPECT_TRUE(pg.connected());
  // Both workers are usable again, not only the one that answered first.
  for (int i = 0; i < 4; ++i) {
    auto r = select1();
    EXPECT_TRUE(r) << r.err().message;
  }
}

TEST(postgres_url, rejects_bad_syntax_and_redacts_passwords) {
  auto c = postgres_client::create({"host=/tmp dbname='unterminated"});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().code, "bad_postgres_url");
  EXPECT_EQ(redact_postgres_url("postgresql://u:pw@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(redact_postgres_url("postgresql://h/db?user=u&password=pw&x=1"),
            "postgresql://h/db?user=u&password=***&x=1");
  EXPECT_EQ(redact_postgres_url("host=h password=pw dbname=d"), "host=h password=*** dbname=d");
  EXPECT_EQ(redact_postgres_url("postgresql:///parley?host=/tmp/x"),
            "postgresql:///parley?host=/tmp/x");
}

}  // namespace
}  // namespace parley::store
