#pragma once
/// One node's part of its region's cluster: membership, shard leases, routing.
///
/// Membership. Every `heartbeat` the node writes its member record to the region's
/// Redis (`<prefix>:<region>:member:<id>`, TTL `lease`), reads every member's, and
/// renews its shard leases. The heartbeat runs only when every lane has run a small
/// task within the last half lease: a node whose lanes are stalled (a blocked lane, a
/// runaway turn) stops renewing, so it loses its leases and its record as a dead one
/// does, instead of answering pings while its turns time out. A peer's crash is seen
/// at once through the endpoint's CAF monitor; a silent peer at record expiry.
/// States: joining (registered, connecting to peers, owns nothing), up, draining
/// (handing its shards over before it exits), down (no record).
///
/// Placement. shard = shard_of(tenant, conversation) over `shards`; its owner is the
/// rendezvous choice among the up members. The owner takes the shard's lease
/// (acquire: a larger epoch); a node that should no longer own a held shard hands it
/// over (at most `handoff_batch` per heartbeat): it stops taking the shard's turns
/// (they go to the next owner, which buffers them until it holds the lease), waits
/// for the turns in flight (at most `handoff_timeout`; the shard goes as soon as the
/// last one ends, not at the next heartbeat), releases the lease, nudges the next
/// owner and passivates the shard's conversations. A nudged node takes the free
/// leases it should own at once, between the steps of its heartbeat. The lease of a
/// member seen down is taken at once: the epoch fences the old holder, so taking
/// early is safe (fenced_snapshot_store).
///
/// Routing (`submit`, any thread): a turn whose shard this node holds goes straight to
/// the runtime (no serialization, one atomic load). Otherwise the entry node sends it
/// to the node holding the shard's lease (as the heartbeat read it, or as the last
/// forwarded answer named it, if that node is up), which serves it until it starts
/// handing the shard over: a moving shard's turns wait only for that shard's own
/// handover, not for every node's view to change. A node a turn was forwarded to (or
/// any node, when no live peer holds the shard) sends it to the desired owner, or,
/// while that owner is this node and does not hold the shard yet, or is not
/// connected, or the turn is out of hops, into a bounded buffer (`buffer_max`
/// node-wide, each message at most `buffer_timeout`; past either the answer is
/// unavailable: 503 with Retry-After). Nothing is dropped silently.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/runtime/runtime.hpp"
#include "cluster/lease/leases.hpp"
#include "cluster/node/outbox_drain.hpp"
#include "cluster/node/timer_poller.hpp"
#include "src/common/result.hpp"

namespace caf {
class actor_system;
}
namespace prometheus {
class Registry;
}
namespace parley::io {
class lanes;
}
namespace parley::actors {
class bot_registry;
}
namespace parley::store {
class postgres_client;
}

namespace parley::cluster {

struct cluster_options {
  std::string node;  ///< this node's id
  std::string region = "local";
  std::string listen_address = "127.0.0.1";  ///< where the endpoint binds
  uint16_t port = 0;                         ///< endpoint port (0: a free one)
  std::string advertise;                     ///< host peers connect to
  std::string http_url;                      ///< shown by `parleyctl cluster status`
  std::string version;                       ///< software version, shown likewise
  std::string key_prefix = "parley";
  uint32_t shards = 1024;
  std::chrono::milliseconds heartbeat{250};
  std::chrono::milliseconds lease{3000};
  std::size_t handoff_batch = 1024;
  std::chrono::milliseconds handoff_timeout{5000};
  std::size_t buffer_max = 10000;
  std::chrono::milliseconds buffer_timeout{5000};
  std::chrono::milliseconds forward_timeout{15000};
  /// Called (on the membership thread) when a drain was requested through Redis
  /// (`request_drain`): parleyd then stops as on SIGTERM.
  std::function<void()> on_drain_requested;
  /// Requests from the nodes of peer regions that arrive at this node's endpoint
  /// (endpoint::handlers::region; cluster/region/region_router.hpp). Unset: none served.
  std::function<void(std::string bytes, std::function<void(std::string answer)> done)>
      region_requests;
};

class cluster_node final : public actors::turn_sink {
 public:
  struct deps {
    caf::actor_system* system = nullptr;  ///< with the middleman loaded
    store::redis_client* redis = nullptr;
    actors::runtime* rt = nullptr;
    actors::bot_registry* registry = nullptr;  ///< programs of forwarded answers
    io::lanes* lanes = nullptr;                ///< heartbeat proof; null: none
    prometheus::Registry* metrics = nullptr;
    shard_table* table = nullptr;  ///< shared with the fenced snapshot store
    /// Where the owned shards' transcript streams are copied (transcript_drain.hpp);
    /// null: they are not drained (tests of the router alone).
    store::postgres_client* pg = nullptr;
    /// Delivers replies from the owned shards' outbox streams (outbox_drain.hpp; needs
    /// `pg` for dead letters); empty: they are not delivered.
    actors::deliver_fn deliver;
    /// The outbox drain's settings (its node and keys are the node's).
    outbox_drain::options outbox;
    /// The timer poller's settings (its keys are the node's); it fires the timers of
    /// the held shards' conversations through this node's routing.
    timer_poller::options timers;
  };
  cluster_node(deps d, cluster_options o);
  ~cluster_node();  ///< stop()
  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  /// Publishes the endpoint and starts the membership thread; returns the port.
  result<uint16_t> start();

  void submit(actors::inbound in, std::function<void(actors::turn_outcome)> done) override;

  /// Starts handing every shard over (idempotent); the node stays draining.
  void drain();
  /// Waits until this node holds no shard, buffers nothing, relays no peer's turn and
  /// a heartbeat has passed since its last release (its peers no longer send it
  /// turns), or `deadline`; true when drained.
  bool wait_drained(std::chrono::milliseconds deadline);

  /// Ends the membership thread, releases the leases still held and deletes the
  /// member record (peers see the node down at once). Idempotent.
  void stop();

  /// The URL of this node's HTTP server, shown in its member record (known once the
  /// server has bound its port). Any thread.
  void set_http_url(std::string url);

  /// A commit added replies to `shard`'s outbox: deliver them now rather than at the
  /// drain's next period. Any thread.
  void outbox_added(uint32_t shard);

  /// Whether the node is up (a readiness component).
  bool up() const;
  const std::string& id() const;

  /// The region's members as Redis has them, for `GET /admin/v1/cluster`. `done` once,
  /// from the Redis client's thread.
  void status(std::function<void(result<nlohmann::json>)> done);
  /// Asks node `node` to drain (through Redis); done(false) when no such member.
  void request_drain(const std::string& node, std::function<void(result<bool>)> done);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::cluster
