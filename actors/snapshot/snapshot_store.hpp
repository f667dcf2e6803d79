#pragma once
/// Where a conversation's committed snapshot lives: the seam between the conversation
/// actor and Redis (redis_snapshot_store), faked in tests (memory_snapshot_store).
///
/// A snapshot is the serialized `parley.runtime.v1.Snapshot` of one conversation,
/// keyed by (tenant, session id). The conversation loads it once, before its first
/// turn, and commits it after every turn; it answers the turn only once the commit
/// has completed. At most one load or commit of a conversation actor is in flight at a
/// time.
///
/// The handlers run once each, on a thread the implementation names (the Redis store:
/// the lane that issued the call, else the Redis client's I/O thread; the fake: the
/// caller's thread or the one that releases a held completion). They must not block.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "src/common/result.hpp"

namespace parley::actors {

/// What a load finds: the committed bytes, or nothing (never committed, or expired).
struct snapshot_read {
  bool found = false;
  std::string bytes;
  /// The fencing token the store hands out with the read: the epoch of the shard lease
  /// this node held when it read (0: a store that does not fence). The caller passes
  /// it back to every commit until its next load.
  uint64_t epoch = 0;
};

class snapshot_store {
 public:
  /// Receives one load's outcome (an error: the store cannot be reached).
  struct load_handler {
    virtual ~load_handler() = default;
    virtual void loaded(result<snapshot_read> r) = 0;
  };
  /// Receives one commit's outcome. An error leaves the write's fate unknown: the
  /// caller reloads before it trusts its copy again.
  struct commit_handler {
    virtual ~commit_handler() = default;
    virtual void committed(result<void> r) = 0;
  };

  virtual ~snapshot_store() = default;

  /// Reads the snapshot of (tenant, session).
  virtual void load(std::string_view tenant, std::string_view session,
                    std::shared_ptr<load_handler> done) = 0;

  /// The fencing token for a conversation that commits without loading first (a new
  /// session's start): what a load would hand out now. 0 for a store without fences.
  virtual uint64_t epoch_for(std::string_view tenant, std::string_view session) const { return 0; }

  /// Whether commit_turn stores a turn's transcript line atomically with its snapshot
  /// (the cluster's store: the line joins its shard's Redis stream in the same script,
  /// so an acknowledged turn's transcript cannot be lost with the node's memory). The
  /// conversation then hands the writer only its conversation records.
  virtual bool carries_transcripts() const { return false; }

  /// Whether commit_turn stores a turn's replies for asynchronous channels (a serialized
  /// parley.runtime.v1.OutboxEntry) atomically with its snapshot, for the shard's owner
  /// to deliver (the cluster's store: its outbox stream). A store that does not drops
  /// them, and conversations of such channels get no replies.
  virtual bool carries_outbox() const { return false; }

  /// Whether commit_turn keeps the conversation's next timer deadline in its shard's
  /// timer set (a sorted set by deadline, written in the same script as the snapshot),
  /// where the shard's owner finds the timers due (cluster/node/timer_poller). A store
  /// that does not fires no timers.
  virtual bool carries_timers() const { return false; }

  /// What commit_turn does to the conversation's entry in its shard's timer set.
  static constexpr int64_t timer_unchanged = -1;  ///< leave it
  static constexpr int64_t timer_none = 0;        ///< remove it

  /// commit() that also stores `transcript` (a COPY line of transcript_turns) when
  /// carries_transcripts(), `outbox` when carries_outbox(), and `timer_ms` (the next
  /// timer deadline, unix ms; or timer_unchanged, timer_none) when carries_timers();
  /// the default ignores them. A refused write stores none of them.
  virtual void commit_turn(std::string_view tenant, std::string_view session,
                           std::string_view bytes, std::chrono::seconds ttl,
                           uint64_t expected_epoch, std::string_view transcript,
                           std::string_view outbox, int64_t timer_ms,
                           std::shared_ptr<commit_handler> done) {
    (void)outbox;
    (void)timer_ms;
    commit(tenant, session, bytes, ttl, expected_epoch, std::move(done));
  }

  /// Replaces the snapshot of (tenant, session) with `bytes`, to expire after `ttl`
  /// without a newer commit. `expected_epoch` is the fencing epoch of the shard lease
  /// the caller holds (snapshot_read::epoch of its last load): a store that fences
  /// refuses the write (error code `fenced`) unless that lease is still current, so a
  /// node that lost the shard, however paused or partitioned, cannot overwrite the new
  /// owner's commits. `bytes` is read before the call returns.
  virtual void commit(std::string_view tenant, std::string_view session, std::string_view bytes,
                      std::chrono::seconds ttl, uint64_t expected_epoch,
                      std::shared_ptr<commit_handler> done) = 0;
};

}  // namespace parley::actors
