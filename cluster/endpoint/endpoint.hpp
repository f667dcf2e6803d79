#pragma once
/// The node's cluster endpoint: one CAF actor, published on `cluster.port` through
/// CAF's middleman (BASP), that sends turns to the endpoints of peer nodes and takes
/// theirs. Payloads are protobuf bytes (codec.hpp) in CAF messages of a string, so the
/// wire stays ours to evolve (fields only added) whatever CAF's serialization does.
///
/// It monitors every peer it connected to: when a peer's connection drops (a crash,
/// kill -9: the kernel closes the socket), `peer_down` runs at once, which is how a
/// dead node is noticed long before its lease expires.
///
/// CAF stays in the .cpp file. BASP has no authentication: keep cluster ports on the
/// region's private network (docs/operations.md).

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/runtime/runtime.hpp"
#include "src/common/result.hpp"

namespace caf {
class actor_system;
}

namespace parley::cluster {

class endpoint {
 public:
  struct handlers {
    /// A turn a peer forwarded: route it and call `done` once, from any thread.
    std::function<void(actors::inbound in, uint32_t hops,
                       std::function<void(actors::turn_outcome)> done)>
        turn;
    /// The connection to `node` was lost (runs on a CAF thread; must not block).
    std::function<void(const std::string& node)> peer_down;
    /// A peer released shards this node should own: take them now rather than at the
    /// next heartbeat (runs on a CAF thread; must not block).
    std::function<void()> nudged;
    /// A RegionRequest from a node of a peer region (cluster/region): answer it with a
    /// RegionAnswer's bytes through `done`, once, from any thread (runs on a CAF thread;
    /// must not block). Unset: answered with an error.
    std::function<void(std::string bytes, std::function<void(std::string answer)> done)> region;
  };

  /// `system` must have the middleman loaded (caf::io::middleman).
  endpoint(caf::actor_system& system, handlers h, std::chrono::milliseconds forward_timeout);
  ~endpoint();  ///< stop()
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  /// Publishes the endpoint on `address`:`port` (0: a free port); returns the port.
  result<uint16_t> listen(const std::string& address, uint16_t port);

  /// Connects to the endpoint of peer `node` at host:port and monitors it. Blocks
  /// while the middleman connects: call it from the membership thread, never a lane.
  result<void> connect(const std::string& node, const std::string& host, uint16_t port);

  /// Whether a connection to `node` is up.
  bool connected(const std::string& node) const;

  /// Sends a turn to peer `node`; `done` runs once, on a CAF thread: the owner's
  /// answer, or unavailable when there is no connection, the peer is lost or it does
  /// not answer within the forward timeout.
  void forward(const std::string& node, const actors::inbound& in, uint32_t hops,
               const std::string& from, std::function<void(actors::turn_outcome)> done);

  /// Sends a RegionRequest's bytes to `node` (a connection made with connect); `done`
  /// runs once, on a CAF thread, with the RegionAnswer's bytes, or `unavailable` when
  /// there is no connection, it is lost or the peer does not answer in time.
  void call_region(const std::string& node, std::string bytes,
                   std::function<void(result<std::string>)> done);

  /// Tells peer `node` that shards it should own were released (handlers::nudged runs
  /// there). Best effort: a lost message only delays the handoff to its next heartbeat.
  void nudge(const std::string& node);

  /// Unpublishes and stops the actor. Idempotent.
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::cluster
