// actors/limits: the cache of tenants' attachment limits (shared loads, hits,
// invalidation also of a load in flight, a failed load answering the last limits or
// the defaults) and the transcript note of refused attachments.

#include "actors/limits/limits_cache.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <deque>

#include "actors/limits/attachment_gate.hpp"

namespace parley::actors {
namespace {

using limits = limits_cache::limits;

struct manual_loader {
  struct pending {
    std::string tenant;
    std::function<void(result<limits>)> done;
  };
  std::deque<pending> loads;
  limits_cache::loader fn() {
    return [this](const std::string& tenant, std::function<void(result<limits>)> done) {
      loads.push_back({tenant, std::move(done)});
    };
  }
  void complete(result<limits> r) {
    ASSERT_FALSE(loads.empty());
    auto p = std::move(loads.front());
    loads.pop_front();
    p.done(std::move(r));
  }
};

limits with_max(std::size_t n) {
  limits l;
  l.max_attachments = n;
  return l;
}

TEST(limits_cache, loads_once_then_answers_from_memory_until_invalidated) {
  manual_loader l;
  prometheus::Registry reg;
  limits_cache cache(l.fn(), &reg);
  std::vector<std::size_t> got;
  auto cb = [&](limits x) { got.push_back(x.max_attachments); };
  cache.get("acme", cb);
  cache.get("acme", cb);
  ASSERT_EQ(l.loads.size(), 1u);
  l.complete(with_max(3));
  EXPECT_EQ(got, (std::vector<std::size_t>{3, 3}));
  cache.get("acme", cb);
  EXPECT_TRUE(l.loads.empty()) << "a hit";
  EXPECT_EQ(got.back(), 3u);
  cache.invalidate_tenant("acme");
  cache.get("acme", cb);
  ASSERT_EQ(l.loads.size(), 1u) << "invalidated: loaded again";
  l.complete(with_max(5));
  EXPECT_EQ(got.back(), 5u);
  auto text = prometheus::TextSerializer().Serialize(reg.Collect());
  EXPECT_NE(text.find("parley_limits_cache_loads_total{result=\"ok\"} 2"), std::string::npos)
      << text;
}

TEST(limits_cache, a_load_in_flight_across_an_invalidation_is_loaded_again) {
  manual_loader l;
  limits_cache cache(l.fn(), nullptr);
  std::vector<std::size_t> got;
  cache.get("acme", [&](limits x) { got.push_back(x.max_attachments); });
  cache.invalidate_all();
  l.complete(with_max(3));  // read before the change
  EXPECT_TRUE(got.empty());
  ASSERT_EQ(l.loads.size(), 1u);
  l.complete(with_max(7));
  EXPECT_EQ(got, (std::vector<std::size_t>{7}));
}

TEST(limits_cache, a_failed_load_answers_the_defaults_and_is_not_cached) {
  manual_loader l;
  limits_cache cache(l.fn(), nullptr, std::chrono::milliseconds(0));
  std::vector<std::size_t> got;
  auto cb = [&](limits x) { got.push_back(x.max_attachments); };
  cache.get("acme", cb);
  l.complete(error{"postgres_unavailable", "down"});
  EXPECT_EQ(got.back(), limits{}.max_attachments);
  cache.get("acme", cb);
  ASSERT_EQ(l.loads.size(), 1u) << "a failure is not cached";
  l.complete(with_max(4));
  EXPECT_EQ(got.back(), 4u);
  // TTL 0: expired at once; a failed reload answers what expired.
  cache.get("acme", cb);
  l.complete(error{"postgres_unavailable", "down"});
  EXPECT_EQ(got.back(), 4u);
}

TEST(attachment_gate, the_note_names_each_refused_attachment_without_its_url) {
  channels::text::attachment_limits lim;
  auto v = channels::text::check_attachments(
      lim, {{"https://x/a.png", "image/png"}, {"javascript:alert(1)", "image/png"}});
  EXPECT_EQ(refusal_note(v),
            "[attachment 2 refused: scheme: scheme \"javascript\" is not allowed]");
  EXPECT_EQ(refusal_note({}), "");
}

}  // namespace
}  // namespace parley::actors
