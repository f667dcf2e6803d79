#pragma once
/// A real parleyd for the channel tests (integration and e2e): started with
/// config/local.yaml on a free port against the Redis and Postgres scripts/test started,
/// and a tenant of the test's own with its secrets and an active bot. Compile with
/// PARLEYD_PATH and PARLEY_SOURCE_DIR defined; link parley::store, parley::admin and
/// parley::secrets.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "src/admin/deploy.hpp"
#include "src/secrets/secrets.hpp"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace parley::test {

/// A file of the checkout, as text ("" when it cannot be read).
inline std::string source_file(const std::string& relative) {
  std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/" + relative);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A parleyd process and the port it listens on (empty when it did not start).
struct parleyd_process {
  std::unique_ptr<testing::child_process> proc;
  std::string port;
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port + path; }
};

/// Starts parleyd with PORT=0, REDIS_URL and DATABASE_URL of the run, and `env` over
/// them; returns once it logged its HTTP port.
inline parleyd_process start_parleyd(const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> all = {
      {"PORT", "0"},
      {"REDIS_URL", store::testing::require_env("REDIS_URL")},
      {"DATABASE_URL", store::testing::require_env("DATABASE_URL")},
      {"PARLEY_ADMIN_TOKEN", "test-admin-token"},
  };
  for (const auto& [k, v] : env) all[k] = v;
  parleyd_process p;
  p.proc = std::make_unique<testing::child_process>(
      std::vector<std::string>{PARLEYD_PATH, "--config",
                               std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"},
      all);
  auto line = p.proc->wait_for_line(
      [](const std::string& l) { return l.find("\"http_listening\"") != std::string::npos; });
  if (line)
    p.port = nlohmann::json::parse(line->substr(line->find('{')))["port"].get<std::string>();
  return p;
}

/// Creates `tenant` (waiting for the node's migrations), stores `secrets` as its tenant
/// secrets sealed under the run's PARLEY_SECRETS_KEY, and deploys `source` as its active
/// bot `bot`. "" when done, else what failed.
inline std::string provision_tenant(store::postgres_client& pg, const std::string& tenant,
                                    const std::vector<std::pair<std::string, std::string>>& secrets,
                                    const std::string& bot, const std::string& source,
                                    const bot::compile_options& compile = {}) {
  std::string why = "the node's migrations are not all applied";
  // A node migrates a fresh database one migration at a time: the tenants table is
  // there long before the secrets table, so wait for every migration first.
  if (!store::testing::eventually(
          [&] {
            auto current = store::migrations_current(pg);
            return current.ok() && *current;
          },
          std::chrono::seconds(20)))
    return why;
  if (!store::testing::eventually(
          [&] {
            auto t = store::run_job_sync(pg, store::create_tenant(tenant, "Test tenant", "test"));
            if (!t) why = "create tenant: " + t.err().message;
            return t.ok();
          },
          std::chrono::seconds(20)))
    return why;
  auto keys = secrets::keyring::from_text(store::testing::require_env("PARLEY_SECRETS_KEY"), "");
  if (!keys) return "PARLEY_SECRETS_KEY: " + keys.err().message;
  for (const auto& [name, value] : secrets) {
    auto put = store::run_job_sync(pg, store::put_secret(*keys, tenant, name, value, "test"));
    if (!put) return name + ": " + put.err().message;
  }
  admin::deploy_request d;
  d.tenant = tenant;
  d.bot = bot;
  d.source = source;
  d.deployed_by = "test";
  d.activate = true;
  d.compile = compile;
  auto r = store::run_job_sync(pg, admin::deploy_version(d));
  if (!r) return "deploy: " + r.err().message;
  if (!r->deployed) return "deploy: the bot has diagnostics";
  return {};
}

/// Every inbound transcript text of `tenant` (of `session` only, when given), one per
/// line in session and turn order, once the transcript writer has stored one holding
/// `needle` (else what there is after 20 s).
inline std::string inbound_transcript(store::postgres_client& pg, const std::string& tenant,
                                      const std::string& needle, const std::string& session = "") {
  std::string all;
  store::testing::eventually(
      [&] {
        auto r = store::run_job_sync(
            pg, store::catalog_job<std::string>([tenant, session](pqxx::transaction_base& tx) {
              std::string out;
              for (const auto& row : tx.exec_params(
                       "SELECT inbound FROM transcript_turns WHERE tenant_id = $1 AND inbound "
                       "IS NOT NULL AND ($2 = '' OR session_id = $2) ORDER BY session_id, "
                       "sequence",
                       tenant, session))
                out += row[0].as<std::string>() + "\n";
              return out;
            }));
        all = r.ok() ? *r : std::string();
        return all.find(needle) != std::string::npos;
      },
      std::chrono::seconds(20));
  return all;
}

}  // namespace parley::test
