#include "cluster/endpoint/endpoint.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <mutex>
#include <set>
#include <unordered_map>

#include "cluster/endpoint/codec.hpp"
#include "src/log/log.hpp"

namespace parley::cluster {
namespace {

using turn_atom = caf::atom_constant<caf::atom("turn")>;
using answer_atom = caf::atom_constant<caf::atom("answer")>;
using fwd_atom = caf::atom_constant<caf::atom("fwd")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using nudge_atom = caf::atom_constant<caf::atom("nudge")>;
using region_atom = caf::atom_constant<caf::atom("region")>;

/// One request to send to a peer (a local message: never crosses the wire): a turn
/// (`turn_atom`) or a region request (`region_atom`); `done` gets the answer's bytes,
/// or why there is none.
struct fwd_job {
  std::string node;
  bool region = false;
  std::string bytes;
  std::function<void(result<std::string>)> done;
  bool answered = false;  // on the endpoint actor only
  void answer(result<std::string> out) {
    if (answered) return;
    answered = true;
    done(std::move(out));
  }
};
using fwd_job_ptr = std::shared_ptr<fwd_job>;

actors::turn_outcome unavailable(std::string message) {
  actors::turn_outcome out;
  out.st = actors::turn_outcome::status::unavailable;
  out.message = std::move(message);
  return out;
}

}  // namespace
}  // namespace parley::cluster

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::cluster::fwd_job_ptr)

namespace parley::cluster {

struct endpoint::impl {
  caf::actor_system& system;
  handlers h;
  std::chrono::milliseconds timeout;
  caf::actor actor;
  uint16_t port = 0;
  mutable std::mutex m;
  std::set<std::string> up;  // peers with a live connection
  bool stopped = false;

  impl(caf::actor_system& s, handlers hs, std::chrono::milliseconds t)
      : system(s), h(std::move(hs)), timeout(t) {}

  void mark(const std::string& node, bool is_up) {
    std::lock_guard<std::mutex> lock(m);
    if (is_up)
      up.insert(node);
    else
      up.erase(node);
  }
};

namespace {

struct endpoint_state {
  std::unordered_map<std::string, caf::actor> peers;  // by node id
  std::unordered_map<caf::actor_addr, std::string> names;
  std::unordered_map<uint64_t, caf::response_promise> waiting;  // forwarded to us
  /// Sent to a peer and not answered yet, by peer: answered at once when it is lost
  /// (a request to a dead node would otherwise wait for its timeout).
  std::unordered_map<std::string, std::unordered_map<uint64_t, fwd_job_ptr>> outstanding;
  uint64_t next_id = 0;
};

caf::behavior endpoint_actor(caf::stateful_actor<endpoint_state>* self,
                             std::shared_ptr<endpoint::impl> ep) {
  self->set_down_handler([self, ep](caf::down_msg& dm) {
    auto it = self->state.names.find(dm.source);
    if (it == self->state.names.end()) return;
    std::string node = it->second;
    self->state.names.erase(it);
    auto p = self->state.peers.find(node);
    if (p != self->state.peers.end() && p->second.address() == dm.source)
      self->state.peers.erase(p);
    ep->mark(node, false);
    auto o = self->state.outstanding.find(node);
    if (o != self->state.outstanding.end()) {
      auto jobs = std::move(o->second);
      self->state.outstanding.erase(o);
      for (auto& [id, j] : jobs)
        j->answer(make_error("unavailable",
                             "node " + node + " was lost while running the request: retry"));
    }
    log::warn("cluster_peer_lost", {{"node", node}, {"reason", caf::to_string(dm.reason)}});
    if (ep->h.peer_down) ep->h.peer_down(node);
  });
  return {
      [self](nudge_atom, const std::string& node) {
        // From this node: pass it on to the peer.
        auto it = self->state.peers.find(node);
        if (it != self->state.peers.end()) self->send(it->second, nudge_atom::value);
      },
      [ep](nudge_atom) {
        // From a peer.
        if (ep->h.nudged) ep->h.nudged();
      },
      [self](watch_atom, const std::string& node, caf::actor& peer) {
        auto& st = self->state;
        auto old = st.peers.find(node);
        if (old != st.peers.end()) {
          st.names.erase(old->second.address());
          self->demonitor(old->second);
        }
        self->monitor(peer);
        st.names[peer.address()] = node;
        st.peers[node] = std::move(peer);
      },
      [self, ep](fwd_atom, fwd_job_ptr& j) {
        auto it = self->state.peers.find(j->node);
        if (it == self->state.peers.end())
          return j->answer(
              make_error("unavailable", "no connection to node " + j->node + " yet: retry"));
        uint64_t id = ++self->state.next_id;
        self->state.outstanding[j->node][id] = j;
        auto settle = [self, j, id] {
          auto o = self->state.outstanding.find(j->node);
          if (o != self->state.outstanding.end()) o->second.erase(id);
        };
        auto on_answer = [j, settle](std::string& bytes) {
          settle();
          j->answer(std::move(bytes));
        };
        auto on_error = [j, settle](caf::error& e) {
          settle();
          j->answer(make_error("unavailable", "node " + j->node + " did not answer: " +
                                                  caf::to_string(e) + "; retry"));
        };
        if (j->region)
          self->request(it->second, ep->timeout, region_atom::value, std::move(j->bytes))
              .then(on_answer, on_error);
        else
          self->request(it->second, ep->timeout, turn_atom::value, std::move(j->bytes))
              .then(on_answer, on_error);
      },
      [self, ep](region_atom, std::string& bytes) -> caf::result<std::string> {
        if (!ep->h.region) {
          region_answer none;
          none.error = "this node serves no requests of other regions";
          return encode_region_answer(none);
        }
        auto rp = self->make_response_promise<std::string>();
        uint64_t id = ++self->state.next_id;
        self->state.waiting.emplace(id, rp);
        caf::actor me = caf::actor_cast<caf::actor>(self);
        ep->h.region(std::move(bytes), [me, id](std::string answer) {
          caf::anon_send(me, answer_atom::value, id, std::move(answer));
        });
        return rp;
      },
      [self, ep](turn_atom, std::string& bytes) -> caf::result<std::string> {
        auto f = decode_forward(bytes);
        if (!f) {
          actors::turn_outcome bad;
          bad.st = actors::turn_outcome::status::internal;
          bad.message = f.err().message;
          return encode_answer(bad);
        }
        auto rp = self->make_response_promise<std::string>();
        uint64_t id = ++self->state.next_id;
        self->state.waiting.emplace(id, rp);
        caf::actor me = caf::actor_cast<caf::actor>(self);
        ep->h.turn(std::move(f->in), f->hops, [me, id](actors::turn_outcome out) {
          caf::anon_send(me, answer_atom::value, id, encode_answer(out));
        });
        return rp;
      },
      [self](answer_atom, uint64_t id, std::string& bytes) {
        auto it = self->state.waiting.find(id);
        if (it == self->state.waiting.end()) return;
        it->second.deliver(std::move(bytes));
        self->state.waiting.erase(it);
      },
  };
}

}  // namespace

endpoint::endpoint(caf::actor_system& system, handlers h, std::chrono::milliseconds timeout)
    : impl_(std::make_shared<impl>(system, std::move(h), timeout)) {
  impl_->actor = system.spawn(endpoint_actor, impl_);
}

endpoint::~endpoint() { stop(); }

result<uint16_t> endpoint::listen(const std::string& address, uint16_t port) {
  auto p = impl_->system.middleman().publish(impl_->actor, port,
                                             address.empty() ? nullptr : address.c_str(), true);
  if (!p)
    return make_error("cluster_listen_failed", "cluster.port " + std::to_string(port) + " on " +
                                                   address + ": " +
                                                   impl_->system.render(p.error()));
  impl_->port = *p;
  return *p;
}

result<void> endpoint::connect(const std::string& node, const std::string& host, uint16_t port) {
  auto peer = impl_->system.middleman().remote_actor(host, port);
  if (!peer)
    return make_error("cluster_connect_failed", "node " + node + " at " + host + ":" +
                                                    std::to_string(port) + ": " +
                                                    impl_->system.render(peer.error()));
  caf::anon_send(impl_->actor, watch_atom::value, node, *peer);
  impl_->mark(node, true);
  return {};
}

bool endpoint::connected(const std::string& node) const {
  std::lock_guard<std::mutex> lock(impl_->m);
  return impl_->up.count(node) > 0;
}

void endpoint::forward(const std::string& node, const actors::inbound& in, uint32_t hops,
                       const std::string& from, std::function<void(actors::turn_outcome)> done) {
  auto j = std::make_shared<fwd_job>();
  j->node = node;
  j->bytes = encode_forward(in, hops, from);
  j->done = [node, done = std::move(done)](result<std::string> bytes) {
    if (!bytes) return done(unavailable(bytes.err().message));
    auto out = decode_answer(*bytes);
    if (!out) return done(unavailable("node " + node + " answered garbage"));
    done(std::move(*out));
  };
  caf::anon_send(impl_->actor, fwd_atom::value, std::move(j));
}

void endpoint::call_region(const std::string& node, std::string bytes,
                           std::function<void(result<std::string>)> done) {
  auto j = std::make_shared<fwd_job>();
  j->node = node;
  j->region = true;
  j->bytes = std::move(bytes);
  j->done = std::move(done);
  caf::anon_send(impl_->actor, fwd_atom::value, std::move(j));
}

void endpoint::nudge(const std::string& node) {
  caf::anon_send(impl_->actor, nudge_atom::value, node);
}

void endpoint::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  if (impl_->port != 0) impl_->system.middleman().unpublish(impl_->actor, impl_->port);
  caf::anon_send_exit(impl_->actor, caf::exit_reason::user_shutdown);
}

}  // namespace parley::cluster
