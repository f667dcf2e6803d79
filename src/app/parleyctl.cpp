// parleyctl: the operator and developer command line of Parley.
//
// Each command group lives in its own file (parleyctl_<group>.cpp) and exposes
// one `add_<group>_commands` function; main only wires them together. Commands
// report failure through `exit_code` (0 ok, 1 failure, 2 usage).

#include <CLI/CLI.hpp>

namespace parley::ctl {
/// Bot developer tools: validate, compile, chat, test, nlu (parleyctl_bot.cpp).
void add_bot_commands(CLI::App& app, int& exit_code);
/// Operator commands over the admin REST API: tenant, apikey, deploy, versions,
/// activate, rollback, conversations, transcript (parleyctl_admin.cpp).
void add_admin_commands(CLI::App& app, int& exit_code);
}  // namespace parley::ctl

int main(int argc, char** argv) {
  CLI::App app{"parleyctl: operate a Parley cluster and develop bots"};
  app.require_subcommand(1);
  int exit_code = 0;
  parley::ctl::add_bot_commands(app, exit_code);
  parley::ctl::add_admin_commands(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
