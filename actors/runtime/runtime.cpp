// The runtime facade: the stripe tables and their supervisor actors.
//
// A turn's path is: `runtime::submit` (on the caller's thread, an HTTP I/O thread)
// finds the conversation's actor in its stripe's table, under the stripe's mutex,
// spawning it on first use, and sends the job straight to it. The conversation runs
// its turns one at a time in arrival order and answers the caller itself, after the
// commit. No actor sits between the gateway and the conversation: each hop is a
// queue push and often a thread wake-up, and they were most of a turn's cost.
//
// Supervision: each stripe has a supervisor actor monitoring the stripe's conversation
// actors. The stripe's table keeps, per conversation, the jobs sent and not yet
// finished, in order. When a conversation actor dies, its supervisor spawns a new one
// (which reloads the last committed snapshot from Redis) and sends it the unfinished
// jobs again, in order, all under the stripe's mutex, so a job submitted meanwhile
// still lands behind them. The first unfinished job is the one that was running:
// after `max_attempts` deaths with it within `attempt_window` it is quarantined and
// run once more as a failure, which runs the bot's error dialog: the user gets an
// answer and the conversation lives on. The supervisor's tick passivates idle
// conversations.

#include <algorithm>
#include <list>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <boost/intrusive/list.hpp>

#include "actors/runtime/internal.hpp"
#include "actors/snapshot/redis_snapshot_store.hpp"
#include "src/log/log.hpp"
#include "src/store/catalog/canary.hpp"
#include "src/store/catalog/quarantine.hpp"

namespace parley::actors {

bool deliver(const conversation_deps* deps, turn_job& job, turn_outcome out) {
  if (job.claimed.exchange(true, std::memory_order_acq_rel)) return false;
  deps->probe->turn_answered(
      out.st,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - job.received).count());
  deps->probe->bot_turn(job.in.tenant, out, job.in.what == inbound::kind::start);
  job.bot = out.bot;
  job.bot_version = out.bot_version;
  auto done = std::move(job.done);
  job.finished.store(true, std::memory_order_release);
  done(std::move(out));
  return true;
}

namespace {

namespace bi = boost::intrusive;

/// A conversation's place in one of its stripe's activity lists; it leaves the list
/// by itself (auto unlink) when it moves to another or is destroyed.
using activity_hook = bi::list_base_hook<bi::link_mode<bi::auto_unlink>>;

const std::string no_bot;

/// The one copy of a bot's name that every conversation of that bot points to. The
/// names are few (the bots deployed) and kept for the process's life: a conversation
/// entry then holds 8 bytes for its bot, not a 32-byte string.
const std::string* bot_name(const std::string& name) {
  static std::mutex m;
  static std::unordered_set<std::string> names;  // nodes never move
  std::lock_guard<std::mutex> lock(m);
  return &*names.insert(name).first;
}

/// A live conversation; through its hook, in its stripe's `touched` or `idle` list.
struct conv_entry : activity_hook {
  conversation_handle actor;
  std::list<turn_job_ptr> sent;      // sent to `actor` (or a dead predecessor), oldest first; a
                                     // finished front is dropped lazily
  const std::string* bot = &no_bot;  // interned (bot_name): one pointer, not a string
  uint32_t bot_version = 0;
  std::chrono::steady_clock::time_point last_active = std::chrono::steady_clock::now();

  conv_entry() = default;
  // The lists hold its address: an entry never moves or copies (the table's nodes
  // do not move; extract and insert keep a node where it is).
  conv_entry(const conv_entry&) = delete;
  conv_entry& operator=(const conv_entry&) = delete;
};

/// Intrusive: moving a conversation between lists allocates nothing.
using activity_list = bi::list<conv_entry, bi::constant_time_size<false>>;

/// Moves `e` (in a list or not) to the end of `to`.
void move_to_back(activity_list& to, conv_entry& e) {
  e.unlink();
  to.push_back(e);
}

/// One stripe: its part of the live conversations and the actor supervising them.
struct stripe {
  std::mutex m;
  // By key (tenant '\0' session id). The key views the key string of the entry's own
  // actor (immutable, and alive as long as the entry holds the actor): one copy of
  // it per conversation instead of two.
  std::unordered_map<std::string_view, conv_entry> convs;
  caf::actor supervisor;
  activity_list touched;  ///< a turn since the last tick, or jobs unfinished
  activity_list idle;     ///< every job finished; least recently active first
};

/// A tick visits at most this many conversations of its stripe (touched ones and
/// passivated ones together), so the stripe's mutex and the lane running the
/// supervisor are held for a short while at a time; with more to do, the next tick
/// comes after a millisecond instead of a period.
constexpr std::size_t max_tick_visits = 4096;

struct shared_state {
  const conversation_deps* deps = nullptr;
  std::function<void(store::quarantined_message)> quarantine;
  std::vector<std::unique_ptr<stripe>> stripes;
};

/// Drops the finished jobs at the front of `e.sent`, keeping the bot they ran.
void prune(conv_entry& e) {
  while (!e.sent.empty() && e.sent.front()->finished.load(std::memory_order_acquire)) {
    const auto& j = *e.sent.front();
    if (!j.bot.empty() && (j.bot_version != e.bot_version || j.bot != *e.bot)) {
      e.bot = bot_name(j.bot);
      e.bot_version = j.bot_version;
    }
    e.sent.pop_front();
  }
}

/// Answers a job without running it (busy, or its error dialog failed too).
void answer_now(const conversation_deps* deps, turn_job& job, turn_outcome::status st,
                std::string message) {
  turn_outcome out;
  out.st = st;
  out.session_id = job.in.session_id;
  out.message = std::move(message);
  deliver(deps, job, std::move(out));
}

using supervisor_ptr = caf::event_based_actor*;

void on_conversation_down(shared_state* st, stripe* sp, supervisor_ptr self,
                          const caf::down_msg& dm) {
  const auto* deps = st->deps;
  std::lock_guard<std::mutex> lock(sp->m);
  if (!sp->supervisor) return;  // runtime::stop
  // The dead actor is still in memory when its entry holds it; otherwise it was
  // passivated on purpose and nothing is left to do.
  auto dead = caf::actor_cast<conversation_handle>(dm.source);
  if (!dead) return;
  auto cit = sp->convs.find(conversation_key(dead));
  if (cit == sp->convs.end() || cit->second.actor != dead)
    return;  // passivated, or an older incarnation
  std::string key(cit->first);
  const std::string tenant = key.substr(0, key.find('\0'));
  const std::string session_id = key.substr(key.find('\0') + 1);
  // A new incarnation; the entry's key moves to the new actor's copy before the
  // entry lets go of the dead one.
  auto fresh = spawn_conversation(self->system(), deps, sp->supervisor, key);
  auto node = sp->convs.extract(cit);
  node.key() = conversation_key(fresh);
  node.mapped().actor = std::move(fresh);
  auto& e = sp->convs.insert(std::move(node)).position->second;
  prune(e);
  deps->probe->conversation_restarted();
  if (e.sent.empty()) return;   // died between turns (killed, say): nothing to run again
  auto& job = *e.sent.front();  // the one that was running
  auto now = std::chrono::steady_clock::now();
  job.deaths.push_back(now);
  while (!job.deaths.empty() && now - job.deaths.front() > deps->options.attempt_window)
    job.deaths.pop_front();
  std::string reason = to_string(dm.reason);
  log::warn("conversation_died", {{"tenant", tenant},
                                  {"session", session_id},
                                  {"attempt", std::to_string(job.attempt)},
                                  {"reason", reason}});
  if (job.quarantined) {
    // Even the error dialog failed: answer the client and move on.
    answer_now(deps, job, turn_outcome::status::internal,
               "the conversation failed on this message and on its error dialog");
    e.sent.pop_front();
    for (const auto& j : e.sent) caf::anon_send(e.actor, turn_atom::value, j);
    return;
  }
  if (static_cast<int>(job.deaths.size()) >= deps->options.max_attempts) {
    deps->probe->message_quarantined();
    log::error("message_quarantined", {{"tenant", tenant},
                                       {"session", session_id},
                                       {"message_id", job.in.message_id},
                                       {"reason", reason}});
    if (st->quarantine)
      st->quarantine(store::quarantined_message{0, tenant, session_id, job.in.message_id,
                                                job.in.text, reason,
                                                static_cast<int>(job.deaths.size())});
    job.quarantined = true;
    job.quarantine_error = reason;
    job.deaths.clear();
  }
  ++job.attempt;
  for (const auto& j : e.sent) caf::anon_send(e.actor, turn_atom::value, j);
}

caf::behavior supervisor_impl(supervisor_ptr self, shared_state* st, stripe* sp) {
  self->set_down_handler([=](caf::down_msg& dm) { on_conversation_down(st, sp, self, dm); });
  const auto* deps = st->deps;
  auto period =
      std::max(std::chrono::milliseconds(50),
               std::min(std::chrono::milliseconds(1000), deps->options.passivate_after / 2));
  self->delayed_send(self, period, tick_atom::value);
  return {
      [=](tick_atom) {
        auto now = std::chrono::steady_clock::now();
        std::size_t visits = 0;    // conversations looked at
        std::size_t progress = 0;  // of them, made idle or passivated
        {
          std::lock_guard<std::mutex> lock(sp->m);
          // Touched conversations whose jobs have all finished become idle, in the
          // order of their last turn, so `idle` stays (nearly) oldest first. The ones
          // still running a job go to the back of `touched`, to be looked at again
          // next tick; each is visited once per tick.
          if (!sp->touched.empty()) {
            const conv_entry* last = &sp->touched.back();
            for (auto it = sp->touched.begin(); visits < max_tick_visits; ++visits) {
              auto& e = *it++;
              prune(e);
              if (e.sent.empty()) {
                move_to_back(sp->idle, e);
                ++progress;
              } else {
                move_to_back(sp->touched, e);
              }
              if (&e == last) break;
            }
          }
          while (!sp->idle.empty() && visits < max_tick_visits) {
            auto& e = sp->idle.front();
            if (now - e.last_active < deps->options.passivate_after) break;
            ++visits;
            ++progress;
            // Its down message then finds no entry holding it, and is ignored.
            self->send_exit(e.actor, caf::exit_reason::user_shutdown);
            deps->probe->conversation_passivated();
            deps->probe->conversation_gone();
            // The key views the actor's key, alive until the erase ends.
            sp->convs.erase(conversation_key(e.actor));
          }
        }
        // Cut short with work done and more to do: come back soon. (Conversations
        // that are all still running their jobs wait for the next period.)
        auto next =
            visits >= max_tick_visits && progress > 0 ? std::chrono::milliseconds(1) : period;
        self->delayed_send(self, next, tick_atom::value);
      },
  };
}

std::size_t stripe_of(const std::string& tenant, const std::string& session, std::size_t n) {
  std::size_t h = std::hash<std::string>{}(tenant);
  h ^= std::hash<std::string>{}(session) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h % n;
}

std::string key_of(const std::string& tenant, const std::string& session) {
  std::string key;
  key.reserve(tenant.size() + 1 + session.size());
  key += tenant;
  key += '\0';
  key += session;
  return key;
}

}  // namespace

struct runtime::impl {
  deps d;
  std::unique_ptr<runtime_probe> probe;
  std::unique_ptr<snapshot_store> own_snapshots;  ///< when deps.snapshots is null
  conversation_deps cdeps;
  shared_state st;
};

runtime::runtime(deps d, runtime_options options) : impl_(std::make_unique<impl>()) {
  impl_->d = d;
  impl_->probe = std::make_unique<runtime_probe>(*d.metrics);
  auto& c = impl_->cdeps;
  if (d.snapshots == nullptr)
    impl_->own_snapshots =
        std::make_unique<redis_snapshot_store>(*d.redis, d.redis_lanes, options.key_prefix);
  c.snapshots = d.snapshots != nullptr ? d.snapshots : impl_->own_snapshots.get();
  c.registry = d.registry;
  c.transcripts = d.transcripts;
  c.actions = d.actions;
  c.secrets = d.secrets;
  c.probe = impl_->probe.get();
  c.options = options;
  auto& st = impl_->st;
  st.deps = &impl_->cdeps;
  st.quarantine = d.quarantine;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options.stripes); ++i) {
    st.stripes.push_back(std::make_unique<stripe>());
    auto* sp = st.stripes.back().get();
    std::lock_guard<std::mutex> lock(sp->m);  // the supervisor reads `supervisor` under it
    sp->supervisor = d.system->spawn(supervisor_impl, &st, sp);
  }
}

runtime::~runtime() { stop(); }

void runtime::submit(inbound in, std::function<void(turn_outcome)> done) {
  auto& st = impl_->st;
  const auto* deps = st.deps;
  auto& sp = *st.stripes[stripe_of(in.tenant, in.session_id, st.stripes.size())];
  auto job = std::make_shared<turn_job>();
  std::string key = key_of(in.tenant, in.session_id);
  job->in = std::move(in);
  job->done = std::move(done);
  std::unique_lock<std::mutex> lock(sp.m);
  if (!sp.supervisor) {
    lock.unlock();
    return answer_now(deps, *job, turn_outcome::status::unavailable, "the node is shutting down");
  }
  auto it = sp.convs.find(key);
  if (it == sp.convs.end()) {
    auto actor = spawn_conversation(*impl_->d.system, deps, sp.supervisor, std::move(key));
    auto view = conversation_key(actor);
    it =
        sp.convs
            .emplace(std::piecewise_construct, std::forward_as_tuple(view), std::forward_as_tuple())
            .first;
    it->second.actor = std::move(actor);
    deps->probe->conversation_live();
  }
  auto& e = it->second;
  e.last_active = job->received;
  move_to_back(sp.touched, e);
  prune(e);
  // One running plus `max_queued` waiting: beyond that the client is told to slow
  // down instead of the node buffering without bound.
  if (e.sent.size() > deps->options.max_queued) {
    lock.unlock();
    return answer_now(deps, *job, turn_outcome::status::busy,
                      "too many messages of this conversation are waiting; retry later");
  }
  e.sent.push_back(job);
  // Sent under the mutex: a supervisor re-sending unfinished jobs to a new actor
  // holds it too, so this job cannot overtake them.
  caf::anon_send(e.actor, turn_atom::value, std::move(job));
}

void runtime::live(const std::string& tenant,
                   std::function<void(std::vector<live_conversation>)> done) {
  std::vector<live_conversation> out;
  auto now = std::chrono::steady_clock::now();
  for (auto& sp : impl_->st.stripes) {
    std::lock_guard<std::mutex> lock(sp->m);
    for (auto& [key, e] : sp->convs) {
      if (key.substr(0, key.find('\0')) != tenant) continue;
      prune(e);
      out.push_back(
          {std::string(key.substr(key.find('\0') + 1)), *e.bot, e.bot_version,
           std::chrono::duration_cast<std::chrono::milliseconds>(now - e.last_active).count()});
    }
  }
  done(std::move(out));
}

std::size_t runtime::live_count() const {
  std::size_t n = 0;
  for (auto& sp : impl_->st.stripes) {
    std::lock_guard<std::mutex> lock(sp->m);
    n += sp->convs.size();
  }
  return n;
}

std::vector<store::version_delta> runtime::bot_version_totals() const {
  return impl_->probe->version_totals();
}

std::size_t runtime::passivate_where(
    const std::function<bool(std::string_view, std::string_view)>& pred) {
  std::size_t n = 0;
  const auto* deps = &impl_->cdeps;
  for (auto& sp : impl_->st.stripes) {
    std::lock_guard<std::mutex> lock(sp->m);
    if (!sp->supervisor) continue;  // stopped
    for (auto it = sp->convs.begin(); it != sp->convs.end();) {
      auto& e = it->second;
      prune(e);
      auto zero = it->first.find('\0');
      if (!e.sent.empty() || !pred(it->first.substr(0, zero), it->first.substr(zero + 1))) {
        ++it;
        continue;
      }
      // As the supervisor's tick does: its down message then finds no entry.
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
      deps->probe->conversation_passivated();
      deps->probe->conversation_gone();
      it = sp->convs.erase(it);
      ++n;
    }
  }
  return n;
}

void runtime::kill(const std::string& tenant, const std::string& session_id,
                   std::function<void(bool)> done) {
  if (!impl_->cdeps.options.debug_faults || impl_->st.stripes.empty()) return done(false);
  auto& sp = *impl_->st.stripes[stripe_of(tenant, session_id, impl_->st.stripes.size())];
  {
    std::lock_guard<std::mutex> lock(sp.m);
    auto it = sp.convs.find(key_of(tenant, session_id));
    if (it == sp.convs.end()) return done(false);
    // A message, not an exit: the conversation then dies like a crash would (with an
    // error as its reason), and its monitor tells the supervisor.
    caf::anon_send(it->second.actor, kill_atom::value);
  }
  done(true);
}

void runtime::stop() {
  const auto* deps = impl_->st.deps;
  for (auto& sp : impl_->st.stripes) {
    caf::actor sup;
    std::vector<turn_job_ptr> unanswered;
    {
      std::lock_guard<std::mutex> lock(sp->m);
      sup = std::move(sp->supervisor);
      sp->supervisor = nullptr;
      // Their snapshots stay in the store. The jobs not yet answered are answered
      // below, outside the mutex (a `done` may submit again, and is then answered
      // unavailable at once).
      for (auto& [key, e] : sp->convs) {
        caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
        for (auto& j : e.sent)
          if (!j->finished.load(std::memory_order_acquire)) unanswered.push_back(std::move(j));
      }
      sp->convs.clear();  // each entry leaves its activity list
    }
    if (sup) caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    // A job whose commit is in flight may be answered by its completion first
    // (`deliver` lets one answer through).
    for (auto& j : unanswered)
      answer_now(deps, *j, turn_outcome::status::unavailable, "the node is shutting down");
  }
  // Commits in flight complete on the store's thread (success, failure or timeout:
  // for Redis within its command timeout) and use this runtime's probe: wait for them.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (impl_->cdeps.commits_in_flight.load(std::memory_order_acquire) > 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace parley::actors
