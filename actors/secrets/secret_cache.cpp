#include "actors/secrets/secret_cache.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <mutex>
#include <unordered_map>
#include <vector>

namespace parley::actors {

using clock_type = std::chrono::steady_clock;

struct secret_cache::state : std::enable_shared_from_this<state> {
  struct entry {
    values_ptr vals;   // null: nothing held
    values_ptr stale;  // what expired (never what was invalidated): answers a failed reload
    clock_type::time_point until;
    std::uint64_t generation = 0;  // bumped by every invalidation
    bool loading = false;
    std::vector<callback> waiters;
  };

  loader load;
  std::chrono::milliseconds ttl;
  prometheus::Counter* loads_ok = nullptr;
  prometheus::Counter* loads_error = nullptr;
  mutable std::mutex m;
  std::unordered_map<std::string, entry> by_tenant;  // guarded by m

  /// Starts a load of `tenant`; the caller set its entry's `loading` under the lock.
  void start_load(const std::string& tenant, std::uint64_t generation) {
    load(tenant, [self = shared_from_this(), tenant, generation](result<values> r) {
      self->loaded(tenant, generation, r);
    });
  }

  // By reference: moving the result into a by-value parameter makes GCC 12 -O3 warn
  // (a false -Wmaybe-uninitialized in std::variant's move).
  void loaded(const std::string& tenant, std::uint64_t generation, result<values>& r) {
    if (r.ok()) {
      if (loads_ok) loads_ok->Increment();
    } else if (loads_error) {
      loads_error->Increment();
    }
    std::vector<callback> waiters;
    values_ptr vals;
    {
      std::unique_lock<std::mutex> lock(m);
      auto& e = by_tenant[tenant];
      if (r.ok() && e.generation != generation) {
        // Invalidated while loading: what was read may predate the change.
        auto g = e.generation;
        lock.unlock();
        return start_load(tenant, g);
      }
      e.loading = false;
      waiters.swap(e.waiters);
      if (r.ok()) {
        vals = std::make_shared<const values>(std::move(*r));
        e.vals = vals;
        e.stale.reset();
        e.until = clock_type::now() + ttl;
      } else if (e.stale) {
        // Postgres is down past the TTL: what the tenant had, unchanged as far as this
        // node heard, beats failing every action. Not cached: the next get asks again.
        vals = e.stale;
      }
    }
    for (auto& w : waiters) {
      if (vals)
        w(vals);
      else
        w(r.err());
    }
  }
};

secret_cache::secret_cache(loader load, prometheus::Registry* metrics,
                           std::chrono::milliseconds ttl)
    : s_(std::make_shared<state>()) {
  s_->load = std::move(load);
  s_->ttl = ttl;
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("parley_secret_cache_loads_total")
                       .Help(
                           "Loads of a tenant's secrets from Postgres into the node's cache, "
                           "by result (ok, error)")
                       .Register(*metrics);
    s_->loads_ok = &family.Add({{"result", "ok"}});
    s_->loads_error = &family.Add({{"result", "error"}});
  }
}

secret_cache::~secret_cache() = default;

void secret_cache::get(const std::string& tenant, callback done) {
  std::unique_lock<std::mutex> lock(s_->m);
  auto& e = s_->by_tenant[tenant];
  if (e.vals && clock_type::now() < e.until) {
    auto vals = e.vals;
    lock.unlock();
    return done(std::move(vals));
  }
  if (e.vals) e.stale = std::move(e.vals);
  e.vals.reset();
  e.waiters.push_back(std::move(done));
  if (e.loading) return;
  e.loading = true;
  auto generation = e.generation;
  lock.unlock();
  s_->start_load(tenant, generation);
}

void secret_cache::get_one(const std::string& tenant, const std::string& name,
                           std::function<void(result<std::optional<std::string>>)> done) {
  get(tenant, [name, done = std::move(done)](result<values_ptr> v) {
    if (!v) return done(v.err());
    auto it = (*v)->find(name);
    if (it == (*v)->end()) return done(std::optional<std::string>{});
    done(std::optional<std::string>(it->second));
  });
}

secret_lookup secret_cache::lookup() {
  return [this](const std::string& tenant, const std::string& name,
                std::function<void(result<std::optional<std::string>>)> done) {
    get_one(tenant, name, std::move(done));
  };
}

void secret_cache::invalidate_tenant(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(s_->m);
  auto it = s_->by_tenant.find(tenant);
  if (it == s_->by_tenant.end()) return;
  if (!it->second.loading) {
    s_->by_tenant.erase(it);
    return;
  }
  it->second.vals.reset();
  it->second.stale.reset();
  ++it->second.generation;
}

void secret_cache::invalidate_all() {
  std::lock_guard<std::mutex> lock(s_->m);
  for (auto it = s_->by_tenant.begin(); it != s_->by_tenant.end();) {
    if (!it->second.loading) {
      it = s_->by_tenant.erase(it);
    } else {
      it->second.vals.reset();
      it->second.stale.reset();
      ++it->second.generation;
      ++it;
    }
  }
}

std::size_t secret_cache::size() const {
  std::lock_guard<std::mutex> lock(s_->m);
  std::size_t n = 0;
  for (const auto& [t, e] : s_->by_tenant) n += e.vals ? 1 : 0;
  return n;
}

}  // namespace parley::actors
