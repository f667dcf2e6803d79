/// The outbox drain (cluster/node/outbox_drain) on a real Redis and Postgres: replies
/// committed by the fenced script are delivered in order per conversation, retried
/// while the provider is down, dead-lettered when refused, resent after a handover
/// only from the reply that was in flight, and never sent by a node that lost the
/// shard.

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "cluster/lease/leases.hpp"
#include "cluster/node/outbox_drain.hpp"
#include "src/proto/runtime.pb.h"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "tests/integration/store/shared_redis.hpp"

namespace parley::cluster {
namespace {

using namespace std::chrono_literals;
using actors::delivery_result;
using store::redis_reply;

/// A provider the test steers: records each delivery, answers with `next` (delivered by
/// default), or holds answers while `hold` is set.
struct provider {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> got;  // "<session>:<text>" of each delivered reply, in order
  std::vector<std::string> attempts;
  std::deque<delivery_result> next;
  bool hold = false;
  std::vector<std::function<void(delivery_result)>> held;

  actors::deliver_fn fn() {
    return [this](const runtime::v1::OutboxEntry& e, int index, const std::string& key,
                  std::function<void(delivery_result)> done) {
      std::unique_lock<std::mutex> lock(m);
      attempts.push_back(key);
      cv.notify_all();
      if (hold) {
        held.push_back(std::move(done));
        return;
      }
      auto r = delivery_result::ok();
      if (!next.empty()) {
        r = next.front();
        next.pop_front();
      }
      if (r.k == delivery_result::kind::delivered)
        got.push_back(e.session_id() + ":" + e.messages(index).text());
      cv.notify_all();
      lock.unlock();
      done(r);
    };
  }
  bool wait(const std::function<bool()>& cond, std::chrono::milliseconds d = 10s) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, d, cond);
  }
};

class OutboxDrain : public store::shared_redis {
 protected:
  void SetUp() override {
    store::redis_options o;
    o.url = store::testing::require_env("REDIS_URL");
    o.scripts = lease_scripts();
    open(std::move(o), "outbox");
    keys_.prefix = prefix_ + "parley";
    keys_.region = "test";
    auto pg = store::postgres_client::create({store::testing::require_env("DATABASE_URL")});
    ASSERT_TRUE(pg.ok());
    pg_ = std::move(*pg);
    ASSERT_TRUE(store::apply_migrations(*pg_).ok());
    tenant_ = store::testing::unique_name("ob");
    table_.set_held(0, 1);
    ASSERT_EQ(client_->command_sync({"SET", keys_.lease(0), "a/1"})->type,
              redis_reply::kind::status);
  }
  void TearDown() override {
    for (auto& d : drains_) d->stop();
    store::shared_redis::TearDown();
  }

  /// Commits a turn of `session` with `texts` as its replies, as node `holder` would.
  long long commit(const std::string& session, uint64_t seq, std::vector<std::string> texts,
                   const std::string& holder = "a/1") {
    runtime::v1::OutboxEntry e;
    e.set_tenant(tenant_);
    e.set_session_id(session);
    e.set_channel("sms");
    e.set_address("+1|+2");
    e.set_sequence(seq);
    for (auto& t : texts) e.add_messages()->set_text(t);
    std::string bytes;
    e.SerializeToString(&bytes);
    std::promise<result<redis_reply>> p;
    client_->eval(commit_script(),
                  {key("conv:" + session), keys_.lease(0), keys_.transcripts(0), keys_.outbox(0)},
                  {"snapshot", "60", holder, "", "100", "refuse", bytes},
                  [&p](result<redis_reply> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r);
    return r ? r->integer : -99;
  }

  outbox_drain& drain(const std::string& node, provider& to) {
    outbox_drain::options o;
    o.node = node;
    o.keys = keys_;
    o.period = 20ms;
    o.retry_initial = 20ms;
    o.retry_max = 100ms;
    o.give_up_after = 60s;
    drains_.push_back(std::make_unique<outbox_drain>(*client_, *pg_, table_, to.fn(), o, nullptr));
    drains_.back()->start();
    drains_.back()->acquired(0);
    return *drains_.back();
  }

  long long xlen() { return client_->command_sync({"XLEN", keys_.outbox(0)})->integer; }

  lease_keys keys_;
  shard_table table_{1};
  std::unique_ptr<store::postgres_client> pg_;
  std::string tenant_;
  std::vector<std::unique_ptr<outbox_drain>> drains_;
};

TEST_F(OutboxDrain, DeliversEachConversationInOrderAndForgetsWhatItDelivered) {
  provider p;
  for (int turn = 1; turn <= 3; ++turn) {
    ASSERT_EQ(commit("s1", turn,
                     {"s1 turn " + std::to_string(turn) + " a",
                      "s1 turn " + std::to_string(turn) + " b"}),
              1);
    ASSERT_EQ(commit("s2", turn, {"s2 turn " + std::to_string(turn)}), 1);
  }
  // The first attempt finds the provider down: that conversation waits and retries
  // (its order kept), the other goes on.
  p.next = {{delivery_result::kind::retry, 0ms, "down"}, delivery_result::ok()};
  drain("a", p);
  ASSERT_TRUE(p.wait([&] { return p.got.size() == 9; })) << p.got.size();
  std::vector<std::string> s1, s2;
  for (const auto& g : p.got) (g.rfind("s1:", 0) == 0 ? s1 : s2).push_back(g);
  EXPECT_EQ(s1, (std::vector<std::string>{"s1:s1 turn 1 a", "s1:s1 turn 1 b", "s1:s1 turn 2 a",
                                          "s1:s1 turn 2 b", "s1:s1 turn 3 a", "s1:s1 turn 3 b"}));
  EXPECT_EQ(s2, (std::vector<std::string>{"s2:s2 turn 1", "s2:s2 turn 2", "s2:s2 turn 3"}));
  ASSERT_TRUE(store::testing::eventually([&] { return xlen() == 0; }))
      << "delivered entries are deleted";
}

TEST_F(OutboxDrain, ARefusedReplyIsADeadLetterAndTheNextOneStillGoes) {
  provider p;
  p.next = {{delivery_result::kind::failed, 0ms, "Twilio refused the message: error 21211"}};
  ASSERT_EQ(commit("s1", 1, {"refused", "after"}), 1);
  drain("a", p);
  ASSERT_TRUE(p.wait([&] { return p.got.size() == 1; }));
  EXPECT_EQ(p.got[0], "s1:after");
  auto dead = store::run_job_sync(*pg_, store::list_dead_letters(tenant_));
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].body, "refused");
  EXPECT_EQ((*dead)[0].reply_index, 0);
  EXPECT_NE((*dead)[0].reason.find("21211"), std::string::npos);
}

TEST_F(OutboxDrain, ANewOwnerResendsOnlyTheReplyThatWasInFlight) {
  provider first;
  ASSERT_EQ(commit("s1", 1, {"one", "two", "three"}), 1);
  first.next = {delivery_result::ok()};
  auto& a = drain("a", first);
  // "one" is delivered, then "two" hangs: the node dies with it in flight.
  ASSERT_TRUE(first.wait([&] { return first.got.size() == 1; }));
  {
    std::lock_guard<std::mutex> lock(first.m);
    first.hold = true;
  }
  ASSERT_TRUE(first.wait([&] { return first.attempts.size() == 2; }));
  a.stop();
  // Node b takes the shard over (a new epoch) and claims what a read.
  table_.set_held(0, 2);
  ASSERT_EQ(client_->command_sync({"SET", keys_.lease(0), "b/2"})->type, redis_reply::kind::status);
  provider second;
  drain("b", second);
  ASSERT_TRUE(second.wait([&] { return second.got.size() == 2; }));
  EXPECT_EQ(second.got, (std::vector<std::string>{"s1:two", "s1:three"}))
      << "a delivered reply is not sent again; the one in flight is";
  // a's late answer changes nothing.
  for (auto& d : first.held) d(delivery_result::ok());
  ASSERT_TRUE(store::testing::eventually([&] { return xlen() == 0; }));
}

TEST_F(OutboxDrain, ANodeThatLostTheShardNeitherCommitsRepliesNorSendsThem) {
  provider p;
  ASSERT_EQ(commit("s1", 1, {"before"}), 1);
  // Another node holds the lease now: the stale holder's commit adds nothing.
  ASSERT_EQ(client_->command_sync({"SET", keys_.lease(0), "b/2"})->type, redis_reply::kind::status);
  EXPECT_EQ(commit("s1", 2, {"stale"}, "a/1"), 0);
  EXPECT_EQ(xlen(), 1);
  // This node learns it lost the shard before it read it: it sends nothing.
  table_.set_held(0, 0);
  drain("a", p);
  // Nothing signals "did not send": ten read periods pass, then the shard comes back.
  std::this_thread::sleep_for(200ms);
  {
    std::lock_guard<std::mutex> lock(p.m);
    EXPECT_TRUE(p.attempts.empty());
  }
  EXPECT_EQ(xlen(), 1) << "the reply waits for the shard's owner";
  table_.set_held(0, 2);
  drains_.back()->acquired(0);
  ASSERT_TRUE(p.wait([&] { return p.got.size() == 1; }));
  EXPECT_EQ(p.got[0], "s1:before");
}

TEST_F(OutboxDrain, AFullOutboxRefusesTheTurnInsteadOfDroppingAReply) {
  for (int i = 0; i < 100; ++i) ASSERT_EQ(commit("s" + std::to_string(i), 1, {"x"}), 1);
  EXPECT_EQ(commit("s-over", 1, {"x"}), -2);
  EXPECT_EQ(xlen(), 100);
  EXPECT_EQ(client_->command_sync({"EXISTS", key("conv:s-over")})->integer, 0)
      << "a refused turn stores no snapshot either";
}

}  // namespace
}  // namespace parley::cluster
