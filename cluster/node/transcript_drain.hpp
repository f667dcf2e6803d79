#pragma once
/// Copies the transcript streams of the shards this node holds into Postgres.
///
/// The fenced commit appends each turn's transcript line (a COPY line of
/// transcript_turns) to its shard's stream in the same script as the snapshot, so an
/// acknowledged turn's transcript is as durable as the turn: nothing waits in a
/// node's memory. The shard's owner reads the stream through the consumer group
/// `parley` (consumer: its node id), copies the lines into Postgres and acknowledges
/// and deletes the entries only after the COPY has committed. When it acquires a shard
/// it first claims what the previous owner read but never acknowledged (XAUTOCLAIM),
/// and lines read again go through the idempotent path (ON CONFLICT on (session,
/// sequence)): a turn reaches transcript_turns exactly once whatever died when.
/// During a Postgres outage the lines wait in Redis (bounded:
/// transcripts.backlog_max_per_shard) and the drain retries with backoff.
///
/// Its own thread; `acquired` from any thread.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/lease/leases.hpp"

namespace prometheus {
class Registry;
}
namespace parley::store {
class postgres_client;
}

namespace parley::cluster {

class transcript_drain {
 public:
  struct options {
    std::string node;
    lease_keys keys;
    std::chrono::milliseconds period{50};  ///< between reads when nothing is marked
    std::size_t batch = 1000;              ///< lines per stream per read at most
  };
  /// All references outlive this object; `metrics` may be null.
  transcript_drain(store::redis_client& redis, store::postgres_client& pg, shard_table& table,
                   options o, prometheus::Registry* metrics);
  ~transcript_drain();  ///< stop()
  transcript_drain(const transcript_drain&) = delete;
  transcript_drain& operator=(const transcript_drain&) = delete;

  void start();
  /// Ends the thread after the write in progress. Idempotent.
  void stop();

  /// This node just took `shard`: claim and copy what is waiting in its stream.
  void acquired(uint32_t shard);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::cluster
