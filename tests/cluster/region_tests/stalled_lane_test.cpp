// A node whose lane is stalled (a runaway turn, simulated by the debug fault
// POST /admin/v1/debug/lanes/stall) loses its shards as a dead node does: its heartbeat
// comes from the lanes, so it stops renewing its leases while its own threads still
// run. The other node takes the shards and serves the stalled node's conversations;
// once the lane runs again, the node rejoins and takes its share back. No turn is lost
// or run twice.

#include "tests/cluster/fixture.hpp"

namespace {

using namespace parley::cluster::testing;

/// The value of an unlabelled counter in `node`'s /metrics; -1 when absent.
double counter(region_node& node, const std::string& name) {
  parley::http::client_request r;
  r.url = node.url("/metrics");
  auto res = parley::http::fetch(r);
  if (!res.ok()) return -1;
  auto pos = res->body.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(res->body.substr(pos + name.size() + 2));
}

TEST_F(Cluster, AStalledLaneLosesTheNodesShardsAndTheNodeRejoinsAfterwards) {
  start_region(2, {{"PARLEY_RUNTIME_DEBUG_FAULTS", "true"}});
  ASSERT_FALSE(HasFatalFailure());
  const long total = shards();
  const std::string a = region_->node(0).name(), b = region_->node(1).name();
  auto both = placement({a, b}, total);
  json seen;
  ASSERT_TRUE(region_->await_status(
      0, [&](const json& s) { return settled(s, both); }, 30s, &seen))
      << seen.dump();

  // A conversation that node b runs.
  std::string session;
  for (int i = 0; i < 64 && session.empty(); ++i) {
    auto s = start_session(region_->node(0).url(), "stall-" + std::to_string(i));
    ASSERT_EQ(s.status, 200) << s.error;
    if (s.node == b) session = s.body.value("sessionId", "");
  }
  ASSERT_FALSE(session.empty()) << "no conversation of 64 landed on " << b;

  // One of b's lanes runs nothing for 8 s; its other threads (the membership thread,
  // the other lane) go on.
  parley::http::client_request stall;
  stall.method = "POST";
  stall.url = region_->node(1).url("/admin/v1/debug/lanes/stall");
  stall.headers = {{"Authorization", "Bearer " + admin_token}};
  stall.body = R"({"ms": 8000})";
  auto stalled_at = clock::now();
  auto res = parley::http::fetch(stall);
  ASSERT_TRUE(res.ok()) << res.err().message;
  ASSERT_EQ(res->status, 200) << res->body;

  // Past the lease (3 s), a owns every shard and b is not up.
  ASSERT_TRUE(region_->await_status(
      0,
      [&](const json& s) {
        return state_of(s, b) != "up" && field_of(s, a, "shards_owned") == total;
      },
      15s, &seen))
      << "the stalled node kept its shards: " << seen.dump();
  auto taken_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - stalled_at).count();
  std::cout << "the stalled node's shards were taken after " << taken_ms << " ms\n";
  EXPECT_LT(taken_ms, 8000) << "taken only once the stall ended";

  // a serves b's conversation meanwhile.
  bot_reply during;
  ASSERT_TRUE(parley::store::testing::eventually(
      [&] {
        during = text(region_->node(0).url(), session, 1, "during", 5s);
        return during.status == 200;
      },
      10s))
      << during.status << " " << during.error;
  EXPECT_EQ(during.node, a);
  EXPECT_NE(during.texts.find("turn 1: during"), std::string::npos) << during.texts;

  // The lane runs again: b rejoins and takes its share back.
  ASSERT_TRUE(region_->await_status(
      0, [&](const json& s) { return settled(s, both); }, 40s, &seen))
      << "the region did not settle again: " << seen.dump();
  auto after = text(region_->node(0).url(), session, 2, "after");
  ASSERT_EQ(after.status, 200) << after.error;
  EXPECT_NE(after.texts.find("turn 2: after"), std::string::npos)
      << "a turn was lost or ran twice: " << after.texts;
  EXPECT_GT(counter(region_->node(1), "parley_cluster_heartbeats_skipped_total"), 0);
  EXPECT_GT(counter(region_->node(1), "parley_cluster_leases_lost_total"), 0);
}

}  // namespace
