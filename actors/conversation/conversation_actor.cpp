// The conversation actor: one live conversation, one turn at a time.
//
// A turn goes: load the snapshot (first turn only) -> find the program -> run the VM
// (performing actions asynchronously, resuming the VM with their answers) -> commit
// the new snapshot to the snapshot store -> answer the caller. Nothing is answered before the
// commit; a failed commit answers `unavailable` and leaves the committed snapshot as
// it was, so the client's retry runs the turn again from the same state.
//
// Turns that arrive while one runs wait in the actor's own list, so they run in
// arrival order. Between turns the actor keeps its snapshot only as the bytes it
// committed (a few hundred bytes instead of about 1 KB of parsed protobuf), and
// parses them at the start of the next turn.

#include <chrono>

#include <caf/default_attachable.hpp>

#include "actors/action/action_runner.hpp"
#include "actors/runtime/internal.hpp"
#include "actors/transcript/transcript_writer.hpp"
#include "src/bot/replay.hpp"
#include "src/channels/text/menu.hpp"
#include "src/common/clock.hpp"
#include "src/log/log.hpp"
#include "src/proto/runtime.pb.h"

namespace parley::actors {
namespace {

namespace v1 = bot::v1;
using rt_snapshot = parley::runtime::v1::Snapshot;
using status = turn_outcome::status;

/// Parsed snapshots are reused, per thread: parsing into a cleared message reuses the
/// strings and repeated elements it held, where a fresh one allocated some 36 blocks
/// per turn (and freed them again at the turn's end). A snapshot whose bytes passed
/// `max_pooled_bytes` is not kept, nor more than `max_pooled` per thread.
struct snapshot_return {
  static constexpr std::size_t max_pooled = 64;
  static constexpr std::size_t max_pooled_bytes = 8 * 1024;
  std::size_t bytes = 0;  ///< of the serialized snapshot it was parsed from
  void operator()(rt_snapshot* p) const noexcept;
};
using snapshot_ptr = std::unique_ptr<rt_snapshot, snapshot_return>;

thread_local std::vector<std::unique_ptr<rt_snapshot>> pooled_snapshots;

void snapshot_return::operator()(rt_snapshot* p) const noexcept {
  if (bytes > max_pooled_bytes || pooled_snapshots.size() >= max_pooled) {
    delete p;
    return;
  }
  p->Clear();
  pooled_snapshots.emplace_back(p);
}

/// An empty snapshot, from this thread's pool when it has one.
snapshot_ptr acquire_snapshot() {
  if (pooled_snapshots.empty()) return snapshot_ptr(new rt_snapshot());
  snapshot_ptr p(pooled_snapshots.back().release());
  pooled_snapshots.pop_back();
  return p;
}

/// What a conversation holds only while it has a turn to run.
struct turn_scratch {
  turn_job_ptr job;                     // the turn in progress
  snapshot_ptr snap;                    // the committed snapshot, parsed
  std::unique_ptr<v1::TurnResult> acc;  // the turn's result, accumulated across action round trips
  std::string writing;                  // the snapshot bytes being committed
  bool snap_stale = false;              // `snap` no longer equals the committed bytes
  std::shared_ptr<const v1::TurnResult> replay;  // a recorded answer, once the program is loaded
  bool fenced = false;                           // the snapshot read waited for an orphaned commit
  std::list<turn_job_ptr> waiting;               // turns that arrived while `job` ran
  bool handed_over = false;  // the turn began with the conversation handed to an agent
  int64_t timer_before = 0;  // the committed state's next timer deadline (unix ms; 0: none)
  bot::turn_recorder rec;    // what replaying the turn needs (its transcript line keeps it)
};

/// Where this conversation's last commit stands (`conversation_state::commit`).
enum commit_status : uint8_t {
  commit_idle,      // no commit in flight: the committed bytes are the store's
  commit_pending,   // sent; its completion will not message the actor
  commit_waiting,   // sent, and the actor has turns waiting: the completion messages it
  commit_failed,    // failed: the committed bytes are not the store's; reload at the next turn
  commit_orphaned,  // sent, and the actor has exited since: counted in deps->orphaned_commits
};

struct conversation_state {
  const conversation_deps* deps = nullptr;
  std::string key;  // tenant '\0' session id
  bool loaded = false;
  bool exists = false;
  // Written by the actor and by its commit's completion (on the store's thread).
  std::atomic<uint8_t> commit{commit_idle};
  std::string committed;                     // the committed snapshot, serialized
  uint64_t epoch = 0;                        // fencing token of the last load
  std::shared_ptr<const bot::program> prog;  // the program of the snapshot's bot_version
  std::unique_ptr<turn_scratch> t;           // null between turns: an idle actor holds no scratch

  std::string_view tenant() const { return std::string_view(key).substr(0, key.find('\0')); }
  std::string_view session() const { return std::string_view(key).substr(key.find('\0') + 1); }
  std::string session_id() const { return std::string(session()); }
};

/// The actor. Class-based rather than a spawned function so that every conversation
/// shares one behaviour object: a function-based actor builds its own (about 290
/// bytes for these handlers, per conversation). The shared handlers find their actor
/// through `current`, which `resume` sets for the messages it processes.
class conversation_actor : public conversation_handle::base {
 public:
  conversation_actor(caf::actor_config& cfg, const conversation_deps* deps, std::string key)
      : conversation_handle::base(cfg) {
    state.deps = deps;
    state.key = std::move(key);
  }
  const char* name() const override { return "parley.conversation"; }
  behavior_type make_behavior() override;
  caf::resumable::resume_result resume(caf::execution_unit* eu, size_t max_throughput) override {
    auto* outer = current;
    current = this;
    auto r = conversation_handle::base::resume(eu, max_throughput);
    current = outer;
    return r;
  }
  void on_exit() override {
    orphan_commit();
    state.t.reset();
    state.prog.reset();
    std::string().swap(state.committed);
  }

  conversation_state state;
  static thread_local conversation_actor* current;

 private:
  /// An actor that exits (killed, crashed, passivated) with its commit still in flight
  /// leaves it to its completion and counts it in deps->orphaned_commits until then: a
  /// successor's snapshot read must not overtake it on another lane connection.
  void orphan_commit() {
    auto& c = state.commit;
    state.deps->orphaned_commits.fetch_add(1, std::memory_order_acq_rel);
    auto v = c.load(std::memory_order_acquire);
    while (v == commit_pending || v == commit_waiting) {
      if (c.compare_exchange_weak(v, commit_orphaned, std::memory_order_acq_rel)) return;
    }
    state.deps->orphaned_commits.fetch_sub(1, std::memory_order_acq_rel);
  }
};

thread_local conversation_actor* conversation_actor::current = nullptr;

using self_ptr = conversation_actor*;

void start_turn(self_ptr self);
void load_snapshot(self_ptr self);

/// Whether the last commit has settled, so that a turn may start; when it has not, the
/// commit's completion is told to message the actor (commit_atom) once it has. A
/// failed commit is settled here: the committed bytes are dropped and reloaded.
bool settled(self_ptr self) {
  auto& s = self->state;
  for (;;) {
    auto v = s.commit.load(std::memory_order_acquire);
    switch (v) {
      case commit_idle:
        return true;
      case commit_waiting:
        return false;
      case commit_failed:
        // The store is the truth and the write's outcome is unknown: reload at the next turn.
        s.committed.clear();
        s.loaded = false;
        s.exists = false;
        if (s.t) s.t->snap.reset();
        s.commit.store(commit_idle, std::memory_order_relaxed);
        return true;
      default:
        if (s.commit.compare_exchange_weak(v, commit_waiting, std::memory_order_acq_rel))
          return false;
    }
  }
}

/// Starts the next waiting turn, if any and if the last commit has settled; drops the
/// scratch when nothing waits.
void next_turn(self_ptr self) {
  auto& s = self->state;
  if (!s.t || s.t->job) return;
  if (s.t->waiting.empty()) {
    s.t.reset();  // idle: keep only the committed bytes
    return;
  }
  if (!settled(self)) return;
  if (s.t->snap_stale) {
    s.t->snap.reset();  // the next turn parses the committed bytes
    s.t->snap_stale = false;
  }
  s.t->job = std::move(s.t->waiting.front());
  s.t->waiting.pop_front();
  start_turn(self);
}

/// The outcome of the current job, without its status.
turn_outcome outcome_of(const conversation_state& s) {
  turn_outcome out;
  out.session_id = s.session_id();
  if (s.t->snap) {
    out.bot = s.t->snap->bot();
    out.bot_version = s.t->snap->bot_version();
    // The turn's VM took the snapshot's state over (see run_vm).
    out.program_id = (s.t->acc ? s.t->acc->state() : s.t->snap->state()).program_id();
  }
  out.program = s.prog;
  return out;
}

/// Answers the current job (one that ends without a commit), then starts the next
/// waiting one.
void answer(self_ptr self, status st, std::string message = {},
            std::shared_ptr<const v1::TurnResult> result = nullptr) {
  auto& s = self->state;
  turn_outcome out = outcome_of(s);
  out.st = st;
  out.message = std::move(message);
  out.result = std::move(result);
  auto job = std::move(s.t->job);
  s.t->acc.reset();
  deliver(s.deps, *job, std::move(out));
  next_turn(self);
}

/// Drops the current job without answering it: someone answered it already (the
/// completion of a commit its dead predecessor sent; see dispatch).
void skip(self_ptr self) {
  self->state.t->job.reset();
  self->state.t->acc.reset();
  next_turn(self);
}

void run_vm(self_ptr self, const v1::Input* input);
void run_action(self_ptr self, const secret_cache::values* secrets);

/// What a commit's completion needs, owned by it: it runs on the store's thread (with
/// lane connections, the lane that sent it) and answers the job there, without a
/// message back to the actor (a queue push, a thread wake-up and a mailbox round per
/// turn).
struct commit_completion final : snapshot_store::commit_handler {
  void committed(result<void> r) override;
  caf::actor me;  // keeps the actor object, whose `commit` it writes
  std::atomic<uint8_t>* commit = nullptr;
  const conversation_deps* deps = nullptr;
  turn_job_ptr job;
  turn_outcome out;             // the answer, once committed
  store::transcript_line line;  // the turn's transcript (no messages: none)
  std::vector<store::conversation_record> events;
};

void commit_completion::committed(result<void> r) {
  auto& c = *this;
  const auto* deps = c.deps;
  // Settle first: a turn that arrives once the client has its answer must find the
  // commit settled rather than wait for a message.
  auto prev = c.commit->exchange(r.ok() ? commit_idle : commit_failed, std::memory_order_acq_rel);
  if (prev == commit_waiting) caf::anon_send(c.me, commit_atom::value);
  if (prev == commit_orphaned) deps->orphaned_commits.fetch_sub(1, std::memory_order_acq_rel);
  if (r.ok()) {
    if (deps->transcripts != nullptr && (c.line.messages > 0 || !c.events.empty()))
      deps->transcripts->append(std::move(c.line), std::move(c.events));
    deliver(deps, *c.job, std::move(c.out));
  } else {
    deps->probe->commit_failed();
    log::warn("turn_commit_failed", {{"session", c.out.session_id}, {"error", r.err().message}});
    turn_outcome out;
    out.st = status::unavailable;
    out.session_id = c.out.session_id;
    out.message = "the conversation store is unavailable: " + r.err().message;
    deliver(deps, *c.job, std::move(out));
  }
  deps->commits_in_flight.fetch_sub(1, std::memory_order_acq_rel);
}

/// Records a turn's inbound message in its transcript line: the text, or for a message
/// that carries none, its kind and what it carried (variable names, not their values).
void record_inbound(store::transcript_line_builder& line, const inbound& in) {
  switch (in.what) {
    case inbound::kind::end:
      return line.inbound("[end] " + in.text);
    case inbound::kind::set_variables: {
      std::string out = "[setVariables]";
      for (const auto& [name, value] : in.variables) out += (out.back() == ']' ? " " : ", ") + name;
      return line.inbound(out);
    }
    case inbound::kind::transfer_succeeded:
      return line.inbound("[transferSucceeded]");
    case inbound::kind::transfer_failed:
      return line.inbound("[transferFailed] " + in.text);
    case inbound::kind::agent_message:
      return;  // the agent's message is the turn's reply
    case inbound::kind::redirect:
      return line.inbound("[redirect] " + in.text);
    case inbound::kind::timer:
      return line.inbound("[timer] " + in.text);  // what it did: nudge or close
    default:
      if (!in.transcript_note.empty())
        return line.inbound(in.text.empty() ? in.transcript_note
                                            : in.text + "\n" + in.transcript_note);
      return line.inbound(in.text);  // the common case: no copy
  }
}

/// The replay op (bot::turn_recorder::enter) of a turn that did not run the VM on text.
std::string_view replay_op(const inbound& in, bool handed_over) {
  if (handed_over) return "none";
  switch (in.what) {
    case inbound::kind::end:
      return "end";
    case inbound::kind::set_variables:
      return "set_variables";
    case inbound::kind::redirect:
      return "redirect";
    case inbound::kind::transfer_succeeded:
      return "transfer_succeeded";
    case inbound::kind::transfer_failed:
      return "transfer_failed";
    default:
      return "none";
  }
}

std::string_view replay_input(const inbound& in) {
  if (in.what == inbound::kind::redirect) return in.text;
  if (in.what == inbound::kind::transfer_failed && in.no_agent) return "no_agent";
  return {};
}

/// Writes the turn into the snapshot, in place, and sends it to the store; the commit's
/// completion answers the job. The actor goes on as if the write succeeded (its
/// committed bytes are the new snapshot), but starts no other turn before the write
/// has settled; if it fails, the bytes are dropped and reloaded from the store at the next
/// turn (the write's outcome is unknown, and the store is the truth).
void commit(self_ptr self) {
  auto& s = self->state;
  const auto& in = s.t->job->in;
  auto& n = *s.t->snap;
  auto& acc = *s.t->acc;
  if (!s.exists) {
    n.set_tenant(std::string(s.tenant()));
    n.set_bot(in.bot);
    n.set_session_id(s.session_id());
    n.set_channel(in.channel);
    n.set_external_key(in.external_key);
    n.set_created_unix(in.now_unix);
    n.set_last_sequence_id(-1);
  }
  n.set_sequence(n.sequence() + 1);
  if (in.sequence_id > n.last_sequence_id()) n.set_last_sequence_id(in.sequence_id);
  n.set_updated_unix(in.now_unix);
  if (in.what == inbound::kind::start || in.what == inbound::kind::text ||
      in.what == inbound::kind::payload)
    n.set_last_user_unix(in.now_unix);
  if (!in.message_id.empty()) {
    auto max = static_cast<int>(s.deps->options.recent_turns);
    if (n.recent_size() >= max) n.mutable_recent()->DeleteSubrange(0, n.recent_size() - max + 1);
    // Only the newest recorded turn that showed messages keeps its result (and any
    // newer one that showed none, a setVariables): a redelivery of an older message is
    // recognised (and not run again) by its id alone, the Bot API can only replay its
    // last sequenceId anyway, and a choiceIndex refers to the last menu shown. This
    // keeps the snapshot small.
    if (acc.messages_size() > 0)
      for (auto& older : *n.mutable_recent()) older.clear_result();
    auto* rec = n.add_recent();
    rec->set_message_id(in.message_id);
    rec->set_sequence(n.sequence());
    // What a channel renders, serialized on its own (the state itself is in the
    // snapshot already). The repeated fields are lent by the turn's result for the
    // serialization (a swap of pointers, not a deep copy of every message and choice)
    // and given back right after.
    thread_local v1::TurnResult shown;
    if (acc.has_transfer()) *shown.mutable_transfer() = acc.transfer();
    shown.set_end_reason(acc.end_reason());
    shown.set_matched_by(acc.matched_by());
    shown.mutable_state()->set_status(acc.state().status());
    shown.mutable_messages()->Swap(acc.mutable_messages());
    shown.mutable_intents()->Swap(acc.mutable_intents());
    shown.mutable_entities()->Swap(acc.mutable_entities());
    shown.SerializeToString(rec->mutable_result());
    acc.mutable_messages()->Swap(shown.mutable_messages());
    acc.mutable_intents()->Swap(shown.mutable_intents());
    acc.mutable_entities()->Swap(shown.mutable_entities());
    shown.Clear();
  }
  // The new state is lent to the snapshot for the serialization, like the replies
  // above: the turn's result keeps it (the channel renders from it), and `n` is stale.
  n.mutable_state()->Swap(acc.mutable_state());
  n.SerializeToString(&s.t->writing);
  n.mutable_state()->Swap(acc.mutable_state());
  s.t->snap_stale = true;
  auto ttl = s.prog ? s.prog->idle_timeout() : s.deps->options.default_idle_timeout;
  if (ttl.count() <= 0) ttl = s.deps->options.default_idle_timeout;

  auto c = std::make_shared<commit_completion>();
  c->me = caf::actor_cast<caf::actor>(self);
  c->commit = &s.commit;
  c->deps = s.deps;
  c->out = outcome_of(s);
  c->out.st = status::ok;
  std::shared_ptr<const v1::TurnResult> res(std::move(s.t->acc));
  c->out.result = res;
  bool was_new = !s.exists;
  if (s.deps->transcripts != nullptr) {
    // The turn's transcript, formatted here once as the line Postgres will copy: the
    // writer and the Postgres worker then only move and concatenate bytes.
    const auto tenant = s.tenant();
    const auto session = s.session();
    store::transcript_line_builder line(tenant, session, static_cast<std::int64_t>(n.sequence()));
    if (!was_new || !in.text.empty()) record_inbound(line, in);
    for (const auto& m : res->messages())
      line.reply(in.what == inbound::kind::agent_message ? "[agent] " + m.text() : m.text());
    if (!s.t->rec.entered()) s.t->rec.enter(replay_op(in, s.t->handed_over), replay_input(in));
    c->line = line.finish(common::now_unix_ms(), s.t->rec.finish(in.now_unix, *res));
    if (s.t->rec.cut()) s.deps->probe->replay_answer_cut();
    if (was_new)
      c->events.push_back(store::conversation_record{std::string(tenant),
                                                     std::string(session),
                                                     n.bot(),
                                                     static_cast<int>(n.bot_version()),
                                                     n.channel(),
                                                     n.external_key(),
                                                     0,
                                                     std::nullopt,
                                                     {}});
    if (res->state().status() == v1::ENDED)
      c->events.push_back(
          store::conversation_record{std::string(tenant),
                                     std::string(session),
                                     {},
                                     0,
                                     {},
                                     {},
                                     0,
                                     std::int64_t{0},
                                     in.what == inbound::kind::end ? "client" : "bot"});
  }
  c->job = std::move(s.t->job);
  s.exists = true;
  s.committed.swap(s.t->writing);
  s.t->writing.clear();
  s.commit.store(commit_pending, std::memory_order_release);
  s.deps->commits_in_flight.fetch_add(1, std::memory_order_acq_rel);
  // Fenced by the lease epoch the store handed out with the last load. A store that
  // carries transcripts takes the line in the same atomic write.
  // Replies to an asynchronous channel leave from the outbox, written with the snapshot.
  std::string outbox;
  // The turn handed the conversation to an agent: the handoff leaves with its replies.
  const bool handoff = !s.t->handed_over && res->state().status() == v1::TRANSFERRED;
  // Direct Line answers its own turns in the request (the gateway appends them to the
  // conversation's log); a turn no user request started (the agent API's: the agent's
  // message, the end of the handoff; a timer's: a nudge, a close) has no such request,
  // so its replies leave from the outbox, as does a handoff, to be recorded.
  const bool no_request_waits =
      in.what == inbound::kind::agent_message || in.what == inbound::kind::transfer_succeeded ||
      in.what == inbound::kind::transfer_failed || in.what == inbound::kind::timer;
  const bool replies_in_outbox =
      is_async_channel(n.channel()) || (n.channel() == "directline" && no_request_waits);
  const bool to_outbox =
      reaches_agents(n.channel()) && ((res->messages_size() > 0 && replies_in_outbox) || handoff);
  if (to_outbox && s.deps->snapshots->carries_outbox()) {
    parley::runtime::v1::OutboxEntry e;
    e.set_tenant(std::string(s.tenant()));
    e.set_session_id(s.session_id());
    e.set_bot(n.bot());
    e.set_channel(n.channel());
    e.set_address(n.external_key());
    e.set_sequence(n.sequence());
    if (replies_in_outbox) *e.mutable_messages() = res->messages();
    e.set_from_agent(in.what == inbound::kind::agent_message);
    e.set_last_user_unix_ms(n.last_user_unix() * 1000);
    if (handoff) *e.mutable_handoff() = res->transfer();
    e.SerializeToString(&outbox);
  }
  const bool with_line = c->line.messages > 0 && s.deps->snapshots->carries_transcripts();
  // The shard's timer set follows the state's next deadline: set, moved or removed.
  const int64_t timer_after = bot::next_timer_ms(res->state());
  const int64_t timer = !s.deps->snapshots->carries_timers() || timer_after == s.t->timer_before
                            ? snapshot_store::timer_unchanged
                            : timer_after;
  if (with_line || !outbox.empty() || timer != snapshot_store::timer_unchanged) {
    std::string line = with_line ? std::move(c->line.copy) : std::string();
    if (with_line) c->line = store::transcript_line{};
    s.deps->snapshots->commit_turn(s.tenant(), s.session(), s.committed, ttl, s.epoch, line, outbox,
                                   timer, std::move(c));
  } else {
    s.deps->snapshots->commit(s.tenant(), s.session(), s.committed, ttl, s.epoch, std::move(c));
  }
  next_turn(self);
}

/// A commit settled while turns were waiting (the completion's message).
void after_commit(self_ptr self) { next_turn(self); }

/// Appends a VM segment's result to the turn's accumulated result.
void accumulate(conversation_state& s, v1::TurnResult&& r, bool first) {
  if (first) {
    s.t->acc = std::make_unique<v1::TurnResult>(std::move(r));
    return;
  }
  auto& acc = *s.t->acc;
  for (auto& m : *r.mutable_messages()) *acc.add_messages() = std::move(m);
  *acc.mutable_state() = std::move(*r.mutable_state());
  *acc.mutable_action() = std::move(*r.mutable_action());
  // Present only when this run asked for one (an action's answer that leads to a
  // transfer), so that has_transfer() means the turn handed the conversation over.
  if (r.has_transfer())
    *acc.mutable_transfer() = std::move(*r.mutable_transfer());
  else
    acc.clear_transfer();
  acc.set_end_reason(r.end_reason());
  if (!r.error().empty()) acc.set_error(r.error());
  if (r.action_failed()) acc.set_action_failed(true);
  if (r.error_dialog()) acc.set_error_dialog(true);
}

void continue_after_vm(self_ptr self) {
  auto& s = self->state;
  if (s.t->acc->state().status() != v1::AWAITING_ACTION) return commit(self);
  // The secrets the bot file wrote come from this conversation's own tenant, through
  // the node's cache (a Postgres load off this thread on a miss): the answer comes
  // back as a message, so the actor stays responsive meanwhile.
  if (s.t->acc->action().secrets_size() == 0 || s.deps->secrets == nullptr)
    return run_action(self, nullptr);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  s.deps->secrets->get(std::string(s.tenant()), [me](result<secret_cache::values_ptr> r) {
    caf::anon_send(me, secrets_atom::value,
                   std::make_shared<result<secret_cache::values_ptr>>(std::move(r)));
  });
}

/// Resolves the pending action's secret references from `secrets` (null: the tenant
/// has none) and performs it; a missing secret takes the action's error branch with a
/// reason naming the secret, never a value.
void run_action(self_ptr self, const secret_cache::values* secrets) {
  auto& s = self->state;
  auto req = bot::resolve_secrets(s.t->acc->action(),
                                  [secrets](std::string_view name) -> std::optional<std::string> {
                                    if (secrets == nullptr) return std::nullopt;
                                    auto it = secrets->find(std::string(name));
                                    if (it == secrets->end()) return std::nullopt;
                                    return it->second;
                                  });
  if (!req) {
    v1::Input in = bot::action_failure_input(req.err().message, s.t->job->in.now_unix);
    return run_vm(self, &in);
  }
  caf::actor me = caf::actor_cast<caf::actor>(self);
  s.deps->actions->run(std::move(*req), [me](v1::ActionResult r) {
    caf::anon_send(me, action_atom::value, std::make_shared<v1::ActionResult>(std::move(r)));
  });
}

/// Runs the VM for the current job (`input` null: the job's own input).
void run_vm(self_ptr self, const v1::Input* input) {
  auto& s = self->state;
  const auto& in = s.t->job->in;
  const auto& prog = *s.prog;
  if (s.deps->options.debug_faults && in.text == debug_poison_text && !s.t->job->quarantined)
    throw std::runtime_error("poison message (debug fault injection)");
  if (input == nullptr && s.t->replay)
    return answer(self, status::replayed, {}, std::move(s.t->replay));
  if (input != nullptr) {
    s.t->rec.action(s.t->acc->action().name(), *input);
    v1::TurnResult r = bot::resume(prog, s.t->acc->state(), *input);
    accumulate(s, std::move(r), false);
    return continue_after_vm(self);
  }
  if (in.what == inbound::kind::start) {
    s.t->rec.enter("start", in.text, !in.variables.empty());
    accumulate(s, bot::start(prog, in.variables, in.now_unix), true);
    if (!in.text.empty() && s.t->acc->state().status() == v1::AWAITING_INPUT) {
      // A first message with the start request: run it as the first input.
      auto first = bot::text_input(in.text, in.now_unix);
      accumulate(s, bot::resume(prog, s.t->acc->state(), first), false);
    }
    return continue_after_vm(self);
  }
  if (s.t->job->quarantined) {
    s.t->rec.enter("failure", s.t->job->quarantine_error);
    accumulate(s,
               bot::resume(prog, s.t->snap->state(),
                           bot::failure_input(s.t->job->quarantine_error, in.now_unix)),
               true);
    return continue_after_vm(self);
  }
  if (s.t->handed_over && (in.what == inbound::kind::text || in.what == inbound::kind::payload ||
                           in.what == inbound::kind::agent_message)) {
    // Handed to an agent: the bot does not run. The user's message is kept in the
    // transcript for the agent; the agent's message is the turn's one reply.
    v1::TurnResult r;
    *r.mutable_state() = s.t->snap->state();
    if (in.what == inbound::kind::agent_message) r.add_messages()->set_text(in.text);
    accumulate(s, std::move(r), true);
    return commit(self);
  }
  if (in.what == inbound::kind::end) {
    v1::TurnResult r;
    *r.mutable_state() = s.t->snap->state();
    r.mutable_state()->set_status(v1::ENDED);
    r.set_end_reason(v1::COMPLETED);
    accumulate(s, std::move(r), true);
    return commit(self);
  }
  if (in.what == inbound::kind::set_variables) {
    // No VM run: the variables change, the turn is committed and answered with no
    // messages. A name or value the bot does not accept changes nothing (400).
    auto r = bot::set_variables(prog, s.t->snap->state(), in.variables);
    if (!r) return answer(self, status::bad_input, "message.variables: " + r.err().message);
    accumulate(s, std::move(*r), true);
    return commit(self);
  }
  if (in.what == inbound::kind::timer) {
    auto r = bot::resume(prog, s.t->snap->state(), bot::timer_input(in.timer_due_ms, in.now_unix));
    if (r.timer().empty()) {
      // Stale (answered first, or fired by a racing poll): nothing to commit; the
      // committed state tells the poller the deadline that holds now.
      auto same = std::make_shared<v1::TurnResult>();
      *same->mutable_state() = s.t->snap->state();
      return answer(self, status::replayed, {}, std::move(same));
    }
    s.t->job->in.text = r.timer();  // for the transcript: "[timer] nudge"
    s.t->rec.enter("timer", r.timer());
    accumulate(s, std::move(r), true);
    return continue_after_vm(self);
  }
  if (in.what == inbound::kind::redirect) {
    auto r = bot::redirect(prog, s.t->snap->state(), in.text, in.now_unix);
    if (!r) return answer(self, status::bad_input, "message.dialogId: " + r.err().message);
    accumulate(s, std::move(*r), true);
    return continue_after_vm(self);
  }
  if (in.what == inbound::kind::transfer_succeeded || in.what == inbound::kind::transfer_failed) {
    auto r = in.what == inbound::kind::transfer_succeeded
                 ? bot::transfer_succeeded(prog, s.t->snap->state())
                 : bot::transfer_failed(prog, s.t->snap->state(), in.no_agent, in.now_unix);
    if (!r) return answer(self, status::bad_input, "message.type: " + r.err().message);
    accumulate(s, std::move(*r), true);
    return continue_after_vm(self);
  }
  v1::Input vm_in;
  // Channels that show a menu as numbered text (SMS, Messenger past its quick
  // replies) get answers to it as text: "2", or a label.
  const bool text_menu = in.what == inbound::kind::text && is_async_channel(s.t->snap->channel());
  if (in.choice_index > 0 || text_menu) {
    // The n-th option of the last menu this conversation showed: in the newest
    // recorded turn that showed messages.
    v1::TurnResult last;
    const auto& recent = s.t->snap->recent();
    for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
      if (it->result().empty()) continue;
      if (!last.ParseFromString(it->result()))
        return answer(self, status::internal,
                      "the last turn recorded by session " + s.session_id() + " does not parse");
      if (last.messages_size() > 0) break;
      last.Clear();
    }
    const v1::Outbound* menu = nullptr;
    for (const auto& m : last.messages())
      if (m.choices_size() > 0) menu = &m;
    std::optional<std::size_t> picked;
    if (text_menu && menu != nullptr) picked = channels::text::match_choice(in.text, *menu);
    if (text_menu) {
      vm_in = picked ? bot::payload_input(menu->choices(static_cast<int>(*picked)).payload(),
                                          in.now_unix)
                     : bot::text_input(in.text, in.now_unix);
    } else if (menu == nullptr || in.choice_index > menu->choices_size())
      return answer(self, status::bad_input,
                    "message.choiceIndex: " + std::to_string(in.choice_index) +
                        " is not an option of the last menu");
    else
      vm_in = bot::payload_input(menu->choices(static_cast<int>(in.choice_index - 1)).payload(),
                                 in.now_unix);
  } else {
    vm_in = in.what == inbound::kind::payload ? bot::payload_input(in.text, in.now_unix)
                                              : bot::text_input(in.text, in.now_unix);
  }
  if (vm_in.kind_case() == v1::Input::kPayload)
    s.t->rec.enter("payload", vm_in.payload());
  else
    s.t->rec.enter("text", vm_in.text());
  // The VM takes the parsed snapshot's state over rather than copying it: the commit
  // writes the turn's new state, and a later turn of this actor parses the committed
  // bytes again.
  s.t->snap_stale = true;
  accumulate(s, bot::resume(prog, std::move(*s.t->snap->mutable_state()), vm_in), true);
  continue_after_vm(self);
}

void with_program(self_ptr self) {
  auto& s = self->state;
  if (s.prog) return run_vm(self, nullptr);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto cb = [me](result<loaded_program> r) {
    caf::anon_send(me, program_atom::value, std::make_shared<result<loaded_program>>(std::move(r)));
  };
  if (s.exists)
    s.deps->registry->version(std::string(s.tenant()), s.t->snap->bot(), s.t->snap->bot_version(),
                              cb);
  else
    // A new session: the bot's canary takes its share of them (by the session id).
    s.deps->registry->for_new_session(std::string(s.tenant()), s.t->job->in.bot, s.session(), cb);
}

/// A start again for the session its external key maps to (a client's retry, see the
/// Bot API gateway): the start's recorded answer, the bot does not run again. Once the
/// session has moved on (a later turn recorded) it answers with the session's state and
/// the start's messages if the snapshot still keeps them (none otherwise); once it has
/// also ended (or been transferred), `session_ended`, so that the gateway starts a new one.
void replay_start(self_ptr self) {
  auto& s = self->state;
  const auto& snap = *s.t->snap;
  const parley::runtime::v1::RecordedTurn* rec = nullptr;
  for (const auto& r : snap.recent())
    if (r.message_id() == "start") rec = &r;
  const bool last = rec != nullptr && rec->sequence() == snap.sequence();
  if (!last && (snap.state().status() == v1::ENDED || snap.state().status() == v1::TRANSFERRED))
    return answer(self, status::session_ended, "session " + s.session_id() + " has ended");
  auto recorded = std::make_shared<v1::TurnResult>();
  if (rec != nullptr && !recorded->ParseFromString(rec->result()))
    return answer(self, status::internal,
                  "the start recorded by session " + s.session_id() + " does not parse");
  *recorded->mutable_state() = snap.state();
  s.t->replay = std::move(recorded);
  with_program(self);
}

/// The turn's checks once the snapshot is known: replay, staleness, existence.
void dispatch(self_ptr self) {
  auto& s = self->state;
  // A job sent again after its actor died may have been answered by the completion of
  // the commit that actor sent: that completion ran before the snapshot read that led
  // here (one Redis connection, completions in order), so `finished` is already set.
  if (s.t->job->finished.load(std::memory_order_acquire)) return skip(self);
  const auto& in = s.t->job->in;
  if (!s.t->snap) {
    s.t->snap = acquire_snapshot();
    s.t->snap.get_deleter().bytes = s.committed.size();
    if (s.exists && !s.t->snap->ParseFromString(s.committed))
      return answer(self, status::internal,
                    "the snapshot of session " + s.session_id() + " does not parse");
  }
  s.t->timer_before = bot::next_timer_ms(s.t->snap->state());
  if (in.what == inbound::kind::start) {
    if (!s.exists) return with_program(self);
    if (in.external_key.empty() || in.external_key != s.t->snap->external_key() ||
        in.bot != s.t->snap->bot())
      return answer(self, status::internal, "session id " + s.session_id() + " is already in use");
    return replay_start(self);
  }
  if (!s.exists)
    return answer(self, status::session_not_found,
                  "session " + s.session_id() + " does not exist or expired");
  // A redelivery gets the recorded answer. With sequence ids (Bot API) only the last
  // processed one is a retry; a lower one is stale.
  bool may_replay = in.sequence_id < 0 || in.sequence_id == s.t->snap->last_sequence_id();
  if (!in.message_id.empty() && may_replay) {
    for (const auto& rec : s.t->snap->recent()) {
      if (rec.message_id() == in.message_id) {
        auto recorded = std::make_shared<v1::TurnResult>();
        if (!recorded->ParseFromString(rec.result()))
          return answer(self, status::internal,
                        "the turn recorded for message " + in.message_id + " does not parse");
        // The record keeps what was shown, not the state: the conversation's state is
        // the snapshot's (after this turn, for the Bot API's last sequenceId), for a
        // response that includes the variables.
        *recorded->mutable_state() = s.t->snap->state();
        // Answered with its program (loaded first if need be, see run_vm), so that the
        // response can show the variables as the first one did.
        s.t->replay = std::move(recorded);
        return with_program(self);
      }
    }
  }
  if (s.t->snap->state().status() == v1::ENDED)
    return answer(self, status::session_ended, "session " + s.session_id() + " has ended");
  // Handed to an agent, the session stays open until the client reports the transfer's
  // outcome or ends it: anything else is refused with what the session waits for.
  const bool transfer_report =
      in.what == inbound::kind::transfer_succeeded || in.what == inbound::kind::transfer_failed;
  s.t->handed_over = s.t->snap->state().status() == v1::TRANSFERRED;
  if (in.what == inbound::kind::agent_message && !s.t->handed_over)
    return answer(self, status::bad_input,
                  "session " + s.session_id() + " is not handed to an agent");
  if (s.t->handed_over && reaches_agents(s.t->snap->channel()) &&
      (in.what == inbound::kind::text || in.what == inbound::kind::payload ||
       in.what == inbound::kind::agent_message))
    return with_program(self);  // kept for the agent, or the agent's message: run_vm
  if (s.t->snap->state().status() == v1::TRANSFERRED && !transfer_report &&
      in.what != inbound::kind::end)
    return answer(self, status::awaiting_transfer,
                  "session " + s.session_id() +
                      " is waiting for its transfer to an agent: send transferSucceeded or "
                      "transferFailed, or end it with DELETE");
  if (in.sequence_id >= 0 && in.sequence_id <= s.t->snap->last_sequence_id())
    return answer(self, status::stale_sequence,
                  "sequenceId " + std::to_string(in.sequence_id) +
                      " is not greater than the last processed " +
                      std::to_string(s.t->snap->last_sequence_id()));
  if (!in.bot.empty() && in.bot != s.t->snap->bot())
    return answer(self, status::session_not_found,
                  "session " + s.session_id() + " does not belong to bot " + in.bot);
  with_program(self);
}

/// Starts `s.t->job`: loads the snapshot first if this actor has not yet.
void start_turn(self_ptr self) {
  auto& s = self->state;
  s.t->rec.clear();
  // A start sent again (its actor died) reads the store like any other turn: the start may
  // have been committed, and the read orders this turn after that commit's completion. So
  // does one with an external key: it may be a client's retry of a start already committed.
  const auto& in = s.t->job->in;
  if (s.loaded ||
      (in.what == inbound::kind::start && s.t->job->attempt == 1 && in.external_key.empty())) {
    if (!s.loaded) s.epoch = s.deps->snapshots->epoch_for(s.tenant(), s.session());
    s.loaded = true;
    return dispatch(self);
  }
  load_snapshot(self);
}

/// Reads the snapshot (the `loaded_atom` message answers). A dead predecessor's commit
/// may still be in flight on another lane connection, where the read could overtake it
/// and find the snapshot before that turn (and run its message again): while any
/// commit is orphaned (rare: an actor killed or crashed between sending its commit and
/// its completion), reads wait, polling every millisecond. Without lane connections
/// the read would queue behind the commit on the one connection anyway; the fence is
/// kept there too, so both modes behave alike.
void load_snapshot(self_ptr self) {
  auto& s = self->state;
  if (s.deps->orphaned_commits.load(std::memory_order_acquire) > 0) {
    if (!s.t->fenced) s.deps->probe->read_fenced();
    s.t->fenced = true;
    self->delayed_send(self, std::chrono::milliseconds(1), fence_atom::value);
    return;
  }
  s.deps->snapshots->load(s.tenant(), s.session(),
                          std::make_shared<snapshot_loaded>(caf::actor_cast<caf::actor>(self)));
}

conversation_actor::behavior_type conversation_actor::make_behavior() {
  static const behavior_type shared = behavior_type{
      [](turn_atom, turn_job_ptr& job) {
        auto* self = current;
        auto& s = self->state;
        if (s.t) return s.t->waiting.push_back(std::move(job));
        s.t = std::make_unique<turn_scratch>();
        if (!settled(self)) return s.t->waiting.push_back(std::move(job));
        s.t->job = std::move(job);
        start_turn(self);
      },
      [](loaded_atom, std::shared_ptr<snapshot_loaded>& l) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t || !s.t->job) return;
        auto& r = l->read;
        if (!r.ok())
          return answer(self, status::unavailable,
                        "the conversation store is unavailable: " + r.err().message);
        s.loaded = true;
        s.epoch = r->epoch;
        if (r->found) {
          s.committed = std::move(r->bytes);
          s.exists = true;
          s.deps->probe->activated_from_snapshot();
        }
        dispatch(self);
      },
      [](program_atom, std::shared_ptr<result<loaded_program>>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t || !s.t->job) return;
        if (!r->ok()) {
          if (r->err().code == "not_found") {
            if (s.exists) return answer(self, status::internal, r->err().message);
            return answer(self, status::bot_not_found, r->err().message);
          }
          return answer(self, status::unavailable,
                        "bot programs are unavailable: " + r->err().message);
        }
        s.prog = (*r)->program;
        if (!s.exists) {
          s.t->snap->set_bot_version((*r)->version);
          s.deps->probe->activated_new();
        }
        run_vm(self, nullptr);
      },
      [](secrets_atom, std::shared_ptr<result<secret_cache::values_ptr>>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t || !s.t->job || !s.t->acc || s.t->acc->state().status() != v1::AWAITING_ACTION)
          return;
        if (!*r) {
          // Postgres down, or a row that does not open: the action cannot be made.
          log::warn("secrets_unavailable", {{"tenant", std::string(s.tenant())},
                                            {"code", r->err().code},
                                            {"error", r->err().message}});
          v1::Input in =
              bot::action_failure_input("the secrets of tenant '" + std::string(s.tenant()) +
                                            "' are unavailable: " + r->err().message,
                                        s.t->job->in.now_unix);
          return run_vm(self, &in);
        }
        run_action(self, r->value().get());
      },
      [](action_atom, std::shared_ptr<v1::ActionResult>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t || !s.t->job) return;
        v1::Input in;
        *in.mutable_action() = std::move(*r);
        in.set_now_unix(s.t->job->in.now_unix);
        run_vm(self, &in);
      },
      [](commit_atom) { after_commit(current); },
      [](fence_atom) {
        auto* self = current;
        if (self->state.t && self->state.t->job && !self->state.loaded) load_snapshot(self);
      },
      [](kill_atom) {
        current->quit(caf::make_error(caf::sec::runtime_error, "killed by a debug request"));
      },
  };
  return shared;
}

}  // namespace

void snapshot_loaded::loaded(result<snapshot_read> r) {
  read = std::move(r);
  caf::anon_send(me, loaded_atom::value, shared_from_this());
}

std::string_view conversation_key(const conversation_handle& conv) {
  // Only the runtime calls this, and only with actors spawn_conversation made.
  return static_cast<const conversation_actor*>(caf::actor_cast<caf::abstract_actor*>(conv))
      ->state.key;
}

conversation_handle spawn_conversation(caf::actor_system& sys, const conversation_deps* deps,
                                       const caf::actor& supervisor, std::string key) {
  // Spawning from a thread that is not CAF's (an HTTP I/O thread, or a Postgres
  // worker answering an API key check) makes CAF 0.17 keep a reference to its logger
  // in that thread's thread_local storage; the actor system's destructor then waits
  // forever for the logger while a Postgres worker that outlives it holds one. Such
  // a thread gets its thread_local reset right away.
  const bool foreign_thread = caf::logger::current_logger() == nullptr;
  auto conv = sys.spawn<conversation_actor>(deps, std::move(key));
  if (foreign_thread) caf::logger::set_current_actor_system(nullptr);
  // Monitored: this actor's death reaches the supervisor as a down message, and the
  // supervisor restarts it. A monitor is one attachable in this actor (a link would
  // add a second one to the supervisor, per conversation). Attached here, on the
  // spawning thread, so it exists before the actor runs at all.
  caf::actor_cast<caf::abstract_actor*>(conv)->attach(
      caf::default_attachable::make_monitor(conv.address(), supervisor.address()));
  return conv;
}

}  // namespace parley::actors
