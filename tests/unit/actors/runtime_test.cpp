// The runtime on the in-memory snapshot store and CAF's test_coordinator:
// passivation of idle conversations, and stop() answering every waiting job 503.

#include "tests/unit/actors/runtime_fixture.hpp"

namespace parley::actors::testing {
namespace {

using status = turn_outcome::status;

class runtime_stripes : public runtime_fixture {};

std::vector<runtime::live_conversation> live_of(runtime& rt, const std::string& tenant) {
  std::vector<runtime::live_conversation> out;
  rt.live(tenant, [&](std::vector<runtime::live_conversation> l) { out = std::move(l); });
  return out;
}

TEST_F(runtime_stripes, an_idle_conversation_is_passivated_and_comes_back_from_its_snapshot) {
  options_.stripes = 2;
  options_.passivate_after = std::chrono::milliseconds(0);  // idle at the first tick
  start_runtime();
  started("s");
  auto hello = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(hello->got.size(), 1u);
  ASSERT_EQ(live_of(*rt_, "t").size(), 1u);
  EXPECT_EQ(metric("parley_conversations_live"), 1);

  fire_timers();  // the supervisors' ticks
  EXPECT_TRUE(live_of(*rt_, "t").empty());
  EXPECT_EQ(metric("parley_conversations_passivated_total"), 1);
  EXPECT_EQ(metric("parley_conversations_live"), 0);
  EXPECT_TRUE(store_.get("t", "s").has_value()) << "the snapshot stays";

  auto back = submit(text_in("s", "m2", 2, "back"));
  run();
  ASSERT_EQ(back->got.size(), 1u);
  EXPECT_EQ(back->got[0].st, status::ok);
  EXPECT_EQ(back->texts(), (std::vector<std::string>{"You said back.", "Say something."}));
  EXPECT_EQ(metric("parley_conversation_activations_total{source=\"snapshot\"}"), 1);
  auto redelivered = submit(text_in("s", "m1", 1, "hello"));
  run();
  ASSERT_EQ(redelivered->got.size(), 1u);
  EXPECT_EQ(redelivered->got[0].st, status::stale_sequence)
      << "the snapshot kept the last sequenceId";
}

TEST_F(runtime_stripes, stop_answers_every_waiting_job_unavailable_once) {
  options_.stripes = 1;
  start_runtime();
  started("a");
  started("b");
  options_ = {};
  // A fresh runtime over the same store: its conversations' first turns read their
  // snapshots, and the reads are held, so every job below is waiting at stop().
  rt_->stop();
  run();
  rt_.reset();
  start_runtime();
  store_.hold_loads();
  auto a1 = submit(text_in("a", "m1", 1, "one"));
  auto a2 = submit(text_in("a", "m2", 2, "two"));
  auto b1 = submit(text_in("b", "m1", 1, "one"));
  run();
  ASSERT_EQ(store_.held_loads(), 2u);
  ASSERT_TRUE(a1->got.empty() && a2->got.empty() && b1->got.empty());

  rt_->stop();
  for (const auto* a : {&a1, &a2, &b1}) {
    ASSERT_EQ((*a)->got.size(), 1u);
    EXPECT_EQ((*a)->got[0].st, status::unavailable) << "answered 503";
    EXPECT_EQ((*a)->got[0].message, "the node is shutting down");
  }
  EXPECT_EQ(metric("parley_turns_total{outcome=\"unavailable\"}"), 3);

  while (store_.release_load()) {
  }
  run();  // the reads complete for actors that have exited: nothing more is answered
  for (const auto* a : {&a1, &a2, &b1}) EXPECT_EQ((*a)->got.size(), 1u);

  auto late = submit(text_in("a", "m3", 3, "late"));
  ASSERT_EQ(late->got.size(), 1u) << "answered at once after stop";
  EXPECT_EQ(late->got[0].st, status::unavailable);
}

}  // namespace
}  // namespace parley::actors::testing
