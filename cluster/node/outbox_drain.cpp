#include "cluster/node/outbox_drain.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"

namespace parley::cluster {
namespace {

using reply = store::redis_reply;
using clock_type = std::chrono::steady_clock;
using actors::delivery_result;
namespace rt = parley::runtime::v1;

/// One outbox entry (a turn's replies) being delivered.
struct item {
  uint32_t shard = 0;
  std::string id;  ///< the stream entry's id
  rt::OutboxEntry entry;
  int next = 0;      ///< the first reply not yet settled
  int attempts = 0;  ///< of reply `next`
  clock_type::time_point first_failure{};
};

/// One conversation's entries, delivered one reply at a time, in order.
struct conversation {
  std::deque<std::shared_ptr<item>> q;
  bool in_flight = false;
  clock_type::time_point not_before{};
};

struct completion {
  std::string conv;
  delivery_result r;
};

/// Where deliveries report, shared with their callbacks: one that completes after the
/// drain stopped finds it still there.
struct mailbox {
  std::mutex m;
  std::condition_variable wake;
  std::vector<completion> done;
  bool woken = false;
  bool stopping = false;
  void post(std::function<void(mailbox&)> f) {
    std::lock_guard<std::mutex> lock(m);
    f(*this);
    woken = true;
    wake.notify_all();
  }
};

/// What an entry asks to deliver: its replies, then its handoff, if any.
int slots(const rt::OutboxEntry& e) { return e.messages_size() + (e.has_handoff() ? 1 : 0); }

std::string idempotency_key(const rt::OutboxEntry& e, int index) {
  return e.tenant() + "/" + e.session_id() + "/" + std::to_string(e.sequence()) + "/" +
         std::to_string(index);
}

}  // namespace

struct outbox_drain::impl {
  store::redis_client& redis;
  store::postgres_client& pg;
  shard_table& table;
  actors::deliver_fn deliver;
  options o;
  prometheus::Registry* reg;
  std::vector<std::atomic<bool>> claim;    // acquired, not yet claimed
  std::vector<std::atomic<bool>> pending;  // may have entries read and not acknowledged
  std::vector<std::atomic<bool>> dirty;    // a commit added to its outbox
  std::vector<std::string> cursor;         // of the read of pending entries
  std::unordered_map<std::string, uint32_t> shard_of_stream;
  std::unordered_map<std::string, conversation> convs;  // tenant '\0' session
  std::unordered_set<std::string> buffered;             // "<shard>/<id>" read, not settled
  std::shared_ptr<mailbox> mb = std::make_shared<mailbox>();
  std::thread thread;
  log::rate_limited fail_log{std::chrono::seconds(5)};
  prometheus::Gauge* waiting = nullptr;
  prometheus::Counter* dead = nullptr;
  std::unordered_map<std::string, prometheus::Counter*> counters;  // drain thread only
  std::vector<std::vector<std::string>> settling;                  // see later()

  impl(store::redis_client& r, store::postgres_client& p, shard_table& t, actors::deliver_fn d,
       options oo, prometheus::Registry* rg)
      : redis(r),
        pg(p),
        table(t),
        deliver(std::move(d)),
        o(std::move(oo)),
        reg(rg),
        claim(t.size()),
        pending(t.size()),
        dirty(t.size()),
        cursor(t.size(), "0") {
    for (uint32_t s = 0; s < t.size(); ++s) shard_of_stream[o.keys.outbox(s)] = s;
    if (reg != nullptr) {
      waiting = &metrics::gauge(*reg, "parley_outbox_waiting_entries",
                                "Outbox entries (a turn's replies) this node has read and not "
                                "yet delivered or given up.");
      dead = &metrics::counter(*reg, "parley_outbox_dead_letters_total",
                               "Replies given up and written to outbox_dead_letters.");
    }
  }

  /// parley_outbox_deliveries_total{channel,outcome}, its samples found once each.
  void count(const std::string& channel, const char* outcome) {
    if (reg == nullptr) return;
    auto& c = counters[channel + '\0' + outcome];
    if (c == nullptr)
      c = &metrics::counter(*reg, "parley_outbox_deliveries_total",
                            "Attempts to deliver a reply from the outbox, by channel and outcome.",
                            {{"channel", channel}, {"outcome", outcome}});
    c->Increment();
  }

  /// Queues a command that settles an entry (progress, acknowledgement); flush() sends
  /// them in one pipeline before the next replies are sent.
  void later(std::vector<std::string> cmd) { settling.push_back(std::move(cmd)); }
  void flush() {
    if (settling.empty()) return;
    (void)run(std::move(settling));
    settling.clear();
  }

  std::vector<result<reply>> run(std::vector<std::vector<std::string>> cmds) {
    return redis.pipeline_sync(std::move(cmds));
  }

  std::string progress_key(uint32_t shard) const { return o.keys.outbox(shard) + ":progress"; }

  void wake_up() {
    mb->post([](mailbox&) {});
  }

  /// Creates the group (if need be) and takes over every entry another consumer read
  /// and did not acknowledge.
  void claim_shards(const std::vector<uint32_t>& shards) {
    std::vector<std::string> streams;
    for (auto s : shards) streams.push_back(o.keys.outbox(s));
    auto ok = claim_streams(redis, streams, outbox_group, o.node);
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (!ok[i]) {
        claim[shards[i]] = true;  // again next round
        continue;
      }
      pending[shards[i]] = true;
      cursor[shards[i]] = "0";
      dirty[shards[i]] = true;  // and what nobody read yet
    }
  }

  /// Reads entries of `shards` (their own pending ones from `cursor`, or new ones) into
  /// the conversations' queues.
  void read(const std::vector<uint32_t>& shards, bool own_pending) {
    if (shards.empty()) return;
    std::vector<std::string> c{
        "XREADGROUP", "GROUP", outbox_group, o.node, "COUNT", std::to_string(o.batch), "STREAMS"};
    for (auto s : shards) c.push_back(o.keys.outbox(s));
    for (auto s : shards) c.push_back(own_pending ? cursor[s] : ">");
    auto r = run({std::move(c)});
    if (!r[0].ok()) {
      // NOGROUP: a stream whose group was never made here (a restart): claim it.
      if (r[0].err().message.find("NOGROUP") != std::string::npos)
        for (auto s : shards) claim[s] = true;
      else if (!own_pending)
        for (auto s : shards) dirty[s] = true;
      return;
    }
    std::unordered_map<uint32_t, std::size_t> got;
    std::vector<std::shared_ptr<item>> fresh;
    std::vector<std::pair<uint32_t, std::string>> empty;  // deleted entries still pending
    for (const auto& stream : r[0]->elements) {
      if (stream.elements.size() != 2) continue;
      auto it = shard_of_stream.find(stream.elements[0].str);
      if (it == shard_of_stream.end()) continue;
      const uint32_t s = it->second;
      for (const auto& e : stream.elements[1].elements) {
        if (e.elements.size() != 2) continue;
        ++got[s];
        const std::string& id = e.elements[0].str;
        if (own_pending) cursor[s] = id;
        if (buffered.count(std::to_string(s) + "/" + id) > 0) continue;
        auto x = std::make_shared<item>();
        x->shard = s;
        x->id = id;
        bool parsed = false;
        const auto& fields = e.elements[1].elements;
        for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
          if (fields[f].str == "o") parsed = x->entry.ParseFromString(fields[f + 1].str);
        if (!parsed) {
          if (!fields.empty())
            log::error("outbox_entry_unreadable", {{"shard", std::to_string(s)}, {"id", id}});
          empty.emplace_back(s, id);
          continue;
        }
        fresh.push_back(std::move(x));
      }
    }
    for (auto s : shards) {
      if (!own_pending) continue;
      if (got[s] < o.batch) {
        pending[s] = false;
        cursor[s] = "0";
      }
    }
    if (!own_pending)
      for (auto s : shards)
        if (got[s] >= o.batch) dirty[s] = true;  // more may wait
    if (!empty.empty()) {
      std::vector<std::vector<std::string>> cmds;
      for (auto& [s, id] : empty) {
        cmds.push_back({"XACK", o.keys.outbox(s), outbox_group, id});
        cmds.push_back({"XDEL", o.keys.outbox(s), id});
      }
      (void)run(std::move(cmds));
    }
    if (fresh.empty()) return;
    // What an earlier owner settled already (only entries read before can have any).
    if (own_pending) {
      std::vector<std::vector<std::string>> cmds;
      for (auto& x : fresh) cmds.push_back({"HGET", progress_key(x->shard), x->id});
      auto p = run(std::move(cmds));
      for (std::size_t i = 0; i < fresh.size(); ++i)
        if (p[i].ok() && p[i]->type == reply::kind::string)
          fresh[i]->next = std::atoi(p[i]->str.c_str());
    }
    for (auto& x : fresh) {
      buffered.insert(std::to_string(x->shard) + "/" + x->id);
      std::string key = x->entry.tenant();
      key += '\0';
      key += x->entry.session_id();
      convs[key].q.push_back(std::move(x));
    }
  }

  /// The front entry of `c` has no reply left: acknowledged and forgotten.
  void finish_front(conversation& c) {
    auto x = c.q.front();
    c.q.pop_front();
    buffered.erase(std::to_string(x->shard) + "/" + x->id);
    later({"XACK", o.keys.outbox(x->shard), outbox_group, x->id});
    later({"XDEL", o.keys.outbox(x->shard), x->id});
    later({"HDEL", progress_key(x->shard), x->id});
  }

  /// Reply `next` of the front entry is settled: on to the next one.
  void advance(conversation& c) {
    auto& x = *c.q.front();
    ++x.next;
    x.attempts = 0;
    x.first_failure = {};
    if (x.next >= slots(x.entry)) return finish_front(c);
    later({"HSET", progress_key(x.shard), x.id, std::to_string(x.next)});
  }

  /// Writes reply `next` of the front entry as a dead letter. False when Postgres
  /// could not take it (the reply then waits and is written again).
  bool bury(conversation& c, const std::string& reason) {
    auto& x = *c.q.front();
    store::dead_letter d;
    d.tenant = x.entry.tenant();
    d.session_id = x.entry.session_id();
    d.sequence = static_cast<std::int64_t>(x.entry.sequence());
    d.reply_index = x.next;
    d.channel = x.entry.channel();
    d.address = x.entry.address();
    d.body = x.next < x.entry.messages_size() ? x.entry.messages(x.next).text()
                                              : "[handoff to " + x.entry.handoff().queue() + "]";
    d.reason = reason;
    d.attempts = std::max(1, x.attempts);
    auto r = store::run_job_sync(pg, store::insert_dead_letter(std::move(d)));
    if (!r) {
      fail_log.warn("outbox_dead_letter_write_failed", {{"error", r.err().message}});
      return false;
    }
    if (dead) dead->Increment();
    log::warn("outbox_reply_dead_lettered", {{"tenant", x.entry.tenant()},
                                             {"session", x.entry.session_id()},
                                             {"channel", x.entry.channel()},
                                             {"reason", reason}});
    return true;
  }

  void settle(const completion& k) {
    auto it = convs.find(k.conv);
    if (it == convs.end() || it->second.q.empty()) return;
    auto& c = it->second;
    c.in_flight = false;
    auto& x = *c.q.front();
    const auto now = clock_type::now();
    switch (k.r.k) {
      case delivery_result::kind::delivered:
        count(x.entry.channel(), "delivered");
        advance(c);
        break;
      case delivery_result::kind::retry: {
        count(x.entry.channel(), "retry");
        ++x.attempts;
        if (x.first_failure == clock_type::time_point{}) x.first_failure = now;
        if (now - x.first_failure >= o.give_up_after) {
          if (bury(c, "gave up after " + std::to_string(x.attempts) +
                          " attempts; the last: " + k.r.reason))
            advance(c);
          else
            c.not_before = now + std::chrono::seconds(1);
          break;
        }
        auto wait = o.retry_initial * (1LL << std::min(x.attempts - 1, 20));
        if (wait > o.retry_max) wait = o.retry_max;
        if (k.r.retry_after > wait) wait = k.r.retry_after;
        c.not_before = now + wait;
        break;
      }
      case delivery_result::kind::failed:
      case delivery_result::kind::refused:
        count(x.entry.channel(), k.r.k == delivery_result::kind::failed ? "failed" : "refused");
        if (x.attempts == 0) x.attempts = 1;
        if (bury(c, k.r.reason))
          advance(c);
        else
          c.not_before = now + std::chrono::seconds(1);
        break;
    }
    if (c.q.empty() && !c.in_flight) convs.erase(it);
  }

  /// Starts the next reply of every conversation that may send one. Returns the
  /// earliest time a waiting conversation may send.
  clock_type::time_point dispatch() {
    auto next = clock_type::time_point::max();
    const auto now = clock_type::now();
    for (auto it = convs.begin(); it != convs.end();) {
      auto& c = it->second;
      // Entries of shards this node no longer holds are left to their next owner.
      while (!c.in_flight && !c.q.empty() && table.held(c.q.front()->shard) == 0) {
        buffered.erase(std::to_string(c.q.front()->shard) + "/" + c.q.front()->id);
        c.q.pop_front();
      }
      if (c.q.empty() && !c.in_flight) {
        it = convs.erase(it);
        continue;
      }
      if (!c.in_flight) {
        if (c.not_before > now) {
          next = std::min(next, c.not_before);
        } else {
          c.in_flight = true;
          auto x = c.q.front();
          std::string key = it->first;
          deliver(x->entry, x->next, idempotency_key(x->entry, x->next),
                  [box = mb, key = std::move(key)](delivery_result r) mutable {
                    box->post([&](mailbox& b) {
                      b.done.push_back(completion{std::move(key), std::move(r)});
                    });
                  });
        }
      }
      ++it;
    }
    return next;
  }

  void loop() {
    auto next_read = clock_type::now();
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mb->m);
        if (mb->stopping) return;
      }
      std::vector<uint32_t> to_claim, own, fresh;
      const bool periodic = clock_type::now() >= next_read;
      if (periodic) next_read = clock_type::now() + o.period;
      for (uint32_t s = 0; s < table.size(); ++s) {
        if (table.held(s) == 0) {
          pending[s] = false;
          continue;
        }
        if (claim[s].exchange(false)) to_claim.push_back(s);
        if (pending[s]) own.push_back(s);
        if (dirty[s].exchange(false) || periodic) fresh.push_back(s);
      }
      if (!to_claim.empty()) claim_shards(to_claim);
      std::vector<completion> settled;
      {
        std::lock_guard<std::mutex> lock(mb->m);
        settled.swap(mb->done);
      }
      for (const auto& k : settled) settle(k);
      // Before any further reply goes out: a new owner resends at most the ones in flight.
      flush();
      if (buffered.size() < o.max_buffered) {
        read(own, true);
        read(fresh, false);
      }
      if (waiting) waiting->Set(static_cast<double>(buffered.size()));
      auto due = std::min(dispatch(), next_read);
      std::unique_lock<std::mutex> lock(mb->m);
      mb->wake.wait_until(lock, due, [this] { return mb->stopping || mb->woken; });
      mb->woken = false;
    }
  }
};

outbox_drain::outbox_drain(store::redis_client& redis, store::postgres_client& pg,
                           shard_table& table, actors::deliver_fn deliver, options o,
                           prometheus::Registry* metrics)
    : impl_(std::make_unique<impl>(redis, pg, table, std::move(deliver), std::move(o), metrics)) {}

outbox_drain::~outbox_drain() { stop(); }

void outbox_drain::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([i = impl_.get()] { i->loop(); });
}

void outbox_drain::stop() {
  impl_->mb->post([](mailbox& b) { b.stopping = true; });
  if (impl_->thread.joinable()) impl_->thread.join();
}

void outbox_drain::acquired(uint32_t shard) {
  impl_->claim[shard] = true;
  impl_->wake_up();
}

void outbox_drain::notify(uint32_t shard) {
  impl_->dirty[shard] = true;
  impl_->wake_up();
}

}  // namespace parley::cluster
