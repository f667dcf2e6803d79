#include "cluster/lease/leases.hpp"

namespace parley::cluster {

std::string lease_keys::lease(uint32_t shard) const {
  return prefix + ":" + region + ":lease:" + std::to_string(shard);
}
std::string lease_keys::epoch(uint32_t shard) const {
  return prefix + ":" + region + ":epoch:" + std::to_string(shard);
}
std::string lease_keys::member(std::string_view node) const {
  return prefix + ":" + region + ":member:" + std::string(node);
}
std::string lease_keys::members() const { return prefix + ":" + region + ":members"; }
std::string lease_keys::drain(std::string_view node) const {
  return prefix + ":" + region + ":drain:" + std::string(node);
}

std::string lease_keys::transcripts(uint32_t shard) const {
  return prefix + ":" + region + ":transcripts:" + std::to_string(shard);
}

std::string lease_keys::outbox(uint32_t shard) const {
  return prefix + ":" + region + ":outbox:" + std::to_string(shard);
}

std::string lease_keys::timers(uint32_t shard) const {
  return prefix + ":" + region + ":timers:" + std::to_string(shard);
}

void timer_member(std::string_view tenant, std::string_view session, std::string& out) {
  out.clear();
  out.reserve(tenant.size() + 1 + session.size());
  out += tenant;
  out += '\0';
  out += session;
}

std::vector<bool> claim_streams(store::redis_client& redis, const std::vector<std::string>& streams,
                                const char* group, const std::string& node) {
  std::vector<std::vector<std::string>> cmds;
  for (const auto& k : streams) {
    cmds.push_back({"XGROUP", "CREATE", k, group, "0", "MKSTREAM"});
    cmds.push_back({"XAUTOCLAIM", k, group, node, "0", "0-0", "COUNT", "1000000", "JUSTID"});
  }
  auto r = redis.pipeline_sync(std::move(cmds));
  std::vector<bool> ok(streams.size());
  for (std::size_t i = 0; i < streams.size(); ++i) ok[i] = r[2 * i + 1].ok();
  return ok;
}

std::string holder_value(std::string_view node, uint64_t epoch) {
  std::string v(node);
  v += '/';
  v += std::to_string(epoch);
  return v;
}

std::string_view holder_node(std::string_view value) {
  auto slash = value.rfind('/');
  if (slash == std::string_view::npos) return {};
  return value.substr(0, slash);
}

// KEYS: lease_1, epoch_1, lease_2, epoch_2, ...
// ARGV[1] node, ARGV[2] TTL in ms, ARGV[2 + i]: the value lease_i must have now ("" = absent).
const store::redis_script& acquire_script() {
  static const store::redis_script s(R"lua(
local out = {}
for i = 1, #KEYS / 2 do
  local cur = redis.call('GET', KEYS[2 * i - 1]) or ''
  if cur == ARGV[2 + i] then
    local e = redis.call('INCR', KEYS[2 * i])
    redis.call('SET', KEYS[2 * i - 1], ARGV[1] .. '/' .. e, 'PX', ARGV[2])
    out[i] = e
  else
    out[i] = 0
  end
end
return out
)lua");
  return s;
}

// KEYS: leases; ARGV[1] "renew" (PEXPIRE to ARGV[2] ms) or "release" (DEL), ARGV[2 + i]:
// the value lease_i must hold.
const store::redis_script& holder_script() {
  static const store::redis_script s(R"lua(
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2 + i] then
    if ARGV[1] == 'renew' then
      redis.call('PEXPIRE', KEYS[i], ARGV[2])
    else
      redis.call('DEL', KEYS[i])
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
)lua");
  return s;
}

// KEYS snapshot, lease, transcript stream, outbox stream[, timer set]; ARGV bytes, TTL s,
// "<node>/<epoch>", line ('' = none), bound, policy, outbox entry ('' = none)[, next
// timer deadline ('' = unchanged, '0' = none), timer member].
// Returns 0 (fenced), -1 (transcripts full), -2 (outbox full), 1, or 2 (oldest line
// dropped).
const store::redis_script& commit_script() {
  static const store::redis_script s(R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local max = tonumber(ARGV[5])
local outbox = ARGV[7] ~= nil and ARGV[7] ~= ''
if outbox and redis.call('XLEN', KEYS[4]) >= max then return -2 end
local n = 0
if ARGV[4] ~= '' then
  n = redis.call('XLEN', KEYS[3])
  if n >= max and ARGV[6] == 'refuse' then return -1 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if outbox then redis.call('XADD', KEYS[4], '*', 'o', ARGV[7]) end
if ARGV[8] ~= nil and ARGV[8] ~= '' then
  if ARGV[8] == '0' then redis.call('ZREM', KEYS[5], ARGV[9])
  else redis.call('ZADD', KEYS[5], ARGV[8], ARGV[9]) end
end
if ARGV[4] == '' then return 1 end
if n >= max then
  redis.call('XADD', KEYS[3], 'MAXLEN', max, '*', 'l', ARGV[4])
  return 2
end
redis.call('XADD', KEYS[3], '*', 'l', ARGV[4])
return 1
)lua");
  return s;
}

std::vector<store::redis_script> lease_scripts() {
  return {acquire_script(), holder_script(), commit_script()};
}

shard_table::shard_table(uint32_t shards) : slots_(shards) {}

uint32_t shard_table::held_count() const {
  uint32_t n = 0;
  for (const auto& s : slots_)
    if (s.epoch.load(std::memory_order_relaxed) != 0) ++n;
  return n;
}

}  // namespace parley::cluster
