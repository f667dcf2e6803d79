/// Unit tests of shard placement (cluster/placement): the hashes are stable, shards
/// spread evenly, and a membership change moves only the shards it must.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cluster/lease/leases.hpp"
#include "cluster/placement/placement.hpp"

namespace parley::cluster {
namespace {

std::vector<std::string> nodes(int n, const std::string& prefix = "node-") {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(Placement, TheHashesArePartOfTheProtocolAndNeverChange) {
  // Every node of a region, and every version in a rolling upgrade, must agree: these
  // values are fixed, so a change of the function fails here first.
  EXPECT_EQ(stable_hash("node-1"), 0x13950d4ef307e655ULL);
  EXPECT_EQ(shard_of("acme", "session-1", 1024), 712u);
  EXPECT_EQ(stable_hash("node-1"), stable_hash(std::string("node-1")));
  EXPECT_NE(stable_hash("node-1"), stable_hash("node-2"));
  EXPECT_EQ(shard_of("acme", "session-1", 1024), shard_of("acme", "session-1", 1024));
  // The separator: ("ab", "c") and ("a", "bc") are different conversations.
  EXPECT_NE(shard_of("ab", "c", 1u << 30), shard_of("a", "bc", 1u << 30));
}

TEST(Placement, ConversationsSpreadEvenlyOverTheShards) {
  constexpr uint32_t shards = 64;
  std::vector<int> count(shards, 0);
  for (int i = 0; i < 64000; ++i) ++count[shard_of("tenant", "s" + std::to_string(i), shards)];
  for (int c : count) {
    EXPECT_GT(c, 1000 * 0.85);
    EXPECT_LT(c, 1000 * 1.15);
  }
}

TEST(Placement, EveryShardHasOneOwnerAndOwnersShareThemEvenly) {
  auto members = nodes(3);
  auto owners = assign(1024, members);
  std::map<int, int> per;
  for (int o : owners) {
    ASSERT_GE(o, 0);
    ASSERT_LT(o, 3);
    ++per[o];
  }
  for (auto& [o, n] : per) {
    EXPECT_GT(n, 1024 / 3 * 0.8) << members[static_cast<std::size_t>(o)];
    EXPECT_LT(n, 1024 / 3 * 1.2) << members[static_cast<std::size_t>(o)];
  }
  EXPECT_EQ(owner_of(5, {}), -1);
}

TEST(Placement, TheOrderOfTheMemberListDoesNotMatter) {
  auto a = nodes(4);
  auto b = a;
  std::reverse(b.begin(), b.end());
  auto oa = assign(1024, a), ob = assign(1024, b);
  for (uint32_t s = 0; s < 1024; ++s)
    EXPECT_EQ(a[static_cast<std::size_t>(oa[s])], b[static_cast<std::size_t>(ob[s])]);
}

TEST(Placement, AFourthNodeTakesAQuarterOfTheShardsFromEveryOther) {
  auto before_m = nodes(3), after_m = nodes(4);
  auto before = assign(1024, before_m), after = assign(1024, after_m);
  auto m = moved(before, before_m, after, after_m);
  // The goal: at most 1.1 x (1/4 of the shards).
  EXPECT_LE(m.size(), static_cast<std::size_t>(1024 / 4 * 1.1));
  EXPECT_GE(m.size(), static_cast<std::size_t>(1024 / 4 * 0.8));
  // Every moved shard goes to the new node: none moves between the old ones.
  for (auto s : m) EXPECT_EQ(after_m[static_cast<std::size_t>(after[s])], "node-4") << s;
}

TEST(Placement, ANodeLeavingMovesOnlyItsOwnShards) {
  auto before_m = nodes(4);
  std::vector<std::string> after_m = {"node-1", "node-2", "node-4"};
  auto before = assign(1024, before_m), after = assign(1024, after_m);
  auto m = moved(before, before_m, after, after_m);
  std::size_t owned_by_3 = 0;
  for (uint32_t s = 0; s < 1024; ++s)
    if (before_m[static_cast<std::size_t>(before[s])] == "node-3") ++owned_by_3;
  EXPECT_EQ(m.size(), owned_by_3);
  for (auto s : m) EXPECT_EQ(before_m[static_cast<std::size_t>(before[s])], "node-3");
}

TEST(Leases, HolderValuesNameTheNodeAndTheEpoch) {
  EXPECT_EQ(holder_value("node-1", 42), "node-1/42");
  EXPECT_EQ(holder_node("node-1/42"), "node-1");
  EXPECT_EQ(holder_node("a/b/7"), "a/b");  // the epoch is after the last slash
  EXPECT_EQ(holder_node(""), "");
  EXPECT_EQ(holder_node("garbage"), "");
  lease_keys k;
  k.region = "eu";
  EXPECT_EQ(k.lease(7), "parley:eu:lease:7");
  EXPECT_EQ(k.epoch(7), "parley:eu:epoch:7");
  EXPECT_EQ(k.member("n1"), "parley:eu:member:n1");
}

TEST(Leases, TheShardTableCountsWhatIsHeldAndInFlight) {
  shard_table t(8);
  EXPECT_EQ(t.held_count(), 0u);
  t.set_held(3, 9);
  t.set_held(5, 1);
  EXPECT_EQ(t.held(3), 9u);
  EXPECT_EQ(t.held_count(), 2u);
  t.turn_started(3);
  t.turn_started(3);
  t.turn_finished(3);
  EXPECT_EQ(t.in_flight(3), 1);
  t.set_held(3, 0);
  EXPECT_EQ(t.held_count(), 1u);
}

}  // namespace
}  // namespace parley::cluster
