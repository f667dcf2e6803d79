#include "src/store/migrations.hpp"

#include <openssl/evp.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

namespace parley::store {

namespace detail {
/// Defined in the .cpp that CMake generates from src/store/migrations/*.sql.
std::vector<migration> generated_migrations();
}  // namespace detail

namespace {

/// The runner's bookkeeping table; 0001_init.sql repeats this definition.
constexpr const char* bookkeeping_ddl =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/// Thrown inside a job to roll its transaction back after recording why.
struct abort_job : std::exception {
  const char* what() const noexcept override { return "migration aborted"; }
};

std::optional<error> validate(const migration_options& o) {
  if (o.schema.empty() || o.schema.size() > 63)
    return make_error("bad_migrations",
                      "schema name '" + o.schema + "' must have 1 to 63 characters");
  for (size_t i = 0; i < o.migrations.size(); ++i) {
    if (o.migrations[i].version <= 0)
      return make_error("bad_migrations",
                        "migration '" + o.migrations[i].name + "' has a version <= 0");
    if (i > 0 && o.migrations[i].version <= o.migrations[i - 1].version)
      return make_error("bad_migrations", "migrations must be ordered by unique version; " +
                                              std::to_string(o.migrations[i].version) +
                                              " follows " +
                                              std::to_string(o.migrations[i - 1].version));
  }
  return std::nullopt;
}

std::string label(const migration& m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", m.version);
  return std::string(buf) + "_" + m.name + ".sql";
}

error mismatch(const migration& m, const std::string& applied_sum) {
  return make_error("migration_checksum_mismatch",
                    "migration " + label(m) + " was applied with checksum " +
                        applied_sum.substr(0, 12) + "... but its text now has checksum " +
                        migration_checksum(m).substr(0, 12) +
                        "...: never edit an applied migration, add a new one");
}

/// Whether all known migrations are applied; an error on a changed checksum.
result<bool> check(pqxx::transaction_base& tx, const migration_options& o) {
  std::string table = tx.quote_name(o.schema) + ".schema_migrations";
  auto exists = tx.exec_params("SELECT to_regclass($1) IS NOT NULL", table);
  if (!exists[0][0].as<bool>()) return o.migrations.empty();
  std::map<int, std::string> applied;
  for (const auto& row : tx.exec("SELECT version, checksum FROM " + table))
    applied.emplace(row[0].as<int>(), row[1].as<std::string>());
  bool current = true;
  for (const auto& m : o.migrations) {
    auto it = applied.find(m.version);
    if (it == applied.end()) {
      current = false;
    } else if (it->second != migration_checksum(m)) {
      return mismatch(m, it->second);
    }
  }
  return current;
}

/// Serialises appliers of this schema until the transaction ends, then makes
/// the schema and the bookkeeping table exist and be the search_path.
void prepare(pqxx::transaction_base& tx, const std::string& schema) {
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('parley.schema_migrations'), hashtext($1))",
                 schema);
  // Check first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even
  // when the schema exists.
  if (tx.exec_params("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema).empty())
    tx.exec("CREATE SCHEMA " + tx.quote_name(schema));
  tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema));
  tx.exec(bookkeeping_ddl);
}

}  // namespace

const std::vector<migration>& embedded_migrations() {
  static const std::vector<migration> all = [] {
    auto v = detail::generated_migrations();
    for (size_t i = 1; i < v.size(); ++i) {
      // CMake orders the files and rejects duplicates; a violation is a build bug.
      if (v[i].version <= v[i - 1].version) std::abort();
    }
    return v;
  }();
  return all;
}

std::string migration_checksum(const migration& m) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(m.sql.data(), m.sql.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xf]);
  }
  return out;
}

result<migration_outcome> apply_migrations(postgres_client& pg, const migration_options& options) {
  if (auto bad = validate(options)) return *bad;
  migration_outcome out;
  out.latest = options.migrations.empty() ? 0 : options.migrations.back().version;
  // Usual case on a restart: everything applied, one read-only round.
  auto current = migrations_current(pg, options);
  if (!current) return current.err();
  if (*current) return out;

  for (const auto& m : options.migrations) {
    const std::string sum = migration_checksum(m);
    std::optional<error> failure;
    bool applied = false;
    auto r = pg.run_sync([&](pqxx::transaction_base& tx) {
      // The client may rerun this job after a broken connection.
      failure.reset();
      applied = false;
      prepare(tx, options.schema);
      auto row =
          tx.exec_params("SELECT checksum FROM schema_migrations WHERE version = $1", m.version);
      if (!row.empty()) {
        auto applied_sum = row[0][0].as<std::string>();
        if (applied_sum != sum) {
          failure = mismatch(m, applied_sum);
          throw abort_job();
        }
        return;  // another node applied it first
      }
      try {
        tx.exec(m.sql);
      } catch (const pqxx::sql_error& e) {
        std::string msg = e.what();
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        failure = make_error("migration_failed", "migration " + label(m) + " failed: " + msg);
        throw;
      }
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     m.version, m.name, sum);
      applied = true;
    });
    if (failure) return *failure;
    if (!r) return r.err();
    if (applied) out.applied.push_back(m.version);
  }
  return out;
}

void migrations_current(postgres_client& pg, migration_options options,
                        std::function<void(result<bool>)> done) {
  if (auto bad = validate(options)) {
    // Keep the contract: `done` runs on a worker thread.
    pg.run_autocommit([](pqxx::transaction_base&) {},
                      [bad = *bad, done = std::move(done)](result<void>) { done(bad); });
    return;
  }
  pg.query(
      [options = std::move(options)](pqxx::transaction_base& tx) { return check(tx, options); },
      std::function<void(result<result<bool>>)>([done = std::move(done)](result<result<bool>> r) {
        if (!r) {
          done(r.err());
        } else {
          done(std::move(*r));
        }
      }));
}

result<bool> migrations_current(postgres_client& pg, const migration_options& options) {
  if (auto bad = validate(options)) return *bad;
  auto r = pg.query_sync([&](pqxx::transaction_base& tx) { return check(tx, options); });
  if (!r) return r.err();
  return std::move(*r);
}

}  // namespace parley::store
