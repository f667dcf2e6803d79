#pragma once
/// Tenant secrets: the values a tenant's bot actions use as `{{secret.NAME}}` and its
/// channel credentials, stored sealed with AES-256-GCM under the node's master key
/// (src/secrets/secrets.hpp; table tenant_secrets, migrations/0009_tenant_secrets.sql).
///
/// No listing ever returns a value, and no audit row holds one: audit rows of
/// `secret.set`, `secret.delete` and `secrets.rotate` name the secret and the key id
/// only. Telling the region's nodes to drop their cached values is the caller's job
/// after the commit (src/admin: the `secrets_changed` change).
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus `invalid_argument` (a malformed tenant id or secret name, a
/// value over 8 KiB), `tenant_not_found`, `secrets_key_missing` (the node has no
/// PARLEY_SECRETS_KEY), and those named per function.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/secrets/secrets.hpp"
#include "src/store/catalog/job.hpp"

namespace parley::store {

/// What a listing shows of one secret: never its value.
struct secret_record {
  std::string name;
  std::string key_id;  ///< the master key it is sealed under
  std::int64_t updated_at_ms = 0;
};

/// Seals `value` under `keys.current()` and stores it as `tenant`'s secret `name`,
/// replacing an older value. Result: true when the secret is new, false when replaced.
catalog_job<bool> put_secret(secrets::keyring keys, std::string tenant, std::string name,
                             std::string value, std::string actor);

/// The tenant's secrets by name, never with values.
catalog_job<std::vector<secret_record>> list_secrets(std::string tenant);

/// Every secret of `tenant`, opened (for the node's secret cache; never for a
/// response). A tenant without secrets, or that does not exist, has none. Errors:
/// `secrets_key_unknown` and `secret_undecryptable` (src/secrets/secrets.hpp) for the
/// first row that does not open.
catalog_job<std::map<std::string, std::string>> tenant_secrets(secrets::keyring keys,
                                                               std::string tenant);

/// One secret of `tenant`, opened; nullopt when absent. Errors as tenant_secrets.
catalog_job<std::optional<std::string>> get_secret(secrets::keyring keys, std::string tenant,
                                                   std::string name);

/// Deletes `tenant`'s secret `name`. Errors: `secret_not_found`.
catalog_job<void> delete_secret(std::string tenant, std::string name, std::string actor);

/// What a rotation did.
struct rotation_result {
  std::int64_t reencrypted = 0;      ///< rows re-sealed under the current key
  std::vector<std::string> tenants;  ///< the tenants whose rows were re-sealed
};

/// Re-seals every row that is not under `keys.current()` (opened with a previous key)
/// under the current key, in one transaction. Errors: `secrets_key_unknown` naming a
/// key id no key of `keys` has (nothing changes then), `secret_undecryptable`.
catalog_job<rotation_result> rotate_secrets(secrets::keyring keys, std::string actor);

/// How many rows each key id seals (for parleyd's start check). No table yet (the
/// migrations have not run) is no rows.
catalog_job<std::map<std::string, std::int64_t>> secret_key_ids();

}  // namespace parley::store
