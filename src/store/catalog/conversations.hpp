#pragma once
/// Conversations: when each started, on which bot version and channel, and how it ended.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <optional>
#include <string>

#include "src/store/catalog/job.hpp"

namespace parley::store {

struct conversation_record {
  std::string tenant;
  std::string session_id;
  std::string bot;
  int version = 0;
  std::string channel;             ///< "bot_api", "directline", "sms", ...
  std::string external_key;        ///< the channel's conversation key, may be empty
  std::int64_t started_at_ms = 0;  ///< 0 on upsert: now()
  std::optional<std::int64_t> ended_at_ms;
  std::string end_reason;
};

/// Records a conversation start; a repeated call for the same (tenant,
/// session) keeps started_at and the version and changes nothing else.
catalog_job<void> upsert_conversation(conversation_record record);

/// Marks a conversation ended (first call wins); result: whether a row was
/// changed (false for an unknown or already ended session).
catalog_job<bool> end_conversation(std::string tenant, std::string session_id, std::string reason);

/// One conversation; nullopt when unknown.
catalog_job<std::optional<conversation_record>> get_conversation(std::string tenant,
                                                                 std::string session_id);

}  // namespace parley::store
