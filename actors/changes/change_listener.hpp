#pragma once
/// The node's ear on its region's change feed (src/admin/changes.hpp, docs/changes.md):
/// a Redis subscription to `parley:<region>:changes` that applies what any node's admin
/// API changed, within a second, instead of at the TTL or poll tick.
///
///   api_key_revoked  drops the tenant's cached authentications (auth_cache), so the
///                    next request with the revoked key asks Postgres and gets 401;
///   bot_activated    makes the registry poll Postgres's change log now, so new
///                    sessions start on the new version;
///   secrets_changed  drops the tenant's cached secrets (secret_cache), so the next
///                    action of its bots reads them from Postgres;
///   limits_changed   drops the tenant's cached attachment limits (limits_cache), so
///                    the next message to its gateways reads them from Postgres;
///   (re)subscribed   all of these, for everything: messages published while the node was not
///                    subscribed (Redis down, a reconnect) are lost for good.
///
/// Postgres stays the truth: a message only says "look again". Metrics:
/// `parley_invalidations_received_total{kind}` (kind: api_key_revoked, bot_activated,
/// secrets_changed, limits_changed, subscribed, unknown) and `parley_changes_subscribed` (1 while
/// subscribed). Logs: `changes_subscribed` on each (re)subscription, `changes_subscription_lost`
/// when it breaks.
///
/// Threads: the handlers run on the Redis client's loop thread; they only lock the
/// cache briefly and wake the registry's poller.

#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace parley::store {
class redis_client;
class redis_subscription;
}  // namespace parley::store

namespace parley::actors {

class auth_cache;
class bot_registry;
class secret_cache;
class limits_cache;

class change_listener {
 public:
  /// Subscribes at once (and again after every reconnect). `redis`, `registry` and
  /// `metrics` must outlive the listener. `secrets` and `limits` may be null (no such cache).
  change_listener(store::redis_client& redis, std::string_view region,
                  std::shared_ptr<auth_cache> auth, bot_registry& registry,
                  prometheus::Registry& metrics, std::shared_ptr<secret_cache> secrets = {},
                  std::shared_ptr<limits_cache> limits = {});
  /// Unsubscribes: no handler runs once it has returned. Not from a Redis callback.
  ~change_listener();
  change_listener(const change_listener&) = delete;
  change_listener& operator=(const change_listener&) = delete;

  /// What a payload of the feed does here (the subscription's message handler).
  void apply(const std::string& payload);

 private:
  struct counters;
  std::shared_ptr<auth_cache> auth_;
  bot_registry& registry_;
  std::shared_ptr<secret_cache> secrets_;
  std::shared_ptr<limits_cache> limits_;
  std::unique_ptr<counters> counters_;
  std::unique_ptr<store::redis_subscription> sub_;
};

}  // namespace parley::actors
