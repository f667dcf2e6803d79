#pragma once
/// What the parleyctl command groups share. Each group lives in its own file
/// (parleyctl_<group>.cpp) and exposes one `add_<group>_commands` function; commands
/// report failure through `exit_code` (0 ok, 1 failure, 2 usage).

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace parley::ctl {

/// Bot developer tools: validate, compile, chat, test, nlu (parleyctl_bot.cpp).
void add_bot_commands(CLI::App& app, int& exit_code);

/// Operator commands over the admin REST API: tenant, apikey, secret, deploy, versions,
/// activate, rollback, conversations, transcript, cluster (parleyctl_admin.cpp).
void add_admin_commands(CLI::App& app, int& exit_code);

/// A bot's canary (status, promote, abort) and its versions' figures (stats)
/// (parleyctl_canary.cpp).
void add_canary_commands(CLI::App& app, int& exit_code);

/// `deploy --canary P` and its margins as the deploy's query ("" without --canary).
struct canary_deploy_options {
  int percent = 0;                      ///< 0: no canary
  double max_error_rate_increase = -1;  ///< < 0: the server's default
  double max_fallback_rate_increase = -1;
  double max_action_failure_rate_increase = -1;
  int min_conversations = 0;  ///< 0: the server's default
};
std::string canary_deploy_query(const canary_deploy_options& o);

/// parleyctl replay: recorded conversations through a candidate (parleyctl_replay.cpp).
void add_replay_commands(CLI::App& app, int& exit_code);

/// The whole file at `path` (bytes as they are), or nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path);

}  // namespace parley::ctl
