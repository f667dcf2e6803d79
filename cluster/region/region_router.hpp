#pragma once
/// Home regions: every tenant lives in one region (the one whose admin API created
/// it), and only that region's Redis and Postgres hold its conversations, transcripts
/// and secrets. A channel request that reaches a node of another region is forwarded,
/// whole, to a node of the tenant's home region over the cluster endpoints (CAF's
/// middleman, protobuf RegionRequest), run there as if it had arrived there (its
/// authentication, its session keys, its turn), and answered from there. The node that
/// forwarded it stores nothing of it.
///
/// Where a tenant lives is looked up once and remembered: this region's Postgres first
/// (`tenant_here`), then every peer region in parallel (a tenant query each). A found
/// home is kept for `home_ttl` (tenants do not move); "nowhere" for `unknown_ttl`, so a
/// tenant created a moment ago in a peer region is reachable from here after at most
/// that; concurrent requests for one unknown tenant share one lookup. A tenant of this
/// region, or one no region has, is served here as before (so an unknown org still gets
/// the Bot API's 401). When a peer region cannot be asked, or its home region cannot
/// be reached, the answer is 503 with Retry-After: nothing is guessed.
///
/// Connections: a thread of its own keeps one connection to each peer region, to the
/// first endpoint of its list that answers, and moves to the next when it drops (CAF's
/// connect blocks, so it never runs on a lane). A request forwarded from a peer region
/// is never forwarded again: it runs through `serve` (the channel routes without this
/// filter in front).
///
/// Metrics: parley_region_requests_forwarded_total{region,outcome},
/// parley_region_requests_served_total, parley_region_lookups_total{result},
/// parley_region_peer_connected{region}.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/common/result.hpp"
#include "src/http/http.hpp"
#include "src/settings/settings.hpp"

namespace caf {
class actor_system;
}
namespace prometheus {
class Registry;
}

namespace parley::cluster {

struct region_options {
  std::string region;  ///< this node's (node.region)
  std::vector<settings::peer_region> peers;
  std::chrono::milliseconds timeout{15000};     ///< a forwarded request answers within this
  std::chrono::milliseconds home_ttl{600000};   ///< a found home region is remembered this long
  std::chrono::milliseconds unknown_ttl{5000};  ///< "no region has it" is remembered this long
  std::chrono::milliseconds reconnect{500};     ///< a lost peer region is tried again after this
  std::size_t max_cached = 100000;              ///< tenants remembered at most
};

/// Renders a 503 for a request that cannot reach its tenant's region, in the channel's
/// own error format: (message, request path, request id). It should carry Retry-After.
using unavailable_renderer = std::function<http::response(
    const std::string& message, const std::string& path, const std::string& request_id)>;

class region_router {
 public:
  struct deps {
    caf::actor_system* system = nullptr;  ///< with the middleman loaded
    /// Whether this region's Postgres has `tenant`: `done` once, any thread.
    std::function<void(const std::string& tenant, std::function<void(result<bool>)> done)>
        tenant_here;
    /// Runs a request a peer region forwarded: the channel routes, without front().
    http::handler serve;
    prometheus::Registry* metrics = nullptr;  ///< null: no metrics
  };
  region_router(deps d, region_options o);
  ~region_router();  ///< stop()
  region_router(const region_router&) = delete;
  region_router& operator=(const region_router&) = delete;

  /// Starts the connection thread. Idempotent.
  void start();
  /// Ends it and the connections. Idempotent.
  void stop();

  /// A filter in front of a channel route: requests whose tenant (`tenant_of`; empty:
  /// none, served here) lives in another region are forwarded there, the rest go to
  /// `local`. Forwarded answers carry `X-Parley-Region` (the region that ran them).
  /// `unavailable` renders the 503s (null: `{"error":{"code":"region_unavailable",...}}`).
  http::handler front(http::handler local,
                      std::function<std::string(const http::request&)> tenant_of,
                      unavailable_renderer unavailable = {});

  /// Whether this node has a connection to a node of peer region `region`. Any thread.
  bool connected(const std::string& region) const;

  /// Each peer region and the endpoint this node is connected to there ("" when none),
  /// in configuration order (for `GET /admin/v1/cluster`). Any thread.
  std::vector<std::pair<std::string, std::string>> peers() const;

  /// A RegionRequest from a peer region (cluster_options::region_requests): `done` once,
  /// from any thread, with the RegionAnswer's bytes.
  void serve(std::string bytes, std::function<void(std::string answer)> done);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::cluster
