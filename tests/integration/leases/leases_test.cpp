/// The lease and fence scripts (cluster/lease) on a real Redis (REDIS_URL of
/// scripts/test): compare-and-set acquisition with epochs that only grow, renewal and
/// release by the holder only, and the fenced commit that refuses a stale holder —
/// through the scripts and through the fenced snapshot store parleyd uses.

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "cluster/lease/fenced_snapshot_store.hpp"
#include "cluster/lease/leases.hpp"
#include "cluster/placement/placement.hpp"
#include "tests/integration/store/shared_redis.hpp"

namespace parley::cluster {
namespace {

using store::redis_reply;

class Leases : public store::shared_redis {
 protected:
  void SetUp() override {
    store::redis_options o;
    o.url = store::testing::require_env("REDIS_URL");
    o.scripts = lease_scripts();
    open(std::move(o), "leases");
    keys_.prefix = prefix_ + "parley";
    keys_.region = "test";
  }
  redis_reply eval(const store::redis_script& s, std::initializer_list<std::string_view> k,
                   std::initializer_list<std::string_view> a) {
    std::promise<result<redis_reply>> p;
    client_->eval(s, k, a, [&p](result<redis_reply> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : redis_reply{};
  }
  long long acquire(uint32_t shard, const std::string& node, const std::string& expect) {
    auto r =
        eval(acquire_script(), {keys_.lease(shard), keys_.epoch(shard)}, {node, "60000", expect});
    EXPECT_EQ(r.elements.size(), 1u);
    return r.elements.empty() ? -1 : r.elements[0].integer;
  }
  /// The fenced commit of shard 4's snapshot `snap`, without a transcript line.
  redis_reply commit(const std::string& snap, std::string_view bytes, std::string_view holder) {
    return eval(commit_script(), {snap, keys_.lease(4), keys_.transcripts(4)},
                {bytes, "60", holder, "", "100", "refuse"});
  }
  std::string get(const std::string& k) {
    auto r = client_->command_sync({"GET", k});
    EXPECT_TRUE(r);
    return r && !r->is_nil() ? r->str : "(nil)";
  }
  lease_keys keys_;
};

TEST_F(Leases, AcquireIsCompareAndSetAndEveryHolderGetsALargerEpoch) {
  EXPECT_EQ(acquire(1, "a", ""), 1);
  EXPECT_EQ(get(keys_.lease(1)), "a/1");
  // b read the shard as free, but a took it meanwhile: refused.
  EXPECT_EQ(acquire(1, "b", ""), 0);
  EXPECT_EQ(get(keys_.lease(1)), "a/1");
  // b saw a dead and takes over exactly what it read.
  EXPECT_EQ(acquire(1, "b", "a/1"), 2);
  EXPECT_EQ(get(keys_.lease(1)), "b/2");
  // a, back from a pause, cannot take it with its old view.
  EXPECT_EQ(acquire(1, "a", "a/1"), 0);
  // Released, then taken again: the epoch still grows.
  auto rel = eval(holder_script(), {keys_.lease(1)}, {"release", "", "b/2"});
  ASSERT_EQ(rel.elements.size(), 1u);
  EXPECT_EQ(rel.elements[0].integer, 1);
  EXPECT_EQ(get(keys_.lease(1)), "(nil)");
  EXPECT_EQ(acquire(1, "a", ""), 3);
}

TEST_F(Leases, OnlyTheHolderRenewsOrReleases) {
  ASSERT_EQ(acquire(2, "a", ""), 1);
  auto renew =
      eval(holder_script(), {keys_.lease(2), keys_.lease(3)}, {"renew", "90000", "a/1", "a/1"});
  ASSERT_EQ(renew.elements.size(), 2u);
  EXPECT_EQ(renew.elements[0].integer, 1);
  EXPECT_EQ(renew.elements[1].integer, 0);  // shard 3 is nobody's
  auto ttl = client_->command_sync({"PTTL", keys_.lease(2)});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 60000);  // extended from 60 s to 90 s
  auto wrong = eval(holder_script(), {keys_.lease(2)}, {"renew", "90000", "b/1"});
  EXPECT_EQ(wrong.elements[0].integer, 0);
  auto stale = eval(holder_script(), {keys_.lease(2)}, {"release", "", "a/0"});
  EXPECT_EQ(stale.elements[0].integer, 0);
  EXPECT_EQ(get(keys_.lease(2)), "a/1");
}

TEST_F(Leases, ACommitIsRefusedUnlessTheWriterHoldsTheLease) {
  const std::string snap = key("conv:t:s");
  ASSERT_EQ(acquire(4, "a", ""), 1);
  auto ok = commit(snap, "v1", "a/1");
  EXPECT_EQ(ok.integer, 1);
  EXPECT_EQ(get(snap), "v1");
  ASSERT_EQ(acquire(4, "b", "a/1"), 2);  // b takes over: a is fenced
  auto fenced = commit(snap, "stale", "a/1");
  EXPECT_EQ(fenced.integer, 0);
  EXPECT_EQ(get(snap), "v1");
  auto b = commit(snap, "v2", "b/2");
  EXPECT_EQ(b.integer, 1);
  EXPECT_EQ(get(snap), "v2");
  // An expired lease fences too, even before anyone takes the shard.
  ASSERT_TRUE(client_->command_sync({"DEL", keys_.lease(4)}));
  auto expired = commit(snap, "late", "b/2");
  EXPECT_EQ(expired.integer, 0);
  EXPECT_EQ(get(snap), "v2");
}

struct load_wait : actors::snapshot_store::load_handler {
  std::promise<result<actors::snapshot_read>> p;
  void loaded(result<actors::snapshot_read> r) override { p.set_value(std::move(r)); }
};
struct commit_wait : actors::snapshot_store::commit_handler {
  std::promise<result<void>> p;
  void committed(result<void> r) override { p.set_value(std::move(r)); }
};

TEST_F(Leases, TheFencedStoreHandsOutTheEpochAndRefusesAStaleOne) {
  shard_table table(16);
  fenced_snapshot_store fs(*client_, 0, prefix_ + "parley", table, keys_, "a");
  const uint32_t shard = shard_of("t", "s", 16);
  auto load = [&] {
    auto h = std::make_shared<load_wait>();
    auto f = h->p.get_future();
    fs.load("t", "s", h);
    return f.get();
  };
  auto commit = [&](const std::string& bytes, uint64_t epoch) {
    auto h = std::make_shared<commit_wait>();
    auto f = h->p.get_future();
    fs.commit("t", "s", bytes, std::chrono::seconds(60), epoch, h);
    return f.get();
  };
  auto r = load();
  ASSERT_FALSE(r);  // this node holds no lease on the shard
  EXPECT_EQ(r.err().code, "not_owner");

  auto e = acquire(shard, "a", "");
  ASSERT_GT(e, 0);
  table.set_held(shard, static_cast<uint64_t>(e));
  r = load();
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_FALSE(r->found);
  EXPECT_EQ(r->epoch, static_cast<uint64_t>(e));
  EXPECT_EQ(fs.epoch_for("t", "s"), static_cast<uint64_t>(e));
  ASSERT_TRUE(commit("one", r->epoch));

  // Another node takes the shard (this one was paused): the old epoch is refused.
  ASSERT_GT(acquire(shard, "b", holder_value("a", static_cast<uint64_t>(e))), e);
  auto refused = commit("two", r->epoch);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.err().code, "fenced");
  EXPECT_EQ(get(prefix_ + "parley:conv:t:s"), "one");
  EXPECT_EQ(commit("zero", 0).err().code, "fenced");
}

TEST_F(Leases, TheFencedCommitKeepsTheConversationsNextTimerInItsShardsSet) {
  shard_table table(16);
  fenced_snapshot_store fs(*client_, 0, prefix_ + "parley", table, keys_, "a");
  const uint32_t shard = shard_of("t", "s", 16);
  auto e = acquire(shard, "a", "");
  ASSERT_GT(e, 0);
  table.set_held(shard, static_cast<uint64_t>(e));
  auto commit = [&](const std::string& bytes, uint64_t epoch, int64_t timer) {
    auto h = std::make_shared<commit_wait>();
    auto f = h->p.get_future();
    fs.commit_turn("t", "s", bytes, std::chrono::seconds(60), epoch, "", "", timer, h);
    return f.get();
  };
  const std::string set = keys_.timers(shard);
  std::string member;
  timer_member("t", "s", member);
  auto score = [&] {
    auto r = client_->command_sync({"ZSCORE", set, member});
    EXPECT_TRUE(r);
    return r && !r->is_nil() ? r->str : "(nil)";
  };
  ASSERT_TRUE(commit("armed", static_cast<uint64_t>(e), 1795651201000));
  EXPECT_EQ(score(), "1795651201000");
  // A turn that leaves the deadline as it was does not touch it; one that moves it does.
  ASSERT_TRUE(commit("same", static_cast<uint64_t>(e), actors::snapshot_store::timer_unchanged));
  EXPECT_EQ(score(), "1795651201000");
  ASSERT_TRUE(commit("moved", static_cast<uint64_t>(e), 1795651260000));
  EXPECT_EQ(score(), "1795651260000");
  ASSERT_TRUE(commit("answered", static_cast<uint64_t>(e), actors::snapshot_store::timer_none));
  EXPECT_EQ(score(), "(nil)");
  // A fenced writer adds no timer either.
  ASSERT_GT(acquire(shard, "b", holder_value("a", static_cast<uint64_t>(e))), e);
  EXPECT_EQ(commit("stale", static_cast<uint64_t>(e), 1795651300000).err().code, "fenced");
  EXPECT_EQ(score(), "(nil)");
}

}  // namespace
}  // namespace parley::cluster
