#pragma once
/// What the parleyctl command groups share. Each group lives in its own file
/// (parleyctl_<group>.cpp) and exposes one `add_<group>_commands` function; commands
/// report failure through `exit_code` (0 ok, 1 failure, 2 usage).

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

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

/// Where and how to reach a node's admin API; shared by every admin command
/// (parleyctl_http.cpp).
struct admin_target {
  std::string url;
  std::string token;
  bool raw_json = false;
};

/// --url, --token and --json on `cmd`.
void add_target_options(CLI::App* cmd, admin_target& t);

/// The environment variable `name`, or `fallback` when it is unset or empty.
std::string env_or(const char* name, const std::string& fallback);

/// Percent-encodes one path segment (or query value).
std::string seg(const std::string& s);

/// The node's base URL without a trailing '/': --url, else $PARLEY_URL, else
/// http://127.0.0.1:8080.
std::string admin_base(const admin_target& target);

/// The server's answer.
struct admin_answer {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

/// Calls the admin API with the token (--token or $PARLEY_ADMIN_TOKEN). On a 4xx/5xx it
/// prints the server's error and sets `exit_code` 1 (a 422, whose diagnostics the
/// caller prints, is returned); without a token or a connection, 2. With --json it
/// prints the answer as is.
std::optional<admin_answer> admin_call(const admin_target& target, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       int& exit_code,
                                       const std::string& content_type = "application/json");

/// The whole file at `path` (bytes as they are), or nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path);

}  // namespace parley::ctl
