#pragma once
/// The Bot API gateway's cache of positive authentications: (tenant, SHA-256 of the API
/// key) accepted by Postgres within the last `ttl`, so that a request costs no database
/// round trip. Refusals are never cached.
///
/// Invalidation: a revoked key must stop working at once on every node, not after the
/// TTL. The node's change listener (actors/changes) calls invalidate_tenant when any
/// node's admin API revokes a key of the tenant, and invalidate_all when its Redis
/// subscription (re)connects (messages may have been missed meanwhile). The TTL stays
/// as the backstop for a node that cannot hear Redis at all.
///
/// Threads: every function may be called from any thread. accepted() first checks the
/// last entry this thread accepted (a connection's requests carry the same tenant and
/// key), without hashing the key or taking the lock; a generation counter, bumped by
/// every invalidation, voids those thread-local entries.
///
/// A verification that was in flight while an invalidation came in must not store its
/// (possibly stale) answer: take a ticket() before asking Postgres and give it to
/// remember(), which stores nothing when an invalidation happened since.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace parley::actors {

class auth_cache {
 public:
  using clock = std::chrono::steady_clock;
  /// The cache's generation when a verification started (see remember).
  using ticket = std::uint64_t;

  explicit auth_cache(std::chrono::seconds ttl = std::chrono::seconds(60));
  auth_cache(const auth_cache&) = delete;
  auth_cache& operator=(const auth_cache&) = delete;

  /// Whether `token` was accepted as an API key of `tenant` within the TTL and not
  /// invalidated since.
  bool accepted(const std::string& tenant, const std::string& token);

  /// Take before asking Postgres; pass to remember.
  ticket take_ticket() const { return generation_.load(std::memory_order_acquire); }

  /// Stores a positive answer for the TTL, unless an invalidation came after `t`.
  void remember(const std::string& tenant, const std::string& token, ticket t);

  /// Forgets every authentication of `tenant` (an API key of it was revoked).
  void invalidate_tenant(const std::string& tenant);

  /// Forgets everything (the change feed may have missed messages).
  void invalidate_all();

  /// Authentications held (for tests).
  std::size_t size() const;

 private:
  using digests = std::unordered_map<std::string, clock::time_point>;  // SHA-256 -> until

  const std::chrono::seconds ttl_;
  const std::uint64_t id_;  // tells this cache's thread-local entries from another's
  std::atomic<std::uint64_t> generation_{0};
  mutable std::mutex m_;
  std::unordered_map<std::string, digests> by_tenant_;  // guarded by m_
  std::size_t entries_ = 0;                             // guarded by m_
};

}  // namespace parley::actors
