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

/// Attempts after `since` that a node other than `except` (a URL) answered 503: each one
/// described. While a shard moves, its turns wait for it (they follow the lease holder,
/// and a node whose view lags buffers them) instead of being answered "retry".
std::vector<std::string> unavailable_from_others(const driver& d, clock::time_point since,
                                                 const std::string& except) {
  std::vector<std::string> out;
  for (const auto& c : d.records())
    for (const auto& t : c.turns)
      for (const auto& a : t.attempts)
        if (a.at >= since && a.status == 503 && a.endpoint != except)
          out.push_back(c.external_key + " turn " + std::to_string(t.seq) + " at " + a.endpoint +
                        ": " + a.error);
  return out;
}

TEST_F(Cluster, JoinAFourthNodeThenDrainOneUnderLoadLosesNothing) {
  auto d = start_under_load(3);
  ASSERT_TRUE(d);
  const long total = shards();

  std::vector<std::string> three, four;
  for (std::size_t i = 0; i < 3; ++i) three.push_back(region_->node(i).name());
  auto before = placement(three, total);
  json seen;
  ASSERT_TRUE(region_->await_status(
      0, [&](const json& s) { return settled(s, before); }, 30s, &seen))
      << "expected " << json(before).dump() << ", the region shows " << seen.dump();
  auto joined_at = clock::now();
  ASSERT_TRUE(region_->add());
  auto fourth = region_->node(3).name();
  four = three;
  four.push_back(fourth);
  auto after = placement(four, total);
  ASSERT_TRUE(region_->await_converged());
  // The handoff moves shards a batch per heartbeat: await its end, where every node
  // owns what rendezvous placement gives it (the same on every node).
  for (std::size_t i = 0; i < 4; ++i)
    ASSERT_TRUE(region_->await_status(
        i, [&](const json& s) { return settled(s, after); }, 60s, &seen))
        << "expected " << json(after).dump() << ", " << region_->node(i).name() << " shows "
        << seen.dump();
  // Rendezvous placement: shards moved only to the new node, about a quarter of them.
  long moved = 0;
  for (const auto& id : three) {
    EXPECT_LE(field_of(seen, id, "shards_owned"), before[id]) << id << " gained shards";
    moved += before[id] - field_of(seen, id, "shards_owned");
  }
  EXPECT_EQ(moved, field_of(seen, fourth, "shards_owned"));
  std::cout << "a fourth node joined: " << moved << " of " << total << " shards moved\n";
  RecordProperty("shards_moved_on_join", std::to_string(moved));
  EXPECT_LE(moved, static_cast<long>(1.1 * static_cast<double>(total) / 4)) << seen.dump();
  ASSERT_TRUE(d->await_answered_after(clock::now(), 3, 60s));

  // Drain node 0 through node 1's admin endpoint: it hands its shards over and exits 0.
  auto drained = region_->node(0).name();
  EXPECT_EQ(drain(region_->node(1).url(), drained), 202);
  auto code = region_->node(0).wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "the drained node did not exit within 60 s";
  EXPECT_EQ(*code, 0) << region_->node(0).output();
  auto drained_at = clock::now();
  ASSERT_TRUE(region_->await_converged());
  auto rest = placement({four[1], four[2], four[3]}, total);
  EXPECT_TRUE(region_->await_status(
      1, [&](const json& s) { return settled(s, rest); }, 30s, &seen))
      << "expected " << json(rest).dump() << ", the region shows " << seen.dump();
  ASSERT_TRUE(d->await_answered_after(drained_at, 3, 60s));
  auto worst = max_latency_ms(*d, joined_at);
  std::cout << "the slowest turn during the join and the drain took " << worst << " ms\n";
  EXPECT_LE(worst, 5000) << "a turn took over 5 s, retries included, during a join or a drain";
  auto refused = unavailable_from_others(*d, joined_at, region_->node(0).url());
  EXPECT_TRUE(refused.empty()) << refused.size() << " attempts answered 503 by the nodes that "
                               << "stayed, the first: " << refused.front();
  check_everything(*d);
}

TEST_F(Cluster, RollingRestartOfAllThreeNodesUnderLoadLosesNothing) {
  auto d = start_under_load(3);
  ASSERT_TRUE(d);
  const long total = shards();
  auto want =
      placement({region_->node(0).name(), region_->node(1).name(), region_->node(2).name()}, total);
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
        i, [&](const json& st) { return settled(st, want); }, 60s, &s))
        << "the restarted " << region_->node(i).name() << " did not take its shards back, "
        << json(want).dump() << ": " << s.dump();
    ASSERT_TRUE(d->await_answered_after(clock::now(), 2, 60s));
  }
  std::cout << "the slowest turn during the rolling restart took " << max_latency_ms(*d, began)
            << " ms\n";
  check_everything(*d);
}

}  // namespace
