/// Integration tests of parley::store::redis_client against real redis-server
/// processes: the shared one scripts/test started (REDIS_URL) and private ones
/// this file starts and stops itself. Keys carry a per-test unique prefix and
/// are deleted at the end, so test order does not matter.

#include "src/store/redis.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/store/shared_redis.hpp"
#include "tests/support/servers.hpp"

namespace parley::store {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

TEST(redis_url, parses_tcp_and_unix_forms) {
  auto a = parse_redis_url("redis://localhost:6380/2");
  ASSERT_TRUE(a) << a.err().message;
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  auto b = parse_redis_url("redis://user:pa:ss@10.0.0.1");
  ASSERT_TRUE(b) << b.err().message;
  EXPECT_EQ(b->host, "10.0.0.1");
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->username, "user");
  EXPECT_EQ(b->password, "pa:ss");
  auto c = parse_redis_url("unix:///tmp/x/redis.sock?db=3");
  ASSERT_TRUE(c) << c.err().message;
  EXPECT_EQ(c->unix_path, "/tmp/x/redis.sock");
  EXPECT_EQ(c->db, 3);
  auto e = parse_redis_url("unix://app:s3:cret@/tmp/x/redis.sock?db=1");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->unix_path, "/tmp/x/redis.sock");
  EXPECT_EQ(e->username, "app");
  EXPECT_EQ(e->password, "s3:cret");
  EXPECT_EQ(e->db, 1);
  auto f = parse_redis_url("unix://s3cret@/tmp/x/redis.sock");
  ASSERT_TRUE(f) << f.err().message;
  EXPECT_EQ(f->username, "");
  EXPECT_EQ(f->password, "s3cret");
  auto d = parse_redis_url("redis://[::1]:7000");
  ASSERT_TRUE(d) << d.err().message;
  EXPECT_EQ(d->host, "::1");
  EXPECT_EQ(d->port, 7000);
}

TEST(redis_url, errors_name_the_part_at_fault) {
  struct bad_case {
    const char* url;
    const char* mentions;
  };
  for (auto [url, mentions] :
       {bad_case{"localhost:6379", "scheme"}, bad_case{"http://h:1", "scheme 'http'"},
        bad_case{"redis://h:abc", "port 'abc'"}, bad_case{"redis://h:70000", "port '70000'"},
        bad_case{"redis://:1", "host"}, bad_case{"redis://h:1/x", "database 'x'"},
        bad_case{"unix://relative.sock", "absolute"}, bad_case{"unix:///s?foo=1", "query"}}) {
    auto r = parse_redis_url(url);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.err().code, "bad_redis_url");
    EXPECT_NE(r.err().message.find(mentions), std::string::npos) << r.err().message;
    EXPECT_NE(r.err().message.find(url), std::string::npos) << r.err().message;
  }
  auto secret = parse_redis_url("redis://u:s3cret@h:abc");
  ASSERT_FALSE(secret);
  EXPECT_EQ(secret.err().message.find("s3cret"), std::string::npos) << secret.err().message;
  auto c = redis_client::create({"redis://h:notaport"});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().code, "bad_redis_url");
}

/// Tests against the shared Redis of scripts/test.
class redis_shared : public shared_redis {
 protected:
  void SetUp() override { open({testing::require_env("REDIS_URL")}, "store_test"); }
};

TEST_F(redis_shared, set_get_is_binary_safe) {
  std::string value("a\0b\r\nc", 6);
  std::string k = key(std::string("bin\0key\n", 8));
  auto set = client_->command_sync({"SET", k, value});
  ASSERT_TRUE(set) << set.err().message;
  EXPECT_EQ(set->type, redis_reply::kind::status);
  EXPECT_EQ(set->str, "OK");
  auto get = client_->command_sync({"GET", k});
  ASSERT_TRUE(get) << get.err().message;
  EXPECT_EQ(get->type, redis_reply::kind::string);
  EXPECT_EQ(get->str, value);
  auto missing = client_->command_sync({"GET", key("missing")});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->is_nil());
  EXPECT_TRUE(client_->connected());
}

TEST_F(redis_shared, callbacks_run_on_one_io_thread_in_order) {
  std::mutex m;
  std::condition_variable cv;
  std::vector<long long> seen;
  std::set<std::thread::id> threads;
  constexpr int n = 500;
  for (int i = 0; i < n; ++i) {
    client_->command({"INCR", key("counter")}, [&](result<redis_reply> r) {
      std::lock_guard<std::mutex> lock(m);
      seen.push_back(r ? r->integer : -1);
      threads.insert(std::this_thread::get_id());
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(m);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() == n; }));
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i + 1);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST_F(redis_shared, pipeline_returns_replies_in_order_with_errors_in_place) {
  std::promise<std::vector<result<redis_reply>>> p;
  client_->pipeline({{"SET", key("s"), "text"},
                     {"INCR", key("s")},  // WRONGTYPE-like error: not an integer
                     {"RPUSH", key("l"), "a", "b"},
                     {},
                     {"LRANGE", key("l"), "0", "-1"}},
                    [&](std::vector<result<redis_reply>> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  auto replies = f.get();
  ASSERT_EQ(replies.size(), 5u);
  ASSERT_TRUE(replies[0]);
  ASSERT_FALSE(replies[1]);
  EXPECT_EQ(replies[1].err().code, "redis_error");
  EXPECT_NE(replies[1].err().message.find("not an integer"), std::string::npos)
      << replies[1].err().message;
  ASSERT_TRUE(replies[2]);
  EXPECT_EQ(replies[2]->integer, 2);
  ASSERT_FALSE(replies[3]);
  EXPECT_EQ(replies[3].err().code, "redis_bad_command");
  ASSERT_TRUE(replies[4]);
  ASSERT_EQ(replies[4]->elements.size(), 2u);
  EXPECT_EQ(replies[4]->elements[1].str, "b");
}

TEST_F(redis_shared, commands_queued_together_share_one_round_trip) {
  // Hold the I/O thread inside a callback while more commands queue up.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> holding;
  client_->command({"PING"}, [&, released](result<redis_reply>) {
    holding.set_value();
    released.wait();
  });
  holding.get_future().wait();
  auto before = client_->stats();
  constexpr int n = 1000;
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i)
    client_->command({"INCR", key("batched")},
                     [&](result<redis_reply> r) { ok += r.ok() ? 1 : 0; });
  release.set_value();
  ASSERT_TRUE(eventually([&] { return client_->stats().commands - before.commands == n; }));
  ASSERT_TRUE(eventually([&] { return ok.load() == n; }));
  EXPECT_EQ(client_->stats().round_trips - before.round_trips, 1u);
}

TEST_F(redis_shared, multi_exec_keeps_nested_replies) {
  auto r = std::promise<std::vector<result<redis_reply>>>();
  client_->pipeline({{"MULTI"}, {"SET", key("a"), "1"}, {"INCR", key("a")}, {"EXEC"}},
                    [&](std::vector<result<redis_reply>> v) { r.set_value(std::move(v)); });
  auto replies = r.get_future().get();
  ASSERT_EQ(replies.size(), 4u);
  ASSERT_TRUE(replies[3]);
  ASSERT_EQ(replies[3]->type, redis_reply::kind::array);
  ASSERT_EQ(replies[3]->elements.size(), 2u);
  EXPECT_EQ(replies[3]->elements[1].integer, 2);
}

TEST_F(redis_shared, many_threads_submitting_concurrently_all_complete) {
  constexpr int threads = 4;
  constexpr int per_thread = 2000;
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        client_->command({"RPUSH", key("list" + std::to_string(t)), std::to_string(i)},
                         [&](result<redis_reply> r) {
                           if (!r) ++failed;
                           ++done;
                         });
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_TRUE(eventually([&] { return done.load() == threads * per_thread; }));
  EXPECT_EQ(failed.load(), 0);
  for (int t = 0; t < threads; ++t) {
    auto list = client_->command_sync({"LRANGE", key("list" + std::to_string(t)), "0", "-1"});
    ASSERT_TRUE(list);
    ASSERT_EQ(list->elements.size(), static_cast<size_t>(per_thread));
    // Per-submitter order is preserved.
    for (int i = 0; i < per_thread; ++i) ASSERT_EQ(list->elements[i].str, std::to_string(i));
  }
}

TEST_F(redis_shared, submitters_racing_an_idling_io_thread_lose_no_wake_up) {
  // The I/O thread is woken only when it declared itself idle. Submitters that
  // alternate bursts, pauses and one-at-a-time round trips keep it switching
  // between busy and idle, so a lost wake-up would leave a command queued
  // forever: the deadline below catches that instead of a hang.
  constexpr int threads = 4;
  constexpr int per_thread = 3000;
  struct submitter {
    std::atomic<int> completed{0};
    std::atomic<int> out_of_order{0};
    std::atomic<int> failed{0};
    long long last = 0;  // touched by callbacks only, all on the one I/O thread
  };
  std::vector<submitter> subs(threads);
  auto check = [&](int t, const result<redis_reply>& r) {
    auto& s = subs[t];
    if (!r) {
      ++s.failed;
    } else if (r->integer != s.last + 1) {
      ++s.out_of_order;
    } else {
      s.last = r->integer;
    }
    ++s.completed;
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto k = key("seq" + std::to_string(t));
      int sent = 0;
      for (int round = 0; sent < per_thread; ++round) {
        switch (round % 4) {
          case 0:  // a burst that finds the I/O thread busy
            for (int i = 0; i < 50 && sent < per_thread; ++i, ++sent)
              client_->command({"INCR", k}, [&, t](result<redis_reply> r) { check(t, r); });
            break;
          case 1: {  // one at a time: each lands just as the I/O thread goes idle
            for (int i = 0; i < 20 && sent < per_thread; ++i, ++sent) {
              // Shared: a callback that comes after the deadline must not dangle.
              auto p = std::make_shared<std::promise<void>>();
              client_->command({"INCR", k}, [&, t, p](result<redis_reply> r) {
                check(t, r);
                p->set_value();
              });
              if (p->get_future().wait_for(10s) != std::future_status::ready) return;
            }
            break;
          }
          case 2: {  // a pipeline counts as one submission with several replies
            int n = std::min(3, per_thread - sent);
            std::vector<std::vector<std::string>> cmds(static_cast<size_t>(n), {"INCR", k});
            sent += n;
            client_->pipeline(std::move(cmds), [&, t](std::vector<result<redis_reply>> rs) {
              for (auto& r : rs) check(t, r);
            });
            break;
          }
          default:  // let the I/O thread fall asleep
            std::this_thread::sleep_for(std::chrono::microseconds(200 * (t + 1)));
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& s : subs)
          if (s.completed.load() != per_thread) return false;
        return true;
      },
      30s))
      << "a command never completed: lost wake-up?";
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(subs[t].failed.load(), 0) << "submitter " << t;
    EXPECT_EQ(subs[t].out_of_order.load(), 0) << "submitter " << t;
    EXPECT_EQ(subs[t].last, per_thread) << "submitter " << t;
  }
}

TEST_F(redis_shared, queue_longer_than_max_batch_is_split_in_order) {
  redis_options o{testing::require_env("REDIS_URL")};
  o.max_batch = 7;
  auto c = redis_client::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto& small = **c;
  // Hold the I/O thread so that everything below queues up behind it.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> holding;
  small.command({"PING"}, [&, released](result<redis_reply>) {
    holding.set_value();
    released.wait();
  });
  holding.get_future().wait();
  auto before = small.stats();
  std::vector<long long> seen;  // appended by callbacks, on the I/O thread
  std::atomic<int> done{0};
  constexpr int rounds = 20;
  for (int i = 0; i < rounds; ++i) {
    small.command({"INCR", key("split")}, [&](result<redis_reply> r) {
      seen.push_back(r ? r->integer : -1);
      ++done;
    });
    small.pipeline(
        {{"INCR", key("split")}, {}, {"INCR", key("split")}},
        [&](std::vector<result<redis_reply>> rs) {
          for (auto& r : rs)
            seen.push_back(r ? r->integer : (r.err().code == "redis_bad_command" ? 0 : -1));
          ++done;
        });
  }
  release.set_value();
  ASSERT_TRUE(eventually([&] { return done.load() == 2 * rounds; }));
  ASSERT_EQ(seen.size(), static_cast<size_t>(4 * rounds));
  long long expected = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (i % 4 == 2) {
      EXPECT_EQ(seen[i], 0) << "the empty command of a pipeline fails in place";
    } else {
      EXPECT_EQ(seen[i], ++expected) << "at " << i;
    }
  }
  auto after = small.stats();
  EXPECT_EQ(after.commands - before.commands, 3u * rounds);
  // 80 submitted commands, at most 7 per round trip.
  EXPECT_GE(after.round_trips - before.round_trips, (4u * rounds + 6) / 7);
}

TEST_F(redis_shared, ping_succeeds_and_sync_from_callback_is_refused) {
  std::promise<result<void>> ping;
  client_->ping([&](result<void> r) { ping.set_value(r); });
  auto pr = ping.get_future().get();
  EXPECT_TRUE(pr);
  std::promise<result<redis_reply>> inner;
  client_->command({"PING"},
                   [&](result<redis_reply>) { inner.set_value(client_->command_sync({"PING"})); });
  auto r = inner.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "redis_misuse");
}

TEST_F(redis_shared, slow_command_times_out_and_client_recovers) {
  auto url = testing::require_env("REDIS_URL");
  redis_options o{url};
  o.command_timeout = 200ms;
  auto c = redis_client::create(o);
  ASSERT_TRUE(c);
  auto& slow = **c;
  ASSERT_TRUE(eventually([&] { return slow.connected(); }));
  auto start = std::chrono::steady_clock::now();
  // BLPOP on an empty list blocks in Redis for 5 s, longer than the timeout.
  auto r = slow.command_sync({"BLPOP", key("never"), "5"});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "redis_timeout") << r.err().message;
  EXPECT_LT(took, 3s);
  ASSERT_TRUE(eventually([&] { return slow.command_sync({"PING"}).ok(); }));
}

/// Redis that this test starts, kills and restarts on the same socket.
TEST(redis_private, fails_fast_while_down_and_reconnects_after_restart) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());

  // Created before the server exists: create succeeds, commands fail fast.
  auto c = redis_client::create({server.url()});
  ASSERT_TRUE(c) << c.err().message;
  auto& client = **c;
  EXPECT_FALSE(client.connected());
  auto down = client.command_sync({"PING"});
  ASSERT_FALSE(down);
  EXPECT_EQ(down.err().code, "redis_unavailable");
  EXPECT_NE(down.err().message.find(server.url()), std::string::npos) << down.err().message;

  ASSERT_TRUE(server.start()) << "could not start redis-server in " << dir.path();
  ASSERT_TRUE(eventually([&] { return client.connected(); })) << "client never connected";
  auto set = client.command_sync({"SET", "k", "before"});
  ASSERT_TRUE(set) << set.err().message;

  server.stop();
  // The idle connection notices the closed socket without being used.
  ASSERT_TRUE(eventually([&] { return !client.connected(); }))
      << "client did not notice Redis stopping";
  auto start = std::chrono::steady_clock::now();
  auto during = client.command_sync({"GET", "k"});
  ASSERT_FALSE(during);
  EXPECT_EQ(during.err().code, "redis_unavailable");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s)
      << "a command while Redis is down must fail fast";
  std::promise<result<void>> ping;
  client.ping([&](result<void> r) { ping.set_value(r); });
  auto pr = ping.get_future().get();
  ASSERT_FALSE(pr);
  EXPECT_EQ(pr.err().code, "redis_unavailable");

  ASSERT_TRUE(server.start()) << "could not restart redis-server";
  ASSERT_TRUE(eventually([&] { return client.connected(); })) << "client did not reconnect";
  auto after = client.command_sync({"SET", "k", "after"});
  ASSERT_TRUE(after) << after.err().message;
  auto get = client.command_sync({"GET", "k"});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->str, "after");
}

TEST(redis_private, destructor_completes_queued_commands) {
  testing::temp_dir dir;
  testing::redis_process server(dir.path());
  ASSERT_TRUE(server.start());
  std::atomic<int> completed{0};
  constexpr int n = 1000;
  {
    auto c = redis_client::create({server.url()});
    ASSERT_TRUE(c);
    for (int i = 0; i < n; ++i)
      (*c)->command({"INCR", "x"}, [&](result<redis_reply>) { ++completed; });
  }
  EXPECT_EQ(completed.load(), n);
}

}  // namespace
}  // namespace parley::store
