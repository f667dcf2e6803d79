#include "actors/gateway/directline_log.hpp"

#include <algorithm>

#include "src/channels/directline/directline.hpp"
#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {
namespace {

namespace dl = channels::directline;

// KEYS[1] the list, KEYS[2] the group keys; ARGV[1] the group's key, ARGV[2] the TTL,
// ARGV[3] the id prefix ("<conversation>|"), ARGV[4] this node, ARGV[5] the push
// channels' prefix, ARGV[6] the push message, ARGV[7..] the activities. Answers
// {first position, 1 when appended now}. A stream held by another node is told.
// (PUBLISH in a script: the message leaves with the append, in no extra round trip.)
const store::redis_script& append_script() {
  static const store::redis_script s(R"(
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen then return {tonumber(seen), 0} end
local first = redis.call('LLEN', KEYS[1])
local reply = '"replyToId":"' .. ARGV[3] .. string.format('%07d', first) .. '"'
for i = 7, #ARGV do
  local a = string.gsub(ARGV[i], '"replyToId":"#"', function() return reply end, 1)
  redis.call('RPUSH', KEYS[1], a)
end
redis.call('HSET', KEYS[2], ARGV[1], first)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local stream = redis.call('HGET', KEYS[2], '@stream')
if stream and stream ~= ARGV[4] then redis.call('PUBLISH', ARGV[5] .. stream, ARGV[6]) end
return {first, 1})");
  return s;
}

// KEYS[1] the group keys; ARGV[1] this node. Only a conversation that has a log.
const store::redis_script& attach_script() {
  static const store::redis_script s(R"(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], '@stream', ARGV[1])
return 1)");
  return s;
}

bool on_lane(std::size_t lanes, std::size_t& lane) {
  int l = io::lanes::current();
  if (l < 0 || static_cast<std::size_t>(l) >= lanes) return false;
  lane = static_cast<std::size_t>(l);
  return true;
}

}  // namespace

directline_log::directline_log(store::redis_client& redis, directline_log_options options)
    : redis_(redis), options_(std::move(options)) {}

std::string directline_log::key(const std::string& tenant, const std::string& conversation) const {
  return options_.key_prefix + ":dl:" + tenant + ":" + conversation;
}

void directline_log::append(const std::string& tenant, const std::string& conversation,
                            const std::string& group, const std::vector<std::string>& activities,
                            std::chrono::seconds ttl, std::function<void(result<appended>)> done) {
  std::string list = key(tenant, conversation);
  std::vector<std::string> keys = {list, list + ":ids"};
  std::vector<std::string> args = {group,
                                   std::to_string(std::max<long long>(1, ttl.count())),
                                   conversation + "|",
                                   options_.node,
                                   push_channel(""),
                                   tenant + "\n" + conversation};
  args.insert(args.end(), activities.begin(), activities.end());
  redis_.eval_list(
      append_script(), keys, args, [done = std::move(done)](result<store::redis_reply> r) {
        if (!r) return done(r.err());
        if (r->type != store::redis_reply::kind::array || r->elements.size() != 2)
          return done(make_error("redis_error", "the append script answered no position"));
        appended a;
        a.first = static_cast<std::uint64_t>(r->elements[0].integer);
        a.fresh = r->elements[1].integer == 1;
        done(a);
      });
}

std::string directline_log::push_channel(const std::string& node) const {
  return options_.key_prefix + ":dl:push:" + node;
}

void directline_log::attach_stream(const std::string& tenant, const std::string& conversation,
                                   std::function<void(result<void>)> done) {
  redis_.eval_list(attach_script(), {key(tenant, conversation) + ":ids"}, {options_.node},
                   [done = std::move(done)](result<store::redis_reply> r) {
                     if (!r) return done(r.err());
                     done(result<void>());
                   });
}

void directline_log::read(const std::string& tenant, const std::string& conversation,
                          std::uint64_t from, std::function<void(result<page>)> done) {
  std::string start = std::to_string(from);
  auto cb = [conversation, from, done = std::move(done)](result<store::redis_reply> r) {
    if (!r) return done(r.err());
    page p;
    p.watermark = from;
    if (r->type != store::redis_reply::kind::array) return done(std::move(p));
    p.activities.reserve(r->elements.size());
    for (auto& e : r->elements)
      p.activities.push_back(dl::with_id(e.str, dl::activity_id(conversation, p.watermark++)));
    done(std::move(p));
  };
  std::string k = key(tenant, conversation);
  std::size_t lane = 0;
  if (on_lane(options_.redis_lanes, lane))
    return redis_.command_on(lane, {"LRANGE", k, start, "-1"}, std::move(cb));
  redis_.command({"LRANGE", k, start, "-1"}, std::move(cb));
}

}  // namespace parley::actors
