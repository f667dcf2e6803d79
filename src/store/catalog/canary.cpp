#include "src/store/catalog/canary.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "src/store/catalog/bot_versions.hpp"
#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

/// The lock activate() and rollback() take (bot_versions.cpp): change_seq values then
/// become visible in increasing order. Taken first by every canary change.
void lock_active_pointers(pqxx::transaction_base& tx) {
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('parley.catalog'), hashtext('bot_active'))");
}

/// Gives the bot's bot_active row the next change_seq (the registry's change log) and
/// announces it like an activation. The row exists: a canary needs an active version.
std::int64_t bump_change_seq(pqxx::transaction_base& tx, const std::string& tenant,
                             const std::string& bot) {
  auto seq = tx.exec("SELECT nextval('bot_change_seq')")[0][0].as<std::int64_t>();
  auto r = tx.exec_params(
      "UPDATE bot_active SET change_seq = $3 WHERE tenant_id = $1 AND bot_id = $2 "
      "RETURNING version",
      tenant, bot, seq);
  if (r.empty())
    fail("no_active_version", "bot '" + bot + "' of tenant '" + tenant + "' has no active version");
  json payload = {
      {"tenant", tenant}, {"bot", bot}, {"version", r[0][0].as<int>()}, {"change_seq", seq}};
  tx.exec_params("SELECT pg_notify('parley_catalog', $1)", payload.dump());
  return seq;
}

json counts_json(const version_counts& c) {
  return {{"turns", c.turns},
          {"sessions", c.sessions},
          {"fallbacks", c.fallbacks},
          {"transfers", c.transfers},
          {"ended", c.ended},
          {"action_failures", c.action_failures},
          {"error_dialogs", c.error_dialogs}};
}

json breaches_json(const std::vector<canary_breach>& bs) {
  json out = json::array();
  for (const auto& b : bs)
    out.push_back({{"rate", b.rate},
                   {"canary", b.canary},
                   {"baseline", b.baseline},
                   {"increase_points", b.increase_points},
                   {"max_increase_points", b.max_increase_points}});
  return out;
}

void require_bot(pqxx::transaction_base& tx, const std::string& tenant, const std::string& bot) {
  require_tenant(tx, tenant);
  require_id("bot id", bot);
  if (tx.exec_params("SELECT 1 FROM bots WHERE tenant_id = $1 AND bot_id = $2", tenant, bot)
          .empty())
    fail("bot_not_found", "tenant '" + tenant + "' has no bot '" + bot + "'");
}

// The columns of a canary row and of its two versions' counts, for read_report.
const char* report_select =
    "SELECT c.id, c.tenant_id, c.bot_id, c.version, c.baseline_version, c.percent, "
    "c.max_error_rate_increase, c.max_fallback_rate_increase, "
    "c.max_action_failure_rate_increase, c.min_conversations, c.started_by, "
    "(extract(epoch from c.started_at) * 1000)::bigint, "
    "coalesce((extract(epoch from c.ended_at) * 1000)::bigint, 0), coalesce(c.outcome, ''), "
    "coalesce(c.reason::text, 'null'), "
    "coalesce(s.turns, 0), coalesce(s.sessions, 0), coalesce(s.fallbacks, 0), "
    "coalesce(s.transfers, 0), coalesce(s.ended, 0), coalesce(s.action_failures, 0), "
    "coalesce(s.error_dialogs, 0), "
    "coalesce(b.turns, 0) - c.baseline_turns, coalesce(b.sessions, 0) - c.baseline_sessions, "
    "coalesce(b.fallbacks, 0) - c.baseline_fallbacks, 0, 0, "
    "coalesce(b.action_failures, 0) - c.baseline_action_failures, "
    "coalesce(b.error_dialogs, 0) - c.baseline_error_dialogs "
    "FROM bot_canaries c "
    "LEFT JOIN bot_version_stats s ON s.tenant_id = c.tenant_id AND s.bot_id = c.bot_id "
    "AND s.version = c.version "
    "LEFT JOIN bot_version_stats b ON b.tenant_id = c.tenant_id AND b.bot_id = c.bot_id "
    "AND b.version = c.baseline_version ";

canary_report read_report(const pqxx::row& row) {
  canary_report r;
  auto& c = r.canary;
  c.id = row[0].as<std::int64_t>();
  c.tenant = row[1].as<std::string>();
  c.bot = row[2].as<std::string>();
  c.version = row[3].as<int>();
  c.baseline_version = row[4].as<int>();
  c.settings.percent = row[5].as<int>();
  c.settings.max_error_rate_increase = row[6].as<double>();
  c.settings.max_fallback_rate_increase = row[7].as<double>();
  c.settings.max_action_failure_rate_increase = row[8].as<double>();
  c.settings.min_conversations = row[9].as<int>();
  c.started_by = row[10].as<std::string>();
  c.started_at_ms = row[11].as<std::int64_t>();
  c.ended_at_ms = row[12].as<std::int64_t>();
  c.outcome = row[13].as<std::string>();
  c.reason_json = row[14].as<std::string>();
  auto counts = [&](int at) {
    version_counts v;
    v.turns = row[at].as<std::int64_t>();
    v.sessions = row[at + 1].as<std::int64_t>();
    v.fallbacks = row[at + 2].as<std::int64_t>();
    v.transfers = row[at + 3].as<std::int64_t>();
    v.ended = row[at + 4].as<std::int64_t>();
    v.action_failures = row[at + 5].as<std::int64_t>();
    v.error_dialogs = row[at + 6].as<std::int64_t>();
    return v;
  };
  r.canary_counts = counts(15);
  r.baseline_counts = counts(22);
  // The baseline's transfers and ends are not compared (nor kept at the start): 0.
  r.judged = r.canary_counts.sessions >= c.settings.min_conversations;
  if (r.judged) r.breaches = canary_breaches(c.settings, r.canary_counts, r.baseline_counts);
  return r;
}

/// Ends the running canary of (tenant, bot) with `outcome`; fails `no_canary`.
canary_report end_running(pqxx::transaction_base& tx, const std::string& tenant,
                          const std::string& bot, const char* outcome) {
  auto running = tx.exec_params(std::string(report_select) +
                                    "WHERE c.tenant_id = $1 AND c.bot_id = $2 AND "
                                    "c.ended_at IS NULL FOR UPDATE OF c",
                                tenant, bot);
  if (running.empty())
    fail("no_canary", "bot '" + bot + "' of tenant '" + tenant + "' has no running canary");
  auto report = read_report(running[0]);
  tx.exec_params("UPDATE bot_canaries SET ended_at = now(), outcome = $2 WHERE id = $1",
                 report.canary.id, std::string(outcome));
  report.canary.outcome = outcome;
  return report;
}

double rate(std::int64_t n, std::int64_t turns) {
  return turns <= 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(turns);
}

}  // namespace

double error_dialog_rate(const version_counts& c) { return rate(c.error_dialogs, c.turns); }
double fallback_rate(const version_counts& c) { return rate(c.fallbacks, c.turns); }
double action_failure_rate(const version_counts& c) { return rate(c.action_failures, c.turns); }

std::vector<canary_breach> canary_breaches(const canary_settings& s, const version_counts& canary,
                                           const version_counts& baseline) {
  std::vector<canary_breach> out;
  auto check = [&](const char* name, double (*of)(const version_counts&), double max_points) {
    canary_breach b{name, of(canary), of(baseline), 0, max_points};
    b.increase_points = (b.canary - b.baseline) * 100.0;
    if (b.increase_points > max_points) out.push_back(b);
  };
  check("error_dialog_rate", error_dialog_rate, s.max_error_rate_increase);
  check("fallback_rate", fallback_rate, s.max_fallback_rate_increase);
  check("action_failure_rate", action_failure_rate, s.max_action_failure_rate_increase);
  return out;
}

catalog_job<void> check_canary_settings(canary_settings s) {
  return [s](pqxx::transaction_base&) {
    if (s.percent < 1 || s.percent > 50)
      fail("invalid_argument",
           "percent " + std::to_string(s.percent) + " is out of range: a canary takes 1 to 50 %");
    auto margin = [](const char* name, double v) {
      if (!std::isfinite(v) || v < 0 || v > 100)
        fail("invalid_argument", std::string(name) + " " + std::to_string(v) +
                                     " is out of range: percentage points from 0 to 100");
    };
    margin("max_error_rate_increase", s.max_error_rate_increase);
    margin("max_fallback_rate_increase", s.max_fallback_rate_increase);
    margin("max_action_failure_rate_increase", s.max_action_failure_rate_increase);
    if (s.min_conversations < 1 || s.min_conversations > 1000000)
      fail("invalid_argument", "min_conversations " + std::to_string(s.min_conversations) +
                                   " is out of range: 1 to 1000000");
  };
}

catalog_job<void> check_canary_target(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_bot(tx, tenant, bot);
    if (tx.exec_params("SELECT 1 FROM bot_active WHERE tenant_id = $1 AND bot_id = $2", tenant, bot)
            .empty())
      fail("no_active_version", "bot '" + bot + "' of tenant '" + tenant +
                                    "' has no active version for a canary to split with: deploy "
                                    "it with --activate first");
    auto running = tx.exec_params(
        "SELECT version FROM bot_canaries WHERE tenant_id = $1 AND bot_id = $2 AND "
        "ended_at IS NULL",
        tenant, bot);
    if (!running.empty())
      fail("canary_running", "bot '" + bot + "' of tenant '" + tenant + "' already has canary " +
                                 "version " + running[0][0].as<std::string>() +
                                 ": promote or abort it first");
  };
}

catalog_job<canary_record> start_canary(std::string tenant, std::string bot, int version,
                                        canary_settings s, std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot), version, s,
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    check_canary_settings(s)(tx);
    lock_active_pointers(tx);
    check_canary_target(tenant, bot)(tx);
    if (tx.exec_params("SELECT 1 FROM bot_versions WHERE tenant_id = $1 AND bot_id = $2 AND "
                       "version = $3",
                       tenant, bot, version)
            .empty())
      fail("version_not_found", "bot '" + bot + "' of tenant '" + tenant + "' has no version " +
                                    std::to_string(version));
    int active = tx.exec_params1(
                       "SELECT version FROM bot_active WHERE tenant_id = $1 AND "
                       "bot_id = $2 FOR UPDATE",
                       tenant, bot)[0]
                     .as<int>();
    if (active == version)
      fail("invalid_argument", "version " + std::to_string(version) +
                                   " is the active version: a canary must be another one");
    // The baseline's counts now: the comparison starts here for both versions.
    auto b = tx.exec_params(
        "SELECT turns, sessions, fallbacks, action_failures, error_dialogs FROM "
        "bot_version_stats WHERE tenant_id = $1 AND bot_id = $2 AND version = $3",
        tenant, bot, active);
    std::int64_t base[5] = {0, 0, 0, 0, 0};
    if (!b.empty())
      for (int i = 0; i < 5; ++i) base[i] = b[0][i].as<std::int64_t>();
    std::string by = actor.empty() ? "unknown" : clean_text(actor);
    auto id = tx.exec_params1(
                    "INSERT INTO bot_canaries (tenant_id, bot_id, version, percent, "
                    "baseline_version, max_error_rate_increase, max_fallback_rate_increase, "
                    "max_action_failure_rate_increase, min_conversations, baseline_turns, "
                    "baseline_sessions, baseline_fallbacks, baseline_action_failures, "
                    "baseline_error_dialogs, started_by) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
                    tenant, bot, version, s.percent, active, s.max_error_rate_increase,
                    s.max_fallback_rate_increase, s.max_action_failure_rate_increase,
                    s.min_conversations, base[0], base[1], base[2], base[3], base[4], by)[0]
                  .as<std::int64_t>();
    auto seq = bump_change_seq(tx, tenant, bot);
    write_audit(tx, by, "bot.canary.start", tenant, bot,
                {{"version", version},
                 {"active_version", active},
                 {"percent", s.percent},
                 {"max_error_rate_increase", s.max_error_rate_increase},
                 {"max_fallback_rate_increase", s.max_fallback_rate_increase},
                 {"max_action_failure_rate_increase", s.max_action_failure_rate_increase},
                 {"min_conversations", s.min_conversations},
                 {"change_seq", seq}});
    auto row = tx.exec_params(std::string(report_select) + "WHERE c.id = $1", id);
    return read_report(row[0]).canary;
  };
}

catalog_job<canary_report> canary_status(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_bot(tx, tenant, bot);
    auto r = tx.exec_params(std::string(report_select) +
                                "WHERE c.tenant_id = $1 AND c.bot_id = $2 "
                                "ORDER BY (c.ended_at IS NULL) DESC, c.id DESC LIMIT 1",
                            tenant, bot);
    if (r.empty())
      fail("no_canary", "bot '" + bot + "' of tenant '" + tenant + "' never had a canary");
    return read_report(r[0]);
  };
}

catalog_job<canary_record> promote_canary(std::string tenant, std::string bot, std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_bot(tx, tenant, bot);
    lock_active_pointers(tx);
    auto report = end_running(tx, tenant, bot, "promoted");
    // activate() takes the change_seq and announces the new active version.
    auto a = activate(tenant, bot, report.canary.version, actor)(tx);
    write_audit(tx, actor, "bot.canary.promote", tenant, bot,
                {{"version", report.canary.version},
                 {"previous_version", report.canary.baseline_version},
                 {"canary", counts_json(report.canary_counts)},
                 {"baseline", counts_json(report.baseline_counts)},
                 {"change_seq", a.change_seq}});
    return report.canary;
  };
}

catalog_job<canary_record> abort_canary(std::string tenant, std::string bot, std::string actor) {
  return [tenant = std::move(tenant), bot = std::move(bot),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_bot(tx, tenant, bot);
    lock_active_pointers(tx);
    auto report = end_running(tx, tenant, bot, "aborted");
    auto seq = bump_change_seq(tx, tenant, bot);
    write_audit(tx, actor, "bot.canary.abort", tenant, bot,
                {{"version", report.canary.version},
                 {"canary", counts_json(report.canary_counts)},
                 {"baseline", counts_json(report.baseline_counts)},
                 {"change_seq", seq}});
    return report.canary;
  };
}

catalog_job<std::vector<canary_rollback>> judge_canaries(std::string actor, std::string region) {
  return [actor = std::move(actor), region = std::move(region)](pqxx::transaction_base& tx) {
    std::vector<canary_rollback> out;
    // Read without locks: most calls find nothing to do. Each rollback below is
    // conditional on its canary still running.
    for (const auto& row :
         tx.exec_params(std::string(report_select) +
                            "JOIN tenants t ON t.id = c.tenant_id JOIN bot_active a ON "
                            "a.tenant_id = c.tenant_id AND a.bot_id = c.bot_id "
                            "WHERE c.ended_at IS NULL AND a.version <> c.version AND "
                            "(t.home_region IS NULL OR t.home_region = $1)",
                        region)) {
      auto report = read_report(row);
      if (!report.judged || report.breaches.empty()) continue;
      const auto& c = report.canary;
      json reason = {{"breaches", breaches_json(report.breaches)},
                     {"conversations", report.canary_counts.sessions},
                     {"min_conversations", c.settings.min_conversations},
                     {"canary", counts_json(report.canary_counts)},
                     {"baseline", counts_json(report.baseline_counts)},
                     {"baseline_version", c.baseline_version}};
      lock_active_pointers(tx);
      auto ended = tx.exec_params(
          "UPDATE bot_canaries SET ended_at = now(), outcome = 'rolled_back', reason = "
          "$2::jsonb WHERE id = $1 AND ended_at IS NULL RETURNING id",
          c.id, reason.dump());
      if (ended.empty()) continue;  // another node, or an operator, ended it first
      canary_rollback rb;
      rb.change_seq = bump_change_seq(tx, c.tenant, c.bot);
      json details = reason;
      details["version"] = c.version;
      details["change_seq"] = rb.change_seq;
      write_audit(tx, actor, "bot.canary.rollback", c.tenant, c.bot, details);
      rb.report = std::move(report);
      rb.report.canary.outcome = "rolled_back";
      rb.report.canary.reason_json = reason.dump();
      out.push_back(std::move(rb));
    }
    return out;
  };
}

catalog_job<void> add_version_stats(std::vector<version_delta> deltas) {
  // One order for every node: two flushes that touch the same rows lock them in the
  // same order, so they cannot deadlock.
  std::sort(deltas.begin(), deltas.end(), [](const version_delta& a, const version_delta& b) {
    return std::tie(a.tenant, a.bot, a.version) < std::tie(b.tenant, b.bot, b.version);
  });
  return [deltas = std::move(deltas)](pqxx::transaction_base& tx) {
    for (const auto& d : deltas) {
      const auto& c = d.counts;
      tx.exec_params(
          "INSERT INTO bot_version_stats AS s (tenant_id, bot_id, version, turns, sessions, "
          "fallbacks, transfers, ended, action_failures, error_dialogs) VALUES ($1, $2, $3, $4, "
          "$5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, bot_id, version) DO UPDATE SET "
          "turns = s.turns + EXCLUDED.turns, sessions = s.sessions + EXCLUDED.sessions, "
          "fallbacks = s.fallbacks + EXCLUDED.fallbacks, "
          "transfers = s.transfers + EXCLUDED.transfers, ended = s.ended + EXCLUDED.ended, "
          "action_failures = s.action_failures + EXCLUDED.action_failures, "
          "error_dialogs = s.error_dialogs + EXCLUDED.error_dialogs, updated_at = now()",
          d.tenant, d.bot, d.version, c.turns, c.sessions, c.fallbacks, c.transfers, c.ended,
          c.action_failures, c.error_dialogs);
    }
  };
}

catalog_job<std::vector<version_stats>> bot_stats(std::string tenant, std::string bot) {
  return [tenant = std::move(tenant), bot = std::move(bot)](pqxx::transaction_base& tx) {
    require_bot(tx, tenant, bot);
    std::vector<version_stats> out;
    for (const auto& row : tx.exec_params(
             "SELECT v.version, coalesce(a.version = v.version, false), "
             "EXISTS (SELECT 1 FROM bot_canaries c WHERE c.tenant_id = v.tenant_id AND "
             "c.bot_id = v.bot_id AND c.version = v.version AND c.ended_at IS NULL), "
             "coalesce(s.turns, 0), coalesce(s.sessions, 0), coalesce(s.fallbacks, 0), "
             "coalesce(s.transfers, 0), coalesce(s.ended, 0), coalesce(s.action_failures, 0), "
             "coalesce(s.error_dialogs, 0) FROM bot_versions v "
             "LEFT JOIN bot_active a ON a.tenant_id = v.tenant_id AND a.bot_id = v.bot_id "
             "LEFT JOIN bot_version_stats s ON s.tenant_id = v.tenant_id AND "
             "s.bot_id = v.bot_id AND s.version = v.version "
             "WHERE v.tenant_id = $1 AND v.bot_id = $2 ORDER BY v.version",
             tenant, bot)) {
      version_stats v;
      v.version = row[0].as<int>();
      v.active = row[1].as<bool>();
      v.canary = row[2].as<bool>();
      v.counts.turns = row[3].as<std::int64_t>();
      v.counts.sessions = row[4].as<std::int64_t>();
      v.counts.fallbacks = row[5].as<std::int64_t>();
      v.counts.transfers = row[6].as<std::int64_t>();
      v.counts.ended = row[7].as<std::int64_t>();
      v.counts.action_failures = row[8].as<std::int64_t>();
      v.counts.error_dialogs = row[9].as<std::int64_t>();
      out.push_back(v);
    }
    return out;
  };
}

}  // namespace parley::store
