#pragma once
/// Quarantine: inbound messages that killed their conversation too often, kept for operators.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

struct quarantined_message {
  std::int64_t id = 0;  ///< set by insert
  std::string tenant;
  std::string session_id;
  std::string message_id;
  std::string payload;  ///< the inbound message as received (any text)
  std::string error;
  int attempts = 0;
  std::int64_t created_at_ms = 0;
};

/// Keeps a message that killed its conversation too often. Result: its id.
catalog_job<std::int64_t> insert_quarantine(quarantined_message message);

/// A tenant's quarantined messages, oldest first.
catalog_job<std::vector<quarantined_message>> list_quarantine(std::string tenant);

}  // namespace parley::store
