#pragma once
/// Deploying a bot: its definition file compiled by parley::bot::compile and, when it
/// compiles, stored as the bot's next version (store::store_version). Here, not in
/// parley::store, so that the store does not link the compiler.

#include <string>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/store/catalog/bot_versions.hpp"

namespace parley::admin {

using store::deploy_diagnostic;

struct deploy_request {
  std::string tenant;
  std::string bot;
  std::string source;       ///< the bot definition file's text (YAML or JSON)
  std::string deployed_by;  ///< actor recorded with the version and in the audit log
  bool activate = false;    ///< also make the new version the active one
  std::string file_name;    ///< labels diagnostics; empty: "<bot>.yaml"
  /// The compiler's limits (the node's timers.min_after_ms).
  bot::compile_options compile;
};

/// A deploy either stores a new version (`deployed`) or, when the file does
/// not compile, stores nothing and carries the errors in `diagnostics`.
struct deploy_outcome {
  bool deployed = false;
  int version = 0;         ///< the new version (1, 2, 3, ... per bot), when deployed
  std::string program_id;  ///< "<name>@<hash>", when deployed
  bool activated = false;
  std::vector<deploy_diagnostic> diagnostics;  ///< errors and warnings, by position
};

/// A job (store/catalog/job.hpp) that compiles `source` (on the Postgres worker
/// thread) and stores it as the bot's next immutable version (store::store_version),
/// creating the bot on its first deploy. Errors: `invalid_argument`,
/// `tenant_not_found`. A file that does not compile is a success with
/// `deployed == false`, and nothing is stored.
store::catalog_job<deploy_outcome> deploy_version(deploy_request request);

}  // namespace parley::admin
