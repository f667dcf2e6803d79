#pragma once
/// Canary deploys and the region-wide per-version counts they are judged by
/// (schema: migrations/0012_bot_canaries.sql, docs/operations.md "Canary deploys").
///
/// A bot may have one running canary: a stored version that new conversations start
/// on with probability percent/100 (1..50), while the active version keeps the rest.
/// Every change of a canary (start, promote, abort, automatic rollback) takes the next
/// bot_change_seq value into the bot's bot_active row, under the same advisory lock as
/// activate(), so active_changes_since() reports it and every node's registry follows
/// it like an activation.
///
/// Counts: each node adds what its conversations did per version (add_version_stats)
/// about once a second; a canary is compared with its baseline (the version active
/// when it started) over the same window: the baseline's counts since the canary
/// started, the canary's since it was deployed. Rates are per turn.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

/// How a canary is split and judged. Margins are percentage points of a per-turn rate.
struct canary_settings {
  int percent = 10;                               ///< 1..50
  double max_error_rate_increase = 5.0;           ///< error dialogs per turn
  double max_fallback_rate_increase = 5.0;        ///< fallbacks per turn
  double max_action_failure_rate_increase = 5.0;  ///< failed actions per turn
  int min_conversations = 50;                     ///< canary sessions started before it is judged
};

/// What one version's conversations did (the parley_bot_*_total counters).
struct version_counts {
  std::int64_t turns = 0;
  std::int64_t sessions = 0;  ///< started
  std::int64_t fallbacks = 0;
  std::int64_t transfers = 0;
  std::int64_t ended = 0;  ///< ended by the bot without a transfer
  std::int64_t action_failures = 0;
  std::int64_t error_dialogs = 0;
};

/// Counts one node adds for one version.
struct version_delta {
  std::string tenant;
  std::string bot;
  int version = 0;
  version_counts counts;
};

struct canary_record {
  std::int64_t id = 0;
  std::string tenant;
  std::string bot;
  int version = 0;
  int baseline_version = 0;  ///< the version active when the canary started
  canary_settings settings;
  std::string started_by;
  std::int64_t started_at_ms = 0;
  std::int64_t ended_at_ms = 0;  ///< 0 while running
  std::string outcome;           ///< "", "promoted", "aborted" or "rolled_back"
  std::string reason_json;       ///< for rolled_back: the breach and the figures; else "null"
};

/// One rate of the canary that exceeded its margin.
struct canary_breach {
  std::string rate;  ///< "error_dialog_rate", "fallback_rate" or "action_failure_rate"
  double canary = 0;
  double baseline = 0;
  double increase_points = 0;  ///< (canary - baseline) * 100
  double max_increase_points = 0;
};

/// A canary with its counts and the verdict they give.
struct canary_report {
  canary_record canary;
  version_counts canary_counts;    ///< since it was deployed
  version_counts baseline_counts;  ///< the baseline's since the canary started
  std::vector<canary_breach> breaches;
  bool judged = false;  ///< canary sessions >= min_conversations
};

/// The per-turn rates of `c` (0 with no turns).
double error_dialog_rate(const version_counts& c);
double fallback_rate(const version_counts& c);
double action_failure_rate(const version_counts& c);

/// The rates of `canary` past their margins over `baseline` (pure, for the judge and
/// its tests). Empty: within the margins.
std::vector<canary_breach> canary_breaches(const canary_settings& s, const version_counts& canary,
                                           const version_counts& baseline);

/// Checks `s`: `invalid_argument` naming the setting ("percent", "min_conversations",
/// "max_error_rate_increase", ...) when out of range (percent 1..50, margins 0..100,
/// min_conversations 1..1000000).
catalog_job<void> check_canary_settings(canary_settings s);

/// Fails unless `bot` can take a canary now: `tenant_not_found`, `bot_not_found`,
/// `no_active_version` (a canary needs an active version to split with),
/// `canary_running` (one canary at a time: promote or abort it first).
catalog_job<void> check_canary_target(std::string tenant, std::string bot);

/// Starts `version` (stored, not active) as the bot's canary, with an audit row
/// ("bot.canary.start") and a change-log entry. Errors: those of check_canary_target
/// and check_canary_settings, `version_not_found`, `invalid_argument` when `version` is
/// the active one.
catalog_job<canary_record> start_canary(std::string tenant, std::string bot, int version,
                                        canary_settings s, std::string actor);

/// The bot's running canary with its figures, or (none running) its last one.
/// Errors: `tenant_not_found`, `bot_not_found`, `no_canary` (never had one).
catalog_job<canary_report> canary_status(std::string tenant, std::string bot);

/// Makes the running canary the active version (activate(), audited as
/// "bot.activate") and ends it as promoted ("bot.canary.promote"). Errors:
/// `tenant_not_found`, `bot_not_found`, `no_canary` (none running).
catalog_job<canary_record> promote_canary(std::string tenant, std::string bot, std::string actor);

/// Ends the running canary as aborted ("bot.canary.abort"): new conversations all go to
/// the active version; conversations already on the canary stay on it. Errors: as
/// promote_canary.
catalog_job<canary_record> abort_canary(std::string tenant, std::string bot, std::string actor);

/// What judge_canaries rolled back.
struct canary_rollback {
  canary_report report;
  std::int64_t change_seq = 0;
};

/// Judges every running canary of `region` (those of tenants whose home region it is,
/// or who have none recorded): each one judged (enough canary sessions)
/// with a breach is ended as rolled_back, with its breaches and figures in `reason` and
/// in an audit row ("bot.canary.rollback", actor `actor`, e.g. "node:parley-1"). The
/// update is conditional on the canary still running, so of several nodes judging at
/// once exactly one rolls it back and reports it here.
catalog_job<std::vector<canary_rollback>> judge_canaries(std::string actor, std::string region);

/// Adds each delta to bot_version_stats (created on first use).
catalog_job<void> add_version_stats(std::vector<version_delta> deltas);

struct version_stats {
  int version = 0;
  bool active = false;
  bool canary = false;  ///< the running canary
  version_counts counts;
};

/// Every version of the bot, ascending, with its region-wide counts (zero where none
/// ran). Errors: `tenant_not_found`, `bot_not_found`.
catalog_job<std::vector<version_stats>> bot_stats(std::string tenant, std::string bot);

}  // namespace parley::store
