// Recorded conversations for replay (src/store/catalog/recorded.hpp) against the real
// Postgres: turns keep their replay records, old lines without one still load, pages
// and the `since` window are exact.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/catalog/support.hpp"

namespace parley::catalog_testing {
namespace {

class recorded_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    tenant_ = unique_name("rec");
    ASSERT_TRUE(store::run_job_sync(*pg_, store::create_tenant(tenant_, "Replay", "test")).ok());
  }

  /// Starts conversation `session` of bot "shop" with `turns` turns, each with a record.
  void seed(const std::string& session, int turns) {
    std::vector<store::transcript_line> lines;
    for (int i = 1; i <= turns; ++i) {
      store::transcript_line_builder b(tenant_, session, i);
      b.inbound("message " + std::to_string(i));
      b.reply("reply " + std::to_string(i));
      lines.push_back(b.finish(0, R"({"v":1,"op":"text","input":"message )" + std::to_string(i) +
                                      R"(","now":1795651200})"));
    }
    store::conversation_record c{tenant_, session, "shop", 1, "bot_api", "", 0, std::nullopt, {}};
    auto w = store::run_job_sync(
        *pg_,
        store::write_turn_lines(
            {c}, std::make_shared<const std::vector<store::transcript_line>>(std::move(lines))));
    ASSERT_TRUE(w.ok()) << w.err().message;
  }

  store::postgres_client* pg_ = nullptr;
  std::string tenant_;
};

TEST_F(recorded_test, turns_come_back_with_their_records_and_old_lines_without) {
  // Session ids are unique in the whole table (its primary key): one per run.
  const std::string s1 = unique_name("s");
  seed(s1, 2);
  // A line of a node from before migration 0013 has no replay field at all.
  auto old = turn_line(tenant_, s1, 3, std::string("old"), {"old reply"});
  ASSERT_EQ(old.copy.substr(old.copy.size() - 3), "\t\\N");
  old.copy.resize(old.copy.size() - 3);
  ASSERT_TRUE(store::run_job_sync(*pg_, store::write_turn_lines({old})).ok());

  auto page = store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 0, "", 10));
  ASSERT_TRUE(page.ok()) << page.err().message;
  ASSERT_EQ(page->conversations.size(), 1u);
  const auto& c = page->conversations[0];
  EXPECT_EQ(c.session_id, s1);
  ASSERT_EQ(c.turns.size(), 3u);
  EXPECT_EQ(c.turns[0].inbound, "message 1");
  EXPECT_EQ(c.turns[0].outbound_json, R"(["reply 1"])");
  auto rec = nlohmann::json::parse(c.turns[1].replay_json);
  EXPECT_EQ(rec["input"], "message 2");
  EXPECT_EQ(rec["now"], 1795651200);
  EXPECT_EQ(c.turns[2].inbound, "old");
  EXPECT_EQ(c.turns[2].replay_json, "") << "no record: NULL";
  EXPECT_TRUE(page->next.empty());
  EXPECT_FALSE(c.truncated);

  auto capped =
      store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 0, "", 10, 2));
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->conversations[0].turns.size(), 2u);
  EXPECT_TRUE(capped->conversations[0].truncated);
}

TEST_F(recorded_test, pages_follow_the_cursor_and_since_keeps_the_window) {
  const std::string a = unique_name("a");
  for (const auto& s : {a, unique_name("b"), unique_name("c")}) seed(s, 1);
  // "a" started two hours ago: outside a one-hour window.
  ASSERT_TRUE(pg_->run_sync([&](pqxx::transaction_base& tx) {
                   tx.exec_params(
                       "UPDATE conversations SET started_at = now() - interval '2 hours' "
                       "WHERE tenant_id = $1 AND session_id = $2",
                       tenant_, a);
                 })
                  .ok());
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  do {
    auto page =
        store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 0, after, 2));
    ASSERT_TRUE(page.ok()) << page.err().message;
    for (const auto& c : page->conversations) seen.push_back(c.session_id);
    after = page->next;
    ++pages;
  } while (!after.empty() && pages < 5);
  EXPECT_EQ(pages, 2);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], a) << "oldest first";

  auto hour =
      store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 3600, "", 10));
  ASSERT_TRUE(hour.ok());
  EXPECT_EQ(hour->conversations.size(), 2u);
  auto other =
      store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "other", 0, "", 10));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->conversations.empty());
}

TEST_F(recorded_test, bad_limits_cursors_and_tenants_are_refused_by_name) {
  auto zero = store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 0, "", 0));
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.err().message.find("limit"), std::string::npos);
  auto cursor =
      store::run_job_sync(*pg_, store::recorded_conversations(tenant_, "shop", 0, "x:y", 10));
  ASSERT_FALSE(cursor.ok());
  EXPECT_EQ(cursor.err().code, "invalid_argument");
  EXPECT_NE(cursor.err().message.find("after"), std::string::npos);
  auto nobody = store::run_job_sync(
      *pg_, store::recorded_conversations(unique_name("none"), "shop", 0, "", 10));
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.err().code, "tenant_not_found");
}

}  // namespace
}  // namespace parley::catalog_testing
