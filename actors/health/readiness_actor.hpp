#pragma once
/// The readiness check behind `GET /readyz`.
///
/// An HTTP handler sends `(check_atom, responder)`; the actor asks every dependency
/// at once (Redis PING, Postgres SELECT 1, migrations applied), waits at most
/// `timeout` for their answers, and answers through the responder: 200 with every
/// component "up", or 503 naming each component that is down and why. Dependencies
/// answer on their own threads; their callbacks only send messages back to the
/// actor, so neither the scheduler nor the HTTP threads ever block.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace caf {
class actor_system;
class actor;
}  // namespace caf

namespace parley::actors {

/// One dependency to check: `probe` calls `done` exactly once, from any thread.
struct readiness_component {
  std::string name;  ///< "redis", "postgres", "migrations"
  std::function<void(std::function<void(result<void>)> done)> probe;
};

/// Spawns the readiness actor. `components` are checked in parallel per request.
caf::actor spawn_readiness(caf::actor_system& sys, std::vector<readiness_component> components,
                           std::chrono::milliseconds timeout);

/// Sends one check to the actor; the answer goes to `r`. Callable from any thread.
void request_readiness(const caf::actor& readiness, http::responder r);

}  // namespace parley::actors
