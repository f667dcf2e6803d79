/// Integration tests of the migration runner against the real PostgreSQL of
/// scripts/test. Each test migrates its own scratch schema and drops it.

#include "src/store/migrations.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <future>
#include <thread>

#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

class migrations_test : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::require_env("DATABASE_URL");
    ASSERT_FALSE(url_.empty());
    pg_ = connect();
    ASSERT_TRUE(pg_);
    options_.schema = testing::unique_name("store_mig");
  }
  void TearDown() override {
    if (!pg_) return;
    auto r = pg_->run_sync([&](pqxx::transaction_base& tx) {
      tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(options_.schema) + " CASCADE");
    });
    EXPECT_TRUE(r) << r.err().message;
  }
  std::unique_ptr<postgres_client> connect() {
    auto c = postgres_client::create({url_});
    EXPECT_TRUE(c) << c.err().message;
    return c ? std::move(*c) : nullptr;
  }
  /// Rows of the bookkeeping table: version and name, in order.
  std::vector<std::pair<int, std::string>> recorded() {
    auto r = pg_->query_sync([&](pqxx::transaction_base& tx) {
      std::vector<std::pair<int, std::string>> out;
      for (const auto& row : tx.exec("SELECT version, name FROM " + tx.quote_name(options_.schema) +
                                     ".schema_migrations ORDER BY version"))
        out.emplace_back(row[0].as<int>(), row[1].as<std::string>());
      return out;
    });
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : std::vector<std::pair<int, std::string>>{};
  }
  bool table_exists(const std::string& name) {
    auto r = pg_->query_sync([&](pqxx::transaction_base& tx) {
      return tx
          .exec_params("SELECT to_regclass($1) IS NOT NULL",
                       tx.quote_name(options_.schema) + "." + name)[0][0]
          .as<bool>();
    });
    EXPECT_TRUE(r) << r.err().message;
    return r && *r;
  }
  static migration extra(int version, std::string name, std::string sql) {
    return migration{version, std::move(name), std::move(sql)};
  }

  std::string url_;
  std::unique_ptr<postgres_client> pg_;
  migration_options options_;
};

TEST(embedded_migrations, are_built_in_and_ordered) {
  const auto& all = embedded_migrations();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all[0].version, 1);
  EXPECT_EQ(all[0].name, "init");
  EXPECT_NE(all[0].sql.find("CREATE TABLE tenants"), std::string::npos);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].version, all[i].version);
  EXPECT_EQ(migration_checksum(all[0]).size(), 64u);
  EXPECT_EQ(migration_checksum(migration{1, "x", "abc"}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(migrations_test, applies_once_and_second_run_is_a_no_op) {
  auto before = migrations_current(*pg_, options_);
  ASSERT_TRUE(before) << before.err().message;
  EXPECT_FALSE(*before);

  auto first = apply_migrations(*pg_, options_);
  ASSERT_TRUE(first) << first.err().message;
  std::vector<int> all;
  for (const auto& m : options_.migrations) all.push_back(m.version);
  EXPECT_EQ(first->applied, all);
  EXPECT_EQ(first->latest, all.back());
  EXPECT_TRUE(table_exists("tenants"));
  auto ins = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params(
        "INSERT INTO " + tx.quote_name(options_.schema) + ".tenants (id, name) VALUES ($1, $2)",
        "demo", "Demo Inc");
  });
  ASSERT_TRUE(ins) << ins.err().message;

  auto second = apply_migrations(*pg_, options_);
  ASSERT_TRUE(second) << second.err().message;
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(recorded().size(), options_.migrations.size());
  EXPECT_EQ(recorded()[0], std::make_pair(1, std::string("init")));

  auto current = migrations_current(*pg_, options_);
  ASSERT_TRUE(current) << current.err().message;
  EXPECT_TRUE(*current);
  std::promise<result<bool>> async_current;
  migrations_current(*pg_, options_, [&](result<bool> r) { async_current.set_value(r); });
  auto ac = async_current.get_future().get();
  ASSERT_TRUE(ac) << ac.err().message;
  EXPECT_TRUE(*ac);
}

TEST_F(migrations_test, a_new_migration_makes_the_schema_not_current_until_applied) {
  ASSERT_TRUE(apply_migrations(*pg_, options_));
  options_.migrations.push_back(
      extra(900, "extra_900", "CREATE TABLE extra_900 (id text PRIMARY KEY);"));
  auto current = migrations_current(*pg_, options_);
  ASSERT_TRUE(current) << current.err().message;
  EXPECT_FALSE(*current);
  auto r = apply_migrations(*pg_, options_);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->applied, std::vector<int>{900});
  EXPECT_TRUE(table_exists("extra_900"));
  auto after = migrations_current(*pg_, options_);
  ASSERT_TRUE(after);
  EXPECT_TRUE(*after);
  // A binary that knows fewer migrations (older node in a rolling deploy) is fine.
  options_.migrations.pop_back();
  auto older = migrations_current(*pg_, options_);
  ASSERT_TRUE(older);
  EXPECT_TRUE(*older);
}

TEST_F(migrations_test, concurrent_appliers_apply_each_migration_exactly_once) {
  // Several migrations, so the two appliers interleave between transactions.
  for (int v = 900; v < 910; ++v)
    options_.migrations.push_back(extra(v, "step" + std::to_string(v),
                                        "CREATE TABLE step" + std::to_string(v) +
                                            " (id int);"
                                            "SELECT pg_sleep(0.01);"));
  auto other = connect();
  ASSERT_TRUE(other);
  std::promise<void> go;
  auto start = go.get_future().share();
  auto run = [&](postgres_client* pg) {
    start.wait();
    return apply_migrations(*pg, options_);
  };
  auto a = std::async(std::launch::async, run, pg_.get());
  auto b = std::async(std::launch::async, run, other.get());
  go.set_value();
  auto ra = a.get();
  auto rb = b.get();
  ASSERT_TRUE(ra) << ra.err().message;
  ASSERT_TRUE(rb) << rb.err().message;
  std::vector<int> both = ra->applied;
  both.insert(both.end(), rb->applied.begin(), rb->applied.end());
  std::sort(both.begin(), both.end());
  std::vector<int> all;
  for (const auto& m : options_.migrations) all.push_back(m.version);
  EXPECT_EQ(both, all) << "every migration must be applied by exactly one of the two";
  auto rows = recorded();
  ASSERT_EQ(rows.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(rows[i].first, all[i]);
}

TEST_F(migrations_test, changed_text_of_an_applied_migration_is_rejected) {
  ASSERT_TRUE(apply_migrations(*pg_, options_));
  auto edited = options_;
  edited.migrations[0].sql += "\n-- an innocent-looking edit\n";
  auto r = apply_migrations(*pg_, edited);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "migration_checksum_mismatch");
  EXPECT_NE(r.err().message.find("0001_init.sql"), std::string::npos) << r.err().message;
  auto current = migrations_current(*pg_, edited);
  ASSERT_FALSE(current);
  EXPECT_EQ(current.err().code, "migration_checksum_mismatch");
}

TEST_F(migrations_test, failing_migration_is_rolled_back_and_named) {
  options_.migrations.push_back(extra(900, "good", "CREATE TABLE good (id int);"));
  options_.migrations.push_back(extra(
      901, "broken", "CREATE TABLE half_done (id int); INSERT INTO no_such_table VALUES (1);"));
  auto r = apply_migrations(*pg_, options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "migration_failed");
  EXPECT_NE(r.err().message.find("0901_broken.sql"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("no_such_table"), std::string::npos) << r.err().message;
  EXPECT_TRUE(table_exists("good"));
  EXPECT_FALSE(table_exists("half_done"));
  auto rows = recorded();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().first, 900);
}

TEST_F(migrations_test, rejects_unordered_migrations) {
  options_.migrations.push_back(extra(1, "again", "SELECT 1;"));
  auto r = apply_migrations(*pg_, options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "bad_migrations");
}

}  // namespace
}  // namespace parley::store
