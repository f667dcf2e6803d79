#pragma once
/// The snapshot store of a node: Redis strings `<prefix>:conv:<tenant>:<session>`,
/// written with SET ... EX.
///
/// With lane connections (`lanes` > 0, the client in lanes mode), a call made on lane
/// n goes on lane n's connection and its handler runs on that lane: a turn's commit
/// then completes on the thread that holds the turn's HTTP connection, with no thread
/// hand-off. A call from any other thread goes through the client's I/O thread, where
/// its handler runs. Each call costs the one callback allocation the client needs; no
/// hop and no copy of the bytes beyond their serialization into the command.

#include "actors/snapshot/snapshot_store.hpp"

namespace parley::store {
class redis_client;
}

namespace parley::actors {

class redis_snapshot_store final : public snapshot_store {
 public:
  /// `redis` outlives this store.
  redis_snapshot_store(store::redis_client& redis, std::size_t lanes, std::string key_prefix);

  void load(std::string_view tenant, std::string_view session,
            std::shared_ptr<load_handler> done) override;
  void commit(std::string_view tenant, std::string_view session, std::string_view bytes,
              std::chrono::seconds ttl, uint64_t expected_epoch,
              std::shared_ptr<commit_handler> done) override;

  /// The Redis key of a conversation's snapshot.
  std::string key(std::string_view tenant, std::string_view session) const;

 private:
  store::redis_client& redis_;
  std::size_t lanes_;
  std::string prefix_;
};

}  // namespace parley::actors
