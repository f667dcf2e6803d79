// parleyd: one Parley node. Loads the configuration, connects to Redis and Postgres,
// applies migrations, starts the actor system and the HTTP server, and runs until
// SIGTERM or SIGINT, when it stops accepting, finishes requests in flight (bounded by
// http.shutdown_grace_ms) and exits 0.
//
// Exit codes: 0 clean stop, 1 start-up failure (cannot bind, ...), 2 bad configuration.

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "actors/health/readiness_actor.hpp"
#include "src/http/http.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/settings/settings.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"

namespace {

using namespace parley;

/// Applies migrations until it succeeds (Postgres may come up after us), then sets
/// `done`. Runs on its own thread; `stop` ends it early.
void migrate_until_done(store::postgres_client& pg, std::atomic<bool>& done, std::atomic<bool>& stop) {
  auto wait = std::chrono::milliseconds(100);
  while (!stop.load()) {
    auto r = store::apply_migrations(pg);
    if (r.ok()) {
      log::info("migrations_applied", {{"newly_applied", std::to_string(r->applied.size())}});
      done = true;
      return;
    }
    log::warn("migrations_failed", {{"code", r.err().code}, {"error", r.err().message}});
    for (auto slept = std::chrono::milliseconds(0); slept < wait && !stop.load(); slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    wait = std::min(wait * 2, std::chrono::milliseconds(5000));
  }
}

int run(const settings::settings& cfg) {
  log::level lvl = log::level::info;
  log::parse_level(cfg.log.level, lvl);
  log::configure(lvl, cfg.log.format == "logfmt" ? log::format::logfmt : log::format::json);

  // Signals go to the main thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry = metrics::make_registry();

  store::redis_options ropts;
  ropts.url = cfg.redis.url;
  ropts.command_timeout = std::chrono::milliseconds(cfg.redis.command_timeout_ms);
  auto redis = store::redis_client::create(ropts);
  if (!redis) {
    std::fprintf(stderr, "parleyd: redis.url: %s\n", redis.err().message.c_str());
    return 2;
  }
  store::postgres_options popts;
  popts.url = cfg.postgres.url;
  popts.workers = static_cast<std::size_t>(cfg.postgres.pool_size);
  auto pg = store::postgres_client::create(popts);
  if (!pg) {
    std::fprintf(stderr, "parleyd: postgres.url: %s\n", pg.err().message.c_str());
    return 2;
  }

  std::atomic<bool> migrated{!cfg.postgres.migrate};
  std::atomic<bool> stopping{false};
  std::thread migrator;
  if (cfg.postgres.migrate)
    migrator = std::thread([&] { migrate_until_done(**pg, migrated, stopping); });

  caf::actor_system_config sys_cfg;
  std::size_t threads = cfg.actors.scheduler_threads > 0 ? static_cast<std::size_t>(cfg.actors.scheduler_threads)
                                                         : std::max(1u, std::thread::hardware_concurrency());
  sys_cfg.set("scheduler.max-threads", threads);
  sys_cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{sys_cfg};

  store::redis_client* r = redis->get();
  store::postgres_client* p = pg->get();
  std::vector<actors::readiness_component> components = {
      {"redis", [r](auto done) { r->ping(std::move(done)); }},
      {"postgres", [p](auto done) { p->ping(std::move(done)); }},
      {"migrations",
       [p](auto done) {
         store::migrations_current(*p, {}, [done = std::move(done)](result<bool> current) {
           if (!current)
             done(current.err());
           else if (!*current)
             done(make_error("migrations_pending", "schema migrations are not all applied yet"));
           else
             done(result<void>{});
         });
       }},
  };
  auto readiness = actors::spawn_readiness(sys, std::move(components), std::chrono::milliseconds(1000));

  http::router routes;
  routes.add("GET", "/healthz", [](http::request&&, http::responder reply) {
    reply(http::response::json(200, "{\"status\":\"alive\"}"));
  });
  routes.add("GET", "/readyz", [readiness](http::request&&, http::responder reply) {
    actors::request_readiness(readiness, std::move(reply));
  });
  routes.add("GET", "/metrics", [registry](http::request&&, http::responder reply) {
    http::response res;
    res.content_type = metrics::content_type;
    res.body = metrics::render(*registry);
    reply(std::move(res));
  });

  http::server_options hopts;
  hopts.address = cfg.http.address;
  hopts.port = cfg.http.port;
  hopts.threads = cfg.http.threads;
  hopts.max_body_bytes = static_cast<std::size_t>(cfg.http.max_body_bytes);
  hopts.idle_timeout = std::chrono::milliseconds(cfg.http.idle_timeout_ms);
  http::server server(hopts, std::move(routes), registry);
  if (auto started = server.start(); !started) {
    log::error("http_start_failed", {{"error", started.err().message}});
    std::fprintf(stderr, "parleyd: %s\n", started.err().message.c_str());
    stopping = true;
    if (migrator.joinable()) migrator.join();
    caf::anon_send_exit(readiness, caf::exit_reason::user_shutdown);
    return 1;
  }
  log::info("http_listening", {{"address", cfg.http.address},
                               {"port", std::to_string(server.port())},
                               {"url", "http://" + cfg.http.address + ":" + std::to_string(server.port())},
                               {"node", cfg.node.name},
                               {"region", cfg.node.region}});

  int sig = 0;
  sigwait(&signals, &sig);
  log::info("shutdown_started", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                 {"in_flight", std::to_string(server.in_flight())}});
  stopping = true;
  server.stop(std::chrono::milliseconds(cfg.http.shutdown_grace_ms));
  if (migrator.joinable()) migrator.join();
  caf::anon_send_exit(readiness, caf::exit_reason::user_shutdown);
  log::info("shutdown_complete");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parleyd: a Parley node (clustered runtime for chatbot conversations)"};
  std::string config_path = "config/local.yaml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "node configuration file (YAML)")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the configuration and exit (0 valid, 2 invalid)");
  app.footer(parley::settings::describe() +
             "\nEnvironment: PORT, DATABASE_URL and REDIS_URL override http.port, postgres.url and redis.url.");
  CLI11_PARSE(app, argc, argv);

  auto cfg = parley::settings::load(config_path, parley::settings::process_environment());
  if (!cfg) {
    std::fprintf(stderr, "parleyd: %s\n", cfg.err().message.c_str());
    return 2;
  }
  if (check_only) {
    std::printf("parleyd: %s is valid\n", config_path.c_str());
    return 0;
  }
  return run(*cfg);
}
