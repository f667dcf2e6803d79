/// Integration tests of redis_client::subscribe against real redis-server processes: the
/// shared one (REDIS_URL) for messages, private ones this file stops, restarts and
/// pauses for the resubscription and the keepalive.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "src/store/redis.hpp"
#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

/// What a subscription's handlers saw, for any thread to read.
struct recorder {
  std::mutex m;
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<std::string> lost;
  std::atomic<int> subscribed{0};

  redis_subscription_handlers handlers() {
    redis_subscription_handlers h;
    h.message = [this](const std::string& channel, const std::string& payload) {
      std::lock_guard<std::mutex> lock(m);
      messages.emplace_back(channel, payload);
    };
    h.subscribed = [this] { ++subscribed; };
    h.lost = [this](const std::string& why) {
      std::lock_guard<std::mutex> lock(m);
      lost.push_back(why);
    };
    return h;
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(m);
    return messages.size();
  }
  std::size_t lost_count() {
    std::lock_guard<std::mutex> lock(m);
    return lost.size();
  }
};

std::unique_ptr<redis_client> client_for(redis_options o) {
  auto c = redis_client::create(std::move(o));
  EXPECT_TRUE(c) << c.err().message;
  return c ? std::move(*c) : nullptr;
}

TEST(redis_pubsub, delivers_the_messages_of_its_channels_only) {
  const char* url = std::getenv("REDIS_URL");
  ASSERT_NE(url, nullptr) << "REDIS_URL is not set: run the tests with scripts/test";
  auto client = client_for({url});
  ASSERT_TRUE(client);
  auto a = testing::unique_name("pubsub_a");
  auto b = testing::unique_name("pubsub_b");
  recorder rec;
  auto sub = client->subscribe({a, b}, rec.handlers());
  ASSERT_TRUE(eventually([&] { return rec.subscribed.load() == 1; })) << "never subscribed";

  const std::string binary("x\0y\r\nz", 6);
  auto one = client->command_sync({"PUBLISH", a, binary});
  ASSERT_TRUE(one) << one.err().message;
  EXPECT_EQ(one->integer, 1) << "one subscriber";
  ASSERT_TRUE(client->command_sync({"PUBLISH", "other-" + a, "not for us"}));
  ASSERT_TRUE(client->command_sync({"PUBLISH", b, "second"}));
  ASSERT_TRUE(eventually([&] { return rec.count() == 2; })) << rec.count();
  {
    std::lock_guard<std::mutex> lock(rec.m);
    EXPECT_EQ(rec.messages[0], std::make_pair(a, binary));
    EXPECT_EQ(rec.messages[1], std::make_pair(b, std::string("second")));
  }
  // The client's own commands are not disturbed by the subscription's connection.
  auto ping = client->command_sync({"PING"});
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->str, "PONG");

  sub.reset();
  // Unsubscribed: Redis counts no subscriber any more (the close is asynchronous there).
  ASSERT_TRUE(eventually([&] {
    auto n = client->command_sync({"PUBLISH", a, "after"});
    return n && n->integer == 0;
  }));
  EXPECT_EQ(rec.count(), 2u);
  EXPECT_EQ(rec.lost_count(), 0u) << "a deliberate unsubscribe is not a loss";
}

TEST(redis_pubsub, resubscribes_after_redis_restarts) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start());
  auto client = client_for({server.url()});
  ASSERT_TRUE(client);
  recorder rec;
  auto sub = client->subscribe({"changes"}, rec.handlers());
  ASSERT_TRUE(eventually([&] { return rec.subscribed.load() == 1; }));

  server.stop();
  ASSERT_TRUE(eventually([&] { return rec.lost_count() == 1; })) << "loss not reported";
  EXPECT_EQ(rec.subscribed.load(), 1);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(eventually([&] { return rec.subscribed.load() == 2; })) << "not resubscribed";
  ASSERT_TRUE(eventually([&] { return client->connected(); }));
  auto n = client->command_sync({"PUBLISH", "changes", "after restart"});
  ASSERT_TRUE(n) << n.err().message;
  EXPECT_EQ(n->integer, 1);
  ASSERT_TRUE(eventually([&] { return rec.count() == 1; }));
  std::lock_guard<std::mutex> lock(rec.m);
  EXPECT_EQ(rec.messages[0].second, "after restart");
}

TEST(redis_pubsub, an_unanswered_keepalive_rebuilds_the_connection) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start());
  redis_options o{server.url()};
  o.command_timeout = 200ms;
  o.keepalive = 50ms;
  auto client = client_for(o);
  ASSERT_TRUE(client);
  recorder rec;
  auto sub = client->subscribe({"changes"}, rec.handlers());
  ASSERT_TRUE(eventually([&] { return rec.subscribed.load() == 1; }));

  // Redis answers nobody for 1 s, as a half-open connection would: the subscription's
  // PING times out, the connection is rebuilt and subscribes again once Redis answers.
  auto paused = client->command_sync({"CLIENT", "PAUSE", "1000", "ALL"});
  ASSERT_TRUE(paused) << paused.err().message;
  ASSERT_TRUE(eventually([&] { return rec.lost_count() >= 1; })) << "the stall went unnoticed";
  {
    std::lock_guard<std::mutex> lock(rec.m);
    EXPECT_NE(rec.lost[0].find("timed out"), std::string::npos) << rec.lost[0];
  }
  ASSERT_TRUE(eventually([&] { return rec.subscribed.load() >= 2; })) << "not resubscribed";
  ASSERT_TRUE(eventually([&] {
    auto n = client->command_sync({"PUBLISH", "changes", "after the stall"});
    return n && n->integer == 1;
  }));
  ASSERT_TRUE(eventually([&] { return rec.count() >= 1; }));
}

}  // namespace
}  // namespace parley::store
