#include "actors/limits/limits_cache.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "src/log/log.hpp"

namespace parley::actors {

using clock_type = std::chrono::steady_clock;

struct limits_cache::state : std::enable_shared_from_this<state> {
  using callback = std::function<void(limits)>;
  struct entry {
    std::optional<limits> vals;   // empty: nothing held
    std::optional<limits> stale;  // what expired (never what was invalidated)
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

  void start_load(const std::string& tenant, std::uint64_t generation) {
    load(tenant, [self = shared_from_this(), tenant, generation](result<limits> r) {
      self->loaded(tenant, generation, r);
    });
  }

  void loaded(const std::string& tenant, std::uint64_t generation, result<limits>& r) {
    if (r.ok()) {
      if (loads_ok) loads_ok->Increment();
    } else {
      if (loads_error) loads_error->Increment();
      log::warn("limits_load_failed", {{"tenant", tenant}, {"error", r.err().message}});
    }
    std::vector<callback> waiters;
    limits answer;
    {
      std::unique_lock<std::mutex> lock(m);
      auto& e = by_tenant[tenant];
      if (r.ok() && e.generation != generation) {
        auto g = e.generation;
        lock.unlock();
        return start_load(tenant, g);
      }
      e.loading = false;
      waiters.swap(e.waiters);
      if (r.ok()) {
        e.vals = *r;
        e.stale.reset();
        e.until = clock_type::now() + ttl;
        answer = *r;
      } else if (e.stale) {
        answer = *e.stale;
      }
    }
    for (auto& w : waiters) w(answer);
  }
};

limits_cache::limits_cache(loader load, prometheus::Registry* metrics,
                           std::chrono::milliseconds ttl)
    : s_(std::make_shared<state>()) {
  s_->load = std::move(load);
  s_->ttl = ttl;
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("parley_limits_cache_loads_total")
                       .Help(
                           "Loads of a tenant's attachment limits from Postgres into the node's "
                           "cache, by result (ok, error)")
                       .Register(*metrics);
    s_->loads_ok = &family.Add({{"result", "ok"}});
    s_->loads_error = &family.Add({{"result", "error"}});
  }
}

limits_cache::~limits_cache() = default;

void limits_cache::get(const std::string& tenant, std::function<void(limits)> done) {
  std::unique_lock<std::mutex> lock(s_->m);
  auto& e = s_->by_tenant[tenant];
  if (e.vals && clock_type::now() < e.until) {
    auto vals = *e.vals;
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

limits_lookup limits_cache::lookup() {
  return [this](const std::string& tenant, std::function<void(limits)> done) {
    get(tenant, std::move(done));
  };
}

void limits_cache::invalidate_tenant(const std::string& tenant) {
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

void limits_cache::invalidate_all() {
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

std::size_t limits_cache::size() const {
  std::lock_guard<std::mutex> lock(s_->m);
  std::size_t n = 0;
  for (const auto& [t, e] : s_->by_tenant) n += e.vals ? 1 : 0;
  return n;
}

}  // namespace parley::actors
