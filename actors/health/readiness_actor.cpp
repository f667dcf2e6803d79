#include "actors/health/readiness_actor.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "src/log/log.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::http::responder)

namespace parley::actors {
namespace {

using check_atom = caf::atom_constant<caf::atom("check")>;
using result_atom = caf::atom_constant<caf::atom("result")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;

struct pending_check {
  http::responder reply;
  std::vector<std::string> status;  // per component: "" until answered, "up" or the error
  std::size_t answered = 0;
};

struct readiness_state {
  static inline const char* name = "parley.readiness";
  std::vector<readiness_component> components;
  std::chrono::milliseconds timeout{1000};
  uint64_t next_id = 1;
  std::map<uint64_t, pending_check> pending;
};

void finish(readiness_state& st, uint64_t id) {
  auto it = st.pending.find(id);
  if (it == st.pending.end()) return;
  auto& p = it->second;
  nlohmann::json body;
  bool all_up = true;
  nlohmann::json down = nlohmann::json::object();
  for (std::size_t i = 0; i < st.components.size(); ++i) {
    const std::string& s = p.status[i].empty() ? std::string("no answer within ") +
                                                     std::to_string(st.timeout.count()) + " ms"
                                               : p.status[i];
    body["components"][st.components[i].name] = s == "up" ? "up" : "down";
    if (s != "up") {
      all_up = false;
      down[st.components[i].name] = s;
    }
  }
  body["status"] = all_up ? "ready" : "not_ready";
  if (!all_up) body["down"] = down;
  p.reply(http::response::json(all_up ? 200 : 503, body.dump()));
  st.pending.erase(it);
}

caf::behavior readiness_impl(caf::stateful_actor<readiness_state>* self,
                             std::vector<readiness_component> components,
                             std::chrono::milliseconds timeout) {
  self->state.components = std::move(components);
  self->state.timeout = timeout;
  return {
      [=](check_atom, http::responder reply) {
        auto& st = self->state;
        uint64_t id = st.next_id++;
        auto& p = st.pending[id];
        p.reply = std::move(reply);
        p.status.resize(st.components.size());
        if (st.components.empty()) return finish(st, id);
        caf::actor me = caf::actor_cast<caf::actor>(self);
        for (std::size_t i = 0; i < st.components.size(); ++i) {
          st.components[i].probe([me, id, i](result<void> r) {
            caf::anon_send(me, result_atom::value, id, static_cast<uint64_t>(i),
                           r.ok() ? std::string("up") : r.err().message);
          });
        }
        self->delayed_send(self, st.timeout, expire_atom::value, id);
      },
      [=](result_atom, uint64_t id, uint64_t index, const std::string& status) {
        auto& st = self->state;
        auto it = st.pending.find(id);
        if (it == st.pending.end()) return;  // answered late, after the timeout
        auto& p = it->second;
        if (index < p.status.size() && p.status[index].empty()) {
          p.status[index] = status.empty() ? "down" : status;
          if (++p.answered == p.status.size()) finish(st, id);
        }
      },
      [=](expire_atom, uint64_t id) { finish(self->state, id); },
  };
}

}  // namespace

caf::actor spawn_readiness(caf::actor_system& sys, std::vector<readiness_component> components,
                           std::chrono::milliseconds timeout) {
  return sys.spawn(readiness_impl, std::move(components), timeout);
}

void request_readiness(const caf::actor& readiness, http::responder r) {
  caf::anon_send(readiness, check_atom::value, std::move(r));
}

}  // namespace parley::actors
