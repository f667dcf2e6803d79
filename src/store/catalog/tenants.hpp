#pragma once
/// Tenants: the accounts everything else in the catalog belongs to.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

/// Whether `id` may name a tenant or a bot: 1 to 64 characters of a-z, A-Z,
/// 0-9, '_', '-' and '.', starting with a letter or digit. Every function
/// taking a tenant or bot id checks it (error `invalid_argument`).
bool valid_catalog_id(const std::string& id);

struct tenant_record {
  std::string id;
  std::string name;
  std::int64_t created_at_ms = 0;
  /// The region whose stores hold the tenant (migration 0008); empty for a tenant
  /// created before regions, which belongs to the region of this database.
  std::string home_region;
};

/// Creates a tenant (and its audit row) whose home region is `home_region` (the
/// creating node's region; empty: none recorded). Errors: `invalid_argument`,
/// `tenant_exists`.
catalog_job<tenant_record> create_tenant(std::string id, std::string name, std::string actor,
                                         std::string home_region = {});

/// Every tenant, ordered by id.
catalog_job<std::vector<tenant_record>> list_tenants();

/// One tenant; nullopt when unknown.
catalog_job<std::optional<tenant_record>> get_tenant(std::string id);

}  // namespace parley::store
