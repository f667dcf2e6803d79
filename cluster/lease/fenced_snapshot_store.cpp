#include "cluster/lease/fenced_snapshot_store.hpp"

#include "cluster/placement/placement.hpp"
#include "src/io/lanes.hpp"

namespace parley::cluster {
namespace {

/// A load's reply, with the epoch it was read under.
struct epoch_load final : actors::snapshot_store::load_handler {
  std::shared_ptr<load_handler> next;
  uint64_t epoch = 0;
  void loaded(result<actors::snapshot_read> r) override {
    if (r.ok()) r->epoch = epoch;
    next->loaded(std::move(r));
  }
};

}  // namespace

fenced_snapshot_store::fenced_snapshot_store(store::redis_client& redis, std::size_t lanes,
                                             std::string key_prefix, shard_table& table,
                                             lease_keys keys, std::string node,
                                             transcript_backlog backlog)
    : redis_(redis),
      lanes_(lanes),
      plain_(redis, lanes, std::move(key_prefix)),
      table_(table),
      keys_(std::move(keys)),
      node_(std::move(node)),
      backlog_(std::move(backlog)),
      bound_(std::to_string(backlog_.max_per_shard)) {
  for (uint32_t s = 0; s < table_.size(); ++s) {
    lease_key_.push_back(keys_.lease(s));
    stream_key_.push_back(keys_.transcripts(s));
    outbox_key_.push_back(keys_.outbox(s));
    timers_key_.push_back(keys_.timers(s));
  }
}

void fenced_snapshot_store::load(std::string_view tenant, std::string_view session,
                                 std::shared_ptr<load_handler> done) {
  uint64_t epoch = table_.held(shard_of(tenant, session, table_.size()));
  if (epoch == 0)
    return done->loaded(make_error(
        "not_owner", "this node does not hold the conversation's shard (it is moving): retry"));
  auto h = std::make_shared<epoch_load>();
  h->next = std::move(done);
  h->epoch = epoch;
  plain_.load(tenant, session, std::move(h));
}

uint64_t fenced_snapshot_store::epoch_for(std::string_view tenant, std::string_view session) const {
  return table_.held(shard_of(tenant, session, table_.size()));
}

void fenced_snapshot_store::commit(std::string_view tenant, std::string_view session,
                                   std::string_view bytes, std::chrono::seconds ttl,
                                   uint64_t expected_epoch, std::shared_ptr<commit_handler> done) {
  commit_turn(tenant, session, bytes, ttl, expected_epoch, {}, {}, timer_unchanged,
              std::move(done));
}

void fenced_snapshot_store::commit_turn(std::string_view tenant, std::string_view session,
                                        std::string_view bytes, std::chrono::seconds ttl,
                                        uint64_t expected_epoch, std::string_view transcript,
                                        std::string_view outbox, int64_t timer_ms,
                                        std::shared_ptr<commit_handler> done) {
  if (expected_epoch == 0)
    return done->committed(make_error("fenced", "the conversation was read under no lease"));
  uint32_t shard = shard_of(tenant, session, table_.size());
  auto cb = [this, shard, with_outbox = !outbox.empty(),
             done = std::move(done)](result<store::redis_reply> r) {
    if (!r.ok()) return done->committed(r.err());
    long long v = r->type == store::redis_reply::kind::integer ? r->integer : 0;
    if (v == -1)
      return done->committed(make_error(
          "transcript_backlog_full",
          "the transcripts waiting for Postgres reached transcripts.backlog_max_per_shard: retry"));
    if (v == -2)
      return done->committed(make_error("outbox_full",
                                        "the replies waiting for delivery reached "
                                        "transcripts.backlog_max_per_shard: retry"));
    if (v != 1 && v != 2)
      return done->committed(make_error(
          "fenced", "this node no longer holds the lease of the conversation's shard: retry"));
    if (v == 2 && backlog_.on_dropped) backlog_.on_dropped();
    table_.mark_dirty(shard);
    if (with_outbox && on_outbox_) on_outbox_(shard);
    done->committed({});
  };
  const std::string key = plain_.key(tenant, session);
  const std::string& lease = lease_key_[shard];
  const std::string& stream = stream_key_[shard];
  const std::string& outbox_stream = outbox_key_[shard];
  const std::string holder = holder_value(node_, expected_epoch);
  const std::string secs = std::to_string(ttl.count());
  const std::string_view policy = backlog_.refuse ? "refuse" : "drop_oldest";
  // The timer set's member is the conversation's key, tenant '\0' session.
  const std::string timer = timer_ms == timer_unchanged ? std::string() : std::to_string(timer_ms);
  std::string member;
  if (!timer.empty()) timer_member(tenant, session, member);
  const std::string& timers = timers_key_[shard];
  int lane = io::lanes::current();
  if (lane >= 0 && static_cast<std::size_t>(lane) < lanes_)
    redis_.eval_on(static_cast<std::size_t>(lane), commit_script(),
                   {key, lease, stream, outbox_stream, timers},
                   {bytes, secs, holder, transcript, bound_, policy, outbox, timer, member},
                   std::move(cb));
  else
    redis_.eval(commit_script(), {key, lease, stream, outbox_stream, timers},
                {bytes, secs, holder, transcript, bound_, policy, outbox, timer, member},
                std::move(cb));
}

}  // namespace parley::cluster
