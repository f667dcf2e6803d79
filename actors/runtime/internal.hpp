#pragma once
/// Internals of the runtime shared by its stripes and the conversation actors.
/// Includes CAF: only actors/runtime and actors/conversation .cpp files include it.

#include <atomic>

#include "actors/conversation/conversation_actor.hpp"
#include "actors/runtime/runtime.hpp"
#include "actors/runtime/runtime_probe.hpp"
#include "actors/snapshot/snapshot_store.hpp"

namespace parley::actors {

using tick_atom = caf::atom_constant<caf::atom("tick")>;

/// What a conversation actor needs; owned by the runtime, outlives every actor.
struct conversation_deps {
  /// Commits sent to the store whose completion has not run yet: a completion answers
  /// its job and uses the probe and the transcript writer, so runtime::stop waits for
  /// zero.
  mutable std::atomic<int> commits_in_flight{0};
  /// Of those, the ones whose actor has exited: snapshot reads wait while any is (see
  /// conversation_actor.cpp, load_snapshot).
  mutable std::atomic<int> orphaned_commits{0};
  snapshot_store* snapshots = nullptr;
  bot_registry* registry = nullptr;
  transcript_writer* transcripts = nullptr;
  action_runner* actions = nullptr;
  secret_cache* secrets = nullptr;  ///< null: no secrets (every reference is missing)
  runtime_probe* probe = nullptr;
  runtime_options options;
};

/// Answers `job` with `out` unless someone answered it already (see turn_job), and
/// counts the outcome. Any thread. Returns false when the job was answered before.
bool deliver(const conversation_deps* deps, turn_job& job, turn_outcome out);

}  // namespace parley::actors
