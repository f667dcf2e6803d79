#include "actors/gateway/auth_cache.hpp"

#include "actors/gateway/sha256.hpp"

namespace parley::actors {
namespace {

/// The raw digest (sha256.hpp: one context per thread).
std::string sha256(const std::string& data) {
  unsigned char out[sha256_size];
  actors::sha256(data, out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::uint64_t next_cache_id() {
  static std::atomic<std::uint64_t> n{0};
  return ++n;
}

/// Beyond this many authentications the cache starts over (a flood of distinct keys).
constexpr std::size_t max_entries = 100000;

}  // namespace

auth_cache::auth_cache(std::chrono::seconds ttl) : ttl_(ttl), id_(next_cache_id()) {}

bool auth_cache::accepted(const std::string& tenant, const std::string& token) {
  struct last_accepted {
    std::uint64_t cache = 0;  // auth_cache::id_
    std::uint64_t generation = 0;
    std::string tenant, token;
    clock::time_point until;
  };
  static thread_local last_accepted last;
  // Read before the lookup: an invalidation after it bumps the generation past this.
  auto generation = generation_.load(std::memory_order_acquire);
  auto now = clock::now();
  if (last.cache == id_ && last.generation == generation && last.token == token &&
      last.tenant == tenant && now < last.until)
    return true;
  auto digest = sha256(token);
  clock::time_point until;
  {
    std::lock_guard<std::mutex> lock(m_);
    auto t = by_tenant_.find(tenant);
    if (t == by_tenant_.end()) return false;
    auto it = t->second.find(digest);
    if (it == t->second.end() || it->second <= now) return false;
    until = it->second;
  }
  last = last_accepted{id_, generation, tenant, token, until};
  return true;
}

void auth_cache::remember(const std::string& tenant, const std::string& token, ticket t) {
  auto digest = sha256(token);
  std::lock_guard<std::mutex> lock(m_);
  if (generation_.load(std::memory_order_relaxed) != t) return;  // invalidated meanwhile
  if (entries_ >= max_entries) {
    by_tenant_.clear();
    entries_ = 0;
  }
  auto [it, inserted] = by_tenant_[tenant].insert_or_assign(std::move(digest), clock::now() + ttl_);
  entries_ += inserted ? 1 : 0;
}

void auth_cache::invalidate_tenant(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(m_);
  auto t = by_tenant_.find(tenant);
  if (t != by_tenant_.end()) {
    entries_ -= t->second.size();
    by_tenant_.erase(t);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

void auth_cache::invalidate_all() {
  std::lock_guard<std::mutex> lock(m_);
  by_tenant_.clear();
  entries_ = 0;
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::size_t auth_cache::size() const {
  std::lock_guard<std::mutex> lock(m_);
  return entries_;
}

}  // namespace parley::actors
