// The runtime facade and the shard actors.
//
// A shard owns the live conversations whose key hashes to it. Per conversation it
// keeps a queue: one turn is in the conversation actor at a time, the rest wait, so
// turns run in arrival order. The shard is linked to each conversation actor; when one
// dies with a turn in flight it spawns a new one (which reloads the last committed
// snapshot) and sends the turn again. After `max_attempts` deaths of the same turn
// within `attempt_window`, the message is quarantined and the turn is run once more
// as a failure, which runs the bot's error dialog: the user gets an answer and the
// conversation lives on.

#include <list>
#include <unordered_map>

#include "actors/runtime/internal.hpp"
#include "src/log/log.hpp"

namespace parley::actors {

runtime_probe::runtime_probe(prometheus::Registry& reg)
    : turns(prometheus::BuildCounter()
                .Name("parley_turns_total")
                .Help("Inbound messages answered, by outcome.")
                .Register(reg)),
      turn_seconds(prometheus::BuildHistogram()
                       .Name("parley_turn_duration_seconds")
                       .Help("Time from a message reaching its shard to its committed answer.")
                       .Register(reg)
                       .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                        1, 2.5, 5, 10})),
      live(prometheus::BuildGauge()
               .Name("parley_conversations_live")
               .Help("Live conversation actors on this node.")
               .Register(reg)
               .Add({})),
      activated_snapshot(prometheus::BuildCounter()
                             .Name("parley_conversation_activations_total")
                             .Help("Conversation actors activated, by source.")
                             .Register(reg)
                             .Add({{"source", "snapshot"}})),
      activated_new(prometheus::BuildCounter()
                        .Name("parley_conversation_activations_total")
                        .Help("Conversation actors activated, by source.")
                        .Register(reg)
                        .Add({{"source", "new"}})),
      restarts(prometheus::BuildCounter()
                   .Name("parley_conversation_restarts_total")
                   .Help("Conversation actors restarted from their snapshot after dying.")
                   .Register(reg)
                   .Add({})),
      quarantines(prometheus::BuildCounter()
                      .Name("parley_messages_quarantined_total")
                      .Help("Messages that killed their conversation too often and were quarantined.")
                      .Register(reg)
                      .Add({})),
      passivations(prometheus::BuildCounter()
                       .Name("parley_conversations_passivated_total")
                       .Help("Idle conversation actors stopped (their snapshot stays in Redis).")
                       .Register(reg)
                       .Add({})),
      commit_failures(prometheus::BuildCounter()
                          .Name("parley_turn_commit_failures_total")
                          .Help("Turns whose snapshot could not be written to Redis (answered unavailable).")
                          .Register(reg)
                          .Add({})) {
  const char* names[] = {"ok", "replayed", "session_not_found", "session_ended",
                         "stale_sequence", "bot_not_found", "unavailable", "internal", "bad_input", "busy"};
  for (std::size_t i = 0; i < by_status.size(); ++i) by_status[i] = &turns.Add({{"outcome", names[i]}});
}

void runtime_probe::turn(turn_outcome::status st, double seconds) {
  by_status[static_cast<std::size_t>(st)]->Increment();
  turn_seconds.Observe(seconds);
}

namespace {

struct conv_entry {
  caf::actor actor;
  // std::list, not std::deque: an empty libstdc++ deque already holds a 512-byte
  // block and its map, about 1.1 KB per idle conversation for these two queues.
  std::list<turn_job_ptr> queue;  // front is in flight when busy
  bool busy = false;
  std::string bot;
  uint32_t bot_version = 0;
  std::chrono::steady_clock::time_point last_active = std::chrono::steady_clock::now();
  std::list<std::chrono::steady_clock::time_point> deaths;  // of the turn in flight
};

struct shard_state {
  static inline const char* name = "parley.shard";
  const conversation_deps* deps = nullptr;
  std::function<void(quarantined)> quarantine;
  std::unordered_map<std::string, conv_entry> convs;
  std::unordered_map<caf::actor_addr, std::string> by_addr;
};

using shard_ptr = caf::stateful_actor<shard_state>*;

void spawn_for(shard_ptr self, const std::string& key, conv_entry& e) {
  e.actor = spawn_conversation(self->system(), self->state.deps, caf::actor_cast<caf::actor>(self), key);
  // Linked: a conversation's death reaches the shard's exit handler, and the shard's
  // own exit (node shutdown) takes its conversations with it.
  self->link_to(e.actor);
  self->state.by_addr[e.actor.address()] = key;
}

void send_front(shard_ptr self, conv_entry& e) {
  if (e.busy || e.queue.empty()) return;
  e.busy = true;
  self->send(e.actor, turn_atom::value, e.queue.front());
}

void on_conversation_exit(shard_ptr self, const caf::exit_msg& dm) {
  auto& st = self->state;
  auto it = st.by_addr.find(dm.source);
  if (it == st.by_addr.end()) return;  // passivated on purpose
  std::string key = std::move(it->second);
  st.by_addr.erase(it);
  auto cit = st.convs.find(key);
  if (cit == st.convs.end()) return;
  auto& e = cit->second;
  const std::string tenant = key.substr(0, key.find('\0'));
  const std::string session_id = key.substr(key.find('\0') + 1);
  if (!e.busy) {
    // Died between turns (killed, say): nothing is lost, the next turn respawns it.
    spawn_for(self, key, e);
    st.deps->probe->restarts.Increment();
    return;
  }
  auto job = e.queue.front();
  auto now = std::chrono::steady_clock::now();
  e.deaths.push_back(now);
  while (!e.deaths.empty() && now - e.deaths.front() > st.deps->options.attempt_window) e.deaths.pop_front();
  std::string reason = to_string(dm.reason);
  log::warn("conversation_died", {{"tenant", tenant}, {"session", session_id},
                                  {"attempt", std::to_string(job->attempt)}, {"reason", reason}});
  st.deps->probe->restarts.Increment();
  e.busy = false;
  spawn_for(self, key, e);
  if (job->quarantined) {
    // Even the error dialog failed: answer the client and move on.
    auto out = std::make_shared<turn_outcome>();
    out->st = turn_outcome::status::internal;
    out->session_id = session_id;
    out->message = "the conversation failed on this message and on its error dialog";
    e.queue.pop_front();
    e.deaths.clear();
    st.deps->probe->turn(out->st, 0);
    job->done(std::move(*out));
    return send_front(self, e);
  }
  if (static_cast<int>(e.deaths.size()) >= st.deps->options.max_attempts) {
    st.deps->probe->quarantines.Increment();
    log::error("message_quarantined", {{"tenant", tenant}, {"session", session_id},
                                       {"message_id", job->in.message_id}, {"reason", reason}});
    if (st.quarantine)
      st.quarantine(quarantined{tenant, session_id, job->in.message_id, job->in.text, reason,
                                static_cast<int>(e.deaths.size())});
    job->quarantined = true;
    job->quarantine_error = reason;
    e.deaths.clear();
  }
  ++job->attempt;
  send_front(self, e);
}

caf::behavior shard_impl(shard_ptr self, const conversation_deps* deps, std::function<void(quarantined)> q) {
  self->state.deps = deps;
  self->state.quarantine = std::move(q);
  self->set_exit_handler([=](caf::exit_msg& em) {
    if (self->state.by_addr.count(em.source) > 0) return on_conversation_exit(self, em);
    self->quit(em.reason);  // the runtime stops this shard
  });
  auto period = std::max(std::chrono::milliseconds(50),
                         std::min(std::chrono::milliseconds(1000), deps->options.passivate_after / 2));
  self->delayed_send(self, period, tick_atom::value);
  return {
      [=](turn_atom, turn_job_ptr job) {
        auto& st = self->state;
        std::string key = job->in.tenant;
        key += '\0';
        key += job->in.session_id;
        auto [it, fresh] = st.convs.try_emplace(key);
        auto& e = it->second;
        if (fresh) {
          spawn_for(self, key, e);
          st.deps->probe->live.Increment();
        }
        e.last_active = std::chrono::steady_clock::now();
        // One in flight plus `max_queued` waiting: beyond that the client is told to
        // slow down instead of the node buffering without bound.
        if (e.queue.size() > st.deps->options.max_queued) {
          turn_outcome out;
          out.st = turn_outcome::status::busy;
          out.session_id = job->in.session_id;
          out.message = "too many messages of this conversation are waiting; retry later";
          st.deps->probe->turn(out.st, 0);
          return job->done(std::move(out));
        }
        e.queue.push_back(std::move(job));
        send_front(self, e);
      },
      [=](done_atom, const std::string& key, outcome_ptr out) {
        auto& st = self->state;
        auto it = st.convs.find(key);
        if (it == st.convs.end()) return;
        auto& e = it->second;
        if (self->current_sender() != e.actor.address() || !e.busy) return;  // a dead incarnation
        auto job = std::move(e.queue.front());
        e.queue.pop_front();
        e.busy = false;
        e.deaths.clear();
        e.last_active = std::chrono::steady_clock::now();
        if (!out->bot.empty()) {
          e.bot = out->bot;
          e.bot_version = out->bot_version;
        }
        double seconds = std::chrono::duration<double>(e.last_active - job->received).count();
        st.deps->probe->turn(out->st, seconds);
        job->done(std::move(*out));
        send_front(self, e);
      },
      [=](tick_atom) {
        auto& st = self->state;
        auto now = std::chrono::steady_clock::now();
        for (auto it = st.convs.begin(); it != st.convs.end();) {
          auto& e = it->second;
          if (!e.busy && e.queue.empty() && now - e.last_active >= st.deps->options.passivate_after) {
            st.by_addr.erase(e.actor.address());
            self->unlink_from(e.actor);
            self->send_exit(e.actor, caf::exit_reason::user_shutdown);
            st.deps->probe->passivations.Increment();
            st.deps->probe->live.Decrement();
            it = st.convs.erase(it);
          } else {
            ++it;
          }
        }
        self->delayed_send(self, period, tick_atom::value);
      },
      [=](live_atom, const std::string& tenant, std::function<void(std::vector<runtime::live_conversation>)> done) {
        std::vector<runtime::live_conversation> out;
        auto now = std::chrono::steady_clock::now();
        for (const auto& [key, e] : self->state.convs) {
          if (key.compare(0, key.find('\0'), tenant) != 0) continue;
          out.push_back({key.substr(key.find('\0') + 1), e.bot, e.bot_version,
                         std::chrono::duration_cast<std::chrono::milliseconds>(now - e.last_active).count()});
        }
        done(std::move(out));
      },
      [=](kill_atom, const std::string& key, std::function<void(bool)> done) {
        auto it = self->state.convs.find(key);
        if (it == self->state.convs.end()) return done(false);
        // A message, not an exit: the conversation then dies like a crash would, and its
        // link tells the shard (an exit_msg from the shard would unlink it first, and
        // exit_reason::kill would take the linked shard down too).
        self->send(it->second.actor, kill_atom::value);
        done(true);
      },
  };
}

}  // namespace

struct runtime::impl {
  deps d;
  std::unique_ptr<runtime_probe> probe;
  conversation_deps cdeps;
  std::vector<caf::actor> shards;
};

runtime::runtime(deps d, runtime_options options) : impl_(std::make_unique<impl>()) {
  impl_->d = d;
  impl_->probe = std::make_unique<runtime_probe>(*d.metrics);
  auto& c = impl_->cdeps;
  c.redis = d.redis;
  c.registry = d.registry;
  c.transcripts = d.transcripts;
  c.actions = d.actions;
  c.probe = impl_->probe.get();
  c.options = options;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options.shards); ++i)
    impl_->shards.push_back(d.system->spawn(shard_impl, &impl_->cdeps, d.quarantine));
}

runtime::~runtime() { stop(); }

namespace {
std::size_t shard_of(const std::string& tenant, const std::string& session, std::size_t n) {
  std::size_t h = std::hash<std::string>{}(tenant);
  h ^= std::hash<std::string>{}(session) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h % n;
}
}  // namespace

void runtime::submit(inbound in, std::function<void(turn_outcome)> done) {
  auto& shards = impl_->shards;
  auto idx = shard_of(in.tenant, in.session_id, shards.size());
  auto job = std::make_shared<turn_job>();
  job->in = std::move(in);
  job->done = std::move(done);
  caf::anon_send(shards[idx], turn_atom::value, std::move(job));
}

void runtime::live(const std::string& tenant, std::function<void(std::vector<live_conversation>)> done) {
  struct gather {
    std::mutex m;
    std::vector<live_conversation> all;
    std::size_t left;
    std::function<void(std::vector<live_conversation>)> done;
  };
  auto g = std::make_shared<gather>();
  g->left = impl_->shards.size();
  g->done = std::move(done);
  std::function<void(std::vector<live_conversation>)> part = [g](std::vector<live_conversation> v) {
    std::unique_lock<std::mutex> lock(g->m);
    for (auto& c : v) g->all.push_back(std::move(c));
    if (--g->left == 0) {
      auto all = std::move(g->all);
      lock.unlock();
      g->done(std::move(all));
    }
  };
  for (auto& s : impl_->shards) caf::anon_send(s, live_atom::value, tenant, part);
}

void runtime::kill(const std::string& tenant, const std::string& session_id, std::function<void(bool)> done) {
  if (!impl_->cdeps.options.debug_faults) return done(false);
  auto idx = shard_of(tenant, session_id, impl_->shards.size());
  std::string key = tenant;
  key += '\0';
  key += session_id;
  caf::anon_send(impl_->shards[idx], kill_atom::value, std::move(key), std::move(done));
}

void runtime::stop() {
  for (auto& s : impl_->shards) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  impl_->shards.clear();
}

}  // namespace parley::actors
