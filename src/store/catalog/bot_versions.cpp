#include "src/store/catalog/bot_versions.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

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
/// The rows `sql` selects for (tenant, bot) from its active version; fails with
/// no_active_version when there are none.
pqxx::result active_row(pqxx::transaction_base& tx, const char* sql, const std::string& tenant,
                        const std::string& bot) {
  auto r = tx.exec_params(sql, tenant, bot);
  if (r.empty())
    fail("no_active_version", "bot '" + bot + "' of tenant '" + tenant + "' has no active version");
  return r;
}

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

}  // namespace

catalog_job<void> check_version_target(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_id("bot id", bot);
    require_tenant(tx, tenant);
  };
}

catalog_job<stored_version> store_version(new_version v) {
  return [v = std::move(v)](pqxx::transaction_base& tx) {
    require_id("bot id", v.bot);
    require_tenant(tx, v.tenant);
    // The bot row serialises concurrent deploys of one bot, so each gets the
    // next number.
    tx.exec_params("INSERT INTO bots (tenant_id, bot_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   v.tenant, v.bot);
    tx.exec_params("SELECT 1 FROM bots WHERE tenant_id = $1 AND bot_id = $2 FOR UPDATE", v.tenant,
                   v.bot);
    stored_version out;
    out.version = tx.exec_params1(
                        "SELECT coalesce(max(version), 0) + 1 FROM bot_versions "
                        "WHERE tenant_id = $1 AND bot_id = $2",
                        v.tenant, v.bot)[0]
                      .as<int>();
    std::string deployed_by = v.deployed_by.empty() ? "unknown" : clean_text(v.deployed_by);
    tx.exec_params(
        "INSERT INTO bot_versions (tenant_id, bot_id, version, program_id, source, program, "
        "deployed_by, warnings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        v.tenant, v.bot, out.version, v.program_id, clean_text(v.source),
        pqxx::binarystring(v.program), deployed_by,
        diagnostics_json(v.warnings).dump(-1, ' ', false, json::error_handler_t::replace));
    write_audit(tx, deployed_by, "bot.deploy", v.tenant, v.bot,
                {{"version", out.version},
                 {"program_id", v.program_id},
                 {"warnings", v.warnings.size()},
                 {"activate", v.activate}});
    if (v.activate)
      out.activated = activate_in(tx, v.tenant, v.bot, out.version, deployed_by).changed;
    return out;
  };
}

catalog_job<std::vector<version_info>> list_versions(std::string tenant, std::string bot) {
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

catalog_job<bot_program> get_version(std::string tenant, std::string bot, int version) {
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

catalog_job<bot_program> get_active(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    auto r = active_row(tx,
                        "SELECT v.version, v.program_id, v.program FROM bot_active a JOIN "
                        "bot_versions v ON v.tenant_id = a.tenant_id AND v.bot_id = a.bot_id "
                        "AND v.version = a.version WHERE a.tenant_id = $1 AND a.bot_id = $2",
                        tenant, bot);
    return bot_program{tenant,
                       bot,
                       r[0][0].as<int>(),
                       r[0][1].as<std::string>(),
                       pqxx::binarystring(r[0][2]).str(),
                       {}};
  };
}

catalog_job<activation> activate(std::string tenant, std::string bot, int version,
                                 std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot), version,
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    return activate_in(tx, tenant, bot, version, actor);
  };
}

catalog_job<activation> rollback(std::string tenant, std::string bot, std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_id("bot id", bot);
    lock_active_pointers(tx);
    auto cur = active_row(tx,
                          "SELECT version, previous_version FROM bot_active WHERE tenant_id = $1 "
                          "AND bot_id = $2 FOR UPDATE",
                          tenant, bot);
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

catalog_job<std::vector<active_change>> active_changes_since(std::int64_t since,
                                                             std::size_t limit) {
  return [since, limit](pqxx::transaction_base& tx) {
    std::vector<active_change> out;
    for (const auto& row :
         tx.exec_params("SELECT a.tenant_id, a.bot_id, a.version, a.change_seq, "
                        "coalesce(c.version, 0), coalesce(c.percent, 0) FROM bot_active a "
                        "LEFT JOIN bot_canaries c ON c.tenant_id = a.tenant_id AND "
                        "c.bot_id = a.bot_id AND c.ended_at IS NULL AND c.version <> a.version "
                        "WHERE a.change_seq > $1 ORDER BY a.change_seq LIMIT $2",
                        since, static_cast<std::int64_t>(limit)))
      out.push_back(active_change{row[0].as<std::string>(), row[1].as<std::string>(),
                                  row[2].as<int>(), row[3].as<std::int64_t>(), row[4].as<int>(),
                                  row[5].as<int>()});
    return out;
  };
}

}  // namespace parley::store
