#pragma once
/// The conversation runtime of one node: the public face the gateways use.
///
/// A gateway turns a channel request into an `inbound` and calls `runtime::submit`;
/// the runtime finds (or spawns) the conversation's actor and queues the message on
/// it. Live conversations are spread over `runtime_options::stripes` stripes (local
/// lock groups, by hash of tenant and session; not the cluster's shards): each stripe
/// has its table of live conversations under its mutex, and a supervisor actor that
/// restarts a dead conversation from its last committed snapshot (sending it the jobs
/// it had not answered, in order, up to quarantine after `max_attempts` deaths) and
/// passivates idle ones. A conversation answers a turn only after the turn's snapshot
/// is committed to its `snapshot_store`.
///
/// Thread-safe; CAF stays behind this header (it forward-declares `caf::actor_system`).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/common/result.hpp"

namespace caf {
class actor_system;
}
namespace prometheus {
class Registry;
}
namespace parley::store {
class redis_client;
struct quarantined_message;
struct version_delta;
}  // namespace parley::store
namespace parley::actors {
class snapshot_store;
}

namespace parley::actors {

class bot_registry;
class transcript_writer;
class action_runner;
class secret_cache;

/// One inbound message for a conversation, from any channel.
struct inbound {
  /// agent_message: a human agent's message to the user of a conversation handed
  /// over (asynchronous channels; `text` holds it).
  enum class kind {
    start,
    text,
    payload,
    end,
    set_variables,
    transfer_succeeded,
    transfer_failed,
    agent_message,
    redirect,  ///< the Bot API's redirect: run the dialog named `text`
    /// A timer of the conversation fell due (cluster/node/timer_poller): runs the VM
    /// with bot::timer_input(timer_due_ms). A deadline the snapshot no longer holds
    /// (an answer came first, or another poll fired it) changes nothing and is
    /// answered `replayed`, with the committed state, without a commit.
    timer,
  };
  /// The highest kind: what crosses between nodes is checked against it, so a kind
  /// added above must move this (a forwarded redirect was refused when it did not).
  static constexpr kind last_kind = kind::timer;
  kind what = kind::text;
  std::string tenant;
  std::string bot;           ///< start: the bot to run; later: checked against the session
  std::string channel;       ///< "botapi", "sms", ...
  std::string session_id;    ///< the conversation key within the tenant
  std::string external_key;  ///< the channel's own key (start only; maybe a client's retry)
  std::string message_id;    ///< channel message id: a redelivery with the same id is replayed
  int64_t sequence_id = -1;  ///< Bot API sequenceId (must increase); -1 when the channel has none
  std::string text;          ///< text, button payload, end reason, or transfer failure reason
  bool no_agent = false;     ///< transfer_failed: no agent was available (else an error)
  int64_t choice_index = 0;  ///< > 0: the n-th option (1-based) of the last menu shown
  bot::variables variables;  ///< start and set_variables: client-settable variables
  int64_t now_unix = 0;
  int64_t timer_due_ms = 0;  ///< timer: the deadline found due (unix ms)
  /// What the transcript records after `text` and the bot never sees: the
  /// attachments the tenant's limits refused, with the reasons (gateways).
  std::string transcript_note;
};

/// Whether replies on `channel` are delivered asynchronously, from the committed outbox
/// (SMS, Messenger), rather than in the answer to the request that carried the turn.
inline bool is_async_channel(std::string_view channel) {
  return channel == "sms" || channel == "messenger";
}

/// Whether a human agent (the agent API) can take over a conversation on `channel`: the
/// asynchronous channels, and Direct Line (web chat), whose turns the agent API starts
/// (the agent's messages, the end of the handoff) reach the user through the outbox
/// too, into the conversation's activity log.
inline bool reaches_agents(std::string_view channel) {
  return is_async_channel(channel) || channel == "directline";
}

/// What became of one inbound message.
struct turn_outcome {
  enum class status {
    ok,                 ///< the bot ran and the turn is committed
    replayed,           ///< a redelivery: the recorded result of the first delivery
    session_not_found,  ///< no live conversation and no snapshot (never started, expired)
    session_ended,      ///< the conversation ended before this message
    stale_sequence,     ///< a sequenceId lower than one already processed
    bot_not_found,      ///< start: the tenant has no active version of this bot
    unavailable,        ///< Redis (or Postgres for programs) cannot be reached: retry later
    internal,           ///< a bug; the message names it
    bad_input,          ///< the message cannot apply to this conversation (no such menu option)
    busy,               ///< too many messages of this conversation are waiting: retry later
    awaiting_transfer,  ///< handed to an agent: only the transfer's outcome or its end apply
  };
  /// The highest status: answers between nodes are checked against it (move it with
  /// the enum).
  static constexpr status last_status = status::awaiting_transfer;
  status st = status::internal;
  std::string message;                                ///< for errors: one sentence for the client
  std::shared_ptr<const bot::v1::TurnResult> result;  ///< ok and replayed
  std::shared_ptr<const bot::program> program;        ///< the program the conversation runs
  std::string session_id;
  std::string bot;
  uint32_t bot_version = 0;
  std::string program_id;
  std::string served_by;  ///< the node that ran the turn (the cluster sets it; may be empty)
};

/// Where a gateway sends inbound messages: the runtime of this node, or the cluster's
/// router, which sends each to the node owning its conversation's shard. The
/// contract of `submit` is runtime::submit's.
class turn_sink {
 public:
  virtual ~turn_sink() = default;
  virtual void submit(inbound in, std::function<void(turn_outcome)> done) = 0;
};

struct runtime_options {
  std::size_t stripes = 32;                           ///< lock groups (each with its supervisor)
  std::chrono::milliseconds passivate_after{600000};  ///< idle live conversations stop
  int max_attempts = 3;                               ///< deaths of one message before quarantine
  std::chrono::seconds attempt_window{60};
  std::size_t recent_turns = 8;  ///< answered messages kept for replay
  std::size_t max_queued = 32;   ///< waiting messages per conversation before `busy`
  std::chrono::seconds default_idle_timeout{3600};  ///< snapshot TTL when the bot sets none
  bool debug_faults = false;                        ///< enables kill() and the poison text
  std::string key_prefix = "parley";  ///< Redis keys: <prefix>:conv:<tenant>:<session>
                                      ///< (the Redis store made when deps.snapshots is null)
};

/// The text that, with `debug_faults`, makes a conversation actor throw while running
/// the turn (a poison message for tests).
inline constexpr const char* debug_poison_text = "__parley_poison__";

class runtime final : public turn_sink {
 public:
  struct deps {
    caf::actor_system* system = nullptr;
    /// Where snapshots live. Null: a redis_snapshot_store over `redis` and
    /// `redis_lanes`, with options.key_prefix (what parleyd uses); tests pass a fake.
    snapshot_store* snapshots = nullptr;
    store::redis_client* redis = nullptr;
    /// > 0: `redis` runs in lanes mode with this many lanes. A conversation's commands
    /// then go on the connection of the lane the conversation runs on (the lane of the
    /// HTTP connection that submitted its turn), so the commit's completion answers on
    /// that thread: no hand-off to the client's I/O thread and back. A restarted
    /// conversation's snapshot read waits while a dead predecessor's commit is in
    /// flight (it could be on another lane). Commands from a thread that is no lane go
    /// through the client's I/O thread.
    std::size_t redis_lanes = 0;
    bot_registry* registry = nullptr;
    transcript_writer* transcripts = nullptr;  ///< may be null
    action_runner* actions = nullptr;
    /// The tenants' secrets, for the `{{secret.NAME}}` references of bot actions: each
    /// conversation resolves them from its own tenant's. Null: every reference is a
    /// missing secret (the action's error branch).
    secret_cache* secrets = nullptr;
    prometheus::Registry* metrics = nullptr;
    /// A quarantined message, for the caller to keep in Postgres. May be empty.
    std::function<void(store::quarantined_message)> quarantine;
  };
  runtime(deps d, runtime_options options);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Queues one inbound message. Any thread.
  ///
  /// `done` runs exactly once, with the outcome, and must not block. Who calls it:
  /// - the conversation actor, on a CAF scheduler thread (with parleyd's lane
  ///   scheduler, the lane the actor runs on), for a turn that ends without a commit
  ///   (replayed, stale_sequence, session_not_found, bad_input, ...);
  /// - the completion of the turn's snapshot commit (ok, or unavailable when the
  ///   commit failed), on the store's thread: with lane connections the lane that
  ///   sent the commit, which is the lane of the HTTP connection that submitted the
  ///   turn, else the Redis client's I/O thread;
  /// - the stripe's supervisor actor, on a CAF thread, when the conversation died on
  ///   the message and on its error dialog (internal);
  /// - `submit` itself, inline on the caller's thread, for busy (more than
  ///   `max_queued` waiting) and unavailable after stop();
  /// - `stop()`, on the thread calling it, for every job still waiting (unavailable).
  void submit(inbound in, std::function<void(turn_outcome)> done) override;

  struct live_conversation {
    std::string session_id, bot;
    uint32_t bot_version = 0;
    int64_t idle_ms = 0;
  };
  /// Live conversation actors of `tenant` on this node.
  void live(const std::string& tenant, std::function<void(std::vector<live_conversation>)> done);

  /// Live conversation actors on this node, all tenants.
  std::size_t live_count() const;

  /// What this node's conversations did per bot version since the node started (its
  /// parley_bot_*_total counters), for the canary monitor. Any thread.
  std::vector<store::version_delta> bot_version_totals() const;

  /// Passivates the live conversations for which `pred(tenant, session)` holds and
  /// that have no message unanswered (the cluster: the conversations of a shard this
  /// node handed over or lost; their next turn, wherever it runs, reloads the
  /// snapshot). Returns how many. Any thread but a lane running a stripe's supervisor.
  std::size_t passivate_where(
      const std::function<bool(std::string_view tenant, std::string_view session)>& pred);

  /// Debug only (`debug_faults`): kills the conversation actor; `done(false)` when
  /// it is not live or faults are disabled.
  void kill(const std::string& tenant, const std::string& session_id,
            std::function<void(bool)> done);

  /// Stops every stripe and conversation; their snapshots stay in the store. Every job
  /// submitted and not yet answered (running, or waiting behind another) is answered
  /// `unavailable` (HTTP 503, "the node is shutting down") on the calling thread,
  /// unless its commit's completion wins the race and answers it first: either way
  /// once. Then waits for the commits in flight to complete (they use the probe and
  /// the transcript writer). Later submits are answered unavailable at once.
  /// Idempotent; the destructor calls it.
  void stop();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::actors
