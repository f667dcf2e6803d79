#pragma once
/// Tenant limits: what a tenant lets its users attach (table tenant_limits,
/// migrations/0011_tenant_limits.sql). The store holds the values; their meaning and
/// defaults are src/channels/text/attachments.hpp's, and validating them is the
/// admin API's job (src/admin). Telling the region's nodes to drop their cached
/// limits is the caller's job after the commit (the `limits_changed` change).
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus `invalid_argument` (a malformed tenant id) and
/// `tenant_not_found`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

/// One tenant's row of tenant_limits.
struct tenant_limits_record {
  std::int64_t max_attachments = 0;
  std::int64_t max_url_bytes = 0;
  std::vector<std::string> schemes;
  std::vector<std::string> content_types;
  std::int64_t updated_at_ms = 0;
};

/// The tenant's limits; nullopt when it never set any (the defaults apply). With
/// `require_tenant` false (the node's cache) a tenant that does not exist has none;
/// with true it is `tenant_not_found`.
catalog_job<std::optional<tenant_limits_record>> get_tenant_limits(std::string tenant,
                                                                   bool require_tenant = false);

/// Stores `limits` as `tenant`'s, replacing older ones, and writes the audit row
/// `limits.set` with the new values.
catalog_job<void> put_tenant_limits(std::string tenant, tenant_limits_record limits,
                                    std::string actor);

}  // namespace parley::store
