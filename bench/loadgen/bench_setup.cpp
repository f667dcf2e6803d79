// parley_bench_setup: prepares a tenant for the load generator straight through the
// Postgres catalog (src/store/catalog.hpp), for when the admin REST API is not
// available: creates the tenant (an existing one is kept), a new API key, deploys
// the bot file and activates it. Prints the API key alone on stdout.
//
//   DATABASE_URL=... parley_bench_setup --tenant bench --bot bench --file bench/bots/bench.yaml
//
// Retries for up to --wait seconds while the schema is not there yet (parleyd
// applies the migrations when it starts). Exit 1 on failure, with the reason on stderr.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "src/admin/deploy.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"

int main(int argc, char** argv) {
  namespace store = parley::store;
  std::string tenant = "bench", bot = "bench", file, url;
  double wait_s = 20;
  CLI::App app{"parley_bench_setup: tenant, API key and active bot for the load generator"};
  app.add_option("--tenant", tenant)->capture_default_str();
  app.add_option("--bot", bot)->capture_default_str();
  app.add_option("--file", file, "bot definition file")->required();
  app.add_option("--database-url", url, "default: $DATABASE_URL");
  app.add_option("--wait", wait_s, "seconds to wait for the schema")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (url.empty() && std::getenv("DATABASE_URL") != nullptr) url = std::getenv("DATABASE_URL");
  if (url.empty()) {
    std::fprintf(stderr, "parley_bench_setup: set DATABASE_URL or --database-url\n");
    return 1;
  }
  std::ifstream in(file);
  if (!in) {
    std::fprintf(stderr, "parley_bench_setup: cannot read %s\n", file.c_str());
    return 1;
  }
  std::stringstream source;
  source << in.rdbuf();

  store::postgres_options popts;
  popts.url = url;
  popts.workers = 1;
  popts.application_name = "parley_bench_setup";
  auto pg = store::postgres_client::create(popts);
  if (!pg) {
    std::fprintf(stderr, "parley_bench_setup: %s\n", pg.err().message.c_str());
    return 1;
  }

  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(wait_s));
  for (;;) {
    auto t = store::run_job_sync(**pg, store::create_tenant(tenant, "Bench tenant", "bench"));
    if (t.ok() || t.err().code == "tenant_exists") break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "parley_bench_setup: create tenant: %s\n", t.err().message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto key = store::run_job_sync(**pg, store::create_api_key(tenant, "bench", "bench"));
  if (!key) {
    std::fprintf(stderr, "parley_bench_setup: create API key: %s\n", key.err().message.c_str());
    return 1;
  }
  parley::admin::deploy_request d;
  d.tenant = tenant;
  d.bot = bot;
  d.source = source.str();
  d.deployed_by = "bench";
  d.activate = true;
  d.file_name = file;
  auto dep = store::run_job_sync(**pg, parley::admin::deploy_version(std::move(d)));
  if (!dep) {
    std::fprintf(stderr, "parley_bench_setup: deploy: %s\n", dep.err().message.c_str());
    return 1;
  }
  if (!dep->deployed) {
    for (const auto& e : dep->diagnostics)
      std::fprintf(stderr, "%s:%d:%d: %s: %s\n", file.c_str(), e.line, e.column, e.severity.c_str(),
                   e.message.c_str());
    return 1;
  }
  std::fprintf(stderr, "parley_bench_setup: tenant %s, bot %s version %d (%s) active\n",
               tenant.c_str(), bot.c_str(), dep->version, dep->program_id.c_str());
  std::printf("%s\n", key->key.c_str());
  return 0;
}
