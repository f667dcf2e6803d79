#include "actors/snapshot/redis_snapshot_store.hpp"

#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {
namespace {

/// Sends one command on the current lane's connection when there is one (see the
/// header), else through the client's I/O thread.
void send(store::redis_client& redis, std::size_t lanes,
          std::initializer_list<std::string_view> args, store::redis_callback done) {
  int lane = io::lanes::current();
  if (lane < 0 || static_cast<std::size_t>(lane) >= lanes)
    return redis.command(args, std::move(done));
  redis.command_on(static_cast<std::size_t>(lane), args, std::move(done));
}

}  // namespace

redis_snapshot_store::redis_snapshot_store(store::redis_client& redis, std::size_t lanes,
                                           std::string key_prefix)
    : redis_(redis), lanes_(lanes), prefix_(std::move(key_prefix)) {}

std::string redis_snapshot_store::key(std::string_view tenant, std::string_view session) const {
  std::string k;
  k.reserve(prefix_.size() + 7 + tenant.size() + session.size());
  k += prefix_;
  k += ":conv:";
  k += tenant;
  k += ':';
  k += session;
  return k;
}

void redis_snapshot_store::load(std::string_view tenant, std::string_view session,
                                std::shared_ptr<load_handler> done) {
  send(redis_, lanes_, {"GET", key(tenant, session)},
       [done = std::move(done)](result<store::redis_reply> r) {
         if (!r.ok()) return done->loaded(r.err());
         snapshot_read out;
         if (!r->is_nil()) {
           out.found = true;
           out.bytes = std::move(r->str);
         }
         done->loaded(std::move(out));
       });
}

void redis_snapshot_store::commit(std::string_view tenant, std::string_view session,
                                  std::string_view bytes, std::chrono::seconds ttl,
                                  uint64_t /*expected_epoch: no fence on one node yet*/,
                                  std::shared_ptr<commit_handler> done) {
  send(redis_, lanes_, {"SET", key(tenant, session), bytes, "EX", std::to_string(ttl.count())},
       [done = std::move(done)](result<store::redis_reply> r) {
         if (!r.ok()) return done->committed(r.err());
         done->committed({});
       });
}

}  // namespace parley::actors
