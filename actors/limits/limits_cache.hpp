#pragma once
/// The node's cache of its tenants' attachment limits (src/channels/text/attachments.hpp),
/// which the gateways check before an inbound message reaches the bot. Not an actor: a
/// thread-safe object the gateways ask.
///
/// get(tenant, done) answers from memory while the tenant's limits were loaded less
/// than `ttl` ago (60 s) and not invalidated since; otherwise it asks its `loader`
/// (parleyd: store::get_tenant_limits on the Postgres pool, off the caller's thread)
/// and answers when the load completes. Concurrent gets of one tenant share one load.
/// A tenant without a row has the defaults. A load that fails is not cached and
/// answers the limits that expired, else the defaults: a message is never refused
/// because Postgres is away (metric `parley_limits_cache_loads_total{result}`).
///
/// Invalidation: the change listener (actors/changes) calls invalidate_tenant on a
/// `limits_changed` change (any node's PUT /admin/v1/tenants/{t}/limits) and
/// invalidate_all on each (re)subscription. A load in flight across an invalidation
/// is loaded again before anyone is answered.
///
/// Threads: every function may be called from any thread. `done` runs exactly once:
/// inline on the caller's thread for a hit, else on the thread the loader completes
/// on; it must not block, and is never called with the cache's lock held.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "src/channels/text/attachments.hpp"
#include "src/common/result.hpp"

namespace prometheus {
class Registry;
}

namespace parley::actors {

/// The limits of a tenant as a gateway asks for them; `done` once, any thread.
using limits_lookup = std::function<void(
    const std::string& tenant, std::function<void(channels::text::attachment_limits)> done)>;

class limits_cache {
 public:
  using limits = channels::text::attachment_limits;
  /// Loads a tenant's limits (the defaults when it has none); `done` once, any thread.
  using loader =
      std::function<void(const std::string& tenant, std::function<void(result<limits>)> done)>;

  /// `metrics` may be null (no metric); else it must outlive the cache.
  limits_cache(loader load, prometheus::Registry* metrics,
               std::chrono::milliseconds ttl = std::chrono::seconds(60));
  ~limits_cache();
  limits_cache(const limits_cache&) = delete;
  limits_cache& operator=(const limits_cache&) = delete;

  void get(const std::string& tenant, std::function<void(limits)> done);

  /// get of this cache as a limits_lookup; the cache must outlive it.
  limits_lookup lookup();

  /// Drops what is cached of `tenant` (its limits changed).
  void invalidate_tenant(const std::string& tenant);

  /// Drops everything (the change feed may have missed messages).
  void invalidate_all();

  /// Tenants whose limits are held (for tests).
  std::size_t size() const;

 private:
  struct state;
  std::shared_ptr<state> s_;
};

}  // namespace parley::actors
