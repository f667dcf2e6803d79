// Three parleyd nodes of one region: the shards are spread over all three, the
// conversations too (X-Parley-Node names the node that ran each turn), and any node
// routes a turn to the conversation's owner. A retried session start (the same
// externalSessionKey, through another node) lands on the same session and gets the
// recorded answer.

#include "tests/cluster/fixture.hpp"

namespace {

using namespace parley::cluster::testing;

TEST_F(Cluster, ThreeNodesSpreadConversationsAndAnyNodeRoutesToTheOwner) {
  start_region(3);
  ASSERT_FALSE(HasFatalFailure());
  const long total = shards();
  ASSERT_GT(total, 0) << region_->node(0).cluster_status().dump();
  json status;
  auto want =
      placement({region_->node(0).name(), region_->node(1).name(), region_->node(2).name()}, total);
  for (std::size_t i = 0; i < 3; ++i)
    ASSERT_TRUE(region_->await_status(
        i, [&](const json& s) { return settled(s, want); }, 30s, &status))
        << "the three nodes own the shards rendezvous placement gives them, " << json(want).dump()
        << ", as " << region_->node(i).name() << " sees it: " << status.dump();
  status = region_->node(0).cluster_status();
  EXPECT_EQ(status.value("self", ""), region_->node(0).name());
  for (const auto& n : status["nodes"]) {
    EXPECT_TRUE(n.contains("address")) << n.dump();
    EXPECT_TRUE(n.contains("http")) << n.dump();
    EXPECT_TRUE(n.contains("version")) << n.dump();
    EXPECT_TRUE(n.contains("heartbeat_age_ms")) << n.dump();
    EXPECT_TRUE(n.contains("live_conversations")) << n.dump();
  }

  // 30 conversations, each started through node i % 3. With 3 nodes the chance that
  // one of them owns none of 30 random conversations is 3 * (2/3)^30, about 1.6e-5.
  const std::size_t n = 30;
  std::vector<std::string> sessions(n), owners(n), keys(n), welcome(n);
  std::map<std::string, int> per_owner;
  for (std::size_t i = 0; i < n; ++i) {
    keys[i] = parley::store::testing::unique_name("spread");
    auto r = start_session(region_->node(i % 3).url(), keys[i]);
    ASSERT_EQ(r.status, 200) << r.error;
    sessions[i] = r.body.value("sessionId", "");
    ASSERT_FALSE(sessions[i].empty()) << r.body.dump();
    EXPECT_NE(r.texts.find("Counter ready."), std::string::npos) << r.texts;
    ASSERT_FALSE(r.node.empty()) << "a Bot API answer names the node that ran the turn";
    owners[i] = r.node;
    welcome[i] = r.texts;
    ++per_owner[r.node];
    if (i % 5 != 0) continue;
    // The client timed out and starts again, through another node: the same session,
    // the recorded answer, from the owner (the welcome did not run twice).
    auto again = start_session(region_->node((i + 1) % 3).url(), keys[i]);
    ASSERT_EQ(again.status, 200) << again.error;
    EXPECT_EQ(again.body.value("sessionId", ""), sessions[i])
        << "a retried session start started a second session";
    EXPECT_EQ(again.texts, welcome[i]) << "a retried start gets the recorded answer";
    EXPECT_EQ(again.node, owners[i]);
  }
  EXPECT_EQ(per_owner.size(), 3u) << "the conversations spread over all three nodes: "
                                  << json(per_owner).dump();

  // Any node routes to the owner: turn k of every conversation through node k - 1.
  for (std::size_t i = 0; i < n; ++i) {
    for (std::int64_t seq = 1; seq <= 3; ++seq) {
      auto via = region_->node(static_cast<std::size_t>(seq - 1)).url();
      auto said = "s" + std::to_string(i) + "-" + std::to_string(seq);
      auto r = text(via, sessions[i], seq, said);
      ASSERT_EQ(r.status, 200) << "through " << via << ": " << r.error;
      EXPECT_NE(r.texts.find("turn " + std::to_string(seq) + ": " + said), std::string::npos)
          << r.texts;
      EXPECT_EQ(r.node, owners[i]) << "conversation " << i << " turn " << seq << " through " << via
                                   << " ran on another node than its owner";
    }
  }

  // The status counts the live conversations of each node (carried by heartbeats, so
  // the peers' figures follow within a beat or two).
  ASSERT_TRUE(region_->await_status(
      0,
      [&](const json& s) {
        for (const auto& [owner, count] : per_owner)
          if (field_of(s, owner, "live_conversations") < count) return false;
        return true;
      },
      10s, &status))
      << "live_conversations per node, expected at least " << json(per_owner).dump() << ": "
      << status.dump();

  // A late duplicate of the start, after later turns: it finds the live session and
  // restarts nothing; the conversation goes on where it was.
  for (std::size_t i = 0; i < n; i += 5) {
    auto r = start_session(region_->node((i + 2) % 3).url(), keys[i]);
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body.value("sessionId", ""), sessions[i])
        << "a late session start started a second session";
    auto next = text(region_->node(i % 3).url(), sessions[i], 4, "after-retry");
    ASSERT_EQ(next.status, 200) << next.error;
    EXPECT_NE(next.texts.find("turn 4: after-retry"), std::string::npos)
        << "the late start restarted the conversation: " << next.texts;
  }

  // Each session's welcome is in its transcript once: one session per key, started once.
  for (std::size_t i = 0; i < n; ++i) {
    int welcomes = 0;
    ASSERT_TRUE(parley::store::testing::eventually(
        [&] {
          auto t =
              parley::store::run_job_sync(*pg_, parley::store::transcript(tenant_, sessions[i]));
          if (!t.ok()) return false;
          welcomes = 0;
          bool turn4 = false;
          for (const auto& row : *t) {
            welcomes += row.direction == "out" && row.text == "Counter ready.";
            turn4 |= row.direction == "in" && row.sequence == 4;
          }
          return welcomes >= 1 && (i % 5 != 0 || turn4);
        },
        20s));
    EXPECT_EQ(welcomes, 1) << "conversation " << i;
  }
}

}  // namespace
