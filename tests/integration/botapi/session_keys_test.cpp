// actors::session_keys on the shared Redis of scripts/test: a key maps to the first
// session claimed for it, a compare-and-set replaces it, keep extends only the mapping
// it names, any byte of a key is safe, and without Redis every call fails fast.

#include <future>

#include "actors/gateway/session_keys.hpp"
#include "tests/integration/store/shared_redis.hpp"

namespace parley::actors {
namespace {

using namespace std::chrono_literals;

class session_keys_test : public store::shared_redis {
 protected:
  void SetUp() override {
    const char* url = std::getenv("REDIS_URL");
    ASSERT_NE(url, nullptr) << "REDIS_URL is not set: run the tests with scripts/test";
    open({url}, "sesskeys");
    auto prefix = prefix_.substr(0, prefix_.size() - 1);  // the fixture deletes prefix_*
    keys_ = std::make_unique<session_keys>(*client_, session_keys_options{prefix, 300s, 0});
  }

  result<std::string> claim(const std::string& tenant, const std::string& bot,
                            const std::string& key, const std::string& candidate) {
    std::promise<result<std::string>> p;
    keys_->claim(tenant, bot, key, candidate,
                 [&p](result<std::string> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  result<std::string> replace(const std::string& key, const std::string& old,
                              const std::string& fresh) {
    std::promise<result<std::string>> p;
    keys_->replace("t", "bot", key, old, fresh,
                   [&p](result<std::string> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  result<bool> keep(const std::string& key, const std::string& id, std::chrono::seconds ttl) {
    std::promise<result<bool>> p;
    keys_->keep("t", "bot", key, id, ttl, [&p](result<bool> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  long long ttl_of(const std::string& key) {
    auto r = client_->command_sync({"TTL", keys_->redis_key("t", "bot", key)});
    EXPECT_TRUE(r) << r.err().message;
    return r ? r->integer : -3;
  }

  std::unique_ptr<session_keys> keys_;
};

TEST_F(session_keys_test, a_key_maps_to_the_first_session_claimed_for_it) {
  auto first = claim("t", "bot", "k", "s1");
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(*first, "s1");
  auto second = claim("t", "bot", "k", "s2");
  ASSERT_TRUE(second) << second.err().message;
  EXPECT_EQ(*second, "s1") << "a retry gets the first start's session";
  auto ttl = ttl_of("k");
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 300) << "an unconfirmed claim lives pending_ttl";
}

TEST_F(session_keys_test, any_byte_of_a_key_is_safe_and_keys_never_share_a_mapping) {
  // Each (tenant, bot, key) claims its own candidate: none collides with another.
  const std::vector<std::vector<std::string>> named = {
      {"t", "a", "b:c"},  {"t", "a:b", "c"},
      {"t", "ab", "c"},   {"t", "a", "bc"},
      {"u", "a", "b:c"},  {"t", "a", "ключ:🔑"},
      {"t", "a", "ключ"}, {"t", "a", std::string("x\0y", 3)}};
  for (std::size_t i = 0; i < named.size(); ++i) {
    auto id = "s" + std::to_string(i);
    auto r = claim(named[i][0], named[i][1], named[i][2], id);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(*r, id) << named[i][1] << " / " << named[i][2];
  }
  auto k = keys_->redis_key("t", "a", "ключ:🔑");
  EXPECT_EQ(k.rfind(prefix_ + "sesskey:t:", 0), 0u) << k;
  EXPECT_EQ(k.size(), prefix_.size() + std::string("sesskey:t:").size() + 64) << k;
}

TEST_F(session_keys_test, replace_swaps_only_the_session_it_names) {
  ASSERT_EQ(*claim("t", "bot", "k", "s1"), "s1");
  auto r = replace("k", "s1", "s2");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(*r, "s2");
  EXPECT_EQ(*replace("k", "s1", "s3"), "s2") << "a second replace of s1 joins the first one's";
  EXPECT_EQ(*claim("t", "bot", "k", "s4"), "s2");
  EXPECT_EQ(*replace("gone", "s1", "s5"), "s5") << "an expired mapping is made anew";
}

TEST_F(session_keys_test, keep_extends_only_the_mapping_of_its_session) {
  ASSERT_EQ(*claim("t", "bot", "k", "s1"), "s1");
  auto wrong = keep("k", "s2", 3600s);
  ASSERT_TRUE(wrong) << wrong.err().message;
  EXPECT_FALSE(*wrong);
  EXPECT_LE(ttl_of("k"), 300);
  auto kept = keep("k", "s1", 3600s);
  ASSERT_TRUE(kept) << kept.err().message;
  EXPECT_TRUE(*kept);
  EXPECT_GT(ttl_of("k"), 300);
  EXPECT_LE(ttl_of("k"), 3600);
  EXPECT_FALSE(*keep("none", "s1", 3600s));
}

TEST(session_keys_without_redis, every_call_fails_fast_with_the_clients_error) {
  auto client = store::redis_client::create({"unix:///nonexistent/parley-test.sock"});
  ASSERT_TRUE(client) << client.err().message;
  session_keys keys(**client, {});
  std::promise<result<std::string>> p;
  keys.claim("t", "bot", "k", "s1", [&p](result<std::string> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "redis_unavailable") << r.err().message;
}

}  // namespace
}  // namespace parley::actors
