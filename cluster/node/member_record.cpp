#include "cluster/node/member_record.hpp"

#include "src/metrics/metrics.hpp"

#include <nlohmann/json.hpp>

namespace parley::cluster {

result<member_info> parse_member(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("bad_member", "not a JSON object");
  member_info m;
  m.id = j.value("id", "");
  m.host = j.value("host", "");
  m.port = j.value("port", static_cast<uint16_t>(0));
  m.http = j.value("http", "");
  m.state = j.value("state", "");
  m.version = j.value("version", "");
  m.incarnation = j.value("inc", "");
  m.hb = j.value("hb", static_cast<uint64_t>(0));
  m.ts_ms = j.value("ts", static_cast<int64_t>(0));
  m.shards_owned = j.value("shards", static_cast<uint32_t>(0));
  m.live = j.value("live", static_cast<uint64_t>(0));
  if (m.id.empty()) return make_error("bad_member", "no id");
  return m;
}

node_probe::node_probe(prometheus::Registry& reg) {
  auto gauge = [&reg](const char* name, const char* help) {
    return &metrics::gauge(reg, name, help);
  };
  auto counter = [&reg](const char* name, const char* help, const prometheus::Labels& labels = {}) {
    return &metrics::counter(reg, name, help, labels);
  };
  shards_owned = gauge("parley_cluster_shards_owned", "Shards whose lease this node holds.");
  members_up =
      gauge("parley_cluster_members_up", "Up members of the region, as this node sees them.");
  buffered = gauge("parley_cluster_buffered_messages",
                   "Messages waiting here for their moving shard's next owner.");
  forwarded = counter("parley_cluster_forwarded_turns_total",
                      "Turns this node sent to the owner of their shard.");
  received = counter("parley_cluster_received_turns_total", "Turns peers forwarded to this node.");
  const char* rejected_help =
      "Messages answered 503 while their shard moved: the buffer was full, they waited "
      "too long, or they crossed too many nodes.";
  rejected_full =
      counter("parley_cluster_buffer_rejected_total", rejected_help, {{"reason", "full"}});
  rejected_timeout =
      counter("parley_cluster_buffer_rejected_total", rejected_help, {{"reason", "timeout"}});
  rejected_hops =
      counter("parley_cluster_buffer_rejected_total", rejected_help, {{"reason", "hops"}});
  leases_acquired = counter("parley_cluster_leases_acquired_total",
                            "Shard leases this node took (each with a new epoch).");
  leases_lost = counter("parley_cluster_leases_lost_total",
                        "Shard leases this node found taken or expired at renewal.");
  handoffs = counter("parley_cluster_handoffs_total",
                     "Shards this node handed over (released) to their next owner.");
  stalls = counter("parley_cluster_heartbeats_skipped_total",
                   "Heartbeats skipped because a lane did not run its task in time.");
  peers_lost = counter("parley_cluster_peers_lost_total",
                       "Connections to peer nodes lost (each noticed at once).");
}

}  // namespace parley::cluster
