#pragma once
/// A cluster node's parts that need none of its state: what a member record in Redis
/// says, and the node's Prometheus metrics (cluster_node.cpp uses both).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <string>

#include "src/common/result.hpp"

namespace parley::cluster {

/// What a member record says (JSON in Redis, `<prefix>:<region>:member:<id>`).
struct member_info {
  std::string id, host, http, state, version;
  std::string incarnation;  ///< random per process start
  uint16_t port = 0;
  uint64_t hb = 0;  ///< heartbeats written: a peer seen lost is back once it grows
  int64_t ts_ms = 0;
  uint32_t shards_owned = 0;
  uint64_t live = 0;
};

/// The record's fields; an error when it is not a JSON object or has no id.
result<member_info> parse_member(const std::string& text);

/// The metrics of a cluster node, registered once in `reg` (which outlives it).
struct node_probe {
  prometheus::Gauge* shards_owned;
  prometheus::Gauge* members_up;
  prometheus::Gauge* buffered;
  prometheus::Counter* forwarded;
  prometheus::Counter* received;
  prometheus::Counter* rejected_full;
  prometheus::Counter* rejected_timeout;
  prometheus::Counter* rejected_hops;
  prometheus::Counter* leases_acquired;
  prometheus::Counter* leases_lost;
  prometheus::Counter* handoffs;
  prometheus::Counter* stalls;
  prometheus::Counter* peers_lost;

  explicit node_probe(prometheus::Registry& reg);
};

}  // namespace parley::cluster
