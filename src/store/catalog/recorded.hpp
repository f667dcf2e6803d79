#pragma once
/// Recorded conversations of one bot with their turns, for replaying them against a
/// candidate program (parleyctl replay, src/bot/replay.hpp). Read in pages, oldest
/// first, so that a caller can walk a day of traffic without one huge answer.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

struct recorded_turn_row {
  std::int64_t sequence = 0;
  std::string inbound;        ///< empty when the turn had none
  std::string outbound_json;  ///< the replies, as transcript_turns.outbound
  std::string replay_json;    ///< the replay record, empty for none
  std::int64_t at_ms = 0;
};

struct recorded_conversation_row {
  std::string session_id;
  int version = 0;
  std::string channel;
  std::int64_t started_at_ms = 0;
  std::int64_t started_at_us = 0;        ///< exact, for the cursor
  std::string end_reason;                ///< empty while not ended
  std::vector<recorded_turn_row> turns;  ///< by sequence, at most max_turns
  bool truncated = false;                ///< it has more than max_turns turns
};

struct recorded_page {
  std::vector<recorded_conversation_row> conversations;
  /// Where the next page starts ("<started_at in µs>:<session id>"), empty at the end.
  std::string next;
};

/// Conversations of (tenant, bot) started at most `since_seconds` ago (0: any time),
/// ordered by (started_at, session_id), after the cursor `after` (a page's `next`;
/// empty: from the start), at most `limit` (1..500) with at most `max_turns` turns each.
/// Fails with `invalid_argument` on a bad id, limit or cursor, `tenant_not_found`.
catalog_job<recorded_page> recorded_conversations(std::string tenant, std::string bot,
                                                  std::int64_t since_seconds, std::string after,
                                                  int limit, int max_turns = 1000);

}  // namespace parley::store
