#pragma once
/// Performs the bots' HTTP actions (callouts to tenants' endpoints) through the node's
/// one asynchronous outbound client (src/http/outbound.hpp), so conversation actors
/// never block: an actor calls `run` and gets the answer back as a message from `done`.
///
/// Each call is bounded by the action's timeout, at most 10 s, DNS and connecting
/// included. A destination the egress policy refuses (loopback, link-local, private
/// addresses, the node's own ports, unless `actions.egress_allow` opens them), a
/// transport failure, a timeout or an oversized response becomes an ActionResult with
/// ok=false and the reason: the bot's error branch. Any HTTP status is ok=true.
///
/// Metrics: parley_action_requests_total{outcome} (ok, http_error for a 4xx/5xx answer,
/// timeout, refused, connect, tls, too_large, bad_request, io, shutdown, error) and
/// parley_action_duration_seconds.

#include <functional>
#include <memory>

#include "src/bot/bot.hpp"

namespace prometheus {
class Registry;
}
namespace parley::http {
class outbound_client;
}

namespace parley::actors {

class action_runner {
 public:
  /// `client` must outlive the runner. `registry` may be null (no metrics).
  action_runner(http::outbound_client& client, prometheus::Registry* registry);
  ~action_runner();
  action_runner(const action_runner&) = delete;
  action_runner& operator=(const action_runner&) = delete;

  /// Any thread; never blocks and never calls `done` inside. `done` runs once, on one of
  /// the outbound client's threads: it must not block (send a message).
  void run(bot::v1::ActionRequest request, std::function<void(bot::v1::ActionResult)> done);

  struct probe;

 private:
  http::outbound_client& client_;
  std::shared_ptr<probe> probe_;
};

}  // namespace parley::actors
