#pragma once
// A test fixture against the shared Redis of scripts/test (REDIS_URL): the test's keys
// share a unique prefix and are deleted when it ends.

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "src/store/redis.hpp"
#include "tests/support/servers.hpp"

namespace parley::store {

class shared_redis : public ::testing::Test {
 protected:
  /// Connects `client_` with `o` (its url is REDIS_URL); keys are named after `name`.
  void open(redis_options o, const std::string& name) {
    ASSERT_FALSE(o.url.empty());
    auto c = redis_client::create(std::move(o));
    ASSERT_TRUE(c) << c.err().message;
    client_ = std::move(*c);
    prefix_ = testing::unique_name(name) + ":";
  }
  void TearDown() override {
    if (!client_) return;
    auto keys = client_->command_sync({"KEYS", prefix_ + "*"});
    ASSERT_TRUE(keys) << keys.err().message;
    for (auto& k : keys->elements) ASSERT_TRUE(client_->command_sync({"DEL", k.str}));
  }
  std::string key(const std::string& k) const { return prefix_ + k; }

  std::unique_ptr<redis_client> client_;
  std::string prefix_;
};

/// PING on the client's own connection and every lane connection, waited for (redis_client::ping).
inline result<void> ping_sync(redis_client& c) {
  std::promise<result<void>> p;
  c.ping([&p](result<void> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

}  // namespace parley::store
