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

/// The whole file at `path` (bytes as they are), or nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path);

}  // namespace parley::ctl
