// A start sent again to the session its external key maps to (a Bot API client's
// retry, see actors/gateway/botapi_gateway.hpp): the conversation answers with the
// first start's recorded answer and does not run the bot again, whether the first is
// committed, still in flight, or only in the store; once the session has ended it
// answers session_ended, so that the gateway starts a new one.

#include "tests/unit/actors/runtime_fixture.hpp"

namespace parley::actors::testing {
namespace {

class start_retry : public runtime_fixture {
 protected:
  void SetUp() override {
    runtime_fixture::SetUp();
    options_.debug_faults = true;  // kill()
    start_runtime();
  }

  /// A start as the Bot API gateway sends it.
  static inbound keyed_start(const std::string& session, const std::string& key = "k") {
    auto in = start_in(session);
    in.external_key = key;
    in.message_id = "start";
    return in;
  }

  /// Submits `in` and runs the actors; its one answer (a test failure if it got none or
  /// more, then an `internal` outcome saying so).
  turn_outcome answer_to(inbound in, std::vector<std::string>* texts = nullptr) {
    auto a = submit(std::move(in));
    run();
    EXPECT_EQ(a->got.size(), 1u);
    if (texts != nullptr) *texts = a->texts();
    if (a->got.size() == 1) return a->got[0];
    turn_outcome none;
    none.message = std::to_string(a->got.size()) + " answers";
    return none;
  }

  using status = turn_outcome::status;
  const std::vector<std::string> welcome{"Say something."};
};

TEST_F(start_retry, a_start_again_gets_the_recorded_answer_without_running_the_bot) {
  std::vector<std::string> texts;
  auto first = answer_to(keyed_start("s"), &texts);
  ASSERT_EQ(first.st, status::ok) << first.message;
  EXPECT_EQ(texts, welcome);
  EXPECT_EQ(store_.loads(), 1) << "a start with a key reads first: it may be a retry";
  const auto snapshot = store_.get("t", "s");

  auto again = answer_to(keyed_start("s"), &texts);
  EXPECT_EQ(again.st, status::replayed);
  EXPECT_EQ(texts, welcome);
  EXPECT_EQ(again.session_id, "s");
  EXPECT_EQ(store_.commits(), 1) << "the bot did not run again";
  EXPECT_EQ(store_.get("t", "s"), snapshot);

  // From the store, once the conversation is no longer live.
  bool killed = false;
  rt_->kill("t", "s", [&](bool ok) { killed = ok; });
  ASSERT_TRUE(killed);
  run();
  EXPECT_EQ(answer_to(keyed_start("s"), &texts).st, status::replayed);
  EXPECT_EQ(texts, welcome);
  EXPECT_EQ(store_.commits(), 1);
}

TEST_F(start_retry, a_start_again_while_the_first_commits_waits_and_gets_its_answer) {
  store_.hold_commits();
  auto first = submit(keyed_start("s"));
  run();
  ASSERT_EQ(store_.held_commits(), 1u);
  auto again = submit(keyed_start("s"));
  run();
  EXPECT_TRUE(first->got.empty());
  EXPECT_TRUE(again->got.empty()) << "it waits for the first start's commit";
  store_.hold_commits(false);
  ASSERT_TRUE(store_.release_commit());
  run();
  ASSERT_EQ(first->got.size(), 1u);
  EXPECT_EQ(first->got[0].st, status::ok);
  ASSERT_EQ(again->got.size(), 1u);
  EXPECT_EQ(again->got[0].st, status::replayed);
  EXPECT_EQ(again->texts(), first->texts());
  EXPECT_EQ(store_.commits(), 1);
}

TEST_F(start_retry, a_start_again_after_later_turns_finds_the_live_session) {
  ASSERT_EQ(answer_to(keyed_start("s")).st, status::ok);
  ASSERT_EQ(answer_to(text_in("s", "1", 1, "hello")).st, status::ok);
  std::vector<std::string> texts{"not answered"};
  EXPECT_EQ(answer_to(keyed_start("s"), &texts).st, status::replayed);
  EXPECT_TRUE(texts.empty())
      << "the start's messages are no longer recorded (a later turn showed messages)";
  EXPECT_EQ(store_.commits(), 2);
  EXPECT_EQ(answer_to(text_in("s", "2", 2, "again")).st, status::ok) << "the session goes on";
}

TEST_F(start_retry, a_start_again_after_the_session_ended_is_refused_as_ended) {
  ASSERT_EQ(answer_to(keyed_start("s")).st, status::ok);
  inbound end = text_in("s", "end", -1, "UserRequest");
  end.what = inbound::kind::end;
  ASSERT_EQ(answer_to(end).st, status::ok);
  EXPECT_EQ(answer_to(keyed_start("s")).st, status::session_ended)
      << "the gateway maps the key anew";
  EXPECT_EQ(store_.commits(), 2);
}

TEST_F(start_retry, a_start_for_a_session_of_another_key_or_none_is_refused) {
  ASSERT_EQ(answer_to(keyed_start("s", "k")).st, status::ok);
  auto other = answer_to(keyed_start("s", "other"));
  EXPECT_EQ(other.st, status::internal);
  EXPECT_NE(other.message.find("already in use"), std::string::npos) << other.message;
  EXPECT_EQ(answer_to(start_in("s")).st, status::internal);
  EXPECT_EQ(store_.commits(), 1);
}

}  // namespace
}  // namespace parley::actors::testing
