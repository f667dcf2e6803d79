#pragma once
/// Fires the timers of the conversations of the shards this node holds.
///
/// A conversation waiting at a question or menu with `nudge_after` / `close_after`
/// keeps its deadlines in its snapshot (bot State.nudge_at_ms, close_at_ms), and the
/// fenced commit keeps its next one in its shard's timer set (lease_keys::timers: a
/// sorted set of tenant '\0' session scored by unix ms), in the same script as the
/// snapshot: set, moved or removed with every turn that changes it. So the set is as
/// durable as the snapshots, and a node that takes a shard over (failover, restart,
/// handoff) finds its timers there.
///
/// Every `period` the poller reads, for each shard it holds and is not handing over,
/// the entries due (ZRANGEBYSCORE -inf now, at most `batch`, one pipeline for all
/// shards) and submits a timer turn for each (actors::inbound::kind::timer, its
/// deadline in `timer_due_ms`) to `sink`, the node's router: one in flight per
/// conversation. The conversation runs it only if its snapshot still holds that
/// deadline, so a timer fires at most once even when an answer or another poll came
/// first (then the turn is answered `replayed` with the committed state, and the
/// poller puts the set right: the entry moves to the state's deadline or goes, iff it
/// still holds the deadline it read). An entry of a conversation that is gone (expired,
/// ended, handed to an agent) is removed the same way; a turn that failed (Redis down,
/// the shard moving) is tried again after `retry_after`.
///
/// Its own thread for Redis; turns answer on whatever thread the runtime answers them,
/// and only queue work for that thread.

#include <chrono>
#include <cstddef>
#include <memory>

#include "actors/runtime/runtime.hpp"
#include "cluster/lease/leases.hpp"

namespace prometheus {
class Registry;
}

namespace parley::cluster {

class timer_poller {
 public:
  struct options {
    lease_keys keys;
    std::chrono::milliseconds period{250};        ///< between polls of every held shard
    std::size_t batch = 200;                      ///< entries per shard per poll at most
    std::chrono::milliseconds retry_after{5000};  ///< a failed timer turn waits this
  };
  /// All references outlive this object; `metrics` may be null.
  timer_poller(store::redis_client& redis, shard_table& table, actors::turn_sink& sink, options o,
               prometheus::Registry* metrics);
  ~timer_poller();  ///< stop()
  timer_poller(const timer_poller&) = delete;
  timer_poller& operator=(const timer_poller&) = delete;

  void start();
  /// Ends the thread; timer turns in flight still answer (and find it gone). Idempotent.
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::cluster
