#include "cluster/node/cluster_node.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "actors/registry/bot_registry.hpp"
#include "cluster/endpoint/endpoint.hpp"
#include "cluster/node/member_record.hpp"
#include "cluster/node/outbox_drain.hpp"
#include "cluster/node/transcript_drain.hpp"
#include "cluster/placement/placement.hpp"
#include "src/common/clock.hpp"
#include "src/io/lanes.hpp"
#include "src/log/log.hpp"
#include "src/store/redis.hpp"

namespace parley::cluster {
namespace {

using actors::inbound;
using actors::turn_outcome;
using clock_type = std::chrono::steady_clock;

/// A forwarded turn crosses at most this many nodes (the entry node's view and the
/// owner's may differ for a heartbeat; past it the client retries).
constexpr uint32_t max_hops = 2;

/// A turn out of hops whose node still sends it elsewhere two views after it came
/// (the view has settled) travels on, up to this many nodes in all; past it the
/// answer is 503 (the buffer's deadline bounds the wait at each node).
constexpr uint32_t settled_hops = max_hops + 2;

/// Members whose record is gone stay listed (state down) this long.
constexpr int64_t forget_after_ms = 10 * 60 * 1000;

/// While a leaving shard waits for its turns in flight, the membership thread looks
/// again at least this often (it is woken when such a turn ends).
constexpr auto handoff_poll = std::chrono::milliseconds(5);

turn_outcome unavailable(std::string message) {
  turn_outcome out;
  out.st = turn_outcome::status::unavailable;
  out.message = std::move(message);
  return out;
}

/// A message waiting for its shard to get an owner that holds it.
struct pending {
  inbound in;
  std::function<void(turn_outcome)> done;
  uint32_t hops = 0;
  clock_type::time_point deadline;
  uint64_t views = 0;  // the node's view count when it was buffered
};

}  // namespace

struct cluster_node::impl {
  deps d;
  cluster_options o;
  lease_keys keys;
  std::unique_ptr<endpoint> ep;
  std::unique_ptr<transcript_drain> drain_transcripts;
  std::unique_ptr<outbox_drain> drain_outbox;
  std::unique_ptr<timer_poller> timers;
  std::unique_ptr<node_probe> metrics;
  log::rate_limited stall_log{std::chrono::seconds(5)};

  // The view: what the last heartbeat read. Guarded by `m`.
  mutable std::mutex m;
  std::vector<std::string> up_ids;  // sorted
  std::vector<int> desired;         // per shard: index into up_ids, -1 none
  std::map<std::string, member_info> members;
  /// Peers whose connection dropped: (incarnation, hb) when it did. Such a peer is
  /// down until it heartbeats again (or restarts) and is reconnected.
  std::map<std::string, std::pair<std::string, uint64_t>> lost;
  const std::string incarnation =
      std::to_string(common::now_unix_ms()) + "-" + std::to_string(::getpid());
  std::unordered_map<uint32_t, std::deque<pending>> buffer;
  std::size_t buffered = 0;
  /// Per shard: the node holding its lease as this node last learned it (the lease
  /// read at each heartbeat, its own acquires and releases, the node that answered a
  /// turn it forwarded); "" when none. A hint for routing only: the holder's own
  /// shard table decides whether it serves.
  std::vector<std::string> holder_of;
  uint64_t views = 0;  // views computed (update_view); guarded by `m`

  // Handoff progress (membership thread only).
  std::vector<clock_type::time_point> leaving_since;
  bool handoff_waiting = false;  // a leaving shard waits for a turn in flight
  /// When this node last released a shard (steady ms; 0: never). Guarded by `m`.
  int64_t last_release_ms = 0;
  /// Turns this node relays for peers (received, then forwarded on) not yet answered:
  /// a draining node waits for them before its endpoint stops.
  std::atomic<int> relaying{0};

  std::atomic<bool> draining{false};
  std::atomic<bool> is_up{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> hb{0};
  std::string state = "joining";  // membership thread

  std::mutex wake_m;
  std::condition_variable wake;
  bool woken = false;          // under wake_m: run the next heartbeat now (a peer lost, a nudge)
  bool handoff_woken = false;  // under wake_m: a leaving shard's last turn in flight ended
  std::atomic<bool> nudged{false};  // a peer released shards: take_if_nudged
  std::thread loop;

  // Lanes' proof of life: steady ms when each lane last ran its heartbeat task.
  std::unique_ptr<std::atomic<int64_t>[]> lane_seen;

  // Connection attempts in progress, by peer (each on its own thread: a connect to a
  // paused peer blocks in CAF until the peer resumes).
  std::set<std::string> connecting;
  std::mutex connect_m;
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);

  impl(deps dd, cluster_options oo) : d(dd), o(std::move(oo)) {
    keys.prefix = o.key_prefix;
    keys.region = o.region;
    leaving_since.resize(o.shards);
    holder_of.resize(o.shards);
    desired.assign(o.shards, -1);
    if (d.metrics != nullptr) metrics = std::make_unique<node_probe>(*d.metrics);
  }

  static int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock_type::now().time_since_epoch())
        .count();
  }

  // ---------------------------------------------------------------- routing

  void route(inbound in, std::function<void(turn_outcome)> done, uint32_t hops) {
    uint32_t s = shard_of(in.tenant, in.session_id, o.shards);
    if (try_local(s, in, done)) return;
    std::unique_lock<std::mutex> lock(m);
    // Again under the lock: the membership thread changes holdings under it.
    if (try_local(s, in, done)) return;
    std::string peer = next_hop(s, hops);
    // A turn that may travel no further waits too: this node's view may be a moment
    // behind the sender's (a peer that just started draining), and then it is about to
    // take the shard (flush).
    if (peer.empty() || hops >= max_hops)
      return park(lock, s, std::move(in), std::move(done), hops);
    lock.unlock();
    forward(peer, s, std::move(in), std::move(done), hops);
  }

  /// Where a turn of shard `s` that this node does not serve goes next (under `m`); ""
  /// to buffer it here. The entry node (hops 0) sends it to the node holding the lease,
  /// which serves it until it hands the shard over, so a moving shard's turns wait
  /// only for its own handover, not for every node's view to change. A node a turn
  /// was forwarded to, and every node when no live peer holds the shard, sends it to
  /// the desired owner (which buffers it until it holds the lease): never back to the
  /// holder, which forwarded it because it is handing the shard over.
  std::string next_hop(uint32_t s, uint32_t hops) const {
    if (hops == 0) {
      const auto& h = holder_of[s];
      if (!h.empty() && h != o.node && is_member_alive(h) && ep->connected(h)) return h;
    }
    int owner = desired[s];
    if (owner < 0) return {};
    const auto& peer = up_ids[static_cast<std::size_t>(owner)];
    if (peer == o.node || !ep->connected(peer)) return {};
    return peer;
  }

  /// Runs the turn here when this node holds its shard and is not handing it over
  /// (then `in` and `done` are moved from). The turn is counted before the check, so
  /// a handoff that sets `leaving` and then finds no turn in flight cannot miss it.
  bool try_local(uint32_t s, inbound& in, std::function<void(turn_outcome)>& done) {
    d.table->turn_started(s);
    if (d.table->held(s) == 0 || d.table->leaving(s)) {
      d.table->turn_finished(s);
      return false;
    }
    d.rt->submit(std::move(in), [this, s, done = std::move(done)](turn_outcome out) {
      out.served_by = o.node;
      d.table->turn_finished(s);
      // The shard's handover waits for this turn: it may go now.
      if (d.table->leaving(s) && d.table->in_flight(s) == 0) wake_handoff();
      done(std::move(out));
    });
    return true;
  }

  /// Buffers a message until its shard has a holder (called with `m` held).
  void park(std::unique_lock<std::mutex>& lock, uint32_t s, inbound in,
            std::function<void(turn_outcome)> done, uint32_t hops) {
    if (buffered >= o.buffer_max) {
      lock.unlock();
      if (metrics) metrics->rejected_full->Increment();
      return done(unavailable(
          "too many messages are waiting for moving conversations on this node: retry"));
    }
    buffer[s].push_back(
        pending{std::move(in), std::move(done), hops, clock_type::now() + o.buffer_timeout, views});
    ++buffered;
    if (metrics) metrics->buffered->Set(static_cast<double>(buffered));
  }

  void forward(const std::string& peer, uint32_t s, inbound in,
               std::function<void(turn_outcome)> done, uint32_t hops) {
    if (metrics) metrics->forwarded->Increment();
    if (hops > 0) relaying.fetch_add(1);
    std::string tenant = in.tenant;
    ep->forward(peer, in, hops + 1, o.node,
                [this, s, hops, tenant, done = std::move(done)](turn_outcome out) mutable {
                  if (hops > 0) relaying.fetch_sub(1);
                  // The node that ran it held the lease: the next turns go there. Not
                  // a draining node: it only ever gives shards away, and a late answer
                  // must not undo the lease read that saw it release them.
                  if (hops == 0 && !out.served_by.empty()) {
                    std::lock_guard<std::mutex> lock(m);
                    if (holder_of[s] != out.served_by) {  // usually known already
                      auto it = members.find(out.served_by);
                      if (it != members.end() && it->second.state == "up")
                        holder_of[s] = out.served_by;
                    }
                  }
                  // The program stays on each node (its registry): the gateway renders
                  // variables from it.
                  if (!out.result || out.bot_version == 0 || d.registry == nullptr)
                    return done(std::move(out));
                  auto shared = std::make_shared<turn_outcome>(std::move(out));
                  d.registry->version(
                      tenant, shared->bot, shared->bot_version,
                      [shared, done = std::move(done)](result<actors::loaded_program> p) {
                        if (p.ok()) shared->program = p->program;
                        done(std::move(*shared));
                      });
                });
  }

  /// Sends every buffered message of a shard that can now go somewhere, and answers
  /// the ones that waited too long. Membership thread.
  void flush() {
    std::vector<pending> go_local, expired;
    std::vector<std::pair<std::string, pending>> go_remote;
    auto now = clock_type::now();
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto it = buffer.begin(); it != buffer.end();) {
        uint32_t s = it->first;
        auto& q = it->second;
        bool here = d.table->held(s) != 0 && !d.table->leaving(s);
        while (!q.empty()) {
          auto& p = q.front();
          std::string peer = here ? std::string() : next_hop(s, p.hops);
          // Out of hops: answered once two views since it came still send it elsewhere
          // (the views agree: it will not be this node's).
          bool stuck = !peer.empty() && p.hops >= max_hops;
          if (here)
            go_local.push_back(std::move(p));
          else if (!peer.empty() && (!stuck || views >= p.views + 2))
            go_remote.emplace_back(std::move(peer), std::move(p));
          else if (p.deadline <= now)
            expired.push_back(std::move(p));
          else
            break;  // in arrival order: the rest waits behind it
          q.pop_front();
          --buffered;
        }
        it = q.empty() ? buffer.erase(it) : std::next(it);
      }
      if (metrics) metrics->buffered->Set(static_cast<double>(buffered));
    }
    for (auto& p : go_local) route(std::move(p.in), std::move(p.done), p.hops);
    for (auto& [peer, p] : go_remote) {
      if (p.hops >= settled_hops) {
        if (metrics) metrics->rejected_hops->Increment();
        p.done(unavailable("the conversation's shard is moving between nodes: retry"));
        continue;
      }
      uint32_t s = shard_of(p.in.tenant, p.in.session_id, o.shards);
      forward(peer, s, std::move(p.in), std::move(p.done), p.hops);
    }
    for (auto& p : expired) {
      if (metrics) metrics->rejected_timeout->Increment();
      p.done(unavailable("the conversation's shard is moving between nodes: retry"));
    }
  }

  // ---------------------------------------------------------------- Redis

  /// One pipeline, waited for (membership thread; each command is bounded by the
  /// client's command timeout).
  std::vector<result<store::redis_reply>> run(std::vector<std::vector<std::string>> cmds) {
    return d.redis->pipeline_sync(std::move(cmds));
  }

  /// A script over any number of shards, waited for.
  result<store::redis_reply> eval(const store::redis_script& script,
                                  const std::vector<std::string>& ks,
                                  const std::vector<std::string>& args) {
    std::promise<result<store::redis_reply>> p;
    auto f = p.get_future();
    d.redis->eval_list(script, ks, args,
                       [&p](result<store::redis_reply> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  // ---------------------------------------------------------------- heartbeat

  /// Whether every lane ran its last task within half a lease; posts the next ones.
  bool lanes_alive() {
    if (d.lanes == nullptr) return true;
    int64_t now = steady_ms();
    int64_t limit = std::max<int64_t>(o.lease.count() / 2, 2 * o.heartbeat.count());
    bool alive_all = true;
    for (std::size_t i = 0; i < d.lanes->size(); ++i) {
      if (now - lane_seen[i].load(std::memory_order_acquire) > limit) alive_all = false;
      auto* seen = &lane_seen[i];
      boost::asio::post(d.lanes->at(i),
                        [seen] { seen->store(steady_ms(), std::memory_order_release); });
    }
    return alive_all;
  }

  std::string record() const {
    nlohmann::json j = {{"id", o.node},
                        {"host", o.advertise},
                        {"port", port},
                        {"http", http_url()},
                        {"state", state},
                        {"version", o.version},
                        {"inc", incarnation},
                        {"hb", hb.load()},
                        {"ts", common::now_unix_ms()},
                        {"shards", d.table->held_count()},
                        {"live", d.rt != nullptr ? d.rt->live_count() : 0}};
    return j.dump();
  }
  uint16_t port = 0;
  mutable std::mutex url_m;
  std::string http_url() const {
    std::lock_guard<std::mutex> lock(url_m);
    return o.http_url;
  }

  void tick() {
    if (!lanes_alive()) {
      if (metrics) metrics->stalls->Increment();
      stall_log.warn("cluster_heartbeat_skipped",
                     {{"reason", "a lane did not run its heartbeat task within half a lease"},
                      {"node", o.node}});
      return;  // no renewal: a stalled node loses its leases as a dead one does
    }
    hb.fetch_add(1);
    take_if_nudged();
    // A drain is announced in this very record, and every peer is nudged to read it:
    // they stop routing to this node now, not a heartbeat later.
    const bool announce = draining && state != "draining";
    if (draining) state = "draining";
    int64_t now_ms = common::now_unix_ms();
    std::vector<std::vector<std::string>> cmds;
    cmds.push_back({"SET", keys.member(o.node), record(), "PX", std::to_string(o.lease.count())});
    cmds.push_back({"ZADD", keys.members(), std::to_string(now_ms), o.node});
    cmds.push_back(
        {"ZREMRANGEBYSCORE", keys.members(), "-inf", std::to_string(now_ms - forget_after_ms)});
    cmds.push_back({"ZRANGE", keys.members(), "0", "-1"});
    cmds.push_back({"GET", keys.drain(o.node)});
    std::vector<std::string> mget{"MGET"};
    for (uint32_t s = 0; s < o.shards; ++s) mget.push_back(keys.lease(s));
    cmds.push_back(std::move(mget));
    auto r = run(std::move(cmds));
    take_if_nudged();
    for (const auto& x : r)
      if (!x.ok()) {
        log::warn("cluster_heartbeat_failed", {{"error", x.err().message}});
        return;
      }
    if (!r[4]->is_nil()) {
      run({{"DEL", keys.drain(o.node)}});
      if (!draining.exchange(true)) {
        log::info("cluster_drain_requested", {{"node", o.node}});
        if (o.on_drain_requested) o.on_drain_requested();
      }
    }
    std::vector<std::string> ids;
    for (const auto& e : r[3]->elements) ids.push_back(e.str);
    std::vector<std::string> holders(o.shards);
    for (uint32_t s = 0; s < o.shards && s < r[5]->elements.size(); ++s)
      holders[s] = r[5]->elements[s].is_nil() ? "" : r[5]->elements[s].str;

    std::map<std::string, member_info> seen;
    if (!ids.empty()) {
      std::vector<std::string> get{"MGET"};
      for (const auto& id : ids) get.push_back(keys.member(id));
      auto recs = run({std::move(get)});
      take_if_nudged();
      if (!recs[0].ok()) return;
      for (std::size_t i = 0; i < ids.size() && i < recs[0]->elements.size(); ++i) {
        if (recs[0]->elements[i].is_nil()) continue;
        auto mi = parse_member(recs[0]->elements[i].str);
        if (mi) seen[mi->id] = std::move(*mi);
      }
    }
    if (announce)
      for (const auto& [id, mi] : seen)
        if (id != o.node) ep->nudge(id);
    update_view(std::move(seen));
    shards(holders);
    flush();
    connect_peers();
  }

  /// Recomputes the up members and the desired owner of every shard.
  void update_view(std::map<std::string, member_info> seen) {
    // Joining until every up peer is reachable, so forwarding works from the first
    // turn this node owns; then up (unless draining).
    bool reachable = true;
    for (const auto& [id, mi] : seen)
      if (id != o.node && mi.state == "up" && !ep->connected(id)) reachable = false;
    if (draining) {
      state = "draining";
    } else if (state == "joining" && (reachable || hb > 20)) {
      state = "up";
      // Its peers hand it its shards from their next heartbeat: make that now, once
      // the record they read says up.
      run({{"SET", keys.member(o.node), record(), "PX", std::to_string(o.lease.count())}});
      for (const auto& [id, mi] : seen)
        if (id != o.node) ep->nudge(id);
    }
    std::vector<std::string> ups;
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto it = lost.begin(); it != lost.end();) {
        auto s = seen.find(it->first);
        // Back once it heartbeats again after the loss and we reconnected; forgotten
        // once its record is gone.
        bool again = s != seen.end() && (s->second.incarnation != it->second.first ||
                                         s->second.hb > it->second.second + 1);
        if (s == seen.end() || (again && ep->connected(it->first)))
          it = lost.erase(it);
        else
          ++it;
      }
      for (const auto& [id, mi] : seen) {
        if (id == o.node) continue;
        if (mi.state == "up" && lost.count(id) == 0) ups.push_back(id);
      }
      if (state == "up") ups.push_back(o.node);
      std::sort(ups.begin(), ups.end());
      if (ups != up_ids) {
        log::info("cluster_members_changed",
                  {{"node", o.node}, {"up", nlohmann::json(ups).dump()}});
        up_ids = ups;
        std::vector<uint64_t> hashes;
        for (const auto& id : up_ids) hashes.push_back(stable_hash(id));
        for (uint32_t s = 0; s < o.shards; ++s) desired[s] = owner_of_hashed(s, hashes);
      }
      seen[o.node].id = o.node;
      members = std::move(seen);
      ++views;
    }
    is_up = state == "up";
    if (metrics) metrics->members_up->Set(static_cast<double>(ups.size()));
  }

  /// Whether `id` may still hold leases: a record (joining, up or draining) and no
  /// lost connection. Only the leases of a node that is not are taken over.
  bool is_member_alive(const std::string& id) const {
    auto it = members.find(id);
    return it != members.end() && !it->second.state.empty() && it->second.state != "down" &&
           lost.count(id) == 0;
  }

  /// Whether this node should own `s` (under `m`).
  bool mine(uint32_t s) const {
    return !draining && desired[s] >= 0 && up_ids[static_cast<std::size_t>(desired[s])] == o.node;
  }

  /// From the leases as the heartbeat read them: starts handing over the held shards
  /// this node should no longer own, hands over those that are ready, takes the free
  /// (or orphaned) ones it should own and renews the rest.
  void shards(const std::vector<std::string>& holders) {
    std::vector<uint32_t> acquire;
    std::vector<std::string> acquire_expect;
    {
      std::lock_guard<std::mutex> lock(m);
      for (uint32_t s = 0; s < o.shards; ++s) {
        const auto& cur = holders[s];
        std::string holder(holder_node(cur));
        holder_of[s] = d.table->held(s) != 0 ? o.node : holder;
        if (!mine(s)) continue;
        if (d.table->held(s) != 0) {
          d.table->set_leaving(s, false);  // it came back before it left
        } else if (cur.empty() || holder == o.node || !is_member_alive(holder)) {
          acquire.push_back(s);
          acquire_expect.push_back(cur);
        }
      }
      mark_leaving();
    }
    handoff_waiting = hand_over();
    take_if_nudged();
    take(acquire, acquire_expect);
    renew();
    if (metrics) metrics->shards_owned->Set(static_cast<double>(d.table->held_count()));
  }

  /// Marks leaving the held shards this node should no longer own, so that at most
  /// `handoff_batch` are leaving at a time (under `m`). From then on their turns go
  /// to the next owner.
  void mark_leaving() {
    std::size_t leaving_now = 0;
    for (uint32_t s = 0; s < o.shards; ++s)
      if (d.table->leaving(s)) ++leaving_now;
    auto now = clock_type::now();
    for (uint32_t s = 0; s < o.shards && leaving_now < o.handoff_batch; ++s) {
      if (d.table->held(s) == 0 || d.table->leaving(s) || mine(s)) continue;
      d.table->set_leaving(s, true);
      leaving_since[s] = now;
      ++leaving_now;
    }
  }

  /// Releases every leaving shard whose turns in flight have ended (or that waited
  /// `handoff_timeout`), tells the next owners at once and passivates the shards'
  /// conversations. Membership thread. Returns whether
  /// a leaving shard still waits for a turn in flight (it goes as soon as that ends:
  /// run_loop).
  bool hand_over() {
    for (;;) {
      std::vector<uint32_t> release;
      bool waiting = false;
      auto now = clock_type::now();
      for (uint32_t s = 0; s < o.shards; ++s) {
        if (d.table->held(s) == 0 || !d.table->leaving(s)) continue;
        if (d.table->in_flight(s) == 0 || now - leaving_since[s] >= o.handoff_timeout)
          release.push_back(s);
        else
          waiting = true;
      }
      if (release.empty()) return waiting;
      std::vector<std::string> ks, args{"release", ""};
      for (auto s : release) {
        ks.push_back(keys.lease(s));
        args.push_back(holder_value(o.node, d.table->held(s)));
      }
      // Whatever the script answers, the shard is no longer ours to serve.
      (void)eval(holder_script(), ks, args);
      std::set<std::string> tell;
      {
        std::lock_guard<std::mutex> lock(m);
        for (auto s : release) {
          d.table->set_held(s, 0);
          d.table->set_leaving(s, false);
          holder_of[s].clear();
          if (desired[s] >= 0) tell.insert(up_ids[static_cast<std::size_t>(desired[s])]);
        }
        last_release_ms = steady_ms();
        // The last shard of a drain: every peer reads the leases again now, so none
        // keeps sending this node turns of shards it no longer holds.
        if (draining && d.table->held_count() == 0)
          for (const auto& [id, mi] : members) tell.insert(id);
      }
      if (metrics) metrics->handoffs->Increment(static_cast<double>(release.size()));
      // They take the shards at once instead of at their next heartbeat: the messages
      // they buffered for them wait one round trip, not up to two heartbeats.
      for (const auto& n : tell)
        if (n != o.node) ep->nudge(n);
      passivate(release);
    }
  }

  /// Takes the leases of `todo`, each iff it still has the value in `expect` ("":
  /// absent); returns how many it took.
  std::size_t take(const std::vector<uint32_t>& todo, const std::vector<std::string>& expect) {
    if (todo.empty()) return 0;
    std::vector<std::string> ks, args{o.node, std::to_string(o.lease.count())};
    for (std::size_t i = 0; i < todo.size(); ++i) {
      ks.push_back(keys.lease(todo[i]));
      ks.push_back(keys.epoch(todo[i]));
      args.push_back(expect[i]);
    }
    auto r = eval(acquire_script(), ks, args);
    if (!r.ok()) return 0;
    std::size_t got = 0;
    {
      std::lock_guard<std::mutex> lock(m);
      for (std::size_t i = 0; i < todo.size() && i < r->elements.size(); ++i) {
        auto e = r->elements[i].integer;
        if (e <= 0) continue;
        d.table->set_held(todo[i], static_cast<uint64_t>(e));
        holder_of[todo[i]] = o.node;
        if (drain_transcripts) drain_transcripts->acquired(todo[i]);
        if (drain_outbox) drain_outbox->acquired(todo[i]);
        ++got;
      }
    }
    if (got > 0) {
      if (metrics) metrics->leases_acquired->Increment(static_cast<double>(got));
      log::info("cluster_shards_acquired", {{"node", o.node}, {"count", std::to_string(got)}});
    }
    return got;
  }

  /// Takes at once the free leases of the shards this node should own, before the
  /// heartbeat's reads: on a nudge a peer has just released them, and the turns
  /// buffered for them wait one round trip. Returns how many it took.
  std::size_t take_free() {
    std::vector<uint32_t> todo;
    {
      std::lock_guard<std::mutex> lock(m);
      for (uint32_t s = 0; s < o.shards; ++s)
        if (mine(s) && d.table->held(s) == 0) todo.push_back(s);
    }
    return take(todo, std::vector<std::string>(todo.size()));
  }

  /// A peer released shards this node should own (a nudge): takes them and sends their
  /// buffered turns now, between the heartbeat's steps, not after them.
  void take_if_nudged() {
    if (nudged.exchange(false) && take_free() > 0) flush();
  }

  /// Renews every lease held; a lease found taken or expired is lost.
  void renew() {
    std::vector<uint32_t> held;
    std::vector<std::string> ks, args{"renew", std::to_string(o.lease.count())};
    for (uint32_t s = 0; s < o.shards; ++s)
      if (auto e = d.table->held(s); e != 0) {
        held.push_back(s);
        ks.push_back(keys.lease(s));
        args.push_back(holder_value(o.node, e));
      }
    if (held.empty()) return;
    auto r = eval(holder_script(), ks, args);
    if (!r.ok()) return;
    std::vector<uint32_t> gone;
    for (std::size_t i = 0; i < held.size() && i < r->elements.size(); ++i)
      if (r->elements[i].integer != 1) gone.push_back(held[i]);
    if (gone.empty()) return;
    if (metrics) metrics->leases_lost->Increment(static_cast<double>(gone.size()));
    log::warn("cluster_leases_lost", {{"node", o.node},
                                      {"count", std::to_string(gone.size())},
                                      {"first_shard", std::to_string(gone.front())}});
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto s : gone) {
        d.table->set_held(s, 0);
        d.table->set_leaving(s, false);
        holder_of[s].clear();
      }
    }
    passivate(gone);
  }

  /// Stops the live conversations of shards this node no longer holds.
  void passivate(const std::vector<uint32_t>& gone) {
    if (gone.empty() || d.rt == nullptr) return;
    std::vector<bool> set(o.shards, false);
    for (auto s : gone) set[s] = true;
    d.rt->passivate_where(
        [&](std::string_view t, std::string_view c) { return set[shard_of(t, c, o.shards)]; });
  }

  /// Starts a connection attempt to every member not connected (one thread each).
  void connect_peers() {
    std::vector<member_info> todo;
    {
      std::lock_guard<std::mutex> lock(m);
      for (const auto& [id, mi] : members)
        if (id != o.node && (mi.state == "up" || mi.state == "joining" || mi.state == "draining") &&
            mi.port != 0 && !ep->connected(id))
          todo.push_back(mi);
    }
    for (auto& mi : todo) {
      {
        std::lock_guard<std::mutex> lock(connect_m);
        if (!connecting.insert(mi.id).second) continue;
      }
      // Detached: a connect to a paused peer blocks in CAF until it resumes (or the
      // middleman stops); `alive` keeps a late return from touching a stopped node.
      std::thread([this, mi, alive = alive] {
        auto r = ep->connect(mi.id, mi.host, mi.port);
        if (!alive->load()) return;
        if (r.ok()) log::info("cluster_peer_connected", {{"node", o.node}, {"peer", mi.id}});
        std::lock_guard<std::mutex> lock(connect_m);
        connecting.erase(mi.id);
      }).detach();
    }
  }

  void peer_down(const std::string& node) {
    if (metrics) metrics->peers_lost->Increment();
    {
      std::lock_guard<std::mutex> lock(m);
      auto it = members.find(node);
      lost[node] = it == members.end() ? std::make_pair(std::string(), uint64_t{0})
                                       : std::make_pair(it->second.incarnation, it->second.hb);
    }
    // Recompute at once rather than at the next heartbeat: the dead node's shards are
    // taken as soon as possible.
    std::lock_guard<std::mutex> lock(wake_m);
    woken = true;
    wake.notify_all();
  }

  void run_loop() {
    while (!stopping) {
      auto next = clock_type::now() + o.heartbeat;
      tick();
      while (wait_for_handoff(next)) handoff_waiting = hand_over();
    }
  }

  /// Waits for the next heartbeat (`next`) or a wake-up (then false) or, while a
  /// leaving shard waits for a turn in flight, until such a turn ends (then true; at
  /// most `handoff_poll`, for the shards whose wait times out).
  bool wait_for_handoff(clock_type::time_point next) {
    std::unique_lock<std::mutex> lock(wake_m);
    auto until = handoff_waiting ? std::min(next, clock_type::now() + handoff_poll) : next;
    wake.wait_until(lock, until, [this] { return stopping.load() || woken || handoff_woken; });
    handoff_woken = false;
    if (stopping || woken || clock_type::now() >= next) {
      woken = false;
      return false;
    }
    return true;
  }

  void wake_handoff() {
    std::lock_guard<std::mutex> lock(wake_m);
    handoff_woken = true;
    wake.notify_all();
  }
};

cluster_node::cluster_node(deps d, cluster_options o)
    : impl_(std::make_unique<impl>(d, std::move(o))) {}

cluster_node::~cluster_node() { stop(); }

result<uint16_t> cluster_node::start() {
  auto* i = impl_.get();
  endpoint::handlers h;
  h.turn = [i](inbound in, uint32_t hops, std::function<void(turn_outcome)> done) {
    if (i->metrics) i->metrics->received->Increment();
    i->route(std::move(in), std::move(done), hops);
  };
  h.peer_down = [i](const std::string& node) { i->peer_down(node); };
  h.nudged = [i] {
    i->nudged = true;
    std::lock_guard<std::mutex> lock(i->wake_m);
    i->woken = true;
    i->wake.notify_all();
  };
  h.region = i->o.region_requests;
  i->ep = std::make_unique<endpoint>(*i->d.system, std::move(h), i->o.forward_timeout);
  auto port = i->ep->listen(i->o.listen_address, i->o.port);
  if (!port) return port.err();
  i->port = *port;
  if (i->d.lanes != nullptr) {
    i->lane_seen = std::make_unique<std::atomic<int64_t>[]>(i->d.lanes->size());
    for (std::size_t k = 0; k < i->d.lanes->size(); ++k) i->lane_seen[k] = impl::steady_ms();
  }
  log::info("cluster_listening", {{"node", i->o.node},
                                  {"region", i->o.region},
                                  {"port", std::to_string(*port)},
                                  {"shards", std::to_string(i->o.shards)}});
  if (i->d.pg != nullptr) {
    transcript_drain::options t;
    t.node = i->o.node;
    t.keys = i->keys;
    i->drain_transcripts =
        std::make_unique<transcript_drain>(*i->d.redis, *i->d.pg, *i->d.table, t, i->d.metrics);
    i->drain_transcripts->start();
    if (i->d.deliver) {
      auto ob = i->d.outbox;
      ob.node = i->o.node;
      ob.keys = i->keys;
      i->drain_outbox = std::make_unique<outbox_drain>(*i->d.redis, *i->d.pg, *i->d.table,
                                                       i->d.deliver, ob, i->d.metrics);
      i->drain_outbox->start();
    }
  }
  auto topts = i->d.timers;
  topts.keys = i->keys;
  i->timers = std::make_unique<timer_poller>(*i->d.redis, *i->d.table, *this, topts, i->d.metrics);
  i->timers->start();
  i->loop = std::thread([i] { i->run_loop(); });
  return *port;
}

void cluster_node::submit(inbound in, std::function<void(turn_outcome)> done) {
  impl_->route(std::move(in), std::move(done), 0);
}

void cluster_node::outbox_added(uint32_t shard) {
  if (impl_->drain_outbox) impl_->drain_outbox->notify(shard);
}

void cluster_node::drain() {
  if (!impl_->draining.exchange(true)) log::info("cluster_draining", {{"node", impl_->o.node}});
  std::lock_guard<std::mutex> lock(impl_->wake_m);
  impl_->woken = true;
  impl_->wake.notify_all();
}

bool cluster_node::wait_drained(std::chrono::milliseconds deadline) {
  auto end = clock_type::now() + deadline;
  while (clock_type::now() < end) {
    {
      std::lock_guard<std::mutex> lock(impl_->m);
      // Drained once it holds nothing, buffers nothing, relays nothing and a heartbeat
      // has passed since its last release: every peer has read the leases again by
      // then (they were nudged), so none sends it turns any more.
      if (impl_->d.table->held_count() == 0 && impl_->buffered == 0 && impl_->relaying == 0 &&
          impl::steady_ms() - impl_->last_release_ms >= impl_->o.heartbeat.count())
        return true;
      // Nobody to hand over to (a lone node): its leases go when it leaves.
      bool others = false;
      for (const auto& id : impl_->up_ids)
        if (id != impl_->o.node) others = true;
      if (!others) return true;
    }
    // Polled: the membership thread hands the shards over.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void cluster_node::stop() {
  auto* i = impl_.get();
  if (i->stopping.exchange(true)) return;
  i->alive->store(false);
  {
    std::lock_guard<std::mutex> lock(i->wake_m);
    i->woken = true;
    i->wake.notify_all();
  }
  if (i->loop.joinable()) i->loop.join();
  // The copy in progress finishes; what is left waits in Redis for the next owner.
  if (i->timers) i->timers->stop();
  if (i->drain_transcripts) i->drain_transcripts->stop();
  if (i->drain_outbox) i->drain_outbox->stop();
  // Leave: whatever is still held is released, and peers see the record gone.
  std::vector<std::string> ks, args{"release", ""};
  for (uint32_t s = 0; s < i->o.shards; ++s)
    if (auto e = i->d.table->held(s); e != 0) {
      ks.push_back(i->keys.lease(s));
      args.push_back(holder_value(i->o.node, e));
      i->d.table->set_held(s, 0);
    }
  if (!ks.empty()) (void)i->eval(holder_script(), ks, args);
  if (i->ep) i->run({{"DEL", i->keys.member(i->o.node)}});
  std::vector<pending> left;
  {
    std::lock_guard<std::mutex> lock(i->m);
    for (auto& [s, q] : i->buffer)
      for (auto& p : q) left.push_back(std::move(p));
    i->buffer.clear();
    i->buffered = 0;
  }
  for (auto& p : left) p.done(unavailable("the node is shutting down"));
  if (i->ep) i->ep->stop();
  log::info("cluster_left", {{"node", i->o.node}});
}

void cluster_node::set_http_url(std::string url) {
  std::lock_guard<std::mutex> lock(impl_->url_m);
  impl_->o.http_url = std::move(url);
}

bool cluster_node::up() const { return impl_->is_up; }

const std::string& cluster_node::id() const { return impl_->o.node; }

void cluster_node::status(std::function<void(result<nlohmann::json>)> done) {
  auto* i = impl_.get();
  i->d.redis->command({"ZRANGE", i->keys.members(), "0", "-1"}, [i, done = std::move(done)](
                                                                    result<store::redis_reply> r) {
    if (!r) return done(r.err());
    std::vector<std::string> ids;
    for (const auto& e : r->elements) ids.push_back(e.str);
    auto out = nlohmann::json{{"region", i->o.region},
                              {"shards", i->o.shards},
                              {"self", i->o.node},
                              {"nodes", nlohmann::json::array()}};
    if (ids.empty()) return done(std::move(out));
    std::vector<std::string> get{"MGET"};
    for (const auto& id : ids) get.push_back(i->keys.member(id));
    i->d.redis->command(std::move(get), [ids, out = std::move(out), done = std::move(done)](
                                            result<store::redis_reply> recs) mutable {
      if (!recs) return done(recs.err());
      int64_t now = common::now_unix_ms();
      for (std::size_t k = 0; k < ids.size(); ++k) {
        nlohmann::json n = {{"id", ids[k]}, {"state", "down"}};
        if (k < recs->elements.size() && !recs->elements[k].is_nil()) {
          if (auto mi = parse_member(recs->elements[k].str)) {
            n = {{"id", mi->id},
                 {"address", mi->host + ":" + std::to_string(mi->port)},
                 {"http", mi->http},
                 {"state", mi->state},
                 {"shards_owned", mi->shards_owned},
                 {"live_conversations", mi->live},
                 {"version", mi->version},
                 {"heartbeat_age_ms", std::max<int64_t>(0, now - mi->ts_ms)}};
          }
        }
        out["nodes"].push_back(std::move(n));
      }
      done(std::move(out));
    });
  });
}

void cluster_node::request_drain(const std::string& node, std::function<void(result<bool>)> done) {
  auto* i = impl_.get();
  i->d.redis->command({"EXISTS", i->keys.member(node)},
                      [i, node, done = std::move(done)](result<store::redis_reply> r) {
                        if (!r) return done(r.err());
                        if (r->integer == 0) return done(false);
                        i->d.redis->command({"SET", i->keys.drain(node), "1", "EX", "3600"},
                                            [done](result<store::redis_reply> s) {
                                              if (!s) return done(s.err());
                                              done(true);
                                            });
                      });
}

}  // namespace parley::cluster
