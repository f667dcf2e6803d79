// The conversation actor: one live conversation, one turn at a time.
//
// A turn goes: load the snapshot (first turn only) -> find the program -> run the VM
// (performing actions asynchronously, resuming the VM with their answers) -> commit
// the new snapshot to Redis -> answer the caller. Nothing is answered before the
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
#include "src/log/log.hpp"
#include "src/proto/runtime.pb.h"

namespace parley::actors {
namespace {

namespace v1 = bot::v1;
using rt_snapshot = parley::runtime::v1::Snapshot;
using status = turn_outcome::status;

/// What a conversation holds only while it has a turn to run.
struct turn_scratch {
  turn_job_ptr job;                     // the turn in progress
  std::unique_ptr<rt_snapshot> snap;    // the committed snapshot, parsed
  std::unique_ptr<v1::TurnResult> acc;  // the turn's result, accumulated across action round trips
  std::string writing;                  // the snapshot bytes being committed
  bool snap_stale = false;              // `snap` no longer equals the committed bytes
  std::list<turn_job_ptr> waiting;      // turns that arrived while `job` ran
};

struct conversation_state {
  const conversation_deps* deps = nullptr;
  std::string key;  // tenant '\0' session id
  bool loaded = false;
  bool exists = false;
  std::string committed;                     // the committed snapshot, serialized
  std::shared_ptr<const bot::program> prog;  // the program of the snapshot's bot_version
  std::unique_ptr<turn_scratch> t;           // null between turns: an idle actor holds no scratch

  std::string_view tenant() const { return std::string_view(key).substr(0, key.find('\0')); }
  std::string session_id() const { return key.substr(key.find('\0') + 1); }
};

/// The actor. Class-based rather than a spawned function so that every conversation
/// shares one behaviour object: a function-based actor builds its own (about 290
/// bytes for these handlers, per conversation). The shared handlers find their actor
/// through `current`, which `resume` sets for the messages it processes.
class conversation_actor : public caf::event_based_actor {
 public:
  conversation_actor(caf::actor_config& cfg, const conversation_deps* deps, std::string key)
      : caf::event_based_actor(cfg) {
    state.deps = deps;
    state.key = std::move(key);
  }
  const char* name() const override { return "parley.conversation"; }
  caf::behavior make_behavior() override;
  caf::resumable::resume_result resume(caf::execution_unit* eu, size_t max_throughput) override {
    auto* outer = current;
    current = this;
    auto r = caf::event_based_actor::resume(eu, max_throughput);
    current = outer;
    return r;
  }
  void on_exit() override {
    state.t.reset();
    state.prog.reset();
    std::string().swap(state.committed);
  }

  conversation_state state;
  static thread_local conversation_actor* current;
};

thread_local conversation_actor* conversation_actor::current = nullptr;

using self_ptr = conversation_actor*;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void start_turn(self_ptr self);

/// Answers the current job, then starts the next waiting one.
void answer(self_ptr self, status st, std::string message = {},
            std::shared_ptr<const v1::TurnResult> result = nullptr) {
  auto& s = self->state;
  turn_outcome out;
  out.st = st;
  out.message = std::move(message);
  out.result = std::move(result);
  out.session_id = s.session_id();
  if (s.t->snap) {
    out.bot = s.t->snap->bot();
    out.bot_version = s.t->snap->bot_version();
    out.program_id = s.t->snap->state().program_id();
  }
  out.program = s.prog;
  auto job = std::move(s.t->job);
  s.t->acc.reset();
  if (s.t->waiting.empty()) {
    s.t.reset();  // idle: keep only the committed bytes
  } else if (s.t->snap_stale) {
    s.t->snap.reset();  // the next turn parses the committed bytes
    s.t->snap_stale = false;
  }
  s.deps->probe->turn(st, std::chrono::duration<double>(std::chrono::steady_clock::now() - job->received).count());
  // See turn_job: the bot first, then `finished`, then the answer.
  job->bot = out.bot;
  job->bot_version = out.bot_version;
  auto done = std::move(job->done);
  job->finished.store(true, std::memory_order_release);
  done(std::move(out));
  if (s.t) {
    s.t->job = std::move(s.t->waiting.front());
    s.t->waiting.pop_front();
    start_turn(self);
  }
}

void run_vm(self_ptr self, const v1::Input* input);

/// Writes the turn into the snapshot, in place, and sends it to Redis. If the write
/// fails, the in-memory snapshot is dropped and reloaded from Redis on the next turn
/// (the write's outcome is unknown, and Redis is the truth).
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
  *n.mutable_state() = acc.state();
  n.set_sequence(n.sequence() + 1);
  if (in.sequence_id > n.last_sequence_id()) n.set_last_sequence_id(in.sequence_id);
  n.set_updated_unix(in.now_unix);
  if (!in.message_id.empty()) {
    auto max = static_cast<int>(s.deps->options.recent_turns);
    if (n.recent_size() >= max) n.mutable_recent()->DeleteSubrange(0, n.recent_size() - max + 1);
    // Only the newest recorded turn keeps its result: a redelivery of an older
    // message is recognised (and not run again) by its id alone. The Bot API can only
    // replay its last sequenceId anyway, and this keeps the snapshot small.
    if (n.recent_size() > 0) n.mutable_recent(n.recent_size() - 1)->clear_result();
    auto* rec = n.add_recent();
    rec->set_message_id(in.message_id);
    rec->set_sequence(n.sequence());
    // What a channel renders; the state itself is in the snapshot already. The
    // repeated fields are lent by the turn's result for the serialization (a swap of
    // pointers, not a deep copy of every message and choice) and given back right
    // after: the parsed snapshot is then stale and is not used for another turn.
    auto* r = rec->mutable_result();
    if (acc.has_transfer()) *r->mutable_transfer() = acc.transfer();
    r->set_end_reason(acc.end_reason());
    r->set_matched_by(acc.matched_by());
    r->mutable_state()->set_status(acc.state().status());
    r->mutable_messages()->Swap(acc.mutable_messages());
    r->mutable_intents()->Swap(acc.mutable_intents());
    r->mutable_entities()->Swap(acc.mutable_entities());
    n.SerializeToString(&s.t->writing);
    acc.mutable_messages()->Swap(r->mutable_messages());
    acc.mutable_intents()->Swap(r->mutable_intents());
    acc.mutable_entities()->Swap(r->mutable_entities());
    s.t->snap_stale = true;
  } else {
    n.SerializeToString(&s.t->writing);
  }
  auto ttl = s.prog ? s.prog->idle_timeout() : s.deps->options.default_idle_timeout;
  if (ttl.count() <= 0) ttl = s.deps->options.default_idle_timeout;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  s.deps->redis->command(
      {"SET", snapshot_key(s.deps->options, std::string(s.tenant()), s.session_id()), s.t->writing, "EX",
       std::to_string(ttl.count())},
      [me](result<store::redis_reply> r) {
        caf::anon_send(me, commit_atom::value, r.ok() ? std::string() : r.err().message);
      });
}

void after_commit(self_ptr self, const std::string& error) {
  auto& s = self->state;
  if (!s.t) return;
  if (!error.empty()) {
    s.deps->probe->commit_failures.Increment();
    log::warn("turn_commit_failed", {{"session", s.session_id()}, {"error", error}});
    // Redis is the truth and the write's outcome is unknown: reload at the next turn.
    s.t->snap.reset();
    s.committed.clear();
    s.loaded = false;
    s.exists = false;
    return answer(self, status::unavailable, "the conversation store is unavailable: " + error);
  }
  bool was_new = !s.exists;
  s.exists = true;
  s.committed.swap(s.t->writing);
  std::shared_ptr<const v1::TurnResult> result(std::move(s.t->acc));
  if (s.deps->transcripts != nullptr) {
    std::vector<transcript_row> rows;
    rows.reserve(static_cast<std::size_t>(result->messages_size()) + 1);
    const auto& in = s.t->job->in;
    auto t = now_ms();
    std::string tenant(s.tenant()), session = s.session_id();
    if (!was_new || !in.text.empty()) {
      rows.push_back(transcript_row{tenant, session, s.t->snap->sequence(), "in", 0,
                                    in.what == inbound::kind::end ? "[end] " + in.text : in.text, {}, t});
    }
    int idx = 0;
    for (const auto& m : result->messages())
      rows.push_back(transcript_row{tenant, session, s.t->snap->sequence(), "out", idx++, m.text(), {}, t});
    std::vector<conversation_event> events;
    if (was_new)
      events.push_back(conversation_event{false, tenant, session, s.t->snap->bot(), s.t->snap->channel(), s.t->snap->external_key(),
                                          s.t->snap->bot_version(), {}});
    if (result->state().status() == v1::ENDED)
      events.push_back(conversation_event{true, tenant, session, {}, {}, {}, 0,
                                          in.what == inbound::kind::end ? "client" : "bot"});
    s.deps->transcripts->append(std::move(rows), std::move(events));
  }
  answer(self, status::ok, {}, std::move(result));
}

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
  *acc.mutable_transfer() = std::move(*r.mutable_transfer());
  acc.set_end_reason(r.end_reason());
  if (!r.error().empty()) acc.set_error(r.error());
}

void continue_after_vm(self_ptr self) {
  auto& s = self->state;
  if (s.t->acc->state().status() != v1::AWAITING_ACTION) return commit(self);
  // Interim secret store: the node's environment, PARLEY_SECRET_<NAME>. Tenant
  // secrets move to Postgres (encrypted) with the channels issue.
  auto req = bot::resolve_secrets(s.t->acc->action(), [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(("PARLEY_SECRET_" + std::string(name)).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
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
  if (input != nullptr) {
    v1::TurnResult r = bot::resume(prog, s.t->acc->state(), *input);
    accumulate(s, std::move(r), false);
    return continue_after_vm(self);
  }
  if (in.what == inbound::kind::start) {
    accumulate(s, bot::start(prog, in.variables, in.now_unix), true);
    if (!in.text.empty() && s.t->acc->state().status() == v1::AWAITING_INPUT) {
      // A first message with the start request: run it as the first input.
      auto first = bot::text_input(in.text, in.now_unix);
      accumulate(s, bot::resume(prog, s.t->acc->state(), first), false);
    }
    return continue_after_vm(self);
  }
  if (s.t->job->quarantined) {
    accumulate(s, bot::resume(prog, s.t->snap->state(), bot::failure_input(s.t->job->quarantine_error, in.now_unix)), true);
    return continue_after_vm(self);
  }
  if (in.what == inbound::kind::end) {
    v1::TurnResult r;
    *r.mutable_state() = s.t->snap->state();
    r.mutable_state()->set_status(v1::ENDED);
    r.set_end_reason(v1::COMPLETED);
    accumulate(s, std::move(r), true);
    return commit(self);
  }
  v1::Input vm_in;
  if (in.choice_index > 0) {
    // The n-th option of the last menu this conversation showed.
    const v1::Outbound* menu = nullptr;
    if (!s.t->snap->recent().empty())
      for (const auto& m : s.t->snap->recent().rbegin()->result().messages())
        if (m.choices_size() > 0) menu = &m;
    if (menu == nullptr || in.choice_index > menu->choices_size())
      return answer(self, status::bad_input,
                    "message.choiceIndex: " + std::to_string(in.choice_index) + " is not an option of the last menu");
    vm_in = bot::payload_input(menu->choices(static_cast<int>(in.choice_index - 1)).payload(), in.now_unix);
  } else {
    vm_in = in.what == inbound::kind::payload ? bot::payload_input(in.text, in.now_unix)
                                              : bot::text_input(in.text, in.now_unix);
  }
  accumulate(s, bot::resume(prog, s.t->snap->state(), vm_in), true);
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
    s.deps->registry->version(std::string(s.tenant()), s.t->snap->bot(), s.t->snap->bot_version(), cb);
  else
    s.deps->registry->active(std::string(s.tenant()), s.t->job->in.bot, cb);
}

/// The turn's checks once the snapshot is known: replay, staleness, existence.
void dispatch(self_ptr self) {
  auto& s = self->state;
  const auto& in = s.t->job->in;
  if (!s.t->snap) {
    s.t->snap = std::make_unique<rt_snapshot>();
    if (s.exists && !s.t->snap->ParseFromString(s.committed))
      return answer(self, status::internal, "the snapshot of session " + s.session_id() + " does not parse");
  }
  if (in.what == inbound::kind::start) {
    if (s.exists) return answer(self, status::internal, "session id " + s.session_id() + " is already in use");
    return with_program(self);
  }
  if (!s.exists) return answer(self, status::session_not_found, "session " + s.session_id() + " does not exist or expired");
  // A redelivery gets the recorded answer. With sequence ids (Bot API) only the last
  // processed one is a retry; a lower one is stale.
  bool may_replay = in.sequence_id < 0 || in.sequence_id == s.t->snap->last_sequence_id();
  if (!in.message_id.empty() && may_replay) {
    for (const auto& rec : s.t->snap->recent()) {
      if (rec.message_id() == in.message_id) {
        return answer(self, status::replayed, {}, std::make_shared<v1::TurnResult>(rec.result()));
      }
    }
  }
  if (s.t->snap->state().status() == v1::ENDED || s.t->snap->state().status() == v1::TRANSFERRED)
    return answer(self, status::session_ended, "session " + s.session_id() + " has ended");
  if (in.sequence_id >= 0 && in.sequence_id <= s.t->snap->last_sequence_id())
    return answer(self, status::stale_sequence,
                  "sequenceId " + std::to_string(in.sequence_id) + " is not greater than the last processed " +
                      std::to_string(s.t->snap->last_sequence_id()));
  if (!in.bot.empty() && in.bot != s.t->snap->bot())
    return answer(self, status::session_not_found, "session " + s.session_id() + " does not belong to bot " + in.bot);
  with_program(self);
}

/// Starts `s.t->job`: loads the snapshot first if this actor has not yet.
void start_turn(self_ptr self) {
  auto& s = self->state;
  if (s.loaded || s.t->job->in.what == inbound::kind::start) {
    s.loaded = true;
    return dispatch(self);
  }
  caf::actor me = caf::actor_cast<caf::actor>(self);
  s.deps->redis->command({"GET", snapshot_key(s.deps->options, std::string(s.tenant()), s.session_id())},
                         [me](result<store::redis_reply> r) {
                           caf::anon_send(me, loaded_atom::value,
                                          std::make_shared<result<store::redis_reply>>(std::move(r)));
                         });
}

caf::behavior conversation_actor::make_behavior() {
  static const caf::behavior shared = caf::behavior{
      [](turn_atom, turn_job_ptr& job) {
        auto* self = current;
        auto& s = self->state;
        if (s.t) return s.t->waiting.push_back(std::move(job));
        s.t = std::make_unique<turn_scratch>();
        s.t->job = std::move(job);
        start_turn(self);
      },
      [](loaded_atom, std::shared_ptr<result<store::redis_reply>>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t) return;
        if (!r->ok()) return answer(self, status::unavailable, "the conversation store is unavailable: " + r->err().message);
        s.loaded = true;
        if (!(*r)->is_nil()) {
          s.committed = std::move((*r)->str);
          s.exists = true;
          s.deps->probe->activated_snapshot.Increment();
        }
        dispatch(self);
      },
      [](program_atom, std::shared_ptr<result<loaded_program>>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t) return;
        if (!r->ok()) {
          if (r->err().code == "not_found") {
            if (s.exists) return answer(self, status::internal, r->err().message);
            return answer(self, status::bot_not_found, r->err().message);
          }
          return answer(self, status::unavailable, "bot programs are unavailable: " + r->err().message);
        }
        s.prog = (*r)->program;
        if (!s.exists) {
          s.t->snap->set_bot_version((*r)->version);
          s.deps->probe->activated_new.Increment();
        }
        run_vm(self, nullptr);
      },
      [](action_atom, std::shared_ptr<v1::ActionResult>& r) {
        auto* self = current;
        auto& s = self->state;
        if (!s.t) return;
        v1::Input in;
        *in.mutable_action() = std::move(*r);
        in.set_now_unix(s.t->job->in.now_unix);
        run_vm(self, &in);
      },
      [](commit_atom, const std::string& error) { after_commit(current, error); },
      [](kill_atom) { current->quit(caf::make_error(caf::sec::runtime_error, "killed by a debug request")); },
  };
  return shared;
}

}  // namespace

std::string_view conversation_key(const caf::actor& conv) {
  // Only the runtime calls this, and only with actors spawn_conversation made.
  return static_cast<const conversation_actor*>(caf::actor_cast<caf::abstract_actor*>(conv))->state.key;
}

std::string snapshot_key(const runtime_options& o, const std::string& tenant, const std::string& session) {
  return o.key_prefix + ":conv:" + tenant + ":" + session;
}

caf::actor spawn_conversation(caf::actor_system& sys, const conversation_deps* deps, const caf::actor& supervisor,
                              std::string key) {
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
