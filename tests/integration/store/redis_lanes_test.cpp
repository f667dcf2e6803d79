/// Integration tests of redis_client's lanes mode (redis_options::lanes,
/// command_on) against real redis-server processes: the shared one of
/// scripts/test (REDIS_URL) and private ones started and stopped here.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"
#include "tests/integration/store/shared_redis.hpp"
#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

/// The reply of one command_on and the lane its callback ran on.
struct lane_result {
  result<redis_reply> reply = make_error("unset", "callback did not run");
  int lane = -2;
};

/// command_on from the calling (foreign) thread, waiting for the callback.
lane_result on_lane(redis_client& c, std::size_t lane,
                    std::initializer_list<std::string_view> args) {
  std::promise<lane_result> p;
  c.command_on(lane, args, [&p](result<redis_reply> r) {
    p.set_value({std::move(r), io::lanes::current()});
  });
  return p.get_future().get();
}

/// Runs `fn` on lane `i` and waits until it has run.
void run_on(io::lanes& l, std::size_t i, std::function<void()> fn) {
  std::promise<void> done;
  boost::asio::post(l.at(i), [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

redis_options lane_options(std::string url, io::lanes& l) {
  redis_options o{std::move(url)};
  o.lanes = &l;
  return o;
}

class redis_lanes : public shared_redis {
 protected:
  void SetUp() override {
    lanes_.start();
    open(lane_options(testing::require_env("REDIS_URL"), lanes_), "store_lanes_test");
  }
  // The client goes before its lanes (they stop with this fixture's members).
  ~redis_lanes() override { client_.reset(); }

  /// Another client on this fixture's lanes, whose commands time out after `timeout`;
  /// null (with a failure) when it cannot be made.
  std::unique_ptr<redis_client> client_timing_out_after(std::chrono::milliseconds timeout) {
    auto o = lane_options(testing::require_env("REDIS_URL"), lanes_);
    o.command_timeout = timeout;
    auto c = redis_client::create(o);
    EXPECT_TRUE(c) << (c ? "" : c.err().message);
    return c ? std::move(*c) : nullptr;
  }

  io::lanes lanes_{2, "redis-test"};
};

TEST_F(redis_lanes, from_a_foreign_thread_completes_on_the_lane_binary_safe) {
  std::string value("a\0b\r\nc", 6);
  std::string k = key(std::string("bin\0key\n", 8));
  // The first command may be queued while the lane still connects: it waits.
  auto set = on_lane(*client_, 1, {"SET", k, value});
  ASSERT_TRUE(set.reply) << set.reply.err().message;
  EXPECT_EQ(set.lane, 1);
  EXPECT_EQ(set.reply->str, "OK");
  for (std::size_t lane : {0u, 1u}) {
    auto get = on_lane(*client_, lane, {"GET", k});
    ASSERT_TRUE(get.reply) << get.reply.err().message;
    EXPECT_EQ(get.lane, static_cast<int>(lane));
    EXPECT_EQ(get.reply->type, redis_reply::kind::string);
    EXPECT_EQ(get.reply->str, value);
  }
  auto missing = on_lane(*client_, 0, {"GET", key("missing")});
  ASSERT_TRUE(missing.reply);
  EXPECT_TRUE(missing.reply->is_nil());
}

TEST_F(redis_lanes, from_the_lane_thread_in_order_in_few_round_trips) {
  ASSERT_TRUE(on_lane(*client_, 0, {"PING"}).reply);  // connected
  auto before = client_->stats();
  constexpr int n = 1000;
  std::vector<long long> seen;
  std::atomic<int> wrong_lane{0};
  std::promise<void> all;
  auto k = key("counter");
  run_on(lanes_, 0, [&] {
    for (int i = 0; i < n; ++i) {
      client_->command_on(0, {"INCR", k}, [&](result<redis_reply> r) {
        if (io::lanes::current() != 0) ++wrong_lane;
        seen.push_back(r ? r->integer : -1);
        if (seen.size() == n) all.set_value();
      });
    }
  });
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(wrong_lane.load(), 0);
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], i + 1) << i;
  auto after = client_->stats();
  EXPECT_EQ(after.commands - before.commands, static_cast<std::uint64_t>(n));
  // Queued in one handler: one flush, one write.
  EXPECT_EQ(after.round_trips - before.round_trips, 1u);
}

TEST_F(redis_lanes, error_replies_and_empty_commands_fail_in_their_turn) {
  ASSERT_TRUE(on_lane(*client_, 0, {"SET", key("s"), "x"}).reply);
  std::string message;
  std::vector<std::string> order;
  std::promise<void> all;
  run_on(lanes_, 0, [&] {
    client_->command_on(0, {"LPUSH", key("s"), "y"}, [&](result<redis_reply> r) {
      order.push_back(r ? "ok" : r.err().code);
      if (!r) message = r.err().message;
    });
    client_->command_on(0, {},
                        [&](result<redis_reply> r) { order.push_back(r ? "ok" : r.err().code); });
    client_->command_on(0, {"GET", key("s")}, [&](result<redis_reply> r) {
      order.push_back(r && r->str == "x" ? "ok" : "bad");
      all.set_value();
    });
  });
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<std::string>{"redis_error", "redis_bad_command", "ok"}));
  EXPECT_NE(message.find("WRONGTYPE"), std::string::npos) << message;
}

TEST_F(redis_lanes, lane_connections_select_the_url_database) {
  auto url = testing::require_env("REDIS_URL");
  ASSERT_EQ(url.rfind("unix://", 0), 0u) << "this test expects scripts/test's unix socket";
  auto c = redis_client::create(lane_options(url + "?db=3", lanes_));
  ASSERT_TRUE(c) << c.err().message;
  auto k = key("in_db3");
  auto set = on_lane(**c, 1, {"SET", k, "v"});
  ASSERT_TRUE(set.reply) << set.reply.err().message;
  // Through the I/O thread's connection, which SELECTs the same way.
  auto in3 = (*c)->command_sync({"GET", k});
  ASSERT_TRUE(in3);
  EXPECT_EQ(in3->str, "v");
  auto in0 = client_->command_sync({"GET", k});
  ASSERT_TRUE(in0);
  EXPECT_TRUE(in0->is_nil());
  ASSERT_TRUE((*c)->command_sync({"DEL", k}));
}

TEST_F(redis_lanes, slow_command_times_out_and_the_lane_recovers) {
  auto c = client_timing_out_after(200ms);
  ASSERT_TRUE(c);
  auto& slow = *c;
  ASSERT_TRUE(on_lane(slow, 0, {"PING"}).reply);
  auto start = std::chrono::steady_clock::now();
  // BLPOP on an empty list blocks in Redis for 5 s, longer than the timeout.
  auto r = on_lane(slow, 0, {"BLPOP", key("never"), "5"});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.reply);
  EXPECT_EQ(r.reply.err().code, "redis_timeout") << r.reply.err().message;
  EXPECT_EQ(r.lane, 0);
  EXPECT_LT(took, 800ms);  // well before the connect timeout (1 s) that shares the timer
  ASSERT_TRUE(eventually([&] { return on_lane(slow, 0, {"PING"}).reply.ok(); }));
  // The other lane's connection was not involved.
  EXPECT_TRUE(on_lane(slow, 1, {"PING"}).reply);
}

TEST_F(redis_lanes, ping_checks_every_lane_connection) {
  // /readyz pings: a lane connection that cannot answer makes the node unready, even
  // while the I/O thread's connection is fine.
  auto c = client_timing_out_after(300ms);
  ASSERT_TRUE(c);
  auto& client = *c;
  ASSERT_TRUE(eventually([&] { return ping_sync(client).ok(); }))
      << "the connections never came up";
  // BLPOP holds lane 1's connection for 2 s; its PING queues behind it and times out.
  std::promise<void> blpop_done;
  client.command_on(1, {"BLPOP", key("never"), "2"},
                    [&](result<redis_reply>) { blpop_done.set_value(); });
  auto r = ping_sync(client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, "redis_timeout") << r.err().message;
  EXPECT_NE(r.err().message.find("lane connection 1"), std::string::npos) << r.err().message;
  blpop_done.get_future().wait();
  EXPECT_TRUE(eventually([&] { return ping_sync(client).ok(); }))
      << "ping did not recover with the lane";
}

TEST(redis_lanes_private, fails_fast_while_down_and_reconnects_after_restart) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  io::lanes lanes(2, "redis-test");
  lanes.start();
  auto o = lane_options(server.url(), lanes);
  auto c = redis_client::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto& client = **c;
  auto down = on_lane(client, 0, {"PING"});
  ASSERT_FALSE(down.reply);
  EXPECT_EQ(down.reply.err().code, "redis_unavailable");
  EXPECT_NE(down.reply.err().message.find(server.url()), std::string::npos)
      << down.reply.err().message;
  EXPECT_EQ(down.lane, 0);

  ASSERT_TRUE(server.start()) << "could not start redis-server in " << dir.path();
  ASSERT_TRUE(eventually([&] { return on_lane(client, 0, {"PING"}).reply.ok(); }))
      << "lane 0 never connected";
  auto set = on_lane(client, 0, {"SET", "k", "before"});
  ASSERT_TRUE(set.reply) << set.reply.err().message;

  server.stop();
  // The idle lane connection notices the closed socket without being used;
  // from then on its commands fail fast.
  ASSERT_TRUE(eventually([&] {
    auto start = std::chrono::steady_clock::now();
    auto r = on_lane(client, 0, {"GET", "k"});
    return !r.reply && r.reply.err().code == "redis_unavailable" &&
           std::chrono::steady_clock::now() - start < 500ms;
  })) << "commands did not fail fast while Redis was down";

  ASSERT_TRUE(server.start()) << "could not restart redis-server";
  ASSERT_TRUE(eventually([&] { return on_lane(client, 0, {"PING"}).reply.ok(); }))
      << "lane 0 did not reconnect";
  auto after = on_lane(client, 0, {"SET", "k", "after"});
  ASSERT_TRUE(after.reply) << after.reply.err().message;
  // Lane 1's connection reconnects on its own backoff schedule (up to reconnect_max).
  ASSERT_TRUE(eventually([&] { return on_lane(client, 1, {"PING"}).reply.ok(); }))
      << "lane 1 did not reconnect";
  auto get = on_lane(client, 1, {"GET", "k"});
  ASSERT_TRUE(get.reply) << get.reply.err().message;
  EXPECT_EQ(get.reply->str, "after");
}

TEST(redis_lanes_private, every_lane_connection_authenticates) {
  // A Redis that wants a password: each lane's connection sends AUTH (and SELECT)
  // before its commands, and a wrong password is named as the handshake's failure.
  testing::temp_dir dir;
  testing::redis_process server(dir.path(), {"--requirepass", "s3cret"});
  ASSERT_TRUE(server.start()) << "could not start redis-server in " << dir.path();
  io::lanes lanes(2, "redis-test");
  lanes.start();
  auto url = "unix://s3cret@" + server.socket_path() + "?db=2";
  auto c = redis_client::create(lane_options(url, lanes));
  ASSERT_TRUE(c) << c.err().message;
  for (std::size_t lane = 0; lane < 2; ++lane) {
    ASSERT_TRUE(eventually([&] { return on_lane(**c, lane, {"PING"}).reply.ok(); }))
        << "lane " << lane << " never authenticated";
    auto set = on_lane(**c, lane, {"SET", "k" + std::to_string(lane), "v"});
    ASSERT_TRUE(set.reply) << set.reply.err().message;
    EXPECT_EQ(set.lane, static_cast<int>(lane));
  }
  // Both keys went to database 2.
  auto dbsize = on_lane(**c, 0, {"DBSIZE"});
  ASSERT_TRUE(dbsize.reply) << dbsize.reply.err().message;
  EXPECT_EQ(dbsize.reply->integer, 2);
  EXPECT_TRUE(ping_sync(**c).ok());

  auto wrong = redis_client::create(lane_options("unix://nope@" + server.socket_path(), lanes));
  ASSERT_TRUE(wrong) << wrong.err().message;
  auto r = on_lane(**wrong, 1, {"PING"});
  ASSERT_FALSE(r.reply);
  auto ping = ping_sync(**wrong);
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.err().message.find("nope"), std::string::npos)
      << "the password is shown: " << ping.err().message;
  EXPECT_NE(ping.err().message.find("WRONGPASS"), std::string::npos) << ping.err().message;
}

TEST(redis_lanes_private, destructor_completes_outstanding_commands_on_their_lanes) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start());
  io::lanes lanes(2, "redis-test");
  lanes.start();
  std::atomic<int> completed{0};
  std::atomic<int> wrong_lane{0};
  std::atomic<int> shutting_down{0};
  constexpr int n = 1000;
  auto start = std::chrono::steady_clock::now();
  {
    auto c = redis_client::create(lane_options(server.url(), lanes));
    ASSERT_TRUE(c);
    auto& client = **c;
    ASSERT_TRUE(on_lane(client, 1, {"PING"}).reply);
    // Outstanding at destruction for sure: Redis holds it for 5 s.
    client.command_on(1, {"BLPOP", "never", "5"}, [&](result<redis_reply> r) {
      if (io::lanes::current() != 1) ++wrong_lane;
      if (!r && r.err().code == "redis_unavailable" &&
          r.err().message.find("shutting down") != std::string::npos)
        ++shutting_down;
      ++completed;
    });
    for (int i = 0; i < n; ++i) {
      std::size_t lane = static_cast<std::size_t>(i % 2);
      client.command_on(lane, {"INCR", "x"}, [&, lane](result<redis_reply>) {
        if (io::lanes::current() != static_cast<int>(lane)) ++wrong_lane;
        ++completed;
      });
    }
  }
  EXPECT_EQ(completed.load(), n + 1);
  EXPECT_EQ(wrong_lane.load(), 0);
  EXPECT_EQ(shutting_down.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(redis_lanes_private, without_lanes_command_on_is_command) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start());
  auto c = redis_client::create({server.url()});
  ASSERT_TRUE(c);
  auto r = on_lane(**c, 3, {"PING"});
  ASSERT_TRUE(r.reply) << r.reply.err().message;
  EXPECT_EQ(r.reply->str, "PONG");
  EXPECT_EQ(r.lane, -1);  // the client's I/O thread
}

}  // namespace
}  // namespace parley::store
