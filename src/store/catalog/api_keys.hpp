#pragma once
/// API keys: the secrets a tenant's channels authenticate with, stored as SHA-256 hashes.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

/// A key just created: `key` is the plaintext, returned this once and never
/// stored ("pk_" + 43 base64url characters of 32 random bytes).
struct api_key_created {
  std::int64_t id = 0;
  std::string key;
  std::string prefix;  ///< first 8 characters of `key`, shown in listings
};

struct api_key_record {
  std::int64_t id = 0;
  std::string name;
  std::string prefix;
  std::int64_t created_at_ms = 0;
  bool revoked = false;
};

/// Hex SHA-256 of a plaintext key, as stored in api_keys.key_hash (for
/// callers that cache verified keys by hash rather than plaintext).
std::string api_key_hash(const std::string& key);

/// Creates an API key for a tenant. Errors: `invalid_argument` (empty name),
/// `tenant_not_found`.
catalog_job<api_key_created> create_api_key(std::string tenant, std::string name,
                                            std::string actor);

/// Whether `key` is a live (not revoked) API key of `tenant`. Hashes are
/// compared in constant time. A malformed key or unknown tenant is `false`,
/// not an error; only Postgres failures are errors.
catalog_job<bool> verify_api_key(std::string tenant, std::string key);

/// Revokes a key by id (idempotent for an already revoked key). Errors:
/// `api_key_not_found` (no such key for this tenant).
catalog_job<void> revoke_api_key(std::string tenant, std::int64_t key_id, std::string actor);

/// The tenant's keys (never the plaintext or hash), ordered by id.
catalog_job<std::vector<api_key_record>> list_api_keys(std::string tenant);

}  // namespace parley::store
