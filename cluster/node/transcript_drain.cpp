#include "cluster/node/transcript_drain.hpp"

#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"

namespace parley::cluster {
namespace {

using reply = store::redis_reply;
using clock_type = std::chrono::steady_clock;

/// One stream entry read: where it is and its line.
struct entry {
  uint32_t shard = 0;
  std::string id;
  std::string line;
};

}  // namespace

struct transcript_drain::impl {
  store::redis_client& redis;
  store::postgres_client& pg;
  shard_table& table;
  options o;
  std::vector<std::atomic<bool>> claim;    // acquired, not yet claimed
  std::vector<std::atomic<bool>> pending;  // may have entries read and not acknowledged
  std::unordered_map<std::string, uint32_t> shard_of_stream;
  std::atomic<bool> stopping{false};
  std::mutex m;
  std::condition_variable wake;
  std::thread thread;
  log::rate_limited fail_log{std::chrono::seconds(5)};
  prometheus::Counter* copied = nullptr;
  prometheus::Counter* failures = nullptr;
  prometheus::Gauge* backlog = nullptr;
  clock_type::time_point next_backlog{};

  impl(store::redis_client& r, store::postgres_client& p, shard_table& t, options oo,
       prometheus::Registry* reg)
      : redis(r), pg(p), table(t), o(std::move(oo)), claim(t.size()), pending(t.size()) {
    for (uint32_t s = 0; s < t.size(); ++s) shard_of_stream[o.keys.transcripts(s)] = s;
    if (reg != nullptr) {
      copied = &metrics::counter(*reg, "parley_transcript_stream_lines_total",
                                 "Transcript lines copied from the shards' Redis streams to "
                                 "Postgres.");
      failures = &metrics::counter(*reg, "parley_transcript_stream_write_failures_total",
                                   "Copies of transcript lines to Postgres that failed (retried).");
      backlog = &metrics::gauge(*reg, "parley_transcript_backlog_lines",
                                "Transcript lines waiting in the Redis streams of the shards "
                                "this node holds.");
    }
  }

  std::vector<result<reply>> run(std::vector<std::vector<std::string>> cmds) {
    return redis.pipeline_sync(std::move(cmds));
  }

  /// Creates the group (if need be) and takes over every entry another consumer
  /// read and did not acknowledge.
  void claim_shards(const std::vector<uint32_t>& shards) {
    std::vector<std::string> streams;
    for (auto s : shards) streams.push_back(o.keys.transcripts(s));
    auto ok = claim_streams(redis, streams, transcript_group, o.node);
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (!ok[i]) {
        claim[shards[i]] = true;  // again next round
        continue;
      }
      pending[shards[i]] = true;
      table.mark_dirty(shards[i]);  // and what nobody read yet
    }
  }

  /// XREADGROUP over `shards`: their pending entries ("0") or new ones (">").
  std::vector<entry> read(const std::vector<uint32_t>& shards, bool own_pending) {
    std::vector<entry> out;
    if (shards.empty()) return out;
    std::vector<std::string> c{"XREADGROUP", "GROUP", transcript_group,
                               o.node,       "COUNT", std::to_string(o.batch),
                               "STREAMS"};
    for (auto s : shards) c.push_back(o.keys.transcripts(s));
    for (std::size_t i = 0; i < shards.size(); ++i) c.push_back(own_pending ? "0" : ">");
    auto r = run({std::move(c)});
    if (!r[0].ok()) {
      // NOGROUP: a stream whose group was never made here (a restart): claim it.
      if (r[0].err().message.find("NOGROUP") != std::string::npos)
        for (auto s : shards) claim[s] = true;
      return out;
    }
    for (const auto& stream : r[0]->elements) {
      if (stream.elements.size() != 2) continue;
      auto it = shard_of_stream.find(stream.elements[0].str);
      if (it == shard_of_stream.end()) continue;
      for (const auto& e : stream.elements[1].elements) {
        if (e.elements.size() != 2) continue;
        const auto& fields = e.elements[1].elements;
        for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
          if (fields[f].str == "l")
            out.push_back(entry{it->second, e.elements[0].str, fields[f + 1].str});
      }
    }
    return out;
  }

  /// COPY then XACK + XDEL. False when Postgres refused (the entries stay pending).
  bool write(std::vector<entry>& entries, bool maybe_stored) {
    auto lines = std::make_shared<std::vector<store::transcript_line>>();
    lines->reserve(entries.size());
    for (auto& e : entries) {
      store::transcript_line l;
      l.copy = std::move(e.line);
      l.messages = 1;
      l.maybe_stored = maybe_stored;
      lines->push_back(std::move(l));
    }
    auto r = store::run_job_sync(pg, store::write_turn_lines({}, lines));
    if (!r) {
      if (failures) failures->Increment();
      fail_log.warn("transcript_stream_write_failed",
                    {{"error", r.err().message}, {"lines", std::to_string(lines->size())}});
      return false;
    }
    if (copied) copied->Increment(static_cast<double>(lines->size()));
    std::unordered_map<uint32_t, std::vector<std::string>> ids;
    for (auto& e : entries) ids[e.shard].push_back(std::move(e.id));
    std::vector<std::vector<std::string>> cmds;
    for (auto& [s, list] : ids) {
      auto k = o.keys.transcripts(s);
      std::vector<std::string> ack{"XACK", k, transcript_group};
      std::vector<std::string> del{"XDEL", k};
      for (const auto& id : list) {
        ack.push_back(id);
        del.push_back(id);
      }
      cmds.push_back(std::move(ack));
      cmds.push_back(std::move(del));
      if (list.size() >= o.batch) table.mark_dirty(s);  // more may wait
    }
    (void)run(std::move(cmds));
    return true;
  }

  void update_backlog(const std::vector<uint32_t>& held) {
    if (backlog == nullptr || clock_type::now() < next_backlog) return;
    next_backlog = clock_type::now() + std::chrono::seconds(2);
    std::vector<std::vector<std::string>> cmds;
    for (auto s : held) cmds.push_back({"XLEN", o.keys.transcripts(s)});
    if (cmds.empty()) return backlog->Set(0);
    double n = 0;
    for (auto& r : run(std::move(cmds)))
      if (r.ok()) n += static_cast<double>(r->integer);
    backlog->Set(n);
  }

  void loop() {
    auto backoff = o.period;
    while (!stopping) {
      std::vector<uint32_t> held, to_claim, own, fresh;
      for (uint32_t s = 0; s < table.size(); ++s) {
        if (table.held(s) == 0) continue;
        held.push_back(s);
        if (claim[s].exchange(false)) to_claim.push_back(s);
        // Both: entries read before and not acknowledged, and new ones.
        if (pending[s]) own.push_back(s);
        if (table.take_dirty(s)) fresh.push_back(s);
      }
      if (!to_claim.empty()) claim_shards(to_claim);
      bool ok = true;
      if (!own.empty()) {
        auto e = read(own, true);
        if (e.empty()) {
          for (auto s : own) pending[s] = false;
        } else {
          ok = write(e, true);
        }
      }
      if (!ok) {
        for (auto s : fresh) table.mark_dirty(s);  // read them once Postgres is back
      } else if (!fresh.empty()) {
        auto e = read(fresh, false);
        if (!e.empty() && !write(e, false)) {
          ok = false;
          for (const auto& x : e) pending[x.shard] = true;
        }
      }
      update_backlog(held);
      backoff = ok ? o.period : std::min(backoff * 2, std::chrono::milliseconds(2000));
      std::unique_lock<std::mutex> lock(m);
      wake.wait_for(lock, backoff, [this] { return stopping.load(); });
    }
  }
};

transcript_drain::transcript_drain(store::redis_client& redis, store::postgres_client& pg,
                                   shard_table& table, options o, prometheus::Registry* metrics)
    : impl_(std::make_unique<impl>(redis, pg, table, std::move(o), metrics)) {}

transcript_drain::~transcript_drain() { stop(); }

void transcript_drain::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([i = impl_.get()] { i->loop(); });
}

void transcript_drain::stop() {
  impl_->stopping = true;
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->wake.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

void transcript_drain::acquired(uint32_t shard) { impl_->claim[shard] = true; }

}  // namespace parley::cluster
