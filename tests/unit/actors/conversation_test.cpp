// The conversation actor on the in-memory snapshot store and CAF's test_coordinator:
// redelivery, sequence ids, a failed commit, a death with a commit in flight,
// quarantine. Each test checks what the client would see: the answer, its status,
// and that there is exactly one.

#include "tests/unit/actors/runtime_fixture.hpp"

namespace parley::actors::testing {
namespace {

using status = turn_outcome::status;

class conversation : public runtime_fixture {
 protected:
  void SetUp() override {
    runtime_fixture::SetUp();
    options_.stripes = 4;
    options_.debug_faults = true;  // kill() and the poison text
    start_runtime();
    started("s");
  }
};

TEST_F(conversation, redelivery_is_answered_from_the_record_without_running_again) {
  auto first = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(first->got.size(), 1u);
  EXPECT_EQ(first->got[0].st, status::ok);
  EXPECT_EQ(first->texts(), (std::vector<std::string>{"You said hello.", "Say something."}));
  const int commits = store_.commits();
  const auto snapshot = store_.get("t", "s");

  auto again = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(again->got.size(), 1u) << "one answer per delivery";
  EXPECT_EQ(again->got[0].st, status::replayed);
  EXPECT_EQ(again->texts(), first->texts()) << "the recorded answer of the first delivery";
  EXPECT_EQ(store_.commits(), commits) << "a redelivery commits nothing";
  EXPECT_EQ(store_.get("t", "s"), snapshot);
  EXPECT_EQ(first->got.size(), 1u);
}

TEST_F(conversation, a_lower_sequence_id_is_stale_and_changes_nothing) {
  auto two = submit(text_in("s", "m2", 2, "two"));
  run();
  ASSERT_EQ(two->got.size(), 1u);
  ASSERT_EQ(two->got[0].st, status::ok);
  const int commits = store_.commits();
  const auto snapshot = store_.get("t", "s");

  auto one = submit(text_in("s", "m1", 1, "one"));
  run();
  ASSERT_EQ(one->got.size(), 1u);
  EXPECT_EQ(one->got[0].st, status::stale_sequence);
  EXPECT_NE(one->got[0].message.find("sequenceId 1 is not greater than the last processed 2"),
            std::string::npos)
      << one->got[0].message;
  EXPECT_EQ(one->got[0].result, nullptr);
  EXPECT_EQ(store_.commits(), commits);
  EXPECT_EQ(store_.get("t", "s"), snapshot);

  auto three = submit(text_in("s", "m3", 3, "three"));
  run();
  ASSERT_EQ(three->got.size(), 1u);
  EXPECT_EQ(three->got[0].st, status::ok) << "the conversation goes on";
  EXPECT_EQ(three->texts(), (std::vector<std::string>{"You said three.", "Say something."}));
}

TEST_F(conversation, a_failed_commit_answers_unavailable_and_the_retry_runs_from_a_reload) {
  const auto before = store_.get("t", "s");
  const int loads = store_.loads();
  store_.fail_next_commit("redis went away");
  auto failed = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(failed->got.size(), 1u);
  EXPECT_EQ(failed->got[0].st, status::unavailable) << "answered 503: retry later";
  EXPECT_NE(failed->got[0].message.find("redis went away"), std::string::npos);
  EXPECT_EQ(failed->got[0].result, nullptr);
  EXPECT_EQ(store_.get("t", "s"), before) << "nothing was written";
  EXPECT_EQ(metric("parley_turn_commit_failures_total"), 1);

  auto retry = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(retry->got.size(), 1u);
  EXPECT_EQ(retry->got[0].st, status::ok) << "run again, not replayed: the first never committed";
  EXPECT_EQ(retry->texts(), (std::vector<std::string>{"You said hello.", "Say something."}));
  EXPECT_EQ(store_.loads(), loads + 1) << "the snapshot is read again after the failure";
  EXPECT_NE(store_.get("t", "s"), before);
  EXPECT_EQ(failed->got.size(), 1u);
}

TEST_F(conversation, a_death_with_its_commit_in_flight_is_answered_once) {
  store_.hold_commits();
  auto hello = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(store_.held_commits(), 1u);
  ASSERT_TRUE(hello->got.empty()) << "no answer before the commit";
  bool killed = false;
  rt_->kill("t", "s", [&](bool ok) { killed = ok; });
  ASSERT_TRUE(killed);
  run();  // the actor dies; its supervisor starts another and sends it the job again
  EXPECT_EQ(metric("parley_conversation_restarts_total"), 1);
  const int loads = store_.loads();
  fire_timers();  // the successor's read waits for the orphaned commit (the fence)
  EXPECT_EQ(store_.loads(), loads) << "no read while the dead actor's commit is in flight";
  EXPECT_GE(metric("parley_snapshot_reads_fenced_total"), 1);
  EXPECT_TRUE(hello->got.empty());

  store_.hold_commits(false);
  ASSERT_TRUE(store_.release_commit());  // the orphaned commit succeeds and answers
  ASSERT_EQ(hello->got.size(), 1u);
  EXPECT_EQ(hello->got[0].st, status::ok);
  EXPECT_EQ(hello->texts(), (std::vector<std::string>{"You said hello.", "Say something."}));
  fire_timers();  // the successor reads the committed snapshot and skips the answered job
  run();
  EXPECT_EQ(hello->got.size(), 1u) << "answered once, not run again";
  EXPECT_EQ(store_.commits(), 2) << "the start and this turn, committed once each";

  auto next = submit(text_in("s", "m2", 2, "again"));
  run();
  ASSERT_EQ(next->got.size(), 1u);
  EXPECT_EQ(next->got[0].st, status::ok);
  EXPECT_EQ(next->texts(), (std::vector<std::string>{"You said again.", "Say something."}));
}

TEST_F(conversation, a_message_that_kills_it_max_attempts_times_is_quarantined) {
  auto poison = submit(text_in("s", "m1", 1, debug_poison_text));
  auto after = submit(text_in("s", "m2", 2, "still here"));
  run();
  ASSERT_EQ(poison->got.size(), 1u) << "one answer after three deaths";
  EXPECT_EQ(poison->got[0].st, status::ok) << "the bot's error dialog answered";
  EXPECT_EQ(poison->texts(), (std::vector<std::string>{"Something went wrong.", "Say something."}));
  ASSERT_EQ(quarantined_.size(), 1u);
  EXPECT_EQ(quarantined_[0].message_id, "m1");
  EXPECT_EQ(quarantined_[0].attempts, options_.max_attempts);
  EXPECT_EQ(metric("parley_messages_quarantined_total"), 1);
  EXPECT_EQ(metric("parley_conversation_restarts_total"), options_.max_attempts);
  ASSERT_EQ(after->got.size(), 1u) << "the message behind it runs after it";
  EXPECT_EQ(after->got[0].st, status::ok);
  EXPECT_EQ(after->texts(), (std::vector<std::string>{"You said still here.", "Say something."}));
}

}  // namespace
}  // namespace parley::actors::testing
