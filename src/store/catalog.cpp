#include "src/store/catalog.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "src/bot/bot.hpp"

namespace parley::store {

namespace {

using json = nlohmann::json;

/// A failure the catalog reports with its own code. Thrown inside a job so
/// the transaction rolls back; run_async/run_blocking catch its copy and hand
/// it to the caller instead of the client's generic `postgres_job_failed`.
struct catalog_failure : std::exception {
  error err;
  explicit catalog_failure(error e) : err(std::move(e)) {}
  const char* what() const noexcept override { return err.message.c_str(); }
};

[[noreturn]] void fail(std::string code, std::string message) {
  throw catalog_failure(make_error(std::move(code), std::move(message)));
}

template <class T>
using job_of = std::function<T(pqxx::transaction_base&)>;

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What one job produced: its value or its catalog failure. Reset at the start
/// of every attempt (the client may run a job twice, see postgres.hpp).
template <class T>
struct job_slot {
  std::optional<error> failure;
  std::optional<stored_t<T>> value;
};

template <class T>
postgres_job wrap(job_of<T> job, std::shared_ptr<job_slot<T>> slot) {
  return [job = std::move(job), slot](pqxx::transaction_base& tx) {
    slot->failure.reset();
    slot->value.reset();
    try {
      if constexpr (std::is_void_v<T>) {
        job(tx);
        slot->value.emplace();
      } else {
        slot->value.emplace(job(tx));
      }
    } catch (const catalog_failure& f) {
      slot->failure = f.err;
      throw;
    }
  };
}

template <class T>
result<T> finish(job_slot<T>& slot, const result<void>& r) {
  if (slot.failure) return *slot.failure;
  if (!r) return r.err();
  if constexpr (std::is_void_v<T>) {
    return result<void>{};
  } else {
    return std::move(*slot.value);
  }
}

template <class T>
void run_async(postgres_client& pg, job_of<T> job, catalog_callback<T> done) {
  auto slot = std::make_shared<job_slot<T>>();
  pg.run(wrap<T>(std::move(job), slot),
         [slot, done = std::move(done)](result<void> r) { done(finish<T>(*slot, r)); });
}

template <class T>
result<T> run_blocking(postgres_client& pg, job_of<T> job) {
  auto slot = std::make_shared<job_slot<T>>();
  auto r = pg.run_sync(wrap<T>(std::move(job), slot));
  return finish<T>(*slot, r);
}

// ------------------------------------------------------------------ helpers

/// Unix milliseconds of a timestamptz column, as SQL.
std::string ms(const std::string& column) {
  return "(extract(epoch from " + column + ") * 1000)::bigint";
}

/// SQL for a timestamp parameter given in Unix milliseconds, 0 meaning now().
std::string at_or_now(const std::string& param) {
  return "CASE WHEN " + param + "::bigint = 0 THEN now() ELSE to_timestamp(" + param +
         "::bigint / 1000.0) END";
}

void require_id(const std::string& what, const std::string& id) {
  if (!valid_catalog_id(id))
    fail("invalid_argument", what + " '" + id +
                                 "' is not valid: use 1 to 64 letters, digits, '_', '-' or '.', "
                                 "starting with a letter or digit");
}

void require_tenant(pqxx::transaction_base& tx, const std::string& tenant) {
  require_id("tenant id", tenant);
  if (tx.exec_params("SELECT 1 FROM tenants WHERE id = $1", tenant).empty())
    fail("tenant_not_found", "tenant '" + tenant + "' does not exist");
}

/// Text that Postgres accepts in a text column: valid UTF-8 without NUL.
/// Invalid sequences become U+FFFD and NULs are dropped, so a user's odd bytes
/// cannot make a transcript batch fail forever.
std::string clean_text(const std::string& in) {
  // Fast path: plain ASCII without NUL, the common case, is already clean.
  bool plain = true;
  for (unsigned char c : in)
    if (c == 0 || c >= 0x80) {
      plain = false;
      break;
    }
  if (plain) return in;
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t n = in.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == 0) {
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned int cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      // Reject overlong forms, surrogates and values past U+10FFFF.
      static const unsigned int min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 0x0F]);
  }
  return out;
}

std::string base64url(const unsigned char* p, std::size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  if (n - i == 1) {
    unsigned v = p[i] << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

constexpr std::size_t key_prefix_length = 8;

std::int64_t write_audit(pqxx::transaction_base& tx, const std::string& actor,
                         const std::string& action, const std::string& tenant,
                         const std::string& target, const json& details) {
  auto row = tx.exec_params1(
      "INSERT INTO audit_log (actor, action, tenant_id, target, details) "
      "VALUES ($1, $2, NULLIF($3, ''), $4, $5::jsonb) RETURNING id",
      clean_text(actor.empty() ? std::string("unknown") : actor), action, tenant,
      clean_text(target), details.dump(-1, ' ', false, json::error_handler_t::replace));
  return row[0].as<std::int64_t>();
}

json diagnostics_json(const std::vector<deploy_diagnostic>& ds) {
  json out = json::array();
  for (const auto& d : ds)
    out.push_back(
        {{"severity", d.severity}, {"line", d.line}, {"column", d.column}, {"message", d.message}});
  return out;
}

std::vector<deploy_diagnostic> diagnostics_from_json(const std::string& text) {
  std::vector<deploy_diagnostic> out;
  auto j = json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& d : j) {
    if (!d.is_object()) continue;
    deploy_diagnostic x;
    x.severity = d.value("severity", "warning");
    x.line = d.value("line", 0);
    x.column = d.value("column", 0);
    x.message = d.value("message", "");
    out.push_back(std::move(x));
  }
  return out;
}

/// Serialises changes of the active pointers, so change_seq values commit in
/// increasing order (see active_changes_since).
void lock_active_pointers(pqxx::transaction_base& tx) {
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('parley.catalog'), hashtext('bot_active'))");
}

void notify_change(pqxx::transaction_base& tx, const std::string& tenant, const std::string& bot,
                   int version, std::int64_t seq) {
  json payload = {{"tenant", tenant}, {"bot", bot}, {"version", version}, {"change_seq", seq}};
  tx.exec_params("SELECT pg_notify('parley_catalog', $1)", payload.dump());
}

/// Moves the active pointer of an existing bot to an existing `version`.
activation activate_in(pqxx::transaction_base& tx, const std::string& tenant,
                       const std::string& bot, int version, const std::string& actor) {
  lock_active_pointers(tx);
  if (tx.exec_params("SELECT 1 FROM bot_versions WHERE tenant_id = $1 AND bot_id = $2 AND "
                     "version = $3",
                     tenant, bot, version)
          .empty())
    fail("version_not_found",
         "bot '" + bot + "' of tenant '" + tenant + "' has no version " + std::to_string(version));
  auto cur = tx.exec_params(
      "SELECT version, previous_version, change_seq FROM bot_active "
      "WHERE tenant_id = $1 AND bot_id = $2 FOR UPDATE",
      tenant, bot);
  activation a;
  a.version = version;
  if (!cur.empty()) {
    int current = cur[0][0].as<int>();
    if (current == version) {
      if (!cur[0][1].is_null()) a.previous_version = cur[0][1].as<int>();
      a.change_seq = cur[0][2].as<std::int64_t>();
      a.changed = false;
      return a;
    }
    a.previous_version = current;
  }
  a.change_seq = tx.exec("SELECT nextval('bot_change_seq')")[0][0].as<std::int64_t>();
  a.changed = true;
  if (a.previous_version) {
    tx.exec_params(
        "INSERT INTO bot_active (tenant_id, bot_id, version, previous_version, change_seq) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, bot_id) DO UPDATE SET "
        "version = EXCLUDED.version, previous_version = EXCLUDED.previous_version, "
        "changed_at = now(), change_seq = EXCLUDED.change_seq",
        tenant, bot, version, *a.previous_version, a.change_seq);
  } else {
    tx.exec_params(
        "INSERT INTO bot_active (tenant_id, bot_id, version, previous_version, change_seq) "
        "VALUES ($1, $2, $3, NULL, $4)",
        tenant, bot, version, a.change_seq);
  }
  notify_change(tx, tenant, bot, version, a.change_seq);
  json details = {{"version", version}, {"change_seq", a.change_seq}};
  details["previous_version"] = a.previous_version ? json(*a.previous_version) : json(nullptr);
  write_audit(tx, actor, "bot.activate", tenant, bot, details);
  return a;
}

// ------------------------------------------------------------------ jobs

job_of<tenant_record> create_tenant_job(std::string id, std::string name, std::string actor) {
  return [id = std::move(id), name = std::move(name),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", id);
    if (name.empty()) fail("invalid_argument", "tenant name must not be empty");
    auto r = tx.exec_params(
        "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO "
        "NOTHING RETURNING id, name, " +
            ms("created_at"),
        id, clean_text(name));
    if (r.empty()) fail("tenant_exists", "tenant '" + id + "' already exists");
    tenant_record t{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                    r[0][2].as<std::int64_t>()};
    write_audit(tx, actor, "tenant.create", id, id, {{"name", t.name}});
    return t;
  };
}

tenant_record tenant_from(const pqxx::row& row) {
  return tenant_record{row[0].as<std::string>(), row[1].as<std::string>(),
                       row[2].as<std::int64_t>()};
}

job_of<std::vector<tenant_record>> list_tenants_job() {
  return [](pqxx::transaction_base& tx) {
    std::vector<tenant_record> out;
    for (const auto& row :
         tx.exec("SELECT id, name, " + ms("created_at") + " FROM tenants ORDER BY id"))
      out.push_back(tenant_from(row));
    return out;
  };
}

job_of<std::optional<tenant_record>> get_tenant_job(std::string id) {
  return [id = std::move(id)](pqxx::transaction_base& tx) -> std::optional<tenant_record> {
    if (!valid_catalog_id(id)) return std::nullopt;
    auto r =
        tx.exec_params("SELECT id, name, " + ms("created_at") + " FROM tenants WHERE id = $1", id);
    if (r.empty()) return std::nullopt;
    return tenant_from(r[0]);
  };
}

job_of<api_key_created> create_api_key_job(std::string tenant, std::string name,
                                           std::string actor) {
  return [tenant = std::move(tenant), name = std::move(name),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    if (name.empty()) fail("invalid_argument", "API key name must not be empty");
    require_tenant(tx, tenant);
    unsigned char bytes[32];
    // A failing CSPRNG is a broken host, not a recoverable condition.
    if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();
    api_key_created k;
    k.key = "pk_" + base64url(bytes, sizeof bytes);
    k.prefix = k.key.substr(0, key_prefix_length);
    auto row = tx.exec_params1(
        "INSERT INTO api_keys (tenant_id, name, key_hash, prefix) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        tenant, clean_text(name), api_key_hash(k.key), k.prefix);
    k.id = row[0].as<std::int64_t>();
    write_audit(tx, actor, "api_key.create", tenant, "api_key/" + std::to_string(k.id),
                {{"name", name}, {"prefix", k.prefix}});
    return k;
  };
}

job_of<bool> verify_api_key_job(std::string tenant, std::string key) {
  return [tenant = std::move(tenant), key = std::move(key)](pqxx::transaction_base& tx) {
    if (key.size() < key_prefix_length || key.compare(0, 3, "pk_") != 0) return false;
    if (!valid_catalog_id(tenant)) return false;
    std::string want = api_key_hash(key);
    bool match = false;
    for (const auto& row :
         tx.exec_params("SELECT key_hash FROM api_keys WHERE tenant_id = $1 AND prefix = $2 AND "
                        "revoked_at IS NULL",
                        tenant, key.substr(0, key_prefix_length))) {
      auto have = row[0].as<std::string>();
      if (have.size() == want.size() && CRYPTO_memcmp(have.data(), want.data(), want.size()) == 0)
        match = true;
    }
    return match;
  };
}

job_of<void> revoke_api_key_job(std::string tenant, std::int64_t key_id, std::string actor) {
  return [tenant = std::move(tenant), key_id,
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    auto r = tx.exec_params(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND "
        "revoked_at IS NULL RETURNING prefix",
        tenant, key_id);
    if (r.empty()) {
      if (tx.exec_params("SELECT 1 FROM api_keys WHERE tenant_id = $1 AND id = $2", tenant, key_id)
              .empty())
        fail("api_key_not_found",
             "tenant '" + tenant + "' has no API key " + std::to_string(key_id));
      return;
    }
    write_audit(tx, actor, "api_key.revoke", tenant, "api_key/" + std::to_string(key_id),
                {{"prefix", r[0][0].as<std::string>()}});
  };
}

job_of<std::vector<api_key_record>> list_api_keys_job(std::string tenant) {
  return [tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    require_tenant(tx, tenant);
    std::vector<api_key_record> out;
    for (const auto& row : tx.exec_params("SELECT id, name, prefix, " + ms("created_at") +
                                              ", revoked_at IS NOT NULL FROM api_keys "
                                              "WHERE tenant_id = $1 ORDER BY id",
                                          tenant))
      out.push_back(api_key_record{row[0].as<std::int64_t>(), row[1].as<std::string>(),
                                   row[2].as<std::string>(), row[3].as<std::int64_t>(),
                                   row[4].as<bool>()});
    return out;
  };
}

job_of<deploy_outcome> deploy_job(deploy_request req) {
  return [req = std::move(req)](pqxx::transaction_base& tx) {
    require_id("bot id", req.bot);
    require_tenant(tx, req.tenant);
    deploy_outcome out;
    auto compiled =
        bot::compile(req.source, req.file_name.empty() ? req.bot + ".yaml" : req.file_name);
    std::vector<deploy_diagnostic> warnings;
    for (const auto& d : compiled.diagnostics) {
      deploy_diagnostic x{d.level == bot::severity::error ? "error" : "warning", d.line, d.column,
                          d.message};
      if (d.level == bot::severity::warning) warnings.push_back(x);
      out.diagnostics.push_back(std::move(x));
    }
    if (!compiled.ok()) return out;
    std::string program = bot::serialize(*compiled.program);
    out.program_id = compiled.program->id();

    // The bot row serialises concurrent deploys of one bot, so each gets the
    // next number.
    tx.exec_params("INSERT INTO bots (tenant_id, bot_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   req.tenant, req.bot);
    tx.exec_params("SELECT 1 FROM bots WHERE tenant_id = $1 AND bot_id = $2 FOR UPDATE", req.tenant,
                   req.bot);
    out.version = tx.exec_params1(
                        "SELECT coalesce(max(version), 0) + 1 FROM bot_versions "
                        "WHERE tenant_id = $1 AND bot_id = $2",
                        req.tenant, req.bot)[0]
                      .as<int>();
    std::string deployed_by = req.deployed_by.empty() ? "unknown" : clean_text(req.deployed_by);
    tx.exec_params(
        "INSERT INTO bot_versions (tenant_id, bot_id, version, program_id, source, program, "
        "deployed_by, warnings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        req.tenant, req.bot, out.version, out.program_id, clean_text(req.source),
        pqxx::binarystring(program), deployed_by,
        diagnostics_json(warnings).dump(-1, ' ', false, json::error_handler_t::replace));
    out.deployed = true;
    write_audit(tx, deployed_by, "bot.deploy", req.tenant, req.bot,
                {{"version", out.version},
                 {"program_id", out.program_id},
                 {"warnings", warnings.size()},
                 {"activate", req.activate}});
    if (req.activate)
      out.activated = activate_in(tx, req.tenant, req.bot, out.version, deployed_by).changed;
    return out;
  };
}

job_of<std::vector<version_info>> list_versions_job(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    std::vector<version_info> out;
    for (const auto& row :
         tx.exec_params("SELECT v.version, v.program_id, v.deployed_by, " + ms("v.deployed_at") +
                            ", coalesce(a.version = v.version, false), v.warnings::text "
                            "FROM bot_versions v LEFT JOIN bot_active a "
                            "ON a.tenant_id = v.tenant_id AND a.bot_id = v.bot_id "
                            "WHERE v.tenant_id = $1 AND v.bot_id = $2 ORDER BY v.version",
                        tenant, bot)) {
      version_info v;
      v.version = row[0].as<int>();
      v.program_id = row[1].as<std::string>();
      v.deployed_by = row[2].as<std::string>();
      v.deployed_at_ms = row[3].as<std::int64_t>();
      v.active = row[4].as<bool>();
      v.warnings = diagnostics_from_json(row[5].as<std::string>());
      out.push_back(std::move(v));
    }
    if (out.empty()) fail("bot_not_found", "tenant '" + tenant + "' has no bot '" + bot + "'");
    return out;
  };
}

job_of<bot_program> get_version_job(std::string tenant, std::string bot, int version) {
  return [tenant = std::move(tenant), bot = std::move(bot), version](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    auto r = tx.exec_params(
        "SELECT program_id, program, source FROM bot_versions "
        "WHERE tenant_id = $1 AND bot_id = $2 AND version = $3",
        tenant, bot, version);
    if (r.empty())
      fail("version_not_found", "bot '" + bot + "' of tenant '" + tenant + "' has no version " +
                                    std::to_string(version));
    return bot_program{tenant,
                       bot,
                       version,
                       r[0][0].as<std::string>(),
                       pqxx::binarystring(r[0][1]).str(),
                       r[0][2].as<std::string>()};
  };
}

job_of<bot_program> get_active_job(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    auto r = tx.exec_params(
        "SELECT v.version, v.program_id, v.program FROM bot_active a JOIN bot_versions v "
        "ON v.tenant_id = a.tenant_id AND v.bot_id = a.bot_id AND v.version = a.version "
        "WHERE a.tenant_id = $1 AND a.bot_id = $2",
        tenant, bot);
    if (r.empty())
      fail("no_active_version",
           "bot '" + bot + "' of tenant '" + tenant + "' has no active version");
    return bot_program{tenant,
                       bot,
                       r[0][0].as<int>(),
                       r[0][1].as<std::string>(),
                       pqxx::binarystring(r[0][2]).str(),
                       {}};
  };
}

job_of<activation> activate_job(std::string tenant, std::string bot, int version,
                                std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot), version,
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    return activate_in(tx, tenant, bot, version, actor);
  };
}

job_of<activation> rollback_job(std::string tenant, std::string bot, std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    lock_active_pointers(tx);
    auto cur = tx.exec_params(
        "SELECT version, previous_version FROM bot_active WHERE tenant_id = $1 AND bot_id = $2 "
        "FOR UPDATE",
        tenant, bot);
    if (cur.empty())
      fail("no_active_version",
           "bot '" + bot + "' of tenant '" + tenant + "' has no active version");
    int from = cur[0][0].as<int>();
    if (cur[0][1].is_null())
      fail("no_previous_version", "bot '" + bot + "' of tenant '" + tenant +
                                      "' has no previous version to roll back to (version " +
                                      std::to_string(from) + " is active)");
    activation a;
    a.version = cur[0][1].as<int>();
    a.change_seq = tx.exec("SELECT nextval('bot_change_seq')")[0][0].as<std::int64_t>();
    a.changed = true;
    tx.exec_params(
        "UPDATE bot_active SET version = $3, previous_version = NULL, changed_at = now(), "
        "change_seq = $4 WHERE tenant_id = $1 AND bot_id = $2",
        tenant, bot, a.version, a.change_seq);
    notify_change(tx, tenant, bot, a.version, a.change_seq);
    write_audit(tx, actor, "bot.rollback", tenant, bot,
                {{"from", from}, {"to", a.version}, {"change_seq", a.change_seq}});
    return a;
  };
}

job_of<std::vector<active_change>> changes_job(std::int64_t since, std::size_t limit) {
  return [since, limit](pqxx::transaction_base& tx) {
    std::vector<active_change> out;
    for (const auto& row :
         tx.exec_params("SELECT tenant_id, bot_id, version, change_seq FROM bot_active "
                        "WHERE change_seq > $1 ORDER BY change_seq LIMIT $2",
                        since, static_cast<std::int64_t>(limit)))
      out.push_back(active_change{row[0].as<std::string>(), row[1].as<std::string>(),
                                  row[2].as<int>(), row[3].as<std::int64_t>()});
    return out;
  };
}

job_of<void> upsert_conversation_job(conversation_record c) {
  return [c = std::move(c)](pqxx::transaction_base& tx) {
    require_id("tenant id", c.tenant);
    if (c.session_id.empty()) fail("invalid_argument", "conversation session id must not be empty");
    tx.exec_params(
        "INSERT INTO conversations (tenant_id, session_id, bot_id, version, channel, "
        "external_key, started_at) VALUES ($1, $2, $3, $4, $5, $6, " +
            at_or_now("$7") + ") ON CONFLICT (tenant_id, session_id) DO NOTHING",
        c.tenant, clean_text(c.session_id), clean_text(c.bot), c.version, clean_text(c.channel),
        clean_text(c.external_key), c.started_at_ms);
  };
}

job_of<bool> end_conversation_job(std::string tenant, std::string session, std::string reason) {
  return [tenant = std::move(tenant), session = std::move(session),
          reason = std::move(reason)](pqxx::transaction_base& tx) {
    auto r = tx.exec_params(
        "UPDATE conversations SET ended_at = now(), end_reason = $3 "
        "WHERE tenant_id = $1 AND session_id = $2 AND ended_at IS NULL",
        tenant, clean_text(session), clean_text(reason));
    return r.affected_rows() > 0;
  };
}

job_of<std::optional<conversation_record>> get_conversation_job(std::string tenant,
                                                                std::string session) {
  return [tenant = std::move(tenant), session = std::move(session)](
             pqxx::transaction_base& tx) -> std::optional<conversation_record> {
    auto r = tx.exec_params("SELECT bot_id, version, channel, external_key, " + ms("started_at") +
                                ", " + ms("ended_at") +
                                ", coalesce(end_reason, '') FROM conversations "
                                "WHERE tenant_id = $1 AND session_id = $2",
                            tenant, clean_text(session));
    if (r.empty()) return std::nullopt;
    conversation_record c;
    c.tenant = tenant;
    c.session_id = session;
    c.bot = r[0][0].as<std::string>();
    c.version = r[0][1].as<int>();
    c.channel = r[0][2].as<std::string>();
    c.external_key = r[0][3].as<std::string>();
    c.started_at_ms = r[0][4].as<std::int64_t>();
    if (!r[0][5].is_null()) c.ended_at_ms = r[0][5].as<std::int64_t>();
    c.end_reason = r[0][6].as<std::string>();
    return c;
  };
}

/// A Postgres array literal ("{...}") built element by element, for batch statements
/// that pass their rows as array parameters to unnest().
class array_literal {
 public:
  void text(const std::string& v) {
    separate();
    s_ += '"';
    // Whole runs between characters to escape (texts rarely hold any): appending
    // byte by byte was the largest cost of building a transcript batch.
    std::size_t from = 0;
    for (auto at = v.find_first_of("\"\\"); at != std::string::npos;
         at = v.find_first_of("\"\\", at + 1)) {
      s_.append(v, from, at - from);
      s_ += '\\';
      from = at;
    }
    s_.append(v, from, std::string::npos);
    s_ += '"';
  }
  void number(long long v) {
    separate();
    s_ += std::to_string(v);
  }
  void null() {
    separate();
    s_ += "NULL";
  }
  std::string str() const { return s_ + '}'; }

 private:
  void separate() {
    if (s_.size() > 1) s_ += ',';
  }
  std::string s_ = "{";
};

// ------------------------------------------------------------------ transcripts
//
// Stored one row per turn in transcript_turns (migrations/0004_transcript_turns.sql):
// Postgres pays per row, and a turn's inbound message and replies always travel
// together. Turns are written whole (transcript_line) and expanded back into
// per-message transcript_rows on the way out.

/// Appends `text` (valid UTF-8, see clean_text) as a JSON string: quotes, backslashes
/// and control characters escaped, everything else as is (nlohmann's DOM and dump per
/// reply were the transcript path's largest cost). `for_copy`: inside a field of COPY's
/// text format, so every backslash is doubled (a JSON string holds no raw tab or line
/// end, so nothing else needs COPY's escaping).
void append_json_string(std::string& out, std::string_view text, bool for_copy) {
  static const char* hex = "0123456789abcdef";
  const std::string_view bs = for_copy ? "\\\\" : "\\";
  out += '"';
  std::size_t from = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + from, i - from);
    from = i + 1;
    out += bs;
    switch (c) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += bs;
        break;
      case '\n':
        out += 'n';
        break;
      case '\r':
        out += 'r';
        break;
      case '\t':
        out += 't';
        break;
      case '\b':
        out += 'b';
        break;
      case '\f':
        out += 'f';
        break;
      default:
        out += "u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(text.data() + from, text.size() - from);
  out += '"';
}

/// Appends `v` as one field of COPY's text format: its delimiters (tab, newline,
/// carriage return) and the escape character (backslash) escaped, the rest as is.
void append_copy_field(std::string& line, std::string_view v) {
  std::size_t from = 0;
  for (auto at = v.find_first_of("\\\n\r\t"); at != std::string_view::npos;
       at = v.find_first_of("\\\n\r\t", at + 1)) {
    line.append(v.data() + from, at - from);
    line += '\\';
    const char c = v[at];
    line += c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
    from = at + 1;
  }
  line.append(v.data() + from, v.size() - from);
}

/// Appends a time in milliseconds since the epoch as timestamptz text (UTC). The text
/// of the last second is kept per thread: turns of one batch share their seconds.
void append_timestamp(std::string& line, std::int64_t ms) {
  thread_local std::int64_t cached_second = -1;
  thread_local char cached[24];  // "YYYY-MM-DD HH:MM:SS."
  thread_local int cached_len = 0;
  if (ms < 0) ms = 0;
  const std::int64_t second = ms / 1000;
  if (second != cached_second) {
    std::time_t secs = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached_len =
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02d %02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = second;
  }
  line.append(cached, static_cast<std::size_t>(cached_len));
  const int milli = static_cast<int>(ms % 1000);
  line += static_cast<char>('0' + milli / 100);
  line += static_cast<char>('0' + milli / 10 % 10);
  line += static_cast<char>('0' + milli % 10);
  line += "+00";
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// `text` as clean_text would make it, without a copy when it is clean already.
template <class Fn>
void with_clean(std::string_view text, Fn&& fn) {
  for (unsigned char c : text)
    if (c == 0 || c >= 0x80) {
      auto cleaned = clean_text(std::string(text));
      return fn(std::string_view(cleaned));
    }
  fn(text);
}

/// Appends the first columns of a transcript_turns COPY line: tenant, session id and
/// sequence, each followed by its tab.
void append_line_head(std::string& out, std::string_view tenant, std::string_view session_id,
                      std::int64_t sequence) {
  with_clean(tenant, [&](std::string_view t) { append_copy_field(out, t); });
  out += '\t';
  with_clean(session_id, [&](std::string_view t) { append_copy_field(out, t); });
  out += '\t';
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, sequence);
  out.append(b, r.ptr);
  out += '\t';
}

/// COPY into `table` (transcript_turns or a table like it) of the lines `each` hands to
/// the function it is given, in the column order of append_line_head and
/// transcript_line_builder.
template <class Each>
void copy_turn_lines(pqxx::transaction_base& tx, const std::string& table, Each&& each) {
  static const std::vector<std::string> columns = {"tenant_id", "session_id",      "sequence",
                                                   "inbound",   "inbound_payload", "outbound",
                                                   "created_at"};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // pqxx 6.4's only public way to write COPY lines as they are (stream_to escapes every
  // field again, byte by byte).
  pqxx::tablewriter copy(tx, table, columns.begin(), columns.end());
#pragma GCC diagnostic pop
  // Lines go out many at a time: write_raw_line copies its argument to append the
  // newline and hands it to libpq as one CopyData message, and COPY's data stream
  // does not care where its messages split. Joined up to about 64 KiB (the newline
  // after the last line is write_raw_line's).
  constexpr std::size_t chunk = 64 * 1024;
  std::string joined;
  joined.reserve(chunk + 1024);
  each([&](const std::string& line) {
    if (!joined.empty()) joined += '\n';
    joined += line;
    if (joined.size() >= chunk) {
      copy.write_raw_line(joined);
      joined.clear();
    }
  });
  if (!joined.empty()) copy.write_raw_line(joined);
  copy.complete();
}

/// The common case of a transcript batch, every turn new: one COPY into
/// transcript_turns, which inserts its rows in batches (one WAL record per heap page
/// instead of one per row) and parses no statement. COPY has no ON CONFLICT: a stored
/// turn fails it, and then the savepoint takes the transaction back to before it and
/// this returns false, for the caller's merging path.
template <class Each>
bool copied_as_new(pqxx::transaction_base& tx, Each&& each) {
  tx.exec0("SAVEPOINT parley_transcript");
  try {
    copy_turn_lines(tx, "transcript_turns", std::forward<Each>(each));
    return true;
  } catch (const pqxx::unique_violation&) {
    // Back to the top-level transaction (ROLLBACK TO keeps the savepoint open).
    tx.exec0("ROLLBACK TO SAVEPOINT parley_transcript");
    tx.exec0("RELEASE SAVEPOINT parley_transcript");
    return false;
  }
}

/// COPY of whole-turn lines. A stored turn fails the COPY (unique violation); then the
/// lines go through a temporary table and INSERT ... ON CONFLICT DO NOTHING, which
/// skips the stored turns. A batch with a line sent again (maybe_stored) takes that
/// path at once. Result: messages of the turns inserted.
job_of<std::size_t> transcript_lines_job(
    std::shared_ptr<const std::vector<transcript_line>> lines) {
  return [lines](pqxx::transaction_base& tx) -> std::size_t {
    if (lines->empty()) return 0;
    auto each = [&](auto&& write) {
      for (const auto& l : *lines) write(l.copy);
    };
    const bool maybe_stored = std::any_of(lines->begin(), lines->end(),
                                          [](const transcript_line& l) { return l.maybe_stored; });
    if (!maybe_stored && copied_as_new(tx, each)) {
      std::size_t messages = 0;
      for (const auto& l : *lines) messages += l.messages;
      return messages;
    }
    tx.exec0(
        "CREATE TEMPORARY TABLE IF NOT EXISTS parley_transcript_lines "
        "(LIKE transcript_turns INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
    copy_turn_lines(tx, "parley_transcript_lines", each);
    auto r = tx.exec(
        "WITH ins AS (INSERT INTO transcript_turns SELECT * FROM parley_transcript_lines "
        "ON CONFLICT (session_id, sequence) DO NOTHING "
        "RETURNING (inbound IS NOT NULL)::int + jsonb_array_length(outbound) AS m) "
        "SELECT coalesce(sum(m), 0) FROM ins");
    tx.exec0("TRUNCATE parley_transcript_lines");
    return r[0][0].as<std::size_t>();
  };
}

job_of<std::vector<transcript_row>> transcript_job(std::string tenant, std::string session) {
  return [tenant = std::move(tenant), session = std::move(session)](pqxx::transaction_base& tx) {
    std::vector<transcript_row> out;
    for (const auto& row : tx.exec_params(
             "SELECT sequence, inbound, coalesce(inbound_payload::text, ''), outbound::text, " +
                 ms("created_at") +
                 " FROM transcript_turns WHERE tenant_id = $1 AND session_id = $2 "
                 "ORDER BY sequence",
             tenant, clean_text(session))) {
      transcript_row r;
      r.tenant = tenant;
      r.session_id = session;
      r.sequence = row[0].as<std::int64_t>();
      r.at_ms = row[4].as<std::int64_t>();
      if (!row[1].is_null()) {
        r.direction = "in";
        r.idx = 0;
        r.text = row[1].as<std::string>();
        r.payload_json = row[2].as<std::string>();
        out.push_back(r);
      }
      auto replies = json::parse(row[3].as<std::string>(), nullptr, false);
      if (!replies.is_array()) continue;
      r.direction = "out";
      for (std::size_t k = 0; k < replies.size(); ++k) {
        const auto& e = replies[k];
        if (e.is_string()) {
          r.text = e.get<std::string>();
          r.payload_json.clear();
        } else if (e.is_object()) {
          r.text = e.value("text", "");
          r.payload_json = e.contains("payload") ? e["payload"].dump() : "";
        } else {
          continue;  // null: a reply never recorded
        }
        r.idx = static_cast<int>(k);
        out.push_back(r);
      }
    }
    return out;
  };
}

job_of<std::int64_t> quarantine_job(quarantined_message m) {
  return [m = std::move(m)](pqxx::transaction_base& tx) {
    return tx
        .exec_params1(
            "INSERT INTO quarantined_messages (tenant_id, session_id, message_id, payload, error, "
            "attempts) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            clean_text(m.tenant), clean_text(m.session_id), clean_text(m.message_id),
            clean_text(m.payload), clean_text(m.error), m.attempts)[0]
        .as<std::int64_t>();
  };
}

job_of<std::vector<quarantined_message>> list_quarantine_job(std::string tenant) {
  return [tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    std::vector<quarantined_message> out;
    for (const auto& row : tx.exec_params(
             "SELECT id, session_id, message_id, payload, error, attempts, " + ms("created_at") +
                 " FROM quarantined_messages WHERE tenant_id = $1 ORDER BY id",
             tenant)) {
      quarantined_message m;
      m.id = row[0].as<std::int64_t>();
      m.tenant = tenant;
      m.session_id = row[1].as<std::string>();
      m.message_id = row[2].as<std::string>();
      m.payload = row[3].as<std::string>();
      m.error = row[4].as<std::string>();
      m.attempts = row[5].as<int>();
      m.created_at_ms = row[6].as<std::int64_t>();
      out.push_back(std::move(m));
    }
    return out;
  };
}

job_of<std::int64_t> audit_job(audit_entry e) {
  return [e = std::move(e)](pqxx::transaction_base& tx) {
    if (e.action.empty()) fail("invalid_argument", "audit action must not be empty");
    auto details = json::parse(e.details_json.empty() ? "{}" : e.details_json, nullptr, false);
    if (!details.is_object())
      fail("invalid_argument", "audit details of '" + e.action + "' must be a JSON object");
    return write_audit(tx, e.actor, e.action, e.tenant, e.target, details);
  };
}

job_of<std::vector<audit_entry>> list_audit_job(std::string tenant, std::size_t limit) {
  return [tenant = std::move(tenant), limit](pqxx::transaction_base& tx) {
    std::vector<audit_entry> out;
    for (const auto& row :
         tx.exec_params("SELECT id, " + ms("at") +
                            ", actor, action, target, details::text FROM audit_log "
                            "WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                        tenant, static_cast<std::int64_t>(limit))) {
      audit_entry e;
      e.id = row[0].as<std::int64_t>();
      e.at_ms = row[1].as<std::int64_t>();
      e.actor = row[2].as<std::string>();
      e.action = row[3].as<std::string>();
      e.tenant = tenant;
      e.target = row[4].as<std::string>();
      e.details_json = row[5].as<std::string>();
      out.push_back(std::move(e));
    }
    return out;
  };
}

}  // namespace

bool valid_catalog_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0])) return false;
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

std::string api_key_hash(const std::string& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  return hex(md, len);
}

// Each public function runs its job asynchronously or blocking.
void create_tenant(postgres_client& pg, std::string id, std::string name, std::string actor,
                   catalog_callback<tenant_record> done) {
  run_async<tenant_record>(pg, create_tenant_job(std::move(id), std::move(name), std::move(actor)),
                           std::move(done));
}
result<tenant_record> create_tenant_sync(postgres_client& pg, std::string id, std::string name,
                                         std::string actor) {
  return run_blocking<tenant_record>(
      pg, create_tenant_job(std::move(id), std::move(name), std::move(actor)));
}

void list_tenants(postgres_client& pg, catalog_callback<std::vector<tenant_record>> done) {
  run_async<std::vector<tenant_record>>(pg, list_tenants_job(), std::move(done));
}
result<std::vector<tenant_record>> list_tenants_sync(postgres_client& pg) {
  return run_blocking<std::vector<tenant_record>>(pg, list_tenants_job());
}

void get_tenant(postgres_client& pg, std::string id,
                catalog_callback<std::optional<tenant_record>> done) {
  run_async<std::optional<tenant_record>>(pg, get_tenant_job(std::move(id)), std::move(done));
}
result<std::optional<tenant_record>> get_tenant_sync(postgres_client& pg, std::string id) {
  return run_blocking<std::optional<tenant_record>>(pg, get_tenant_job(std::move(id)));
}

void create_api_key(postgres_client& pg, std::string tenant, std::string name, std::string actor,
                    catalog_callback<api_key_created> done) {
  run_async<api_key_created>(
      pg, create_api_key_job(std::move(tenant), std::move(name), std::move(actor)),
      std::move(done));
}
result<api_key_created> create_api_key_sync(postgres_client& pg, std::string tenant,
                                            std::string name, std::string actor) {
  return run_blocking<api_key_created>(
      pg, create_api_key_job(std::move(tenant), std::move(name), std::move(actor)));
}

void verify_api_key(postgres_client& pg, std::string tenant, std::string key,
                    catalog_callback<bool> done) {
  run_async<bool>(pg, verify_api_key_job(std::move(tenant), std::move(key)), std::move(done));
}
result<bool> verify_api_key_sync(postgres_client& pg, std::string tenant, std::string key) {
  return run_blocking<bool>(pg, verify_api_key_job(std::move(tenant), std::move(key)));
}

void revoke_api_key(postgres_client& pg, std::string tenant, std::int64_t key_id, std::string actor,
                    catalog_callback<void> done) {
  run_async<void>(pg, revoke_api_key_job(std::move(tenant), key_id, std::move(actor)),
                  std::move(done));
}
result<void> revoke_api_key_sync(postgres_client& pg, std::string tenant, std::int64_t key_id,
                                 std::string actor) {
  return run_blocking<void>(pg, revoke_api_key_job(std::move(tenant), key_id, std::move(actor)));
}

void list_api_keys(postgres_client& pg, std::string tenant,
                   catalog_callback<std::vector<api_key_record>> done) {
  run_async<std::vector<api_key_record>>(pg, list_api_keys_job(std::move(tenant)), std::move(done));
}
result<std::vector<api_key_record>> list_api_keys_sync(postgres_client& pg, std::string tenant) {
  return run_blocking<std::vector<api_key_record>>(pg, list_api_keys_job(std::move(tenant)));
}

void deploy_version(postgres_client& pg, deploy_request request,
                    catalog_callback<deploy_outcome> done) {
  run_async<deploy_outcome>(pg, deploy_job(std::move(request)), std::move(done));
}
result<deploy_outcome> deploy_version_sync(postgres_client& pg, deploy_request request) {
  return run_blocking<deploy_outcome>(pg, deploy_job(std::move(request)));
}

void list_versions(postgres_client& pg, std::string tenant, std::string bot,
                   catalog_callback<std::vector<version_info>> done) {
  run_async<std::vector<version_info>>(pg, list_versions_job(std::move(tenant), std::move(bot)),
                                       std::move(done));
}
result<std::vector<version_info>> list_versions_sync(postgres_client& pg, std::string tenant,
                                                     std::string bot) {
  return run_blocking<std::vector<version_info>>(
      pg, list_versions_job(std::move(tenant), std::move(bot)));
}

void get_version(postgres_client& pg, std::string tenant, std::string bot, int version,
                 catalog_callback<bot_program> done) {
  run_async<bot_program>(pg, get_version_job(std::move(tenant), std::move(bot), version),
                         std::move(done));
}
result<bot_program> get_version_sync(postgres_client& pg, std::string tenant, std::string bot,
                                     int version) {
  return run_blocking<bot_program>(pg, get_version_job(std::move(tenant), std::move(bot), version));
}

void get_active(postgres_client& pg, std::string tenant, std::string bot,
                catalog_callback<bot_program> done) {
  run_async<bot_program>(pg, get_active_job(std::move(tenant), std::move(bot)), std::move(done));
}
result<bot_program> get_active_sync(postgres_client& pg, std::string tenant, std::string bot) {
  return run_blocking<bot_program>(pg, get_active_job(std::move(tenant), std::move(bot)));
}

void activate(postgres_client& pg, std::string tenant, std::string bot, int version,
              std::string actor, catalog_callback<activation> done) {
  run_async<activation>(pg,
                        activate_job(std::move(tenant), std::move(bot), version, std::move(actor)),
                        std::move(done));
}
result<activation> activate_sync(postgres_client& pg, std::string tenant, std::string bot,
                                 int version, std::string actor) {
  return run_blocking<activation>(
      pg, activate_job(std::move(tenant), std::move(bot), version, std::move(actor)));
}

void rollback(postgres_client& pg, std::string tenant, std::string bot, std::string actor,
              catalog_callback<activation> done) {
  run_async<activation>(pg, rollback_job(std::move(tenant), std::move(bot), std::move(actor)),
                        std::move(done));
}
result<activation> rollback_sync(postgres_client& pg, std::string tenant, std::string bot,
                                 std::string actor) {
  return run_blocking<activation>(
      pg, rollback_job(std::move(tenant), std::move(bot), std::move(actor)));
}

void active_changes_since(postgres_client& pg, std::int64_t change_seq,
                          catalog_callback<std::vector<active_change>> done, std::size_t limit) {
  run_async<std::vector<active_change>>(pg, changes_job(change_seq, limit), std::move(done));
}
result<std::vector<active_change>> active_changes_since_sync(postgres_client& pg,
                                                             std::int64_t change_seq,
                                                             std::size_t limit) {
  return run_blocking<std::vector<active_change>>(pg, changes_job(change_seq, limit));
}

void upsert_conversation(postgres_client& pg, conversation_record record,
                         catalog_callback<void> done) {
  run_async<void>(pg, upsert_conversation_job(std::move(record)), std::move(done));
}
result<void> upsert_conversation_sync(postgres_client& pg, conversation_record record) {
  return run_blocking<void>(pg, upsert_conversation_job(std::move(record)));
}

void end_conversation(postgres_client& pg, std::string tenant, std::string session_id,
                      std::string reason, catalog_callback<bool> done) {
  run_async<bool>(pg,
                  end_conversation_job(std::move(tenant), std::move(session_id), std::move(reason)),
                  std::move(done));
}
result<bool> end_conversation_sync(postgres_client& pg, std::string tenant, std::string session_id,
                                   std::string reason) {
  return run_blocking<bool>(
      pg, end_conversation_job(std::move(tenant), std::move(session_id), std::move(reason)));
}

void get_conversation(postgres_client& pg, std::string tenant, std::string session_id,
                      catalog_callback<std::optional<conversation_record>> done) {
  run_async<std::optional<conversation_record>>(
      pg, get_conversation_job(std::move(tenant), std::move(session_id)), std::move(done));
}
result<std::optional<conversation_record>> get_conversation_sync(postgres_client& pg,
                                                                 std::string tenant,
                                                                 std::string session_id) {
  return run_blocking<std::optional<conversation_record>>(
      pg, get_conversation_job(std::move(tenant), std::move(session_id)));
}

namespace {

/// write_turn_lines: the conversation records, then `transcripts` (the lines' job).
void write_records(postgres_client& pg, std::vector<conversation_record> conversations,
                   job_of<std::size_t> transcripts, catalog_callback<std::size_t> done) {
  std::vector<conversation_record> started, ended;
  for (auto& c : conversations) (c.ended_at_ms ? ended : started).push_back(std::move(c));
  for (auto& c : started) {
    c.session_id = clean_text(c.session_id);
    c.bot = clean_text(c.bot);
    c.channel = clean_text(c.channel);
    c.external_key = clean_text(c.external_key);
  }
  run_async<std::size_t>(
      pg,
      [started = std::move(started), ended = std::move(ended),
       transcripts = std::move(transcripts)](pqxx::transaction_base& tx) {
        if (!started.empty()) {
          array_literal tenants, sessions, bots, versions, channels, keys;
          for (const auto& c : started) {
            require_id("tenant id", c.tenant);
            if (c.session_id.empty())
              fail("invalid_argument", "conversation session id must not be empty");
            tenants.text(c.tenant);
            sessions.text(c.session_id);
            bots.text(c.bot);
            versions.number(c.version);
            channels.text(c.channel);
            keys.text(c.external_key);
          }
          // Prepared once per connection: a batch with new conversations every few
          // milliseconds paid for parsing and planning this statement each time.
          tx.conn().prepare("parley_conversations_insert",
                            "INSERT INTO conversations (tenant_id, session_id, bot_id, version, "
                            "channel, external_key, "
                            "started_at) SELECT t, s, b, v, c, k, now() FROM unnest($1::text[], "
                            "$2::text[], $3::text[], "
                            "$4::integer[], $5::text[], $6::text[]) AS u(t, s, b, v, c, k) "
                            "ON CONFLICT (tenant_id, session_id) DO NOTHING");
          tx.exec_prepared0("parley_conversations_insert", tenants.str(), sessions.str(),
                            bots.str(), versions.str(), channels.str(), keys.str());
        }
        for (const auto& e : ended)
          tx.exec_params(
              "UPDATE conversations SET ended_at = now(), end_reason = $3 "
              "WHERE tenant_id = $1 AND session_id = $2 AND ended_at IS NULL",
              e.tenant, clean_text(e.session_id), clean_text(e.end_reason));
        return transcripts(tx);
      },
      std::move(done));
}

}  // namespace

transcript_line_builder::transcript_line_builder(std::string_view tenant,
                                                 std::string_view session_id,
                                                 std::int64_t sequence) {
  line_.copy.reserve(256);
  append_line_head(line_.copy, tenant, session_id, sequence);
}

void transcript_line_builder::inbound(std::string_view text) {
  if (outbound_open_) return;  // only before the replies (see the header)
  with_clean(text, [&](std::string_view t) { append_copy_field(line_.copy, t); });
  line_.copy += "\t\\N\t[";
  outbound_open_ = true;
  ++line_.messages;
}

void transcript_line_builder::open_outbound() {
  if (outbound_open_) return;
  line_.copy += "\\N\t\\N\t[";
  outbound_open_ = true;
}

void transcript_line_builder::reply(std::string_view text) {
  open_outbound();
  if (line_.copy.back() != '[') line_.copy += ',';
  with_clean(text, [&](std::string_view t) { append_json_string(line_.copy, t, true); });
  ++line_.messages;
}

transcript_line transcript_line_builder::finish(std::int64_t at_ms) {
  open_outbound();
  line_.copy += "]\t";
  append_timestamp(line_.copy, at_ms > 0 ? at_ms : now_unix_ms());
  return std::move(line_);
}

void write_turn_lines(postgres_client& pg, std::vector<conversation_record> conversations,
                      std::shared_ptr<const std::vector<transcript_line>> lines,
                      catalog_callback<std::size_t> done) {
  write_records(pg, std::move(conversations), transcript_lines_job(std::move(lines)),
                std::move(done));
}

result<std::size_t> write_turn_lines_sync(postgres_client& pg, std::vector<transcript_line> lines) {
  return run_blocking<std::size_t>(
      pg,
      transcript_lines_job(std::make_shared<const std::vector<transcript_line>>(std::move(lines))));
}

void transcript(postgres_client& pg, std::string tenant, std::string session_id,
                catalog_callback<std::vector<transcript_row>> done) {
  run_async<std::vector<transcript_row>>(
      pg, transcript_job(std::move(tenant), std::move(session_id)), std::move(done));
}
result<std::vector<transcript_row>> transcript_sync(postgres_client& pg, std::string tenant,
                                                    std::string session_id) {
  return run_blocking<std::vector<transcript_row>>(
      pg, transcript_job(std::move(tenant), std::move(session_id)));
}

void insert_quarantine(postgres_client& pg, quarantined_message message,
                       catalog_callback<std::int64_t> done) {
  run_async<std::int64_t>(pg, quarantine_job(std::move(message)), std::move(done));
}
result<std::int64_t> insert_quarantine_sync(postgres_client& pg, quarantined_message message) {
  return run_blocking<std::int64_t>(pg, quarantine_job(std::move(message)));
}

result<std::vector<quarantined_message>> list_quarantine_sync(postgres_client& pg,
                                                              std::string tenant) {
  return run_blocking<std::vector<quarantined_message>>(pg, list_quarantine_job(std::move(tenant)));
}

void audit(postgres_client& pg, audit_entry entry, catalog_callback<std::int64_t> done) {
  run_async<std::int64_t>(pg, audit_job(std::move(entry)), std::move(done));
}
result<std::int64_t> audit_sync(postgres_client& pg, audit_entry entry) {
  return run_blocking<std::int64_t>(pg, audit_job(std::move(entry)));
}

void list_audit(postgres_client& pg, std::string tenant, std::size_t limit,
                catalog_callback<std::vector<audit_entry>> done) {
  run_async<std::vector<audit_entry>>(pg, list_audit_job(std::move(tenant), limit),
                                      std::move(done));
}
result<std::vector<audit_entry>> list_audit_sync(postgres_client& pg, std::string tenant,
                                                 std::size_t limit) {
  return run_blocking<std::vector<audit_entry>>(pg, list_audit_job(std::move(tenant), limit));
}

}  // namespace parley::store
