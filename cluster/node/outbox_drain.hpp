#pragma once
/// Delivers the replies waiting in the outbox streams of the shards this node holds.
///
/// The fenced commit appends each turn's replies for an asynchronous channel (one
/// parley.runtime.v1.OutboxEntry) to its shard's outbox stream in the same script as
/// the snapshot, so an acknowledged turn's replies are as durable as the turn, and a
/// node that lost the shard cannot add any. The shard's owner reads the stream through
/// the consumer group `outbox` (consumer: its node id) and delivers:
/// - in order per conversation: one reply in flight per conversation, the next only
///   once it is delivered or given up; conversations proceed in parallel;
/// - at least once: an entry is acknowledged and deleted only after its last reply is
///   settled, and the replies settled so far are noted per entry in
///   `<prefix>:<region>:outbox_progress:<shard>`, so a new owner (which first claims what
///   the previous one read and never acknowledged, XAUTOCLAIM) resends at most the reply
///   that was in flight when the old owner died;
/// - only while it holds the shard: a reply is sent only if the shard's lease is still
///   this node's, and a lost shard's waiting replies are left to its next owner;
/// - with retries: a reply the provider could not take now (5xx, 429, timeout) waits
///   min(retry_max, retry_initial * 2^attempts), at least the provider's Retry-After,
///   and holds back the rest of its conversation; after `give_up_after` it becomes a
///   dead letter (Postgres `outbox_dead_letters`), as does a reply the provider or the
///   channel's policy refused.
///
/// An entry whose turn handed the conversation to an agent has one more slot after its
/// replies, delivered like them: `deliver` with index `messages_size()` records the
/// handoff.
///
/// Its own thread for Redis and Postgres; deliveries run wherever `deliver` runs them.

#include <chrono>
#include <memory>
#include <string>

#include "actors/delivery/delivery.hpp"
#include "cluster/lease/leases.hpp"

namespace prometheus {
class Registry;
}
namespace parley::store {
class postgres_client;
}

namespace parley::cluster {

class outbox_drain {
 public:
  struct options {
    std::string node;
    lease_keys keys;
    std::chrono::milliseconds period{1000};  ///< between reads of every held shard
    std::size_t batch = 200;                 ///< entries per stream per read at most
    std::size_t max_buffered = 10000;        ///< entries read and not yet settled, at most
    std::chrono::milliseconds retry_initial{500};
    std::chrono::milliseconds retry_max{10000};
    std::chrono::seconds give_up_after{3600};
  };
  /// All references outlive this object; `metrics` may be null.
  outbox_drain(store::redis_client& redis, store::postgres_client& pg, shard_table& table,
               actors::deliver_fn deliver, options o, prometheus::Registry* metrics);
  ~outbox_drain();  ///< stop()
  outbox_drain(const outbox_drain&) = delete;
  outbox_drain& operator=(const outbox_drain&) = delete;

  void start();
  /// Ends the thread; deliveries in flight are left to whoever claims their shard.
  /// Idempotent.
  void stop();

  /// This node just took `shard`: claim and deliver what is waiting in its outbox.
  void acquired(uint32_t shard);
  /// A commit just added to `shard`'s outbox: read it now rather than at the next
  /// period. Any thread.
  void notify(uint32_t shard);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::cluster
