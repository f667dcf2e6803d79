// parleyctl: the operator and developer command line of Parley.
//
// The command groups are declared in parleyctl.hpp; main only wires them together.

#include "src/app/parleyctl.hpp"

#include <CLI/CLI.hpp>

#include <fstream>
#include <sstream>

namespace parley::ctl {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace parley::ctl

int main(int argc, char** argv) {
  CLI::App app{"parleyctl: operate a Parley cluster and develop bots"};
  app.require_subcommand(1);
  int exit_code = 0;
  parley::ctl::add_bot_commands(app, exit_code);
  parley::ctl::add_admin_commands(app, exit_code);
  parley::ctl::add_canary_commands(app, exit_code);
  parley::ctl::add_replay_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit 2, as the commands' own do (--help and --version exit 0).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
