#pragma once
/// Internals of the runtime shared by the shard and conversation actors. Includes CAF:
/// only actors/runtime and actors/conversation .cpp files include it.

#include <caf/all.hpp>

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
using done_atom = caf::atom_constant<caf::atom("done")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using program_atom = caf::atom_constant<caf::atom("program")>;
using action_atom = caf::atom_constant<caf::atom("action")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using live_atom = caf::atom_constant<caf::atom("live")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;

/// One inbound message on its way through a shard to a conversation.
struct turn_job {
  inbound in;
  std::function<void(turn_outcome)> done;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  int attempt = 1;
  bool quarantined = false;       ///< run the error dialog instead of the message
  std::string quarantine_error;
};
using turn_job_ptr = std::shared_ptr<turn_job>;
using outcome_ptr = std::shared_ptr<turn_outcome>;

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
  std::array<prometheus::Counter*, 10> by_status{};
};

/// What a conversation actor needs; owned by the runtime, outlives every actor.
struct conversation_deps {
  store::redis_client* redis = nullptr;
  bot_registry* registry = nullptr;
  transcript_writer* transcripts = nullptr;
  action_runner* actions = nullptr;
  runtime_probe* probe = nullptr;
  runtime_options options;
};

/// Spawns a conversation actor for (tenant, session). It answers each `(turn_atom,
/// turn_job_ptr)` by sending `(done_atom, key, outcome_ptr)` to `shard`, after the
/// turn's snapshot is committed. It loads its snapshot from Redis on its first turn.
/// `key` is tenant '\0' session id.
caf::actor spawn_conversation(caf::actor_system& sys, const conversation_deps* deps, caf::actor shard,
                              std::string key);

std::string snapshot_key(const runtime_options& o, const std::string& tenant, const std::string& session);

}  // namespace parley::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::actors::turn_job_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::actors::outcome_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::result<parley::store::redis_reply>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::result<parley::actors::loaded_program>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::bot::v1::ActionResult>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::function<void(std::vector<parley::actors::runtime::live_conversation>)>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::function<void(bool)>)
