// The change feed's pure parts (docs/changes.md): the authentication cache and its
// invalidation (the shared map and each thread's last-accepted entry), the messages'
// JSON form, and what the change listener does with each message. No server: the
// listener's Redis client points at a closed port, and apply() is called directly.

#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/changes/change_listener.hpp"
#include "actors/gateway/auth_cache.hpp"
#include "actors/registry/bot_registry.hpp"
#include "src/admin/changes.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {
namespace {

using namespace std::chrono_literals;

/// Remembers (tenant, token) with a fresh ticket, as the gateway does after Postgres.
void accept(auth_cache& c, const std::string& tenant, const std::string& token) {
  c.remember(tenant, token, c.take_ticket());
}

TEST(AuthCache, AcceptsWhatItRememberedUntilTheTtl) {
  auth_cache c(60s);
  EXPECT_FALSE(c.accepted("acme", "k1"));
  accept(c, "acme", "k1");
  EXPECT_TRUE(c.accepted("acme", "k1"));
  EXPECT_TRUE(c.accepted("acme", "k1")) << "the thread-local fast path";
  EXPECT_FALSE(c.accepted("acme", "k2"));
  EXPECT_FALSE(c.accepted("other", "k1")) << "a key is accepted for its tenant only";
  EXPECT_EQ(c.size(), 1u);

  auth_cache expired(0s);
  accept(expired, "acme", "k1");
  EXPECT_FALSE(expired.accepted("acme", "k1"));
}

TEST(AuthCache, InvalidatingATenantForgetsItsKeysOnly) {
  auth_cache c(60s);
  accept(c, "acme", "k1");
  accept(c, "acme", "k2");
  accept(c, "globex", "k3");
  ASSERT_TRUE(c.accepted("acme", "k1"));  // now this thread's last-accepted entry
  c.invalidate_tenant("acme");
  EXPECT_FALSE(c.accepted("acme", "k1")) << "the thread-local entry survived the invalidation";
  EXPECT_FALSE(c.accepted("acme", "k2"));
  EXPECT_TRUE(c.accepted("globex", "k3"));
  EXPECT_EQ(c.size(), 1u);
  c.invalidate_all();
  EXPECT_FALSE(c.accepted("globex", "k3"));
  EXPECT_EQ(c.size(), 0u);
}

TEST(AuthCache, InvalidationReachesEveryThreadsLastAcceptedEntry) {
  auth_cache c(60s);
  accept(c, "acme", "k1");
  // Each worker makes (acme, k1) its last-accepted entry, then waits for the test.
  constexpr int workers = 4;
  std::mutex m;
  std::condition_variable cv;
  int ready = 0;
  bool invalidated = false;
  std::atomic<int> still_accepted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i)
    threads.emplace_back([&] {
      bool before = c.accepted("acme", "k1");
      std::unique_lock<std::mutex> lock(m);
      ++ready;
      cv.notify_all();
      cv.wait(lock, [&] { return invalidated; });
      lock.unlock();
      if (!before || c.accepted("acme", "k1")) ++still_accepted;
    });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return ready == workers; });
  }
  c.invalidate_tenant("acme");
  {
    std::lock_guard<std::mutex> lock(m);
    invalidated = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  EXPECT_EQ(still_accepted.load(), 0);
}

TEST(AuthCache, AnAnswerFromBeforeAnInvalidationIsNotStored) {
  auth_cache c(60s);
  // Postgres said yes to a verification that started before the revocation arrived.
  auto ticket = c.take_ticket();
  c.invalidate_tenant("acme");
  c.remember("acme", "k1", ticket);
  EXPECT_FALSE(c.accepted("acme", "k1"));
  EXPECT_EQ(c.size(), 0u);
  accept(c, "acme", "k1");
  EXPECT_TRUE(c.accepted("acme", "k1"));
}

TEST(AuthCache, TwoCachesDoNotShareThreadLocalEntries) {
  auth_cache a(60s), b(60s);
  accept(a, "acme", "k1");
  ASSERT_TRUE(a.accepted("acme", "k1"));
  EXPECT_FALSE(b.accepted("acme", "k1"));
}

/// Whether two changes say the same.
bool same(const admin::change& a, const admin::change& b) {
  return a.what == b.what && a.tenant == b.tenant && a.bot == b.bot && a.key_id == b.key_id &&
         a.version == b.version;
}

TEST(Changes, RoundTripThroughJsonAndIgnoreWhatTheyDoNotKnow) {
  const admin::change revoked{admin::change::kind::api_key_revoked, "acme", "", 42, 0};
  const admin::change activated{admin::change::kind::bot_activated, "acme", "support", 0, 3};
  for (const auto& c : {revoked, activated}) {
    auto text = admin::encode_change(c);
    auto back = admin::decode_change(text);
    ASSERT_TRUE(back) << text;
    EXPECT_TRUE(same(*back, c)) << text;
  }
  EXPECT_EQ(admin::encode_change(revoked),
            R"({"key_id":42,"kind":"api_key_revoked","tenant":"acme"})");
  EXPECT_EQ(admin::encode_change(activated),
            R"({"bot":"support","kind":"bot_activated","tenant":"acme","version":3})");

  EXPECT_FALSE(admin::decode_change("not json"));
  EXPECT_FALSE(admin::decode_change(R"({"kind":"tenant_renamed","tenant":"acme"})"));
  EXPECT_FALSE(admin::decode_change(R"({"kind":"api_key_revoked"})")) << "no tenant";
  EXPECT_FALSE(admin::decode_change(R"({"kind":"api_key_revoked","tenant":7})"));
  EXPECT_EQ(admin::changes_channel("eu-west"), "parley:eu-west:changes");
}

double sample(prometheus::Registry& reg, const std::string& name) {
  auto text = prometheus::TextSerializer{}.Serialize(reg.Collect());
  auto pos = text.find("\n" + name + " ");
  return pos == std::string::npos ? -1 : std::stod(text.substr(pos + name.size() + 2));
}

TEST(ChangeListener, RevocationsDropTheTenantAndActivationsPollTheRegistry) {
  std::mutex m;
  int polls = 0;
  program_source src;
  src.load = [](const std::string&, const std::string&, uint32_t, auto done) {
    done(make_error("not_found", "unused"));
  };
  src.changes = [&](int64_t, auto done) {
    {
      std::lock_guard<std::mutex> lock(m);
      ++polls;
    }
    done(std::vector<store::active_change>{});
  };
  bot_registry registry(src, 1h);
  registry.start();
  auto polled = [&](int n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (polls >= n) return true;
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
  };
  ASSERT_TRUE(polled(1));

  // Port 1 refuses: the subscription keeps retrying and never delivers anything.
  auto redis = store::redis_client::create({"redis://127.0.0.1:1"});
  ASSERT_TRUE(redis) << redis.err().message;
  prometheus::Registry metrics;
  auto auth = std::make_shared<auth_cache>(60s);
  {
    change_listener listener(**redis, "test", auth, registry, metrics);
    EXPECT_EQ(sample(metrics, "parley_changes_subscribed"), 0);
    accept(*auth, "acme", "k1");
    accept(*auth, "globex", "k2");
    ASSERT_TRUE(auth->accepted("acme", "k1"));

    listener.apply(R"({"kind":"api_key_revoked","tenant":"acme","key_id":1})");
    EXPECT_FALSE(auth->accepted("acme", "k1"));
    EXPECT_TRUE(auth->accepted("globex", "k2"));
    EXPECT_EQ(sample(metrics, R"(parley_invalidations_received_total{kind="api_key_revoked"})"), 1);

    listener.apply(R"({"kind":"bot_activated","tenant":"acme","bot":"support","version":2})");
    EXPECT_TRUE(polled(2)) << "the activation did not make the registry poll";
    EXPECT_EQ(sample(metrics, R"(parley_invalidations_received_total{kind="bot_activated"})"), 1);

    listener.apply("garbage");
    EXPECT_EQ(sample(metrics, R"(parley_invalidations_received_total{kind="unknown"})"), 1);
    EXPECT_EQ(sample(metrics, R"(parley_invalidations_received_total{kind="subscribed"})"), 0);
  }
  registry.stop();
}

}  // namespace
}  // namespace parley::actors
