#pragma once
/// Shard leases and fencing in the region's Redis.
///
/// Keys (one Redis per region; the region is in the key so that two regions sharing a
/// server by mistake cannot take each other's shards):
/// - `<prefix>:<region>:lease:<shard>`: "<node>/<epoch>", with a TTL (cluster.lease_ms);
///   absent when no node holds the shard.
/// - `<prefix>:<region>:epoch:<shard>`: the shard's last epoch, never expiring, only
///   ever incremented: every new holder gets a larger epoch than any before it.
///
/// The scripts (EVALSHA, atomic in Redis) are the only writers of these keys:
/// - acquire: for each shard, takes the lease iff its current value is the one the
///   caller last read (compare-and-set: "" when absent); returns the new epochs.
/// - renew / release: for each shard, extends (PEXPIRE) or deletes the lease iff it
///   still holds the caller's value; returns 1 or 0 per shard.
/// - commit (with the turn's transcript line): writes a conversation's snapshot iff the lease of
/// its shard holds the
///   writer's "<node>/<epoch>". This is the fence: a node that lost its lease (paused,
///   partitioned, slow) can no longer commit, and the store enforces it, not a timer.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/store/redis.hpp"

namespace parley::cluster {

struct lease_keys {
  std::string prefix = "parley";
  std::string region = "local";

  std::string lease(uint32_t shard) const;
  std::string epoch(uint32_t shard) const;
  /// A member's record and the sorted set of every member seen (membership.hpp).
  std::string member(std::string_view node) const;
  std::string members() const;
  /// Set by `POST /admin/v1/cluster/nodes/{id}/drain`: the node drains and exits.
  std::string drain(std::string_view node) const;
  /// The shard's transcript stream: lines of committed turns not yet in Postgres.
  std::string transcripts(uint32_t shard) const;
  /// The shard's outbox stream: replies of committed turns not yet delivered
  /// (parley.runtime.v1.OutboxEntry, outbox_drain.hpp).
  std::string outbox(uint32_t shard) const;
  /// The shard's timer set: a sorted set of its conversations (timer_member) scored by
  /// their next timer deadline, unix ms (cluster/node/timer_poller.hpp).
  std::string timers(uint32_t shard) const;
};

/// A conversation's member in its shard's timer set: tenant '\0' session.
void timer_member(std::string_view tenant, std::string_view session, std::string& out);

/// The consumer group of every transcript stream (its consumers: the node ids).
inline constexpr const char* transcript_group = "parley";
/// The consumer group of every outbox stream (its consumers: the node ids).
inline constexpr const char* outbox_group = "outbox";

/// Takes over what other consumers of `group` read and never acknowledged in each of
/// `streams` (creating the group where it is missing), for `node`, as a drain does when
/// its node acquires a shard: XGROUP CREATE ... MKSTREAM then XAUTOCLAIM ... JUSTID, one
/// pipeline. Per stream, whether its claim succeeded (else: try again later). Blocks
/// the caller for the pipeline.
std::vector<bool> claim_streams(store::redis_client& redis, const std::vector<std::string>& streams,
                                const char* group, const std::string& node);

/// "<node>/<epoch>": a lease's value.
std::string holder_value(std::string_view node, uint64_t epoch);
/// The node of a lease value ("" when malformed or empty).
std::string_view holder_node(std::string_view value);

const store::redis_script& acquire_script();
/// renew (ARGV[1] "renew", ARGV[2] the TTL in ms) or release (ARGV[1] "release",
/// ARGV[2] unused) the leases in KEYS, each iff it holds ARGV[2 + i].
const store::redis_script& holder_script();
/// The fenced commit: writes a conversation's snapshot iff the shard's lease holds the
/// writer's "<node>/<epoch>", and appends the turn's transcript line (if any) to the
/// shard's stream in the same script. KEYS snapshot, lease, stream; ARGV bytes, TTL s,
/// holder, line ('' = none), bound, policy ("refuse" | "drop_oldest"), and optionally
/// KEYS[5] the shard's timer set, ARGV[8] the next deadline ('' = leave it, '0' = ZREM,
/// else ZADD) and ARGV[9] the conversation's member. Answers 1
/// (written), 2 (written, the oldest waiting line dropped at the bound), 0 (fenced), -1
/// (refused: the stream is at its bound).
const store::redis_script& commit_script();
/// Every script, for redis_options::scripts (loaded at each connect).
std::vector<store::redis_script> lease_scripts();

/// What this node holds, shard by shard: read on every turn (lock-free), written by
/// the membership loop. A shard is held when its epoch is non-zero.
class shard_table {
 public:
  explicit shard_table(uint32_t shards);
  uint32_t size() const { return static_cast<uint32_t>(slots_.size()); }

  /// The epoch of the lease this node holds on `shard`, 0 when it holds none.
  uint64_t held(uint32_t shard) const {
    return slots_[shard].epoch.load(std::memory_order_acquire);
  }
  void set_held(uint32_t shard, uint64_t epoch) {
    slots_[shard].epoch.store(epoch, std::memory_order_release);
  }
  /// A held shard being handed over: new turns go to its next owner.
  /// (Sequentially consistent, with the in-flight count: a router counts its turn, then
  /// checks `leaving`; the handoff sets `leaving`, then reads the count. One of the two
  /// sees the other, so no turn slips past a handoff's wait.)
  bool leaving(uint32_t shard) const { return slots_[shard].leaving.load(); }
  void set_leaving(uint32_t shard, bool v) { slots_[shard].leaving.store(v); }
  /// Turns submitted to this node's runtime for `shard` and not yet answered.
  int in_flight(uint32_t shard) const { return slots_[shard].in_flight.load(); }
  void turn_started(uint32_t shard) { slots_[shard].in_flight.fetch_add(1); }
  void turn_finished(uint32_t shard) {
    slots_[shard].in_flight.fetch_sub(1, std::memory_order_acq_rel);
  }
  uint32_t held_count() const;

  /// A committed turn appended to the shard's transcript stream: the drainer reads it.
  void mark_dirty(uint32_t shard) { slots_[shard].dirty.store(true, std::memory_order_release); }
  /// Whether the shard was marked since the last call (and clears the mark).
  bool take_dirty(uint32_t shard) {
    return slots_[shard].dirty.exchange(false, std::memory_order_acq_rel);
  }

 private:
  struct slot {
    std::atomic<bool> dirty{false};
    std::atomic<uint64_t> epoch{0};
    std::atomic<bool> leaving{false};
    std::atomic<int> in_flight{0};
  };
  std::vector<slot> slots_;
};

}  // namespace parley::cluster
