#pragma once
/// The audit log: who changed what. Every admin change (tenant, API key, deploy,
/// activate, rollback) writes its audit row in its own transaction, so a change and its
/// audit row exist together or not at all.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

struct audit_entry {
  std::int64_t id = 0;  ///< set by the database
  std::int64_t at_ms = 0;
  std::string actor;
  std::string action;  ///< "tenant.create", "api_key.create", "bot.deploy", ...
  std::string tenant;  ///< empty: not about one tenant (stored as NULL)
  std::string target;
  std::string details_json = "{}";  ///< a JSON object
};

/// Appends an audit row on its own (the catalog's admin functions write theirs
/// in their own transaction). Result: its id.
catalog_job<std::int64_t> audit(audit_entry entry);

/// A tenant's audit rows, newest first, at most `limit`.
catalog_job<std::vector<audit_entry>> list_audit(std::string tenant, std::size_t limit = 100);

}  // namespace parley::store
