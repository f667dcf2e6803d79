// Membership changes under load: a fourth node joins (it takes about a quarter of the
// shards, from the others only), then a node drains through the admin endpoint and
// exits 0; and a rolling restart (SIGTERM, which drains, then start again) of all three
// nodes. No acknowledged turn is lost and none is answered twice; a turn's latency,
// retries included, stays bounded.

#include "tests/cluster/fixture.hpp"

namespace {

using namespace parley::cluster::testing;

/// The longest time from a turn's first attempt to its answer among the turns sent
/// after `since`, in milliseconds.
double max_latency_ms(const driver& d, clock::time_point since) {
  double max = 0;
  for (const auto& c : d.records())
    for (const auto& t : c.turns)
      if (t.acked && t.sent >= since)
        max = std::max(max, std::chrono::duration<double, std::milli>(t.answered - t.sent).count());
  return max;
}

TEST_F(Cluster, JoinAFourthNodeThenDrainOneUnderLoadLosesNothing) {
  start_region(3);
  const long total = shards();
  auto d = make_driver();
  d->start();
  ASSERT_TRUE(d->await_answered_after(clock::now(), 3, 60s)) << "the load did not get going";

  json before;
  ASSERT_TRUE(region_->await_status(
      0, [&](const json& s) { return region::shards_owned_by_up(s) == total; }, 10s, &before))
      << before.dump();
  auto joined_at = clock::now();
  ASSERT_TRUE(region_->add());
  auto fourth = region_->node(3).name();
  ASSERT_TRUE(region_->await_converged());
  // The handoff moves shards a few at a time: await the end of it.
  json after;
  ASSERT_TRUE(region_->await_status(
      0,
      [&](const json& s) {
        return field_of(s, fourth, "shards_owned") > 0 && region::shards_owned_by_up(s) == total;
      },
      60s, &after))
      << after.dump();
  // Rendezvous placement: shards move only to the new node, about a quarter of them.
  auto moved = field_of(after, fourth, "shards_owned");
  std::cout << "the fourth node took " << moved << " of " << total << " shards\n";
  RecordProperty("shards_moved_on_join", std::to_string(moved));
  EXPECT_LE(moved, static_cast<long>(1.1 * static_cast<double>(total) / 4)) << after.dump();
  EXPECT_GE(moved, static_cast<long>(0.9 * static_cast<double>(total) / 4)) << after.dump();
  for (std::size_t i = 0; i < 3; ++i) {
    auto id = region_->node(i).name();
    EXPECT_LE(field_of(after, id, "shards_owned"), field_of(before, id, "shards_owned"))
        << id << " gained shards when a node joined";
  }
  ASSERT_TRUE(d->await_answered_after(clock::now(), 3, 60s));

  // Drain node 0 through node 1's admin endpoint: it hands its shards over and exits 0.
  auto drained = region_->node(0).name();
  EXPECT_EQ(drain(region_->node(1).url(), drained), 202);
  auto code = region_->node(0).wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "the drained node did not exit within 60 s";
  EXPECT_EQ(*code, 0) << region_->node(0).output();
  auto drained_at = clock::now();
  ASSERT_TRUE(region_->await_converged());
  json last;
  EXPECT_TRUE(region_->await_status(
      1,
      [&](const json& s) {
        return state_of(s, drained) != "up" && region::shards_owned_by_up(s) == total;
      },
      30s, &last))
      << last.dump();
  ASSERT_TRUE(d->await_answered_after(drained_at, 3, 60s));
  auto worst = max_latency_ms(*d, joined_at);
  std::cout << "the slowest turn during the join and the drain took " << worst << " ms\n";
  EXPECT_LE(worst, 5000) << "a turn took over 5 s, retries included, during a join or a drain";
  check_everything(*d);
}

TEST_F(Cluster, RollingRestartOfAllThreeNodesUnderLoadLosesNothing) {
  start_region(3);
  const long total = shards();
  auto d = make_driver();
  d->start();
  ASSERT_TRUE(d->await_answered_after(clock::now(), 3, 60s)) << "the load did not get going";
  auto began = clock::now();
  for (std::size_t i = 0; i < 3; ++i) {
    auto& n = region_->node(i);
    n.signal(SIGTERM);
    auto code = n.wait_exit(60s);
    ASSERT_TRUE(code.has_value()) << n.name() << " did not exit within 60 s of SIGTERM";
    EXPECT_EQ(*code, 0) << n.output();
    EXPECT_TRUE(d->await_answered_after(clock::now(), 2, 60s))
        << "conversations stalled with " << n.name() << " gone";
    ASSERT_TRUE(region_->restart(i));
    ASSERT_TRUE(region_->await_converged());
    json s;
    ASSERT_TRUE(region_->await_status(
        i,
        [&](const json& st) {
          return field_of(st, region_->node(i).name(), "shards_owned") > 0 &&
                 region::shards_owned_by_up(st) == total;
        },
        60s, &s))
        << "the restarted " << region_->node(i).name() << " took no shards back: " << s.dump();
    ASSERT_TRUE(d->await_answered_after(clock::now(), 2, 60s));
  }
  std::cout << "the slowest turn during the rolling restart took " << max_latency_ms(*d, began)
            << " ms\n";
  check_everything(*d);
}

}  // namespace
