/// Integration tests of redis_client's scripts (redis_script, eval, eval_on,
/// redis_options::scripts) and of its probe, against the shared Redis of scripts/test
/// (REDIS_URL) and private ones started, stopped and killed here.

#include <gtest/gtest.h>

#include <future>
#include <string>

#include <prometheus/registry.h>

#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"
#include "src/store/redis_probe.hpp"
#include "tests/integration/store/shared_redis.hpp"
#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

/// Increments KEYS[1] by ARGV[1] and answers {the new value, ARGV[2]}.
const redis_script& add_script() {
  static const redis_script s(
      "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) return {v, ARGV[2]}");
  return s;
}

struct eval_result {
  result<redis_reply> reply = make_error("unset", "callback did not run");
  int lane = -2;
};

eval_result eval_sync(redis_client& c, const redis_script& s,
                      std::initializer_list<std::string_view> keys,
                      std::initializer_list<std::string_view> args) {
  std::promise<eval_result> p;
  c.eval(s, keys, args, [&p](result<redis_reply> r) {
    p.set_value({std::move(r), io::lanes::current()});
  });
  return p.get_future().get();
}

eval_result eval_on_sync(redis_client& c, std::size_t lane, const redis_script& s,
                         std::initializer_list<std::string_view> keys,
                         std::initializer_list<std::string_view> args) {
  std::promise<eval_result> p;
  c.eval_on(lane, s, keys, args, [&p](result<redis_reply> r) {
    p.set_value({std::move(r), io::lanes::current()});
  });
  return p.get_future().get();
}

/// Whether the server behind `c` holds `s` (SCRIPT EXISTS).
bool server_has(redis_client& c, const redis_script& s) {
  auto r = c.command_sync({"SCRIPT", "EXISTS", s.sha1()});
  return r && r->elements.size() == 1 && r->elements[0].integer == 1;
}

TEST(redis_script, sha1_is_the_one_redis_names_the_script_by) {
  // SHA-1 of "return 1", as `redis-cli SCRIPT LOAD "return 1"` prints it.
  EXPECT_EQ(redis_script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  redis_script copy = add_script();
  EXPECT_EQ(copy.source(), add_script().source());
  EXPECT_EQ(copy.sha1(), add_script().sha1());
}

class redis_shared_scripts : public shared_redis {
 protected:
  void SetUp() override {
    lanes_.start();
    redis_options o{testing::require_env("REDIS_URL")};
    o.lanes = &lanes_;
    open(o, "store_script_test");
  }
  ~redis_shared_scripts() override { client_.reset(); }

  io::lanes lanes_{2, "redis-test"};
};

TEST_F(redis_shared_scripts, evalsha_runs_a_script_redis_did_not_hold_and_after_script_flush) {
  auto k = key("n");
  // Not registered: the first EVALSHA meets NOSCRIPT, the EVAL that follows loads it.
  auto first = eval_sync(*client_, add_script(), {k}, {"2", "tag"});
  ASSERT_TRUE(first.reply) << first.reply.err().message;
  EXPECT_EQ(first.lane, -1);  // the client's own loop
  ASSERT_EQ(first.reply->elements.size(), 2u);
  EXPECT_EQ(first.reply->elements[0].integer, 2);
  EXPECT_EQ(first.reply->elements[1].str, "tag");
  EXPECT_TRUE(server_has(*client_, add_script()));
  // Held now: EVALSHA alone.
  auto second = eval_sync(*client_, add_script(), {k}, {"3", "x"});
  ASSERT_TRUE(second.reply) << second.reply.err().message;
  EXPECT_EQ(second.reply->elements[0].integer, 5);

  ASSERT_TRUE(client_->command_sync({"SCRIPT", "FLUSH"}));
  EXPECT_FALSE(server_has(*client_, add_script()));
  auto after_flush = eval_sync(*client_, add_script(), {k}, {"1", "y"});
  ASSERT_TRUE(after_flush.reply) << after_flush.reply.err().message;
  EXPECT_EQ(after_flush.reply->elements[0].integer, 6);
  EXPECT_EQ(after_flush.reply->elements[1].str, "y");

  ASSERT_TRUE(client_->command_sync({"SCRIPT", "FLUSH"}));
  auto on_lane = eval_on_sync(*client_, 1, add_script(), {k}, {"4", "z"});
  ASSERT_TRUE(on_lane.reply) << on_lane.reply.err().message;
  EXPECT_EQ(on_lane.lane, 1);
  EXPECT_EQ(on_lane.reply->elements[0].integer, 10);
}

TEST_F(redis_shared_scripts, script_errors_fail_with_redis_error_once) {
  redis_script failing("return redis.call('INCR', KEYS[1])");
  ASSERT_TRUE(client_->command_sync({"SET", key("s"), "text"}));
  auto r = eval_sync(*client_, failing, {key("s")}, {});
  ASSERT_FALSE(r.reply);
  EXPECT_EQ(r.reply.err().code, "redis_error");
  EXPECT_NE(r.reply.err().message.find("not an integer"), std::string::npos)
      << r.reply.err().message;
  redis_script broken("this is not lua");
  auto b = eval_on_sync(*client_, 0, broken, {}, {});
  ASSERT_FALSE(b.reply);
  EXPECT_EQ(b.reply.err().code, "redis_error");
  EXPECT_EQ(b.lane, 0);
  EXPECT_EQ(b.reply.err().message.find("NOSCRIPT"), std::string::npos)
      << "the EVAL's error, not the EVALSHA's: " << b.reply.err().message;
}

TEST(redis_scripts_private,
     registered_scripts_are_reloaded_after_a_restart_and_a_dropped_connection) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start()) << "could not start redis-server in " << dir.path();
  io::lanes lanes(2, "redis-test");
  lanes.start();
  redis_options o{server.url()};
  o.lanes = &lanes;
  o.scripts = {add_script()};
  auto c = redis_client::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto& client = **c;
  // Another client, without scripts, to look at the server and to kill connections.
  auto plain = redis_client::create({server.url()});
  ASSERT_TRUE(plain) << plain.err().message;
  auto& observer = **plain;

  ASSERT_TRUE(eventually([&] { return client.connected(); }));
  EXPECT_TRUE(server_has(observer, add_script())) << "loaded on connect";

  server.stop();
  ASSERT_TRUE(server.start()) << "could not restart redis-server";
  // The restarted server holds no script until the client's reconnect loads it.
  ASSERT_TRUE(eventually([&] { return server_has(observer, add_script()); }))
      << "the script was not reloaded after the restart";
  // Each connection reconnects on its own backoff: wait until all three are back.
  ASSERT_TRUE(eventually([&] { return ping_sync(client).ok(); }))
      << "not every connection came back after the restart";
  auto after_restart = eval_on_sync(client, 0, add_script(), {"k"}, {"1", "a"});
  ASSERT_TRUE(after_restart.reply) << after_restart.reply.err().message;
  EXPECT_EQ(after_restart.reply->elements[0].integer, 1);

  // Every connection but the observer's drops; none of them is used meanwhile.
  ASSERT_TRUE(observer.command_sync({"SCRIPT", "FLUSH"}));
  ASSERT_FALSE(server_has(observer, add_script()));
  auto killed = observer.command_sync({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  ASSERT_TRUE(killed) << killed.err().message;
  EXPECT_EQ(killed->integer, 3) << "the own connection and two lane connections";
  ASSERT_TRUE(eventually([&] { return server_has(observer, add_script()); }))
      << "the script was not reloaded after the connection dropped";
  ASSERT_TRUE(eventually([&] { return ping_sync(client).ok(); }))
      << "not every connection came back after CLIENT KILL";
  auto after_drop = eval_sync(client, add_script(), {"k"}, {"1", "b"});
  ASSERT_TRUE(after_drop.reply) << after_drop.reply.err().message;
  EXPECT_EQ(after_drop.reply->elements[0].integer, 2);
}

double sample(prometheus::Registry& reg, const std::string& name) {
  for (const auto& family : reg.Collect())
    if (family.name == name && family.metric.size() == 1) {
      const auto& m = family.metric[0];
      return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  return -1;
}

TEST(redis_probe_private, counts_commands_round_trips_and_the_connection) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  prometheus::Registry reg;
  redis_probe probe(reg);
  EXPECT_EQ(sample(reg, "parley_redis_connected"), 0);
  ASSERT_TRUE(server.start()) << "could not start redis-server in " << dir.path();
  redis_options o{server.url()};
  o.probe = &probe;
  auto c = redis_client::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto& client = **c;
  ASSERT_TRUE(client.command_sync({"PING"}));
  EXPECT_EQ(sample(reg, "parley_redis_connected"), 1);
  std::promise<void> done;
  client.pipeline({{"SET", "a", "1"}, {"GET", "a"}, {"DEL", "a"}},
                  [&](std::vector<result<redis_reply>>) { done.set_value(); });
  done.get_future().wait();
  auto st = client.stats();
  EXPECT_EQ(st.commands, 4u);
  EXPECT_EQ(sample(reg, "parley_redis_commands_total"), static_cast<double>(st.commands));
  EXPECT_EQ(sample(reg, "parley_redis_round_trips_total"), static_cast<double>(st.round_trips));
  server.stop();
  ASSERT_TRUE(eventually([&] { return sample(reg, "parley_redis_connected") == 0; }));
}

}  // namespace
}  // namespace parley::store
