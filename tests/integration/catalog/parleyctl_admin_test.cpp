/// parleyctl's admin commands (src/app/parleyctl_admin.cpp) run as a child
/// process against the admin routes served in-process on port 0: output and
/// exit codes (0 ok, 1 the server said no, 2 usage or connection error).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <prometheus/registry.h>

#include <array>
#include <cstdio>
#include <memory>

#include "src/admin/admin.hpp"
#include "src/store/catalog.hpp"
#include "tests/integration/catalog/support.hpp"

namespace parley::admin {
namespace {

using namespace parley::catalog_testing;

/// A local TCP port that nothing listens on (the kernel picked it, then we let it go).
int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    std::abort();
  ::close(fd);
  return ntohs(addr.sin_port);
}

class parleyctl_admin_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = shared_postgres();
    ASSERT_NE(pg_, nullptr);
    http::router routes;
    admin_options opts{*pg_, "ctl-token", {}, {}, false, {}, {}};
    opts.live_conversations = [](std::string, std::function<void(nlohmann::json)> done) {
      done(nlohmann::json::array({{{"session_id", "s-42"}, {"bot", "orders"}}}));
    };
    add_admin_routes(routes, std::move(opts));
    server_ = std::make_unique<http::server>(http::server_options{}, std::move(routes),
                                             std::make_shared<prometheus::Registry>());
    ASSERT_TRUE(server_->start());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    tenant_ = unique_tenant("ctl");
  }
  void TearDown() override {
    if (server_) server_->stop(std::chrono::milliseconds(1000));
  }

  /// Runs parleyctl with `args` (already shell-quoted where needed).
  run_result ctl(const std::string& args, const std::string& env = "PARLEY_ADMIN_TOKEN=ctl-token") {
    std::string cmd = "env -u PARLEY_URL -u PARLEY_ADMIN_TOKEN " + env + " '" PARLEYCTL_PATH "' " +
                      args + " 2>&1";
    return run_shell(cmd);
  }

  std::string at() const { return " --url " + url_; }

  store::postgres_client* pg_ = nullptr;
  std::unique_ptr<http::server> server_;
  std::string url_;
  std::string tenant_;
};

TEST_F(parleyctl_admin_test, operator_workflow) {
  auto created = ctl("tenant create " + tenant_ + " --name 'Ctl Test'" + at());
  EXPECT_EQ(created.exit_code, 0) << created.output;
  EXPECT_NE(created.output.find("created tenant " + tenant_), std::string::npos) << created.output;

  auto again = ctl("tenant create " + tenant_ + at());
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;

  auto list = ctl("tenant list" + at());
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find(tenant_), std::string::npos);

  auto key = ctl("apikey create " + tenant_ + " --name web" + at());
  EXPECT_EQ(key.exit_code, 0) << key.output;
  auto at_key = key.output.find("pk_");
  ASSERT_NE(at_key, std::string::npos) << key.output;
  std::string plaintext = key.output.substr(at_key, 46);
  EXPECT_TRUE(*store::run_job_sync(*pg_, store::verify_api_key(tenant_, plaintext)));

  std::string sample = std::string(PARLEY_SOURCE_DIR) + "/config/bots/order-status.yaml";
  auto deployed = ctl("deploy " + tenant_ + " orders '" + sample + "' --activate" + at());
  EXPECT_EQ(deployed.exit_code, 0) << deployed.output;
  EXPECT_NE(deployed.output.find("version 1"), std::string::npos) << deployed.output;
  EXPECT_NE(deployed.output.find("now active"), std::string::npos) << deployed.output;
  auto second = ctl("deploy " + tenant_ + " orders '" + sample + "'" + at());
  EXPECT_EQ(second.exit_code, 0) << second.output;

  auto versions = ctl("versions " + tenant_ + " orders" + at());
  EXPECT_EQ(versions.exit_code, 0) << versions.output;
  EXPECT_NE(versions.output.find("order-status@"), std::string::npos) << versions.output;

  auto activated = ctl("activate " + tenant_ + " orders 2" + at());
  EXPECT_EQ(activated.exit_code, 0) << activated.output;
  EXPECT_EQ(store::run_job_sync(*pg_, store::get_active(tenant_, "orders"))->version, 2);
  auto missing = ctl("activate " + tenant_ + " orders 9" + at());
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("version_not_found"), std::string::npos) << missing.output;

  auto rolled = ctl("rollback " + tenant_ + " orders" + at());
  EXPECT_EQ(rolled.exit_code, 0) << rolled.output;
  EXPECT_NE(rolled.output.find("rolled back to version 1"), std::string::npos) << rolled.output;
  auto no_more = ctl("rollback " + tenant_ + " orders" + at());
  EXPECT_EQ(no_more.exit_code, 1) << no_more.output;

  auto live = ctl("conversations " + tenant_ + at());
  EXPECT_EQ(live.exit_code, 0) << live.output;
  EXPECT_NE(live.output.find("s-42"), std::string::npos) << live.output;

  std::string session = unique_name("sess");
  ASSERT_TRUE(store::run_job_sync(
      *pg_, store::write_turn_lines(
                {turn_line(tenant_, session, 1, "where is my order", {"Which order number?"})})));
  auto transcript = ctl("transcript " + tenant_ + " " + session + at());
  EXPECT_EQ(transcript.exit_code, 0) << transcript.output;
  EXPECT_NE(transcript.output.find("user> where is my order"), std::string::npos)
      << transcript.output;
  EXPECT_NE(transcript.output.find("bot>  Which order number?"), std::string::npos)
      << transcript.output;

  auto json_out = ctl("versions " + tenant_ + " orders --json" + at());
  EXPECT_EQ(json_out.exit_code, 0);
  EXPECT_TRUE(nlohmann::json::accept(json_out.output)) << json_out.output;
}

TEST_F(parleyctl_admin_test, tenant_limits_show_and_set) {
  ASSERT_EQ(ctl("tenant create " + tenant_ + at()).exit_code, 0);
  auto shown = ctl("tenant limits " + tenant_ + at());
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("(the defaults)"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("max attachments per message: 10"), std::string::npos)
      << shown.output;

  auto set =
      ctl("tenant limits " + tenant_ +
          " --max-attachments 3 --schemes https --content-types 'image/*,application/pdf'" + at());
  EXPECT_EQ(set.exit_code, 0) << set.output;
  EXPECT_NE(set.output.find("max attachments per message: 3"), std::string::npos) << set.output;
  EXPECT_NE(set.output.find("URL schemes:                 https\n"), std::string::npos)
      << set.output;
  EXPECT_NE(set.output.find("content types:               image/*, application/pdf"),
            std::string::npos)
      << set.output;
  auto again = ctl("tenant limits " + tenant_ + at());
  EXPECT_EQ(again.output.find("(the defaults)"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("max URL bytes:               2048"), std::string::npos)
      << again.output;

  auto bad = ctl("tenant limits " + tenant_ + " --schemes ftp" + at());
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("attachments.schemes[0]"), std::string::npos) << bad.output;
}

TEST_F(parleyctl_admin_test, a_bad_file_prints_diagnostics_and_exits_1) {
  ASSERT_EQ(ctl("tenant create " + tenant_ + at()).exit_code, 0);
  store::testing::temp_dir dir;
  auto bad_path = (dir.path() / "bad.yaml").string();
  {
    std::ofstream out(bad_path);
    out << edited(sample_bot("order-status.yaml"), "welcome: welcome", "welcome: no_such_dialog");
  }
  auto r = ctl("deploy " + tenant_ + " orders '" + bad_path + "'" + at());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(bad_path + ":"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(": error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_such_dialog"), std::string::npos) << r.output;
}

TEST_F(parleyctl_admin_test, usage_and_connection_errors_exit_2) {
  auto no_token = ctl("tenant list" + at(), "");
  EXPECT_EQ(no_token.exit_code, 2) << no_token.output;
  EXPECT_NE(no_token.output.find("PARLEY_ADMIN_TOKEN"), std::string::npos);

  auto wrong_token = ctl("tenant list --token nope" + at());
  EXPECT_EQ(wrong_token.exit_code, 1) << wrong_token.output;
  EXPECT_NE(wrong_token.output.find("wrong admin token"), std::string::npos);

  auto no_file = ctl("deploy " + tenant_ + " orders /nonexistent/bot.yaml" + at());
  EXPECT_EQ(no_file.exit_code, 2) << no_file.output;

  // A port nothing listens on: bound, never listened to, then closed.
  std::string dead = "http://127.0.0.1:" + std::to_string(unused_port());
  auto unreachable = ctl("tenant list --url " + dead);
  EXPECT_EQ(unreachable.exit_code, 2) << unreachable.output;

  auto env_url = ctl("tenant list", "PARLEY_ADMIN_TOKEN=ctl-token PARLEY_URL=" + dead);
  EXPECT_EQ(env_url.exit_code, 2) << env_url.output;
  EXPECT_NE(env_url.output.find(dead), std::string::npos) << "PARLEY_URL is used";
}

}  // namespace
}  // namespace parley::admin
