#include "actors/gateway/session_keys.hpp"

#include <openssl/rand.h>

#include "actors/gateway/sha256.hpp"
#include "src/common/clock.hpp"
#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {
namespace {

// KEYS[1] the mapping; ARGV[1] the candidate id, ARGV[2] its TTL in seconds.
const store::redis_script& claim_script() {
  static const store::redis_script s(R"(
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1])");
  return s;
}

// KEYS[1] the mapping; ARGV[1] the old id, ARGV[2] the fresh one, ARGV[3] its TTL.
const store::redis_script& replace_script() {
  static const store::redis_script s(R"(
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return ARGV[2])");
  return s;
}

// KEYS[1] the mapping; ARGV[1] the id it must map to, ARGV[2] the new TTL.
const store::redis_script& keep_script() {
  static const store::redis_script s(R"(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1)");
  return s;
}

/// A script's string reply as a session id.
result<std::string> id_of(result<store::redis_reply> r) {
  if (!r) return r.err();
  if (r->type != store::redis_reply::kind::string || r->str.empty())
    return make_error("redis_error", "the session key script answered no session id");
  return std::move(r->str);
}

}  // namespace

session_keys::session_keys(store::redis_client& redis, session_keys_options options)
    : redis_(redis), options_(std::move(options)) {}

std::string session_keys::redis_key(const std::string& tenant, const std::string& bot,
                                    const std::string& key) const {
  // The bot's length first: ("ab", "c") and ("a", "bc") hash apart.
  std::string data = std::to_string(bot.size());
  data += ':';
  data += bot;
  data += key;
  std::string k = options_.key_prefix;
  k += ":sesskey:";
  k += tenant;
  k += ':';
  k += sha256_hex(data);
  return k;
}

namespace {

void eval(store::redis_client& redis, std::size_t lanes, const store::redis_script& script,
          std::string_view key, std::initializer_list<std::string_view> args,
          store::redis_callback done) {
  int lane = io::lanes::current();
  if (lane < 0 || static_cast<std::size_t>(lane) >= lanes)
    return redis.eval(script, {key}, args, std::move(done));
  redis.eval_on(static_cast<std::size_t>(lane), script, {key}, args, std::move(done));
}

}  // namespace

void session_keys::claim(const std::string& tenant, const std::string& bot, const std::string& key,
                         const std::string& candidate, id_callback done) {
  eval(redis_, options_.redis_lanes, claim_script(), redis_key(tenant, bot, key),
       {candidate, std::to_string(options_.pending_ttl.count())},
       [done = std::move(done)](result<store::redis_reply> r) { done(id_of(std::move(r))); });
}

void session_keys::replace(const std::string& tenant, const std::string& bot,
                           const std::string& key, const std::string& old, const std::string& fresh,
                           id_callback done) {
  eval(redis_, options_.redis_lanes, replace_script(), redis_key(tenant, bot, key),
       {old, fresh, std::to_string(options_.pending_ttl.count())},
       [done = std::move(done)](result<store::redis_reply> r) { done(id_of(std::move(r))); });
}

void session_keys::keep(const std::string& tenant, const std::string& bot, const std::string& key,
                        const std::string& id, std::chrono::seconds ttl,
                        std::function<void(result<bool>)> done) {
  eval(redis_, options_.redis_lanes, keep_script(), redis_key(tenant, bot, key),
       {id, std::to_string(ttl.count())}, [done = std::move(done)](result<store::redis_reply> r) {
         if (!done) return;
         if (!r) return done(r.err());
         done(r->type == store::redis_reply::kind::integer && r->integer == 1);
       });
}

// A UUID version 7 (RFC 9562): the creation time in milliseconds, then 74 random
// bits. Time-ordered ids put a node's new transcript rows next to each other in
// transcript_turns' primary key instead of on a random leaf each (random version 4
// ids cost Postgres about 1 us more per turn: bench/README.md); the random part keeps
// them unguessable.
std::string new_session_id() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  auto ms = static_cast<uint64_t>(common::now_unix_ms());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

}  // namespace parley::actors
