#pragma once
/// The activity log of a Direct Line conversation, in the region's Redis, so that any
/// node serves its polls and streams: the list `<prefix>:dl:<tenant>:<conversation>`
/// holds each activity as the codec stores it (without id, src/channels/directline),
/// and the hash `<prefix>:dl:<tenant>:<conversation>:ids` maps each appended group's
/// key (the client's activity id) to the group's first position. An activity's id is
/// its position; the watermark is the number of activities a client has seen. Both keys
/// live for the bot's session timeout from the last append.
///
/// Streams across nodes. The hash's field `@stream` names the node that holds the
/// conversation's WebSocket (attach_stream). An append made on another node publishes
/// `<tenant>\n<conversation>` on that node's channel (push_channel), in the append's
/// own script: the node holding the socket then reads the new activities and sends
/// them, whichever node took the post.
///
/// Thread-safe; callbacks run on the Redis client's I/O thread or the calling lane
/// (store/redis.hpp) and must not block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/common/result.hpp"

namespace parley::store {
class redis_client;
}

namespace parley::actors {

struct directline_log_options {
  std::string key_prefix = "parley";
  std::size_t redis_lanes = 0;  ///< > 0: commands from a lane go on its connection
  std::string node;             ///< this node's name (streams across nodes)
};

class directline_log {
 public:
  directline_log(store::redis_client& redis, directline_log_options options);

  struct appended {
    std::uint64_t first = 0;  ///< position of the group's first activity
    bool fresh = true;        ///< false: the key was appended before (nothing added)
  };
  /// Appends `activities` as one group unless a group with `key` was appended before
  /// (then answers that group's first position). In the stored activities, the member
  /// `"replyToId":"#"` becomes the id of the group's first activity.
  void append(const std::string& tenant, const std::string& conversation, const std::string& key,
              const std::vector<std::string>& activities, std::chrono::seconds ttl,
              std::function<void(result<appended>)> done);

  /// Records that this node holds the conversation's stream from now on (the newest
  /// socket wins). Nothing when the conversation has no log.
  void attach_stream(const std::string& tenant, const std::string& conversation,
                     std::function<void(result<void>)> done);

  /// The channel on which other nodes tell `node` that a conversation it streams has
  /// new activities.
  std::string push_channel(const std::string& node) const;

  struct page {
    std::vector<std::string> activities;  ///< complete, with their ids
    std::uint64_t watermark = 0;          ///< the position after the last one
  };
  /// The activities from position `from` on.
  void read(const std::string& tenant, const std::string& conversation, std::uint64_t from,
            std::function<void(result<page>)> done);

 private:
  std::string key(const std::string& tenant, const std::string& conversation) const;
  store::redis_client& redis_;
  directline_log_options options_;
};

}  // namespace parley::actors
