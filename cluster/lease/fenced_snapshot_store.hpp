#pragma once
/// The snapshot store of a cluster node: the snapshot keys of redis_snapshot_store,
/// read with GET, written only through the fenced commit script (leases.hpp).
///
/// A load hands out the epoch of the lease this node holds on the conversation's
/// shard (snapshot_read::epoch), or fails with `not_owner` when it holds none (the
/// shard is moving: the client retries, 503). A commit passes that epoch back; Redis
/// refuses it (`fenced`) unless the shard's lease is still "<this node>/<epoch>", so a
/// conversation that outlived its node's lease, or lives on after its shard left and
/// came back, cannot overwrite newer turns: its turn answers 503 and its next turn
/// reloads. Threads: as redis_snapshot_store (the calling lane, else the client's).

#include <functional>
#include <string>
#include <vector>

#include "actors/snapshot/redis_snapshot_store.hpp"
#include "cluster/lease/leases.hpp"

namespace parley::cluster {

/// What commit_turn does when a shard's transcript stream is at its bound. A shard's
/// outbox stream (replies waiting for delivery) has the same bound, and a full one
/// always refuses the turn (error `outbox_full`): a reply is never dropped.
struct transcript_backlog {
  std::size_t max_per_shard = 20000;
  bool refuse = true;                ///< else the oldest waiting line is dropped
  std::function<void()> on_dropped;  ///< counts a dropped line (any thread)
};

class fenced_snapshot_store final : public actors::snapshot_store {
 public:
  /// All references outlive this store.
  fenced_snapshot_store(store::redis_client& redis, std::size_t lanes, std::string key_prefix,
                        shard_table& table, lease_keys keys, std::string node,
                        transcript_backlog backlog = {});

  void load(std::string_view tenant, std::string_view session,
            std::shared_ptr<load_handler> done) override;
  void commit(std::string_view tenant, std::string_view session, std::string_view bytes,
              std::chrono::seconds ttl, uint64_t expected_epoch,
              std::shared_ptr<commit_handler> done) override;
  uint64_t epoch_for(std::string_view tenant, std::string_view session) const override;
  bool carries_transcripts() const override { return true; }
  bool carries_outbox() const override { return true; }
  bool carries_timers() const override { return true; }
  /// Called (on the store's thread) after a commit that added replies to `shard`'s
  /// outbox: the cluster node's outbox_added. Set before the first commit.
  void on_outbox(std::function<void(uint32_t shard)> f) { on_outbox_ = std::move(f); }
  void commit_turn(std::string_view tenant, std::string_view session, std::string_view bytes,
                   std::chrono::seconds ttl, uint64_t expected_epoch, std::string_view transcript,
                   std::string_view outbox, int64_t timer_ms,
                   std::shared_ptr<commit_handler> done) override;

 private:
  store::redis_client& redis_;
  std::size_t lanes_;
  actors::redis_snapshot_store plain_;  // keys and loads
  shard_table& table_;
  lease_keys keys_;
  std::string node_;
  transcript_backlog backlog_;
  std::string bound_;
  std::function<void(uint32_t)> on_outbox_;
  // Per shard, built once: a commit formats no key but its conversation's.
  std::vector<std::string> lease_key_, stream_key_, outbox_key_, timers_key_;
};

}  // namespace parley::cluster
