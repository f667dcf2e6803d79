// actors/secrets/secret_cache: hits, shared loads, invalidation (also of a load in
// flight), failed loads and the TTL, with a loader the test completes by hand.

#include "actors/secrets/secret_cache.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <deque>

namespace parley::actors {
namespace {

using values = secret_cache::values;

/// A loader whose loads wait until the test completes them.
struct manual_loader {
  struct pending {
    std::string tenant;
    std::function<void(result<values>)> done;
  };
  std::deque<pending> loads;
  secret_cache::loader fn() {
    return [this](const std::string& tenant, std::function<void(result<values>)> done) {
      loads.push_back({tenant, std::move(done)});
    };
  }
  void complete(result<values> r) {
    ASSERT_FALSE(loads.empty());
    auto p = std::move(loads.front());
    loads.pop_front();
    p.done(std::move(r));
  }
};

struct answers {
  std::vector<result<secret_cache::values_ptr>> got;
  secret_cache::callback cb() {
    return [this](result<secret_cache::values_ptr> r) { got.push_back(std::move(r)); };
  }
};

std::string metrics_text(prometheus::Registry& reg) {
  return prometheus::TextSerializer().Serialize(reg.Collect());
}

TEST(secret_cache, loads_once_for_concurrent_gets_then_answers_from_memory) {
  manual_loader l;
  prometheus::Registry reg;
  secret_cache cache(l.fn(), &reg);
  answers a;
  cache.get("acme", a.cb());
  cache.get("acme", a.cb());
  ASSERT_EQ(l.loads.size(), 1u) << "one load for both";
  EXPECT_TRUE(a.got.empty());
  l.complete(values{{"TOKEN", "v1"}});
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[0]->get()->at("TOKEN"), "v1");
  cache.get("acme", a.cb());
  EXPECT_EQ(a.got.size(), 3u) << "a hit answers inline";
  EXPECT_TRUE(l.loads.empty());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(metrics_text(reg).find("parley_secret_cache_loads_total{result=\"ok\"} 1"),
            std::string::npos)
      << metrics_text(reg);
  EXPECT_EQ(metrics_text(reg).find("v1"), std::string::npos);
}

TEST(secret_cache, tenants_are_kept_apart_and_invalidated_alone) {
  manual_loader l;
  secret_cache cache(l.fn(), nullptr);
  answers a, b;
  cache.get("a", a.cb());
  l.complete(values{{"X", "a-value"}});
  cache.get("b", b.cb());
  ASSERT_EQ(l.loads.size(), 1u);
  EXPECT_EQ(l.loads.front().tenant, "b");
  l.complete(values{});
  EXPECT_TRUE(b.got[0]->get()->empty());
  cache.invalidate_tenant("a");
  cache.get("b", b.cb());
  EXPECT_TRUE(l.loads.empty()) << "b is still cached";
  cache.get("a", a.cb());
  ASSERT_EQ(l.loads.size(), 1u) << "a loads again";
  l.complete(values{{"X", "a-new"}});
  EXPECT_EQ(a.got.back()->get()->at("X"), "a-new");
  cache.invalidate_all();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(secret_cache, a_load_in_flight_across_an_invalidation_is_loaded_again) {
  manual_loader l;
  secret_cache cache(l.fn(), nullptr);
  answers a;
  cache.get("acme", a.cb());
  cache.invalidate_tenant("acme");  // the value changed while Postgres was read
  l.complete(values{{"TOKEN", "old"}});
  EXPECT_TRUE(a.got.empty()) << "the stale read is not answered";
  ASSERT_EQ(l.loads.size(), 1u);
  l.complete(values{{"TOKEN", "new"}});
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0]->get()->at("TOKEN"), "new");
}

TEST(secret_cache, failed_loads_are_answered_and_not_cached) {
  manual_loader l;
  prometheus::Registry reg;
  secret_cache cache(l.fn(), &reg);
  answers a;
  cache.get("acme", a.cb());
  l.complete(make_error("postgres_unavailable", "down"));
  ASSERT_EQ(a.got.size(), 1u);
  ASSERT_FALSE(a.got[0].ok());
  EXPECT_EQ(a.got[0].err().code, "postgres_unavailable");
  cache.get("acme", a.cb());
  EXPECT_EQ(l.loads.size(), 1u) << "the next get loads again";
  EXPECT_NE(metrics_text(reg).find("parley_secret_cache_loads_total{result=\"error\"} 1"),
            std::string::npos);
}

TEST(secret_cache, a_failed_reload_after_the_ttl_answers_what_expired_but_not_what_changed) {
  manual_loader l;
  secret_cache cache(l.fn(), nullptr, std::chrono::milliseconds(0));
  answers a;
  cache.get("acme", a.cb());
  l.complete(values{{"TOKEN", "v1"}});
  cache.get("acme", a.cb());  // expired: loads again, and Postgres is down
  l.complete(make_error("postgres_unavailable", "down"));
  ASSERT_EQ(a.got.size(), 2u);
  ASSERT_TRUE(a.got[1].ok());
  EXPECT_EQ(a.got[1]->get()->at("TOKEN"), "v1");
  cache.invalidate_tenant("acme");  // a change was heard: the old values are void
  cache.get("acme", a.cb());
  l.complete(make_error("postgres_unavailable", "down"));
  ASSERT_EQ(a.got.size(), 3u);
  EXPECT_FALSE(a.got[2].ok());
}

TEST(secret_cache, entries_expire_after_the_ttl) {
  manual_loader l;
  secret_cache cache(l.fn(), nullptr, std::chrono::milliseconds(0));
  answers a;
  cache.get("acme", a.cb());
  l.complete(values{});
  cache.get("acme", a.cb());
  EXPECT_EQ(l.loads.size(), 1u) << "a zero TTL never answers from memory";
}

}  // namespace
}  // namespace parley::actors
