#pragma once
/// Bots and their immutable versions, and the active version pointer each bot has.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

/// One compiler finding, as stored with a version and shown by the admin API.
struct deploy_diagnostic {
  std::string severity;  ///< "error" or "warning"
  int line = 0;          ///< 1-based; 0 for the whole file
  int column = 0;
  std::string message;
};

/// A compiled bot definition to store as a bot's next version (src/admin compiles it:
/// the store does not link the compiler).
struct new_version {
  std::string tenant;
  std::string bot;
  std::string source;      ///< the bot definition file's text, kept with the version
  std::string program;     ///< the bytes of parley::bot::serialize
  std::string program_id;  ///< "<name>@<hash>"
  std::vector<deploy_diagnostic> warnings;
  std::string deployed_by;  ///< actor recorded with the version and in the audit log
  bool activate = false;    ///< also make the new version the active one
};

struct stored_version {
  int version = 0;  ///< the new version (1, 2, 3, ... per bot)
  bool activated = false;
};

/// Stores `v` as the bot's next immutable version, creating the bot on its first
/// version, with its audit row (and activates it, as activate(), when asked).
/// Concurrent stores of one bot get distinct, consecutive versions. Errors:
/// `invalid_argument`, `tenant_not_found`.
catalog_job<stored_version> store_version(new_version v);

/// Fails as store_version would for `tenant` and `bot` (`invalid_argument`,
/// `tenant_not_found`) and stores nothing: a deploy checks them before it compiles.
catalog_job<void> check_version_target(std::string tenant, std::string bot);

struct version_info {
  int version = 0;
  std::string program_id;
  std::string deployed_by;
  std::int64_t deployed_at_ms = 0;
  bool active = false;
  std::vector<deploy_diagnostic> warnings;
};

/// The bot's versions, ascending, with the active one marked. Errors:
/// `bot_not_found` (no version was ever deployed).
catalog_job<std::vector<version_info>> list_versions(std::string tenant, std::string bot);

/// A stored version, ready to load: `program` holds the bytes of
/// parley::bot::serialize (parse them into bot::v1::Program, then bot::load).
struct bot_program {
  std::string tenant;
  std::string bot;
  int version = 0;
  std::string program_id;
  std::string program;
  std::string source;  ///< filled by get_version only (get_active leaves it empty)
};

/// One version. Errors: `version_not_found`.
catalog_job<bot_program> get_version(std::string tenant, std::string bot, int version);

/// The active version. Errors: `no_active_version` (never activated,
/// including an unknown bot).
catalog_job<bot_program> get_active(std::string tenant, std::string bot);

/// The active pointer after activate or rollback.
struct activation {
  int version = 0;
  std::optional<int> previous_version;
  std::int64_t change_seq = 0;
  bool changed = false;  ///< false: `version` was already active, nothing written
};

/// Makes `version` the active one; the one active before becomes
/// previous_version. Activating the active version changes nothing. Also
/// sends pg_notify('parley_catalog', '{"tenant":..,"bot":..,"version":..,
/// "change_seq":..}'). Errors: `version_not_found`.
catalog_job<activation> activate(std::string tenant, std::string bot, int version,
                                 std::string actor);

/// Moves the pointer back to previous_version and clears it: one step of
/// undo (a second rollback in a row fails until the next activate).
/// Errors: `no_active_version`, `no_previous_version`.
catalog_job<activation> rollback(std::string tenant, std::string bot, std::string actor);

struct active_change {
  std::string tenant;
  std::string bot;
  int version = 0;
  std::int64_t change_seq = 0;
  int canary_version = 0;  ///< the running canary (canary.hpp); 0: none
  int canary_percent = 0;  ///< its share of new conversations, 1..50
};

/// The current pointer (and running canary) of every bot whose pointer or canary
/// changed after `change_seq`,
/// ascending by change_seq (0: every active bot, for a node starting up).
/// Poll with the largest change_seq seen: values become visible in
/// increasing order, so none is skipped. At most `limit` rows.
catalog_job<std::vector<active_change>> active_changes_since(std::int64_t change_seq,
                                                             std::size_t limit = 1000);

}  // namespace parley::store
