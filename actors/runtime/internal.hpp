#pragma once
/// Internals of the runtime shared by the shard and conversation actors. Includes CAF:
/// only actors/runtime and actors/conversation .cpp files include it.

#include <caf/all.hpp>

#include <atomic>
#include <list>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "actors/registry/bot_registry.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {

using turn_atom = caf::atom_constant<caf::atom("turn")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using program_atom = caf::atom_constant<caf::atom("program")>;
using action_atom = caf::atom_constant<caf::atom("action")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
using fence_atom = caf::atom_constant<caf::atom("fence")>;

/// One inbound message on its way to its conversation. Shared by the runtime's
/// per-conversation list of sent jobs (for supervision) and the conversation actor.
///
/// Answering: whoever answers a job (the conversation actor, the Redis thread that
/// completes the job's commit, or the supervisor giving up on it) first wins `claimed`
/// (exchange), then writes `bot`/`bot_version`, then sets `finished` (release) and only
/// then calls `done`; a loser does nothing, so a job is answered at most once. The
/// runtime reads `bot`/`bot_version` only after reading `finished` true (acquire); the
/// supervision fields (`attempt`, `deaths`, `quarantined`) belong to the runtime and
/// the actor that runs the job, never to a commit's completion.
struct turn_job {
  inbound in;
  std::function<void(turn_outcome)> done;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  int attempt = 1;
  bool quarantined = false;  ///< run the error dialog instead of the message
  std::string quarantine_error;
  std::list<std::chrono::steady_clock::time_point> deaths;  ///< of actors running this job
  std::atomic<bool> claimed{false};
  std::atomic<bool> finished{false};
  std::string bot;  ///< set by whoever answers the job
  uint32_t bot_version = 0;
};
using turn_job_ptr = std::shared_ptr<turn_job>;

/// The runtime's Prometheus families (one per node).
struct runtime_probe {
  explicit runtime_probe(prometheus::Registry& reg);
  void turn(turn_outcome::status st, double seconds);
  prometheus::Family<prometheus::Counter>& turns;
  prometheus::Histogram& turn_seconds;
  prometheus::Gauge& live;
  prometheus::Counter& activated_snapshot;
  prometheus::Counter& activated_new;
  prometheus::Counter& restarts;
  prometheus::Counter& quarantines;
  prometheus::Counter& passivations;
  prometheus::Counter& commit_failures;
  prometheus::Counter& fenced_reads;
  std::array<prometheus::Counter*, 10> by_status{};
};

/// What a conversation actor needs; owned by the runtime, outlives every actor.
struct conversation_deps {
  /// Commits sent to Redis whose completion has not run yet: a completion answers its
  /// job and uses the probe and the transcript writer, so runtime::stop waits for zero.
  mutable std::atomic<int> commits_in_flight{0};
  /// Of those, the ones whose actor has exited: with lane connections, snapshot reads
  /// wait while any is (see conversation_actor.cpp, load_snapshot).
  mutable std::atomic<int> orphaned_commits{0};
  store::redis_client* redis = nullptr;
  std::size_t redis_lanes = 0;  ///< see runtime::deps
  bot_registry* registry = nullptr;
  transcript_writer* transcripts = nullptr;
  action_runner* actions = nullptr;
  runtime_probe* probe = nullptr;
  runtime_options options;
};

/// Answers `job` with `out` unless someone answered it already (see turn_job), and
/// counts the outcome. Any thread. Returns false when the job was answered before.
bool deliver(const conversation_deps* deps, turn_job& job, turn_outcome out);

/// Spawns a conversation actor for (tenant, session), monitored by `supervisor`. It
/// runs each `(turn_atom, turn_job_ptr)` in arrival order and finishes it (see
/// `turn_job`) after the turn's snapshot is committed. It loads its snapshot from
/// Redis on its first turn. `key` is tenant '\0' session id.
caf::actor spawn_conversation(caf::actor_system& sys, const conversation_deps* deps,
                              const caf::actor& supervisor, std::string key);

/// The key of a conversation actor spawned by `spawn_conversation`: immutable, valid
/// while `conv` (or another strong handle to the same actor) is held.
std::string_view conversation_key(const caf::actor& conv);

std::string snapshot_key(const runtime_options& o, std::string_view tenant,
                         std::string_view session);

}  // namespace parley::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::actors::turn_job_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::result<parley::store::redis_reply>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::result<parley::actors::loaded_program>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::bot::v1::ActionResult>)
