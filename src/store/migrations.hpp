#pragma once
/// Postgres schema migrations: numbered SQL files in src/store/migrations/
/// ("0001_init.sql", "0002_bots.sql", ...), embedded into the binary at build
/// time, applied in order at start-up.
///
/// Each migration runs in its own transaction that first takes a transaction
/// advisory lock for the target schema, so nodes starting together serialise:
/// every migration is applied exactly once, and the others see its row in
/// `schema_migrations (version, name, checksum, applied_at)` and skip it. The
/// checksum is the SHA-256 of the file's text; an applied migration whose text
/// changed is an error (`migration_checksum_mismatch`), never silently skipped.
/// Versions in the database unknown to this binary (a newer node ran them) are
/// accepted, so a rolling deploy can run old and new nodes side by side.
///
/// Threads: the blocking functions wait for the postgres_client's workers and
/// are for start-up, tools and tests; the callback variants run `done` on a
/// worker thread of the client (see postgres.hpp).

#include <functional>
#include <string>
#include <vector>

#include "src/common/result.hpp"
#include "src/store/postgres.hpp"

namespace parley::store {

struct migration {
  int version = 0;
  std::string name;  ///< from the file name, without number and extension
  std::string sql;   ///< may hold several statements; must not COMMIT
};

/// The migrations built into this binary, ordered by version (unique, > 0).
const std::vector<migration>& embedded_migrations();

/// Hex SHA-256 of the migration's SQL text.
std::string migration_checksum(const migration& m);

struct migration_options {
  /// Schema the migrations create their tables in (and the bookkeeping table);
  /// created when missing. Tests use a scratch schema.
  std::string schema = "public";
  /// Ordered by version; defaults to the embedded ones.
  std::vector<migration> migrations = embedded_migrations();
};

struct migration_outcome {
  std::vector<int> applied;  ///< versions this call applied, in order (empty: already current)
  int latest = 0;            ///< highest known version, now applied
};

/// Applies every pending migration, blocking. Errors: `postgres_unavailable`,
/// `migration_checksum_mismatch` (names version and file), `migration_failed`
/// (names the migration and carries the server's message; that migration's
/// transaction is rolled back, earlier ones stay), `bad_migrations` (options
/// not ordered or unique, or a bad schema name).
result<migration_outcome> apply_migrations(postgres_client& pg,
                                           const migration_options& options = {});

/// Whether every known migration is applied with a matching checksum, for
/// /readyz. `done` runs on a worker thread of `pg`. Fails like apply_migrations
/// (a changed checksum is an error, not `false`).
void migrations_current(postgres_client& pg, migration_options options,
                        std::function<void(result<bool>)> done);

/// Blocking migrations_current, for tools and tests.
result<bool> migrations_current(postgres_client& pg, const migration_options& options = {});

}  // namespace parley::store
