#pragma once
/// The node's cache of its tenants' opened secrets, for resolving the `{{secret.NAME}}`
/// references of bot actions (bot::resolve_secrets) without a Postgres round trip per
/// call. Not an actor: a thread-safe object the conversation actors ask.
///
/// get(tenant, done) answers from memory while the tenant's secrets were loaded less
/// than `ttl` ago (60 s) and not invalidated since; otherwise it asks its `loader`
/// (parleyd: store::tenant_secrets on the Postgres pool, off the caller's thread) and
/// answers when the load completes. Concurrent gets of one tenant share one load.
/// Failed loads are not cached: the next get loads again. A reload that fails after
/// the TTL expired answers with the values that expired (Postgres down: the tenant's
/// secrets as last read, which no change heard since has voided); without them, with
/// the error.
///
/// Invalidation: the change listener (actors/changes) calls invalidate_tenant when any
/// node's admin API set or deleted a secret of the tenant (`secrets_changed`), and
/// invalidate_all on each (re)subscription. A load in flight across an invalidation
/// is not trusted: it is loaded again before anyone is answered, so a get that comes
/// after an invalidation never sees the value from before it.
///
/// Values never leave through a log line, a metric or an error message. Metric:
/// `parley_secret_cache_loads_total{result}` (result: ok, error).
///
/// Threads: every function may be called from any thread. `done` runs exactly once:
/// inline on the caller's thread for a hit, else on the thread the loader completes
/// on; it must not block, and is never called with the cache's lock held.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "src/common/result.hpp"

namespace prometheus {
class Registry;
}

namespace parley::actors {

/// One secret of a tenant, as the channel gateways and senders ask for it: `done` (once,
/// any thread) gets its value, nullopt when the tenant has no secret `name`, or an error
/// when the tenant's secrets cannot be read (callers then answer "retry later", never
/// "wrong credentials").
using secret_lookup =
    std::function<void(const std::string& tenant, const std::string& name,
                       std::function<void(result<std::optional<std::string>>)> done)>;

class secret_cache {
 public:
  using values = std::map<std::string, std::string>;
  using values_ptr = std::shared_ptr<const values>;
  using callback = std::function<void(result<values_ptr>)>;
  /// Loads every secret of a tenant; calls `done` once, from any thread.
  using loader =
      std::function<void(const std::string& tenant, std::function<void(result<values>)> done)>;

  /// `metrics` may be null (no metric); else it must outlive the cache.
  secret_cache(loader load, prometheus::Registry* metrics,
               std::chrono::milliseconds ttl = std::chrono::seconds(60));
  ~secret_cache();
  secret_cache(const secret_cache&) = delete;
  secret_cache& operator=(const secret_cache&) = delete;

  /// The tenant's secrets (see above).
  void get(const std::string& tenant, callback done);

  /// The secret `name` of `tenant`, through get().
  void get_one(const std::string& tenant, const std::string& name,
               std::function<void(result<std::optional<std::string>>)> done);

  /// get_one of this cache as a secret_lookup; the cache must outlive it.
  secret_lookup lookup();

  /// Drops what is cached of `tenant` (one of its secrets changed).
  void invalidate_tenant(const std::string& tenant);

  /// Drops everything (the change feed may have missed messages).
  void invalidate_all();

  /// Tenants whose secrets are held (for tests).
  std::size_t size() const;

 private:
  struct state;
  std::shared_ptr<state> s_;
};

}  // namespace parley::actors
