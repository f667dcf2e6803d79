#include "actors/changes/change_listener.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "actors/gateway/auth_cache.hpp"
#include "actors/limits/limits_cache.hpp"
#include "actors/registry/bot_registry.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "src/admin/changes.hpp"
#include "src/log/log.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {

struct change_listener::counters {
  explicit counters(prometheus::Registry& reg)
      : received(prometheus::BuildCounter()
                     .Name("parley_invalidations_received_total")
                     .Help("Changes heard on the region's change feed, by kind (subscribed: "
                           "a (re)subscription, which invalidates everything)")
                     .Register(reg)),
        revoked(received.Add({{"kind", "api_key_revoked"}})),
        activated(received.Add({{"kind", "bot_activated"}})),
        secrets(received.Add({{"kind", "secrets_changed"}})),
        limits(received.Add({{"kind", "limits_changed"}})),
        canary(received.Add({{"kind", "canary_changed"}})),
        subscribed(received.Add({{"kind", "subscribed"}})),
        unknown(received.Add({{"kind", "unknown"}})),
        up(prometheus::BuildGauge()
               .Name("parley_changes_subscribed")
               .Help("1 while the node is subscribed to its region's change feed")
               .Register(reg)
               .Add({})) {}
  prometheus::Family<prometheus::Counter>& received;
  prometheus::Counter& revoked;
  prometheus::Counter& activated;
  prometheus::Counter& secrets;
  prometheus::Counter& limits;
  prometheus::Counter& canary;
  prometheus::Counter& subscribed;
  prometheus::Counter& unknown;
  prometheus::Gauge& up;
};

change_listener::change_listener(store::redis_client& redis, std::string_view region,
                                 std::shared_ptr<auth_cache> auth, bot_registry& registry,
                                 prometheus::Registry& metrics,
                                 std::shared_ptr<secret_cache> secrets,
                                 std::shared_ptr<limits_cache> limits)
    : auth_(std::move(auth)),
      registry_(registry),
      secrets_(std::move(secrets)),
      limits_(std::move(limits)),
      counters_(std::make_unique<counters>(metrics)) {
  auto channel = admin::changes_channel(region);
  store::redis_subscription_handlers h;
  h.message = [this](const std::string&, const std::string& payload) { apply(payload); };
  h.subscribed = [this, channel] {
    // What was published while this node was not listening is lost: look again.
    auth_->invalidate_all();
    if (secrets_) secrets_->invalidate_all();
    if (limits_) limits_->invalidate_all();
    registry_.poll_now();
    counters_->subscribed.Increment();
    counters_->up.Set(1);
    log::info("changes_subscribed", {{"channel", channel}});
  };
  h.lost = [this, channel](const std::string& why) {
    counters_->up.Set(0);
    log::warn("changes_subscription_lost", {{"channel", channel}, {"error", why}});
  };
  sub_ = redis.subscribe({channel}, std::move(h));
}

change_listener::~change_listener() { sub_.reset(); }

void change_listener::apply(const std::string& payload) {
  auto c = admin::decode_change(payload);
  if (!c) {
    counters_->unknown.Increment();
    return;
  }
  switch (c->what) {
    case admin::change::kind::api_key_revoked:
      auth_->invalidate_tenant(c->tenant);
      counters_->revoked.Increment();
      return;
    case admin::change::kind::bot_activated:
      registry_.poll_now();
      counters_->activated.Increment();
      return;
    case admin::change::kind::canary_changed:
      // A canary's split changed: the change log has it (canary.hpp).
      registry_.poll_now();
      counters_->canary.Increment();
      return;
    case admin::change::kind::secrets_changed:
      if (secrets_) secrets_->invalidate_tenant(c->tenant);
      counters_->secrets.Increment();
      return;
    case admin::change::kind::limits_changed:
      if (limits_) limits_->invalidate_tenant(c->tenant);
      counters_->limits.Increment();
      return;
  }
}

}  // namespace parley::actors
