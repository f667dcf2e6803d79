#pragma once
/// The conversation actor's interface: the messages it takes and what it answers.
/// Only the runtime (actors/runtime) spawns and messages conversation actors.
///
/// One actor per live conversation runs that conversation's turns one at a time, in
/// the order its `turn` messages arrive. For each `(turn_atom, turn_job_ptr)` it calls
/// the job's `done` exactly once (see `turn_job`): after the turn's snapshot is
/// committed (status ok), from the recorded answer (replayed), or with the reason the
/// turn did not run. A conversation that dies with jobs unanswered is restarted by its
/// supervisor, which sends them again; a job answered meanwhile is not answered twice.
///
/// The other messages are the actor's own continuations (a load, a program, its
/// tenant's secrets for an action, an action, a settled commit, the orphaned-commit fence) and a
/// debug kill; the runtime sends only `turn` and `kill`.
///
/// A typed actor: the compiler checks every message sent through
/// `conversation_handle`. It costs no memory: a typed actor has no group
/// subscriptions, so its object is 56 bytes smaller than an untyped one, and an idle
/// conversation measures the same 1,511 B beyond its state either way (both fall in
/// one allocator size class; bench/README.md, "Typed conversation actor (issue 11)").
/// Includes CAF: only actors/runtime and actors/conversation include it.

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "actors/registry/bot_registry.hpp"
#include "actors/runtime/runtime.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "actors/snapshot/snapshot_store.hpp"
#include "src/bot/bot.hpp"

namespace parley::actors {

using turn_atom = caf::atom_constant<caf::atom("turn")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using program_atom = caf::atom_constant<caf::atom("program")>;
using action_atom = caf::atom_constant<caf::atom("action")>;
using secrets_atom = caf::atom_constant<caf::atom("secrets")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using fence_atom = caf::atom_constant<caf::atom("fence")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;

/// One inbound message on its way to its conversation. Shared by the runtime's
/// per-conversation list of sent jobs (for supervision) and the conversation actor.
///
/// Answering: whoever answers a job (the conversation actor, the thread that
/// completes the job's commit, the supervisor giving up on it, or runtime::stop)
/// first wins `claimed` (exchange), then writes `bot`/`bot_version`, then sets
/// `finished` (release) and only then calls `done`; a loser does nothing, so a job is
/// answered at most once. The runtime reads `bot`/`bot_version` only after reading
/// `finished` true (acquire); the supervision fields (`attempt`, `deaths`,
/// `quarantined`) belong to the runtime and the actor that runs the job, never to a
/// commit's completion.
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

/// The answer of a snapshot load, sent by the store's handler to the actor.
struct snapshot_loaded final : snapshot_store::load_handler,
                               std::enable_shared_from_this<snapshot_loaded> {
  explicit snapshot_loaded(caf::actor to) : me(std::move(to)) {}
  void loaded(result<snapshot_read> r) override;
  caf::actor me;
  result<snapshot_read> read = make_error("internal", "no answer yet");
};

}  // namespace parley::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::actors::turn_job_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::actors::snapshot_loaded>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::result<parley::actors::loaded_program>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<parley::bot::v1::ActionResult>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
    std::shared_ptr<parley::result<parley::actors::secret_cache::values_ptr>>)

namespace parley::actors {

/// What a conversation actor takes (each answers nothing: a turn's answer is its job's
/// `done`).
using conversation_handle = caf::typed_actor<
    caf::reacts_to<turn_atom, turn_job_ptr>,  ///< run this job after the ones before it
    caf::reacts_to<kill_atom>,                ///< debug: die as a crash would
    caf::reacts_to<loaded_atom, std::shared_ptr<snapshot_loaded>>,
    caf::reacts_to<program_atom, std::shared_ptr<result<loaded_program>>>,
    caf::reacts_to<secrets_atom, std::shared_ptr<result<secret_cache::values_ptr>>>,
    caf::reacts_to<action_atom, std::shared_ptr<bot::v1::ActionResult>>,
    caf::reacts_to<commit_atom>,  ///< the last commit settled while turns wait
    caf::reacts_to<fence_atom>>;  ///< look again whether an orphaned commit completed

struct conversation_deps;

/// Spawns a conversation actor for (tenant, session), monitored by `supervisor`. It
/// loads its snapshot from the store on its first turn. `key` is tenant '\0' session
/// id. Any thread.
conversation_handle spawn_conversation(caf::actor_system& sys, const conversation_deps* deps,
                                       const caf::actor& supervisor, std::string key);

/// The key of a conversation actor spawned by `spawn_conversation`: immutable, valid
/// while `conv` (or another strong handle to the same actor) is held.
std::string_view conversation_key(const conversation_handle& conv);

}  // namespace parley::actors
