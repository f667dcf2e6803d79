/// Integration tests of the Postgres catalog (src/store/catalog.hpp) against
/// the real PostgreSQL of scripts/test. Every test works in its own tenant.

#include "src/store/catalog.hpp"

#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <future>
#include <set>
#include <thread>
#include <tuple>

#include "src/admin/deploy.hpp"
#include "src/bot/bot.hpp"
#include "src/store/migrations.hpp"
#include "tests/integration/catalog/support.hpp"

namespace parley::store {
namespace {

using namespace parley::catalog_testing;

class catalog_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    tenant_ = unique_tenant("cat");
    auto t = run_job_sync(*pg_, create_tenant(tenant_, "Catalog test", "tester"));
    ASSERT_TRUE(t) << t.err().message;
    source_ = sample_bot("order-status.yaml");
    ASSERT_FALSE(source_.empty());
  }

  admin::deploy_outcome deploy(const std::string& bot, const std::string& source,
                               bool activate = false) {
    auto r = run_job_sync(
        *pg_, admin::deploy_version({tenant_, bot, source, "tester", activate, "", {}}));
    EXPECT_TRUE(r) << r.err().code << ": " << r.err().message;
    return r ? *r : admin::deploy_outcome{};
  }

  conversation_record conversation(const std::string& session, int version) {
    conversation_record c;
    c.tenant = tenant_;
    c.session_id = session;
    c.bot = "orders";
    c.version = version;
    c.channel = "bot_api";
    c.external_key = "ext-1";
    return c;
  }

  std::vector<audit_entry> audit_rows() {
    auto r = run_job_sync(*pg_, list_audit(tenant_, 100));
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : std::vector<audit_entry>{};
  }

  std::size_t count_actions(const std::string& action) {
    auto rows = audit_rows();
    return std::count_if(rows.begin(), rows.end(),
                         [&](const audit_entry& e) { return e.action == action; });
  }

  postgres_client* pg_ = nullptr;
  std::string tenant_;
  std::string source_;
};

TEST_F(catalog_test, tenants_are_created_once_and_listed) {
  auto again = run_job_sync(*pg_, create_tenant(tenant_, "Other", "tester"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, "tenant_exists");

  auto bad = run_job_sync(*pg_, create_tenant("no spaces allowed", "x", "tester"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, "invalid_argument");
  EXPECT_NE(bad.err().message.find("no spaces allowed"), std::string::npos);

  auto all = run_job_sync(*pg_, list_tenants());
  ASSERT_TRUE(all) << all.err().message;
  auto it = std::find_if(all->begin(), all->end(),
                         [&](const tenant_record& t) { return t.id == tenant_; });
  ASSERT_NE(it, all->end());
  EXPECT_EQ(it->name, "Catalog test");
  EXPECT_GT(it->created_at_ms, 0);

  auto one = run_job_sync(*pg_, get_tenant(tenant_));
  ASSERT_TRUE(one && one->has_value());
  auto none = run_job_sync(*pg_, get_tenant(tenant_ + "x"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());

  auto rows = audit_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, "tenant.create");
  EXPECT_EQ(rows[0].actor, "tester");
  EXPECT_EQ(nlohmann::json::parse(rows[0].details_json)["name"], "Catalog test");
}

TEST_F(catalog_test, api_keys_verify_until_revoked) {
  auto k = run_job_sync(*pg_, create_api_key(tenant_, "web", "tester"));
  ASSERT_TRUE(k) << k.err().message;
  EXPECT_EQ(k->key.rfind("pk_", 0), 0u);
  EXPECT_EQ(k->key.size(), 3u + 43u);
  EXPECT_EQ(k->prefix, k->key.substr(0, 8));

  auto yes = run_job_sync(*pg_, verify_api_key(tenant_, k->key));
  ASSERT_TRUE(yes) << yes.err().message;
  EXPECT_TRUE(*yes);

  std::string wrong = k->key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(*run_job_sync(*pg_, verify_api_key(tenant_, wrong)));
  EXPECT_FALSE(*run_job_sync(*pg_, verify_api_key(tenant_, "pk_")));
  EXPECT_FALSE(*run_job_sync(*pg_, verify_api_key(tenant_, "")));
  // A key only opens its own tenant.
  auto other = unique_tenant("cat");
  ASSERT_TRUE(run_job_sync(*pg_, create_tenant(other, "Other", "tester")));
  EXPECT_FALSE(*run_job_sync(*pg_, verify_api_key(other, k->key)));

  // The plaintext is never stored: only its hash.
  auto stored = pg_->query_sync([&](pqxx::transaction_base& tx) {
    return tx.exec_params1("SELECT key_hash FROM api_keys WHERE id = $1", k->id)[0]
        .as<std::string>();
  });
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored, api_key_hash(k->key));
  EXPECT_EQ(stored->find(k->key), std::string::npos);

  ASSERT_TRUE(run_job_sync(*pg_, revoke_api_key(tenant_, k->id, "tester")));
  EXPECT_FALSE(*run_job_sync(*pg_, verify_api_key(tenant_, k->key)));
  EXPECT_TRUE(run_job_sync(*pg_, revoke_api_key(tenant_, k->id, "tester")))
      << "revoking twice is fine";
  auto missing = run_job_sync(*pg_, revoke_api_key(tenant_, k->id + 1000000, "tester"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, "api_key_not_found");

  auto keys = run_job_sync(*pg_, list_api_keys(tenant_));
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_TRUE((*keys)[0].revoked);
  EXPECT_EQ((*keys)[0].name, "web");

  EXPECT_EQ(count_actions("api_key.create"), 1u);
  EXPECT_EQ(count_actions("api_key.revoke"), 1u);

  auto no_tenant = run_job_sync(*pg_, create_api_key(tenant_ + "-missing", "web", "tester"));
  ASSERT_FALSE(no_tenant);
  EXPECT_EQ(no_tenant.err().code, "tenant_not_found");
}

TEST_F(catalog_test, versions_increase_and_are_immutable) {
  auto v1 = deploy("orders", source_);
  ASSERT_TRUE(v1.deployed);
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.program_id.rfind("order-status@", 0), 0u) << v1.program_id;
  EXPECT_FALSE(v1.activated);
  auto v2 = deploy("orders", source_);
  EXPECT_EQ(v2.version, 2);
  auto other_bot = deploy("orders-2", source_);
  EXPECT_EQ(other_bot.version, 1) << "versions count per bot";

  auto got = run_job_sync(*pg_, get_version(tenant_, "orders", 1));
  ASSERT_TRUE(got) << got.err().message;
  EXPECT_EQ(got->source, source_);
  EXPECT_EQ(got->program_id, v1.program_id);
  // The stored bytes are the compiler's program, loadable as is.
  auto compiled = bot::compile(source_, "orders.yaml");
  ASSERT_TRUE(compiled.ok());
  EXPECT_EQ(got->program, bot::serialize(*compiled.program));
  bot::v1::Program parsed;
  ASSERT_TRUE(parsed.ParseFromString(got->program));
  EXPECT_TRUE(bot::load(parsed));

  auto updated = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params("UPDATE bot_versions SET source = 'x' WHERE tenant_id = $1", tenant_);
  });
  ASSERT_FALSE(updated);
  EXPECT_NE(updated.err().message.find("immutable"), std::string::npos) << updated.err().message;
  auto deleted = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params("DELETE FROM bot_versions WHERE tenant_id = $1", tenant_);
  });
  EXPECT_FALSE(deleted);

  auto missing = run_job_sync(*pg_, get_version(tenant_, "orders", 3));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, "version_not_found");

  auto list = run_job_sync(*pg_, list_versions(tenant_, "orders"));
  ASSERT_TRUE(list) << list.err().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 1);
  EXPECT_EQ((*list)[1].version, 2);
  EXPECT_EQ((*list)[0].deployed_by, "tester");
  EXPECT_FALSE((*list)[0].active);
  EXPECT_FALSE((*list)[1].active);

  auto no_bot = run_job_sync(*pg_, list_versions(tenant_, "nope"));
  ASSERT_FALSE(no_bot);
  EXPECT_EQ(no_bot.err().code, "bot_not_found");
  EXPECT_EQ(count_actions("bot.deploy"), 3u);
}

TEST_F(catalog_test, concurrent_deploys_get_distinct_versions) {
  std::vector<std::future<int>> results;
  for (int i = 0; i < 4; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      auto r = run_job_sync(
          *pg_, admin::deploy_version({tenant_, "busy", source_, "tester", false, "", {}}));
      return r && r->deployed ? r->version : -1;
    }));
  }
  std::set<int> versions;
  for (auto& f : results) versions.insert(f.get());
  EXPECT_EQ(versions, (std::set<int>{1, 2, 3, 4}));
}

TEST_F(catalog_test, a_bad_file_stores_nothing_and_reports_diagnostics) {
  auto bad = edited(source_, "welcome: welcome", "welcome: no_such_dialog");
  auto out = deploy("orders", bad);
  EXPECT_FALSE(out.deployed);
  EXPECT_EQ(out.version, 0);
  auto error = std::find_if(out.diagnostics.begin(), out.diagnostics.end(),
                            [](const deploy_diagnostic& d) { return d.severity == "error"; });
  ASSERT_NE(error, out.diagnostics.end());
  EXPECT_GT(error->line, 0);
  EXPECT_NE(error->message.find("no_such_dialog"), std::string::npos) << error->message;
  auto list = run_job_sync(*pg_, list_versions(tenant_, "orders"));
  ASSERT_FALSE(list);
  EXPECT_EQ(list.err().code, "bot_not_found");
  EXPECT_EQ(count_actions("bot.deploy"), 0u);

  auto no_tenant = run_job_sync(
      *pg_, admin::deploy_version({tenant_ + "-missing", "orders", source_, "t", false, "", {}}));
  ASSERT_FALSE(no_tenant);
  EXPECT_EQ(no_tenant.err().code, "tenant_not_found");
}

TEST_F(catalog_test, activate_and_rollback_move_the_pointer) {
  auto none = run_job_sync(*pg_, get_active(tenant_, "orders"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.err().code, "no_active_version");

  auto v1 = deploy("orders", source_, true);
  EXPECT_TRUE(v1.activated);
  auto first = run_job_sync(*pg_, get_active(tenant_, "orders"));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(first->version, 1);
  EXPECT_FALSE(first->program.empty());

  auto no_previous = run_job_sync(*pg_, rollback(tenant_, "orders", "tester"));
  ASSERT_FALSE(no_previous);
  EXPECT_EQ(no_previous.err().code, "no_previous_version");
  EXPECT_NE(no_previous.err().message.find("orders"), std::string::npos);

  deploy("orders", source_);
  auto a2 = run_job_sync(*pg_, activate(tenant_, "orders", 2, "tester"));
  ASSERT_TRUE(a2) << a2.err().message;
  EXPECT_TRUE(a2->changed);
  EXPECT_EQ(a2->version, 2);
  ASSERT_TRUE(a2->previous_version);
  EXPECT_EQ(*a2->previous_version, 1);
  EXPECT_EQ(run_job_sync(*pg_, get_active(tenant_, "orders"))->version, 2);

  auto list = run_job_sync(*pg_, list_versions(tenant_, "orders"));
  ASSERT_TRUE(list);
  EXPECT_FALSE((*list)[0].active);
  EXPECT_TRUE((*list)[1].active);

  auto same = run_job_sync(*pg_, activate(tenant_, "orders", 2, "tester"));
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->change_seq, a2->change_seq);

  auto missing = run_job_sync(*pg_, activate(tenant_, "orders", 7, "tester"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, "version_not_found");

  auto back = run_job_sync(*pg_, rollback(tenant_, "orders", "tester"));
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back->version, 1);
  EXPECT_GT(back->change_seq, a2->change_seq);
  EXPECT_EQ(run_job_sync(*pg_, get_active(tenant_, "orders"))->version, 1);
  auto twice = run_job_sync(*pg_, rollback(tenant_, "orders", "tester"));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.err().code, "no_previous_version");

  EXPECT_EQ(count_actions("bot.activate"), 2u);  // deploy --activate, activate 2
  EXPECT_EQ(count_actions("bot.rollback"), 1u);
  auto rows = audit_rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].action, "bot.rollback");
  auto details = nlohmann::json::parse(rows[0].details_json);
  EXPECT_EQ(details["from"], 2);
  EXPECT_EQ(details["to"], 1);
  EXPECT_EQ(rows[0].target, "orders");
}

TEST_F(catalog_test, changes_since_returns_later_pointer_moves_in_order) {
  auto start = run_job_sync(*pg_, active_changes_since(0));
  ASSERT_TRUE(start) << start.err().message;
  std::int64_t since = start->empty() ? 0 : start->back().change_seq;
  // Page through to the end: other tests' rows may exceed one page.
  for (;;) {
    auto more = run_job_sync(*pg_, active_changes_since(since));
    ASSERT_TRUE(more);
    if (more->empty()) break;
    since = more->back().change_seq;
  }

  deploy("a", source_, true);
  deploy("b", source_, true);
  deploy("a", source_);
  ASSERT_TRUE(run_job_sync(*pg_, activate(tenant_, "a", 2, "tester")));

  auto changes = run_job_sync(*pg_, active_changes_since(since));
  ASSERT_TRUE(changes) << changes.err().message;
  std::vector<std::pair<std::string, int>> mine;
  std::int64_t last = since;
  for (const auto& c : *changes) {
    EXPECT_GT(c.change_seq, last) << "ascending";
    last = c.change_seq;
    if (c.tenant == tenant_) mine.emplace_back(c.bot, c.version);
  }
  // One row per bot: its current pointer, in the order of its last change.
  EXPECT_EQ(mine, (std::vector<std::pair<std::string, int>>{{"b", 1}, {"a", 2}}));

  auto after = run_job_sync(*pg_, active_changes_since(last));
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());

  auto limited = run_job_sync(*pg_, active_changes_since(since, 1));
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 1u);
}

TEST_F(catalog_test, transcript_batches_are_idempotent) {
  std::string session = unique_name("session");
  ASSERT_TRUE(run_job_sync(*pg_, upsert_conversation(conversation(session, 1))));
  std::vector<transcript_line> batch;
  for (int seq = 1; seq <= 3; ++seq)
    batch.push_back(turn_line(tenant_, session, seq, "hello " + std::to_string(seq),
                              {"reply a", "reply b"}, 1700000000123));
  auto first = run_job_sync(*pg_, write_turn_lines(batch));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(*first, 9u);
  auto again = run_job_sync(*pg_, write_turn_lines(batch));
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 0u);

  // A batch overlapping the last one inserts only what is new.
  std::vector<transcript_line> overlap{batch.back(),
                                       turn_line(tenant_, session, 4, std::string("bye"), {})};
  EXPECT_EQ(*run_job_sync(*pg_, write_turn_lines(overlap)), 1u);

  auto rows = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), 10u);
  EXPECT_EQ((*rows)[0].text, "hello 1");
  EXPECT_EQ((*rows)[0].direction, "in");
  EXPECT_EQ((*rows)[1].direction, "out");
  EXPECT_EQ((*rows)[1].idx, 0);
  EXPECT_EQ((*rows)[1].payload_json, "") << "the writer's replies carry no payload";
  EXPECT_EQ((*rows)[2].idx, 1);
  // A turn is stored with one time: its messages share it.
  EXPECT_EQ((*rows)[2].at_ms, 1700000000123);
  EXPECT_EQ((*rows)[0].at_ms, 1700000000123);
  EXPECT_EQ((*rows)[9].text, "bye");

  // Bytes Postgres cannot store are cleaned, not fatal to the batch.
  ASSERT_TRUE(run_job_sync(
      *pg_, write_turn_lines({turn_line(tenant_, session, 5, std::string("a\0b\xff", 4), {})})));
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->back().text, "ab\xEF\xBF\xBD");

  // Text that array literals must escape arrives as it was sent.
  const std::string tricky = R"(say "hi", {x} \ back\slash)";
  // A reply is a JSON string inside the turn's jsonb array: JSON's escapes too.
  const std::string tricky_reply =
      tricky + "\n\ttab \x01\x1f \xC3\xBC\xE2\x82\xAC\xF0\x9F\x98\x80 \x7f";
  ASSERT_TRUE(run_job_sync(
      *pg_, write_turn_lines({turn_line(tenant_, session, 7, tricky, {tricky_reply, "NULL"})})));
  auto after = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)[after->size() - 3].text, tricky);
  EXPECT_EQ((*after)[after->size() - 2].text, tricky_reply);
  EXPECT_EQ(after->back().text, "NULL");

  // COPY's delimiters and escapes in every text column: tabs, line ends and a
  // backslash-N (COPY's NULL marker) arrive as they were sent.
  const std::string copy_tricky = "line 1\nline 2\r\n\tindented \\N end\\";
  ASSERT_TRUE(run_job_sync(
      *pg_, write_turn_lines({turn_line(tenant_, session, 8, copy_tricky, {copy_tricky})})));
  auto copied = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(copied);
  EXPECT_EQ((*copied)[copied->size() - 2].text, copy_tricky);
  EXPECT_EQ(copied->back().text, copy_tricky);

  // A big batch is one statement in one transaction.
  std::vector<transcript_line> big;
  for (int seq = 100; seq < 1300; ++seq)
    big.push_back(turn_line(tenant_, session, seq, std::string("m"), {}));
  EXPECT_EQ(*run_job_sync(*pg_, write_turn_lines(big)), 1200u);
  EXPECT_EQ(*run_job_sync(*pg_, write_turn_lines(big)), 0u);
}

TEST_F(catalog_test, a_turn_is_one_row_and_reads_back_as_its_messages) {
  std::string session = unique_name("session");
  // Rows of transcript_turns for this session: sequence, inbound (or "NULL"),
  // number of replies.
  auto stored = [&] {
    auto r = pg_->query_sync([&](pqxx::transaction_base& tx) {
      std::vector<std::tuple<std::int64_t, std::string, int>> out;
      for (const auto& row : tx.exec_params(
               "SELECT sequence, coalesce(inbound, 'NULL'), jsonb_array_length(outbound) "
               "FROM transcript_turns WHERE session_id = $1 ORDER BY sequence",
               session))
        out.emplace_back(row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<int>());
      return out;
    });
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : std::vector<std::tuple<std::int64_t, std::string, int>>{};
  };
  using turn = std::tuple<std::int64_t, std::string, int>;

  std::vector<transcript_line> batch{turn_line(tenant_, session, 1, "where is my order?",
                                               {"Which order?", "Pick one:"}, 1700000000500)};
  auto first = run_job_sync(*pg_, write_turn_lines(batch));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(*first, 3u) << "counted in messages";
  EXPECT_EQ(stored(), (std::vector<turn>{{1, "where is my order?", 2}}));

  // Read back as its messages, each with the turn's tenant, session and time.
  struct message {
    std::string direction;
    int idx;
    std::string text;
  };
  const std::vector<message> want{
      {"in", 0, "where is my order?"}, {"out", 0, "Which order?"}, {"out", 1, "Pick one:"}};
  auto rows = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    const auto& got = (*rows)[i];
    EXPECT_EQ(got.tenant, tenant_);
    EXPECT_EQ(got.session_id, session);
    EXPECT_EQ(got.sequence, 1);
    EXPECT_EQ(got.direction, want[i].direction);
    EXPECT_EQ(got.idx, want[i].idx);
    EXPECT_EQ(got.text, want[i].text);
    EXPECT_EQ(got.payload_json, "");
    EXPECT_EQ(got.at_ms, 1700000000500);
  }

  // The same batch again stores nothing and changes nothing.
  auto again = run_job_sync(*pg_, write_turn_lines(batch));
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(stored(), (std::vector<turn>{{1, "where is my order?", 2}}));
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->size(), 3u);

  // Payloads read back: the inbound message's, and a reply stored as {"text", "payload"};
  // a null reply (never recorded) is skipped.
  seed_turn_sql(
      *pg_, tenant_, session, 2, std::string("and now?"), R"({"q":"\"{}","k":"\\N"})",
      R"(["first reply", null, {"text": "Pick one:", "payload": {"choices": ["A-1","B-2"]}}])",
      1700000000900);
  rows = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(rows);
  std::vector<std::string> texts;
  for (const auto& r : *rows)
    texts.push_back(std::to_string(r.sequence) + " " + r.direction + " " + std::to_string(r.idx) +
                    " " + r.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"1 in 0 where is my order?", "1 out 0 Which order?",
                                             "1 out 1 Pick one:", "2 in 0 and now?",
                                             "2 out 0 first reply", "2 out 2 Pick one:"}));
  EXPECT_EQ(nlohmann::json::parse((*rows)[3].payload_json)["q"], "\"{}");
  EXPECT_EQ(nlohmann::json::parse((*rows)[3].payload_json)["k"], "\\N");
  EXPECT_EQ((*rows)[4].payload_json, "");
  EXPECT_EQ(nlohmann::json::parse(rows->back().payload_json),
            nlohmann::json::parse(R"({"choices":["A-1","B-2"]})"));
  EXPECT_EQ(rows->back().at_ms, 1700000000900);

  // write_turn_lines takes the same path, after the conversation rows.
  std::string other = unique_name("session");
  std::promise<result<std::size_t>> done;
  run_job(*pg_,
          write_turn_lines(
              {conversation(other, 1)},
              std::make_shared<const std::vector<transcript_line>>(
                  std::vector<transcript_line>{turn_line(tenant_, other, 1, "hi", {"hello"})})),
          [&](result<std::size_t> r) { done.set_value(std::move(r)); });
  auto written = done.get_future().get();
  ASSERT_TRUE(written) << written.err().message;
  EXPECT_EQ(*written, 2u);
  ASSERT_EQ(run_job_sync(*pg_, transcript(tenant_, other))->size(), 2u);
  // A record with ended_at_ms set ends its conversation (after any start in the batch).
  auto ended = conversation(other, 1);
  ended.ended_at_ms = 0;
  ended.end_reason = "client";
  std::promise<result<std::size_t>> end_done;
  run_job(*pg_,
          write_turn_lines(
              {ended}, std::make_shared<const std::vector<transcript_line>>(
                           std::vector<transcript_line>{turn_line(tenant_, other, 2, "bye", {})})),
          [&](result<std::size_t> r) { end_done.set_value(std::move(r)); });
  auto end_written = end_done.get_future().get();
  ASSERT_TRUE(end_written) << end_written.err().message;
  EXPECT_EQ(*end_written, 1u);
  auto conv = run_job_sync(*pg_, get_conversation(tenant_, other));
  ASSERT_TRUE(conv && *conv);
  EXPECT_TRUE((*conv)->ended_at_ms.has_value());
  EXPECT_EQ((*conv)->end_reason, "client");

  // A bad conversation record fails the write: nothing of the batch is written.
  std::promise<result<std::size_t>> rejected;
  run_job(
      *pg_,
      write_turn_lines({conversation("", 1)},
                       std::make_shared<const std::vector<transcript_line>>(
                           std::vector<transcript_line>{turn_line(tenant_, session, 9, "x", {})})),
      [&](result<std::size_t> r) { rejected.set_value(std::move(r)); });
  auto bad = rejected.get_future().get();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, "invalid_argument");
  EXPECT_NE(bad.err().message.find("session"), std::string::npos) << bad.err().message;
  EXPECT_EQ(stored().size(), 2u);
}

TEST_F(catalog_test, transcript_turns_store_as_their_messages_would) {
  std::string session = unique_name("session");
  auto texts = [&] {
    std::vector<std::string> out;
    auto rows = run_job_sync(*pg_, transcript(tenant_, session));
    EXPECT_TRUE(rows) << rows.err().message;
    if (rows)
      for (const auto& r : *rows)
        out.push_back(
            std::to_string(r.sequence) + " " + r.direction + " " + std::to_string(r.idx) + " " +
            r.text +
            (r.payload_json.empty() ? "" : " " + nlohmann::json::parse(r.payload_json).dump()));
    return out;
  };
  // Lines out of key order, a turn without inbound message.
  std::vector<transcript_line> turns{
      turn_line(tenant_, session, 2, std::nullopt, {"welcome back"}, 1700000000900),
      turn_line(tenant_, session, 1, "where is my order?", {"Which order?", "Pick one:"},
                1700000000500)};
  auto first = run_job_sync(*pg_, write_turn_lines(turns));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(*first, 4u) << "counted in messages";
  EXPECT_EQ(texts(), (std::vector<std::string>{"1 in 0 where is my order?", "1 out 0 Which order?",
                                               "1 out 1 Pick one:", "2 out 0 welcome back"}));
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->front().at_ms, 1700000000500);
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->back().at_ms, 1700000000900);
  auto again = run_job_sync(*pg_, write_turn_lines(turns));
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 0u);

  // A turn given twice in one batch keeps its first copy, whole.
  EXPECT_EQ(
      *run_job_sync(*pg_, write_turn_lines({turn_line(tenant_, session, 3, "a", {"x"}),
                                            turn_line(tenant_, session, 3, "b", {"y", "z"})})),
      2u);
  // Another tenant's stored turn is left alone.
  ASSERT_TRUE(
      run_job_sync(*pg_, write_turn_lines({turn_line(tenant_ + "x", session, 6, "theirs", {})})));
  EXPECT_EQ(*run_job_sync(*pg_, write_turn_lines({turn_line(tenant_, session, 6, "mine", {"r"})})),
            0u);
  EXPECT_EQ(texts(), (std::vector<std::string>{"1 in 0 where is my order?", "1 out 0 Which order?",
                                               "1 out 1 Pick one:", "2 out 0 welcome back",
                                               "3 in 0 a", "3 out 0 x"}));

  // With conversation records in one transaction: a stored turn takes the skipping
  // path, and the conversation written before it stays.
  std::string other = unique_name("session");
  std::promise<result<std::size_t>> done;
  run_job(*pg_,
          write_turn_lines(
              {conversation(other, 1)},
              std::make_shared<const std::vector<transcript_line>>(std::vector<transcript_line>{
                  turn_line(tenant_, session, 1, "where is my order?", {}),
                  turn_line(tenant_, other, 1, "hi", {"hello"})})),
          [&](result<std::size_t> r) { done.set_value(std::move(r)); });
  auto written = done.get_future().get();
  ASSERT_TRUE(written) << written.err().message;
  EXPECT_EQ(*written, 2u);
  EXPECT_TRUE(*run_job_sync(*pg_, get_conversation(tenant_, other)));
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, other))->size(), 2u);
  EXPECT_EQ(texts().size(), 6u);
}

TEST_F(catalog_test, turn_lines_store_whole_turns_and_skip_stored_ones) {
  std::string session = unique_name("session");
  auto line = [&](std::int64_t seq, const std::string* in, std::vector<std::string> replies,
                  std::int64_t at) {
    transcript_line_builder b(tenant_, session, seq);
    if (in != nullptr) b.inbound(*in);
    for (const auto& r : replies) b.reply(r);
    return b.finish(at);
  };
  // Every escape of COPY's text format and of JSON, a backslash-N (COPY's NULL
  // marker), control characters, non-ASCII text, and bytes Postgres cannot store.
  const std::string tricky =
      "tab\there, line\nend\r\n back\\slash \\N \"quoted\" \x01\x1f caf\xC3\xA9 \xF0\x9F\x98\x80";
  const std::string odd("a\0b\xff", 4);
  const std::string hello = "hello";
  std::vector<transcript_line> lines{line(1, &tricky, {tricky, "plain", ""}, 1700000000123),
                                     line(2, nullptr, {"welcome back"}, 1700000001999),
                                     line(3, &odd, {odd}, 0), line(4, &hello, {}, 1700000002000)};
  EXPECT_EQ(lines[0].messages, 4u);
  EXPECT_EQ(lines[1].messages, 1u);
  auto first = run_job_sync(*pg_, write_turn_lines(lines));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(*first, 8u) << "counted in messages";
  auto rows = run_job_sync(*pg_, transcript(tenant_, session));
  ASSERT_TRUE(rows) << rows.err().message;
  std::vector<std::string> got;
  for (const auto& r : *rows)
    got.push_back(std::to_string(r.sequence) + " " + r.direction + " " + std::to_string(r.idx) +
                  " " + r.text);
  EXPECT_EQ(got,
            (std::vector<std::string>{"1 in 0 " + tricky, "1 out 0 " + tricky, "1 out 1 plain",
                                      "1 out 2 ", "2 out 0 welcome back", "3 in 0 ab\xEF\xBF\xBD",
                                      "3 out 0 ab\xEF\xBF\xBD", "4 in 0 hello"}));
  EXPECT_EQ(rows->front().at_ms, 1700000000123);
  EXPECT_EQ((*rows)[4].at_ms, 1700000001999);
  EXPECT_EQ(rows->back().at_ms, 1700000002000);

  // Written again: nothing more. With a new turn among stored ones: only the new one.
  auto again = run_job_sync(*pg_, write_turn_lines(lines));
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 0u);
  std::vector<transcript_line> mixed{line(2, nullptr, {"welcome back"}, 0),
                                     line(5, &hello, {"a", "b"}, 0)};
  auto some = run_job_sync(*pg_, write_turn_lines(mixed));
  ASSERT_TRUE(some) << some.err().message;
  EXPECT_EQ(*some, 3u);
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->size(), 11u);

  // Sent again after a failed write (maybe stored): merged without trying the COPY
  // first; the stored turns are skipped, the new one is written.
  std::vector<transcript_line> retried{line(5, &hello, {"a", "b"}, 0), line(6, &hello, {"c"}, 0),
                                       line(1, &tricky, {tricky, "plain", ""}, 0)};
  for (auto& l : retried) l.maybe_stored = true;
  auto merged = run_job_sync(*pg_, write_turn_lines(retried));
  ASSERT_TRUE(merged) << merged.err().message;
  EXPECT_EQ(*merged, 2u) << "only turn 6 is new";
  EXPECT_EQ(run_job_sync(*pg_, transcript(tenant_, session))->size(), 13u);
  std::vector<transcript_line> fresh{line(7, &hello, {"d"}, 0)};
  fresh[0].maybe_stored = true;
  auto first_try = run_job_sync(*pg_, write_turn_lines(fresh));
  ASSERT_TRUE(first_try) << first_try.err().message;
  EXPECT_EQ(*first_try, 2u);

  // With conversation records in one transaction (the writer's path).
  std::string other = unique_name("session");
  std::promise<result<std::size_t>> done;
  transcript_line_builder b(tenant_, other, 1);
  b.inbound("hi");
  b.reply("hello");
  run_job(*pg_,
          write_turn_lines({conversation(other, 1)},
                           std::make_shared<const std::vector<transcript_line>>(
                               std::vector<transcript_line>{b.finish(0)})),
          [&](result<std::size_t> r) { done.set_value(std::move(r)); });
  auto written = done.get_future().get();
  ASSERT_TRUE(written) << written.err().message;
  EXPECT_EQ(*written, 2u);
  EXPECT_TRUE(*run_job_sync(*pg_, get_conversation(tenant_, other)));
}

TEST_F(catalog_test, transcript_message_columns_have_no_statistics) {
  // Migration 0006: ANALYZE spends nothing on columns no query filters or sorts on.
  auto r = pg_->query_sync([](pqxx::transaction_base& tx) {
    std::map<std::string, int> out;
    for (const auto& row : tx.exec(
             "SELECT attname, attstattarget FROM pg_attribute "
             "WHERE attrelid = 'transcript_turns'::regclass AND attnum > 0 AND NOT attisdropped"))
      out[row[0].as<std::string>()] = row[1].as<int>();
    return out;
  });
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->at("inbound"), 0);
  EXPECT_EQ(r->at("inbound_payload"), 0);
  EXPECT_EQ(r->at("outbound"), 0);
  EXPECT_NE(r->at("session_id"), 0) << "the key's statistics stay";
}

TEST_F(catalog_test, recording_a_conversation_takes_no_lock_on_its_tenant) {
  // Migration 0007: the transcript writer's conversation insert (the statement of
  // write_turn_lines) no longer locks the tenant's row, so an admin change that
  // locks it does not wait for the writers, and concurrent writers do not share the
  // row's lock (MultiXacts).
  pqxx::connection writer(require_env("DATABASE_URL"));
  pqxx::work tx(writer);
  tx.exec_params(
      "INSERT INTO conversations (tenant_id, session_id, bot_id, version, channel) "
      "VALUES ($1, $2, 'orders', 1, 'bot_api')",
      tenant_, unique_name("session"));
  pqxx::connection admin(require_env("DATABASE_URL"));
  pqxx::work other(admin);
  EXPECT_NO_THROW(
      other.exec_params("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE NOWAIT", tenant_))
      << "the open transaction that recorded a conversation holds a lock on its tenant";
  other.abort();
  tx.abort();
}

TEST_F(catalog_test, transcript_reads_use_the_primary_key) {
  // Migration 5 made session_id COLLATE "C"; the read's parameter has the default
  // collation, and the column's wins, so the read is still an index scan.
  auto plan = pg_->query_sync([](pqxx::transaction_base& tx) {
    tx.exec("SET LOCAL enable_seqscan = off");
    tx.exec("SET LOCAL enable_bitmapscan = off");
    std::string out;
    for (const auto& row :
         tx.exec_params("EXPLAIN SELECT sequence FROM transcript_turns "
                        "WHERE tenant_id = $1 AND session_id = $2 ORDER BY sequence",
                        "t", "s"))
      out += row[0].as<std::string>() + "\n";
    return out;
  });
  ASSERT_TRUE(plan) << plan.err().message;
  EXPECT_NE(plan->find("transcript_turns_pkey"), std::string::npos) << *plan;
  EXPECT_EQ(plan->find("Sort"), std::string::npos) << *plan;
}

TEST_F(catalog_test, migration_4_moves_transcript_messages_into_turns) {
  // Migrations 1-3 into a scratch schema, transcript_messages rows as the old
  // writer stored them, then migration 4.
  migration_options options;
  options.schema = unique_name("cat_mig");
  auto all = embedded_migrations();
  options.migrations.assign(all.begin(), all.begin() + 3);
  ASSERT_EQ(options.migrations.back().version, 3);
  auto applied = apply_migrations(*pg_, options);
  ASSERT_TRUE(applied) << applied.err().message;
  auto exec = [&](const std::string& sql) {
    auto r = pg_->run_sync([&](pqxx::transaction_base& tx) {
      tx.exec("SET LOCAL search_path TO " + tx.quote_name(options.schema));
      tx.exec(sql);
    });
    EXPECT_TRUE(r) << r.err().message;
  };
  exec(
      "INSERT INTO transcript_messages (tenant_id, session_id, sequence, direction, idx, text, "
      "payload, created_at) VALUES "
      "('t1', 's1', 1, 'in', 0, 'hello', NULL, to_timestamp(1700000000)), "
      "('t1', 's1', 1, 'out', 1, 'b', '{\"choices\":[\"x\"]}', to_timestamp(1700000000)), "
      "('t1', 's1', 1, 'out', 0, 'a', NULL, to_timestamp(1700000000)), "
      "('t1', 's1', 2, 'out', 0, 'welcome', NULL, to_timestamp(1700000001)), "
      "('t1', 's1', 3, 'in', 0, 'bye', '{\"k\":1}', to_timestamp(1700000002)), "
      "('t1', 's1', 4, 'out', 2, 'after a gap', NULL, to_timestamp(1700000003)), "
      "('t1', 's2', 1, 'in', 0, 'other', NULL, to_timestamp(1700000004))");
  options.migrations = all;
  applied = apply_migrations(*pg_, options);
  ASSERT_TRUE(applied) << applied.err().message;
  auto turns = pg_->query_sync([&](pqxx::transaction_base& tx) {
    std::vector<std::string> out;
    tx.exec("SET LOCAL search_path TO " + tx.quote_name(options.schema));
    for (const auto& row :
         tx.exec("SELECT tenant_id || ' ' || session_id || ' ' || sequence || ' ' || "
                 "coalesce(inbound, 'NULL') || ' ' || coalesce(inbound_payload::text, 'NULL') || ' "
                 "' || "
                 "outbound::text || ' ' || extract(epoch from created_at)::bigint "
                 "FROM transcript_turns ORDER BY session_id, sequence"))
      out.push_back(row[0].as<std::string>());
    out.push_back(
        tx.exec("SELECT to_regclass('transcript_messages') IS NULL")[0][0].as<std::string>());
    return out;
  });
  ASSERT_TRUE(turns) << turns.err().message;
  EXPECT_EQ(
      *turns,
      (std::vector<std::string>{
          R"(t1 s1 1 hello NULL ["a", {"text": "b", "payload": {"choices": ["x"]}}] 1700000000)",
          R"(t1 s1 2 NULL NULL ["welcome"] 1700000001)", R"(t1 s1 3 bye {"k": 1} [] 1700000002)",
          R"(t1 s1 4 NULL NULL [null, null, "after a gap"] 1700000003)",
          R"(t1 s2 1 other NULL [] 1700000004)", "t"}));
  auto dropped = pg_->run_sync([&](pqxx::transaction_base& tx) {
    tx.exec("DROP SCHEMA " + tx.quote_name(options.schema) + " CASCADE");
  });
  EXPECT_TRUE(dropped) << dropped.err().message;
}

TEST_F(catalog_test, conversations_start_once_and_end_once) {
  std::string session = unique_name("session");
  ASSERT_TRUE(run_job_sync(*pg_, upsert_conversation(conversation(session, 1))));
  ASSERT_TRUE(run_job_sync(*pg_, upsert_conversation(conversation(session, 2))));
  auto c = run_job_sync(*pg_, get_conversation(tenant_, session));
  ASSERT_TRUE(c && c->has_value());
  EXPECT_EQ((*c)->version, 1) << "a conversation keeps the version it started with";
  EXPECT_FALSE((*c)->ended_at_ms);

  EXPECT_TRUE(*run_job_sync(*pg_, end_conversation(tenant_, session, "user_ended")));
  EXPECT_FALSE(*run_job_sync(*pg_, end_conversation(tenant_, session, "timeout")));
  c = run_job_sync(*pg_, get_conversation(tenant_, session));
  ASSERT_TRUE((*c)->ended_at_ms);
  EXPECT_EQ((*c)->end_reason, "user_ended");
  EXPECT_FALSE(run_job_sync(*pg_, get_conversation(tenant_, "nope"))->has_value());
}

TEST_F(catalog_test, quarantine_and_audit_rows) {
  auto id = run_job_sync(*pg_, insert_quarantine({0, tenant_, "s1", "m1", R"({"text":"boom"})",
                                                  "action mapping threw", 3, 0}));
  ASSERT_TRUE(id) << id.err().message;
  auto q = run_job_sync(*pg_, list_quarantine(tenant_));
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].id, *id);
  EXPECT_EQ((*q)[0].attempts, 3);
  EXPECT_EQ((*q)[0].error, "action mapping threw");

  auto a =
      run_job_sync(*pg_, audit({0, 0, "ops", "channel.configure", tenant_, "sms", R"({"k":1})"}));
  ASSERT_TRUE(a) << a.err().message;
  auto rows = audit_rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].id, *a);
  EXPECT_EQ(rows[0].action, "channel.configure");
  auto bad = run_job_sync(*pg_, audit({0, 0, "ops", "x", tenant_, "", "[1]"}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, "invalid_argument");
}

TEST_F(catalog_test, async_forms_answer_on_a_worker_thread) {
  std::promise<std::pair<result<bool>, std::thread::id>> p;
  run_job(*pg_, verify_api_key(tenant_, "pk_nothing"), [&](result<bool> r) {
    p.set_value({std::move(r), std::this_thread::get_id()});
  });
  auto [r, thread] = p.get_future().get();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_NE(thread, std::this_thread::get_id());

  std::promise<result<activation>> rb;
  run_job(*pg_, rollback(tenant_, "none", "tester"),
          [&](result<activation> r) { rb.set_value(std::move(r)); });
  auto rolled = rb.get_future().get();
  ASSERT_FALSE(rolled);
  EXPECT_EQ(rolled.err().code, "no_active_version");
}

}  // namespace
}  // namespace parley::store
