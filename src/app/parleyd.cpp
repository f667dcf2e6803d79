// parleyd: one Parley node. Loads the configuration, connects to Redis and Postgres,
// applies migrations, starts the actor system and the HTTP server, and runs until
// SIGTERM or SIGINT, when it stops accepting, finishes requests in flight (bounded by
// http.shutdown_grace_ms) and exits 0.
//
// Exit codes: 0 clean stop, 1 start-up failure (cannot bind, ...), 2 bad configuration.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <thread>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/action/action_runner.hpp"
#include "actors/canary/canary_monitor.hpp"
#include "actors/changes/change_listener.hpp"
#include "actors/delivery/channel_delivery.hpp"
#include "actors/delivery/sms_opt_outs.hpp"
#include "actors/gateway/agent_gateway.hpp"
#include "actors/gateway/auth_cache.hpp"
#include "actors/gateway/botapi_gateway.hpp"
#include "actors/gateway/chat_page.hpp"
#include "actors/gateway/directline_gateway.hpp"
#include "actors/gateway/messenger_gateway.hpp"
#include "actors/gateway/session_keys.hpp"
#include "actors/gateway/twilio_gateway.hpp"
#include "actors/health/readiness_actor.hpp"
#include "actors/limits/attachment_gate.hpp"
#include "actors/limits/limits_cache.hpp"
#include "actors/registry/bot_registry.hpp"
#include "actors/runtime/lane_scheduler.hpp"
#include "actors/runtime/runtime.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "actors/transcript/catalog_sink.hpp"
#include "actors/transcript/transcript_writer.hpp"
#include "cluster/lease/fenced_snapshot_store.hpp"
#include "cluster/lease/leases.hpp"
#include "cluster/node/cluster_node.hpp"
#include "cluster/region/region_router.hpp"
#include "src/admin/admin.hpp"
#include "src/admin/changes.hpp"
#include "src/channels/botapi/botapi.hpp"
#include "src/common/clock.hpp"
#include "src/http/client.hpp"
#include "src/http/egress.hpp"
#include "src/http/http.hpp"
#include "src/http/outbound.hpp"
#include "src/io/lanes.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/secrets/secrets.hpp"
#include "src/settings/settings.hpp"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "src/store/redis.hpp"
#include "src/store/redis_probe.hpp"

namespace {

using namespace parley;

/// Tells the region that this node rolled a canary back (the canary monitor's hook).
void announce_canary_rollback(const std::function<void(const admin::change&)>& publish,
                              const store::canary_rollback& rb) {
  admin::change c;
  c.what = admin::change::kind::canary_changed;
  c.tenant = rb.report.canary.tenant;
  c.bot = rb.report.canary.bot;
  c.version = rb.report.canary.version;
  publish(c);
}

bool flag_set(const std::atomic<bool>* flag) { return flag->load(); }

/// Applies migrations until it succeeds (Postgres may come up after us); true then,
/// false when `stop` ended it first. Runs on its own thread.
bool migrate_until_done(store::postgres_client& pg, std::atomic<bool>& stop) {
  auto wait = std::chrono::milliseconds(100);
  while (!stop.load()) {
    auto r = store::apply_migrations(pg);
    if (r.ok()) {
      log::info("migrations_applied", {{"newly_applied", std::to_string(r->applied.size())}});
      return true;
    }
    log::warn("migrations_failed", {{"code", r.err().code}, {"error", r.err().message}});
    for (auto slept = std::chrono::milliseconds(0); slept < wait && !stop.load();
         slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    wait = std::min(wait * 2, std::chrono::milliseconds(5000));
  }
  return false;
}

/// The start check of tenant secrets: 0 when this node can open every stored secret,
/// else 2 after logging why (rows exist and PARLEY_SECRETS_KEY is unset, or rows are
/// sealed under a key id no given key has). Postgres may still be starting: it is
/// asked for up to ~10 s; if it never answers the check is skipped with a warning (a
/// secret that cannot be opened then fails its action, naming the key id).
int check_stored_secrets(store::postgres_client& pg, const secrets::keyring& keys) {
  auto wait = std::chrono::milliseconds(100);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto ids = store::run_job_sync(pg, store::secret_key_ids());
    if (ids) {
      std::int64_t rows = 0;
      for (const auto& [id, n] : *ids) rows += n;
      if (rows > 0 && !keys.has_current()) {
        std::string why = std::to_string(rows) +
                          " tenant secrets are stored but PARLEY_SECRETS_KEY is not set: start "
                          "the node with the master key they are sealed under";
        log::error("secrets_key_missing", {{"error", why}});
        std::fprintf(stderr, "parleyd: %s\n", why.c_str());
        return 2;
      }
      for (const auto& [id, n] : *ids) {
        if (keys.find(id) != nullptr) continue;
        std::string why = std::to_string(n) + " tenant secrets are sealed under key id " + id +
                          ", which neither PARLEY_SECRETS_KEY nor PARLEY_SECRETS_PREVIOUS_KEYS "
                          "holds: add that key to PARLEY_SECRETS_PREVIOUS_KEYS";
        log::error("secrets_key_unknown", {{"key_id", id}, {"error", why}});
        std::fprintf(stderr, "parleyd: %s\n", why.c_str());
        return 2;
      }
      log::info("secrets_checked", {{"stored", std::to_string(rows)},
                                    {"key_id", keys.has_current() ? keys.current().id : "none"}});
      return 0;
    }
    if (std::chrono::steady_clock::now() + wait > give_up) {
      log::warn("secrets_check_skipped", {{"code", ids.err().code}, {"error", ids.err().message}});
      return 0;
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(2000));
  }
}

int run(const settings::settings& cfg) {
  log::level lvl = log::level::info;
  log::parse_level(cfg.log.level, lvl);
  log::configure(lvl, cfg.log.format == "logfmt" ? log::format::logfmt : log::format::json);
  for (const auto& w : cfg.warnings) log::warn("config_deprecated", {{"warning", w}});

  // Signals go to the main thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry_ptr = metrics::make_registry();

  // The one outbound HTTP client: bot actions now, channel deliveries later. Its egress
  // policy refuses loopback, link-local and private destinations and this node's own
  // ports (added below once bound) unless actions.egress_allow opens them.
  http::outbound_options oopts;
  oopts.threads = cfg.actions.threads;
  oopts.max_connections_per_host = static_cast<std::size_t>(cfg.actions.max_connections_per_host);
  oopts.max_response_bytes = static_cast<std::size_t>(cfg.actions.max_response_bytes);
  oopts.ca_file = cfg.actions.ca_file;
  auto egress = http::egress_policy::make(cfg.actions.egress_allow);
  if (!egress) {
    std::fprintf(stderr, "parleyd: %s\n", egress.err().message.c_str());
    return 2;
  }
  oopts.egress = std::move(*egress);
  auto outbound = http::outbound_client::make(std::move(oopts), registry_ptr.get());
  if (!outbound) {
    std::fprintf(stderr, "parleyd: actions.%s\n", outbound.err().message.c_str());
    return 2;
  }
  if (cfg.http.port != 0) (*outbound)->egress().add_own_port(cfg.http.port);

  std::size_t threads = cfg.actors.scheduler_threads > 0
                            ? static_cast<std::size_t>(cfg.actors.scheduler_threads)
                            : std::max(1u, std::thread::hardware_concurrency());
  const bool on_lanes = cfg.actors.scheduler_policy == "lanes";
  // The event-loop threads. With the "lanes" scheduler (the default) the HTTP
  // connections, the actors and a Redis connection per lane share them: a turn then
  // stays on one thread from request to answer, but for Redis round trips to another
  // lane (bench/README.md). Created before and stopped after everything running on
  // them (the Redis client, the actor system, the server).
  io::lanes lanes(on_lanes ? threads : 1);
  if (on_lanes) lanes.start();  // otherwise nothing runs on them

  store::redis_options ropts;
  ropts.url = cfg.redis.url;
  ropts.command_timeout = std::chrono::milliseconds(cfg.redis.command_timeout_ms);
  const bool redis_on_lanes = on_lanes && cfg.redis.lane_connections;
  if (redis_on_lanes) ropts.lanes = &lanes;
  store::redis_probe redis_probe(*registry_ptr);
  ropts.probe = &redis_probe;
  ropts.scripts = cluster::lease_scripts();
  auto redis = store::redis_client::create(ropts);
  if (!redis) {
    std::fprintf(stderr, "parleyd: redis.url: %s\n", redis.err().message.c_str());
    return 2;
  }
  store::postgres_probe pg_probe(*registry_ptr);
  store::postgres_options popts;
  popts.probe = &pg_probe;
  popts.url = cfg.postgres.url;
  popts.workers = static_cast<std::size_t>(cfg.postgres.pool_size);
  auto pg = store::postgres_client::create(popts);
  if (!pg) {
    std::fprintf(stderr, "parleyd: postgres.url: %s\n", pg.err().message.c_str());
    return 2;
  }

  // Tenant secrets (docs/operations.md, "Secrets"): a malformed key, or stored secrets
  // this node could not open, stop it here, before it serves anything.
  auto keys = secrets::keyring::from_env();
  if (!keys) {
    log::error("secrets_key_invalid", {{"error", keys.err().message}});
    std::fprintf(stderr, "parleyd: %s\n", keys.err().message.c_str());
    return 2;
  }
  if (int code = check_stored_secrets(**pg, *keys); code != 0) return code;

  std::atomic<bool> stopping{false};

  caf::actor_system_config sys_cfg;
  if (on_lanes) {
    actors::use_lanes(sys_cfg, lanes);
  } else {
    sys_cfg.set("scheduler.max-threads", threads);
    sys_cfg.set("scheduler.policy", cfg.actors.scheduler_policy == "stealing"
                                        ? caf::atom("stealing")
                                        : caf::atom("sharing"));
  }
  sys_cfg.set("logger.verbosity", caf::atom("quiet"));
  sys_cfg.load<caf::io::middleman>();  // the cluster endpoint (BASP)
  caf::actor_system sys{sys_cfg};
  // The outbound client stops (its requests in flight answered http_shutdown, as
  // messages to their actors) before the actor system goes, whichever way run() returns.
  std::unique_ptr<http::outbound_client> outbound_client = std::move(*outbound);
  struct stop_outbound {
    std::unique_ptr<http::outbound_client>& c;
    ~stop_outbound() { c.reset(); }
  } stop_outbound_first{outbound_client};

  store::redis_client* r = redis->get();
  store::postgres_client* p = pg->get();
  std::atomic<cluster::cluster_node*> cluster_ptr{nullptr};  // set once the node exists
  std::vector<actors::readiness_component> components = {
      {"cluster",
       [&cluster_ptr](auto done) {
         auto* n = cluster_ptr.load();
         if (n != nullptr && n->up()) return done(result<void>{});
         done(make_error("cluster_joining", "the node has not joined its region yet"));
       }},
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
  auto readiness =
      actors::spawn_readiness(sys, std::move(components), std::chrono::milliseconds(1000));

  // Programs come from the Postgres catalog; the registry follows activations.
  actors::program_source source;
  source.load = [p](const std::string& tenant, const std::string& bot, uint32_t version,
                    auto done) {
    auto cb = [done = std::move(done)](result<store::bot_program> r) {
      if (!r) {
        auto code = r.err().code;
        bool missing = code == "bot_not_found" || code == "version_not_found" ||
                       code == "no_active_version" || code == "tenant_not_found" ||
                       code == "invalid_argument";
        return done(make_error(missing ? "not_found" : code, r.err().message));
      }
      done(std::make_pair(static_cast<uint32_t>(r->version), std::move(r->program)));
    };
    if (version == 0)
      store::run_job(*p, store::get_active(tenant, bot), std::move(cb));
    else
      store::run_job(*p, store::get_version(tenant, bot, static_cast<int>(version)), std::move(cb));
  };
  source.changes = [p](int64_t since, auto done) {
    store::run_job(*p, store::active_changes_since(since), std::move(done));
  };
  actors::bot_registry registry(std::move(source));
  // The registry follows the change log once the schema that holds it exists.
  std::thread migrator;
  // The canary monitor (below) flushes and judges once the schema is there.
  std::atomic<bool> schema_ready{!cfg.postgres.migrate};
  if (cfg.postgres.migrate)
    migrator = std::thread([&] {
      if (migrate_until_done(**pg, stopping)) {
        schema_ready = true;
        registry.start();
      }
    });
  else
    registry.start();
  actors::transcript_writer transcripts(actors::catalog_sink(*p), {}, registry_ptr.get());
  actors::action_runner actions(*outbound_client, registry_ptr.get());
  actors::runtime_options ropts_rt;
  ropts_rt.stripes = static_cast<std::size_t>(cfg.runtime.stripes);
  ropts_rt.passivate_after = std::chrono::milliseconds(cfg.runtime.passivate_after_ms);
  ropts_rt.max_attempts = cfg.runtime.max_attempts;
  ropts_rt.recent_turns = static_cast<std::size_t>(cfg.runtime.recent_turns);
  ropts_rt.max_queued = static_cast<std::size_t>(cfg.runtime.max_queued);
  ropts_rt.debug_faults = cfg.runtime.debug_faults;
  // The shards this node holds, read by every commit's fence and by the router.
  cluster::shard_table shards(static_cast<uint32_t>(cfg.cluster.shards));
  cluster::lease_keys lease_keys;
  lease_keys.region = cfg.node.region;
  cluster::transcript_backlog backlog;
  backlog.max_per_shard = static_cast<std::size_t>(cfg.transcripts.backlog_max_per_shard);
  backlog.refuse = cfg.transcripts.backlog_full == "refuse";
  auto& dropped = metrics::counter(*registry_ptr, "parley_transcript_lines_dropped_total",
                                   "Transcript lines dropped at transcripts.backlog_max_per_shard "
                                   "(transcripts.backlog_full: drop_oldest).");
  backlog.on_dropped = [&dropped] { dropped.Increment(); };
  cluster::fenced_snapshot_store snapshots(*r, redis_on_lanes ? lanes.size() : 0, "parley", shards,
                                           lease_keys, cfg.node.name, std::move(backlog));
  actors::runtime::deps rdeps;
  rdeps.system = &sys;
  rdeps.snapshots = &snapshots;
  rdeps.redis = r;
  rdeps.redis_lanes = redis_on_lanes ? lanes.size() : 0;
  rdeps.registry = &registry;
  rdeps.transcripts = &transcripts;
  rdeps.actions = &actions;
  // Each conversation resolves its bot's {{secret.NAME}} from its own tenant's secrets.
  auto secret_values = std::make_shared<actors::secret_cache>(
      [p, keys = *keys](const std::string& tenant, auto done) {
        store::run_job(*p, store::tenant_secrets(keys, tenant), std::move(done));
      },
      registry_ptr.get());
  rdeps.secrets = secret_values.get();
  // Channel credentials are tenant secrets too, from the same cache.
  const actors::secret_lookup tenant_secret = secret_values->lookup();
  // The gateways check each message's attachments against its tenant's limits.
  // A named loader: GCC 12 crashed on a generic lambda handed to a cache here.
  auto tenant_limits = std::make_shared<actors::limits_cache>(
      std::bind(&actors::load_tenant_limits, std::ref(*p), std::placeholders::_1,
                std::placeholders::_2),
      registry_ptr.get());
  const actors::limits_lookup limits_of = tenant_limits->lookup();
  rdeps.metrics = registry_ptr.get();
  rdeps.quarantine = [p](store::quarantined_message m) {
    store::run_job(*p, store::insert_quarantine(std::move(m)), [](result<int64_t> r) {
      if (!r) log::error("quarantine_write_failed", {{"error", r.err().message}});
    });
  };
  actors::runtime rt(rdeps, ropts_rt);

  // The region's change feed (docs/changes.md): a key revoked or a version activated
  // through any node's admin API reaches this node's caches within a second.
  auto auth = std::make_shared<actors::auth_cache>();
  actors::change_listener changes(*r, cfg.node.region, auth, registry, *registry_ptr, secret_values,
                                  tenant_limits);
  auto publish_change = admin::change_publisher(*r, cfg.node.region);
  // Canaries (docs/operations.md): this node's per-version counts go to Postgres, and
  // a canary past its margins is rolled back and announced on the feed.
  actors::canary_monitor_options canary_opts;
  canary_opts.actor = "node:" + cfg.node.name;
  canary_opts.region = cfg.node.region;
  actors::canary_monitor canaries(
      *p, registry, std::bind(&actors::runtime::bot_version_totals, &rt),
      std::bind(&flag_set, &schema_ready),
      std::bind(&announce_canary_rollback, publish_change, std::placeholders::_1), *registry_ptr,
      canary_opts);
  canaries.start();

  cluster::cluster_options copts;
  copts.node = cfg.node.name;
  copts.region = cfg.node.region;
  copts.listen_address = cfg.http.address;
  copts.port = cfg.cluster.port;
  copts.advertise = cfg.cluster.advertise.empty() ? cfg.http.address : cfg.cluster.advertise;
  copts.version = PARLEY_VERSION;
  copts.shards = static_cast<uint32_t>(cfg.cluster.shards);
  copts.heartbeat = std::chrono::milliseconds(cfg.cluster.heartbeat_ms);
  copts.lease = std::chrono::milliseconds(cfg.cluster.lease_ms);
  copts.handoff_batch = static_cast<std::size_t>(cfg.cluster.handoff_batch);
  copts.handoff_timeout = std::chrono::milliseconds(cfg.cluster.handoff_timeout_ms);
  copts.buffer_max = static_cast<std::size_t>(cfg.cluster.buffer_max);
  copts.buffer_timeout = std::chrono::milliseconds(cfg.cluster.buffer_timeout_ms);
  copts.forward_timeout = std::chrono::milliseconds(cfg.cluster.forward_timeout_ms);
  // A drain asked through the admin API ends like SIGTERM: the main thread drains and exits 0.
  copts.on_drain_requested = [] { ::kill(::getpid(), SIGTERM); };
  // Home regions (cluster/region): the channel routes, without the filter that sends a
  // peer region's tenants there, are what a request forwarded from a peer region runs.
  http::router channel_routes;
  std::unique_ptr<cluster::region_router> regions;
  auto peer_regions = settings::parse_peer_regions(cfg.cluster.peer_regions, cfg.node.region);
  const bool has_peer_regions = peer_regions && !peer_regions->empty();
  // Every node serves the requests of peer regions; only a node with peer regions
  // configured sends its own there.
  {
    cluster::region_router::deps gdeps;
    gdeps.system = &sys;
    gdeps.tenant_here = [p](const std::string& tenant, std::function<void(result<bool>)> done) {
      store::run_job(*p, store::get_tenant(tenant),
                     [done = std::move(done)](result<std::optional<store::tenant_record>> t) {
                       if (!t) return done(t.err());
                       done(t->has_value());
                     });
    };
    gdeps.serve = [&channel_routes](http::request&& req, http::responder reply) {
      auto m = channel_routes.find(req.method, req.path);
      if (m.h == nullptr)
        return reply(http::response::error(404, "not_found",
                                           "no channel route " + req.method + " " + req.path));
      (*m.h)(std::move(req), std::move(reply));
    };
    gdeps.metrics = registry_ptr.get();
    cluster::region_options gopts;
    gopts.region = cfg.node.region;
    if (peer_regions) gopts.peers = std::move(*peer_regions);
    gopts.timeout = std::chrono::milliseconds(cfg.cluster.forward_timeout_ms);
    regions = std::make_unique<cluster::region_router>(std::move(gdeps), std::move(gopts));
    copts.region_requests = [&regions](std::string bytes, std::function<void(std::string)> done) {
      regions->serve(std::move(bytes), std::move(done));
    };
  }
  // Replies to SMS and Messenger leave from the shards' outbox streams.
  // Deliveries go through the node's one outbound client, under its egress policy.
  auto delivery_http = [&outbound_client](http::client_request req,
                                          std::function<void(result<http::client_response>)> done) {
    http::outbound_request o;
    o.method = std::move(req.method);
    o.url = std::move(req.url);
    o.headers = std::move(req.headers);
    o.body = std::move(req.body);
    o.timeout = req.timeout;
    outbound_client->send(std::move(o), std::move(done));
  };
  actors::sms_opt_outs opt_outs(*r, ropts_rt.key_prefix, cfg.node.region);

  actors::channel_delivery_options dopts;
  dopts.twilio_api_base = cfg.channels.twilio_api_base;
  dopts.messenger_api_base = cfg.channels.messenger_api_base;
  dopts.send = delivery_http;
  dopts.secret = tenant_secret;
  dopts.opt_outs = &opt_outs;
  // Where providers call this node: as configured, else its own address and port
  // (known once the server has bound it).
  std::atomic<uint16_t> http_port{0};
  auto public_url = [&cfg, &http_port] {
    if (!cfg.channels.public_url.empty()) return cfg.channels.public_url;
    return "http://" + cfg.http.address + ":" + std::to_string(http_port.load());
  };
  dopts.sms_status_callback = [public_url](const runtime::v1::OutboxEntry& e) {
    return public_url() + "/channels/twilio/" + e.tenant() + "/" + e.bot() + "/status";
  };
  // A turn that handed its conversation to an agent: recorded for the agent API.
  dopts.handoff = [p](const runtime::v1::OutboxEntry& e,
                      std::function<void(actors::delivery_result)> done) {
    store::handoff_record h;
    h.tenant = e.tenant();
    h.session_id = e.session_id();
    h.sequence = static_cast<std::int64_t>(e.sequence());
    h.bot = e.bot();
    h.channel = e.channel();
    h.address = e.address();
    h.queue = e.handoff().queue();
    h.targets.assign(e.handoff().targets().begin(), e.handoff().targets().end());
    store::run_job(*p, store::open_handoff(std::move(h)), [done = std::move(done)](result<bool> r) {
      if (!r) return done({actors::delivery_result::kind::retry, {}, r.err().message});
      done(actors::delivery_result::ok());
    });
  };
  // Direct Line's replies from the outbox go to its gateway, made below (it needs the
  // cluster node); until then they wait and are retried.
  std::shared_ptr<void> directline;
  dopts.directline = [&directline](const runtime::v1::OutboxEntry& e, int index,
                                   const std::string& key,
                                   std::function<void(actors::delivery_result)> done) {
    auto dl = std::atomic_load(&directline);
    if (!dl)
      return done({actors::delivery_result::kind::retry, {}, "Direct Line is not serving yet"});
    actors::directline_deliver(dl, e, index, key, std::move(done));
  };
  cluster::cluster_node::deps cdeps;
  cdeps.deliver = actors::make_channel_delivery(std::move(dopts));
  cdeps.outbox.retry_max = std::chrono::milliseconds(cfg.channels.retry_max_ms);
  cdeps.outbox.give_up_after = std::chrono::seconds(cfg.channels.give_up_after_s);
  cdeps.timers.period = std::chrono::milliseconds(cfg.timers.poll_ms);
  cdeps.timers.batch = static_cast<std::size_t>(cfg.timers.batch);
  cdeps.system = &sys;
  cdeps.redis = r;
  cdeps.rt = &rt;
  cdeps.registry = &registry;
  cdeps.lanes = on_lanes ? &lanes : nullptr;
  cdeps.metrics = registry_ptr.get();
  cdeps.table = &shards;
  cdeps.pg = p;
  cluster::cluster_node node(cdeps, std::move(copts));
  cluster_ptr = &node;
  snapshots.on_outbox([&node](uint32_t shard) { node.outbox_added(shard); });

  http::router routes;
  actors::botapi_gateway_options gw;
  gw.rt = &node;  // any node takes any turn; the router sends it to its shard's owner
  // Is `key` an API key of `tenant`? The Bot API (behind its cache) and the agent API ask.
  auto verify_key = [p](const std::string& tenant, const std::string& key,
                        std::function<void(result<bool>)> done) {
    store::run_job(*p, store::verify_api_key(tenant, key), std::move(done));
  };
  gw.verify_key = verify_key;
  gw.ready = [r] { return r->connected(); };
  actors::session_keys session_keys(
      *r, {ropts_rt.key_prefix, std::chrono::seconds(300), rdeps.redis_lanes});
  gw.sessions = &session_keys;
  gw.auth = auth;
  auto gateway = actors::add_botapi_routes(channel_routes, std::move(gw));
  actors::twilio_gateway_options tw;
  tw.rt = &node;
  tw.sessions = &session_keys;
  tw.secret = tenant_secret;
  tw.limits = limits_of;
  tw.public_url = public_url;
  tw.opt_outs = &opt_outs;
  tw.receipts = p;  // status callbacks: kept in message_receipts
  tw.metrics = registry_ptr.get();
  auto sms_gateway = actors::add_twilio_routes(channel_routes, std::move(tw));
  actors::messenger_gateway_options mg;
  mg.rt = &node;
  mg.sessions = &session_keys;
  mg.secret = tenant_secret;
  mg.limits = limits_of;
  mg.send = delivery_http;
  mg.api_base = cfg.channels.messenger_api_base;
  mg.receipts = p;
  mg.metrics = registry_ptr.get();
  auto messenger_gateway = actors::add_messenger_routes(channel_routes, std::move(mg));
  actors::agent_gateway_options ag;
  ag.rt = &node;
  ag.pg = p;
  ag.verify_key = verify_key;
  auto agent_gateway = actors::add_agent_routes(channel_routes, std::move(ag));
  http::router channel_front = channel_routes;
  if (has_peer_regions) {
    // The Bot API names its tenant in X-Org-Id; a request without one is served here
    // (the gateway answers its 400 or 401).
    // An org id the Bot API refuses is served here, where it answers the 400.
    auto tenant_of = [](const http::request& req) { return channels::botapi::org_of(req); };
    auto unavailable = [](const std::string& message, const std::string& path,
                          const std::string& request_id) {
      return channels::botapi::render_error(503, message, path, request_id, common::now_unix_ms(),
                                            1);
    };
    channel_front.wrap([&regions, tenant_of, unavailable](http::handler h) {
      return regions->front(std::move(h), tenant_of, unavailable);
    });
  }
  routes.add_all(channel_front);

  // Direct Line (web chat). Its tokens are signed with the region's key; each bot's
  // secret is the tenant secret directline.<bot>.
  actors::directline_gateway_options dlo;
  dlo.rt = &node;
  dlo.redis = r;
  dlo.redis_lanes = rdeps.redis_lanes;
  dlo.key_prefix = ropts_rt.key_prefix;
  dlo.node = cfg.node.name;
  if (const char* k = std::getenv("PARLEY_DIRECTLINE_TOKEN_KEY")) dlo.token_key = k;
  dlo.tenant_secret = tenant_secret;
  dlo.limits = limits_of;
  dlo.metrics = registry_ptr.get();
  std::atomic_store(&directline, actors::add_directline_routes(routes, std::move(dlo)));
  auto directline_pushes = actors::subscribe_directline_pushes(directline);
  actors::add_chat_routes(routes, directline);  // GET /chat/{tenant}/{bot}: the web chat page

  admin::admin_options aopts{*p, cfg.admin.token, {}, {}, cfg.runtime.debug_faults, {}, {}};
  aopts.changed = publish_change;
  aopts.region = cfg.node.region;
  aopts.secrets = *keys;
  aopts.min_timer = std::chrono::milliseconds(cfg.timers.min_after_ms);
  if (on_lanes)
    aopts.stall_lane = [&lanes](std::chrono::milliseconds ms) {
      // A deliberate fault (runtime.debug_faults only): a lane blocked as by a runaway
      // turn, so tests can show that such a node loses its shards.
      int here = io::lanes::current();
      int lane =
          static_cast<int>((here < 0 ? 0 : static_cast<std::size_t>(here) + 1) % lanes.size());
      boost::asio::post(lanes.at(static_cast<std::size_t>(lane)),
                        [ms] { std::this_thread::sleep_for(ms); });
      return lane;
    };
  aopts.live_conversations = [&rt](std::string tenant, std::function<void(nlohmann::json)> done) {
    rt.live(tenant, [done = std::move(done)](std::vector<actors::runtime::live_conversation> live) {
      auto out = nlohmann::json::array();
      for (const auto& c : live)
        out.push_back({{"session_id", c.session_id},
                       {"bot", c.bot},
                       {"version", c.bot_version},
                       {"idle_ms", c.idle_ms}});
      done(std::move(out));
    });
  };
  aopts.kill_conversation = [&rt](std::string tenant, std::string session,
                                  std::function<void(bool)> done) {
    rt.kill(tenant, session, std::move(done));
  };
  aopts.cluster_status = [&node, &regions](auto done) {
    node.status([&regions, done = std::move(done)](result<nlohmann::json> r) {
      if (r) {
        auto peers = nlohmann::json::array();
        for (const auto& [name, at] : regions->peers())
          peers.push_back(
              {{"region", name},
               {"connected", !at.empty()},
               {"endpoint", at.empty() ? nlohmann::json(nullptr) : nlohmann::json(at)}});
        (*r)["peer_regions"] = std::move(peers);
      }
      done(std::move(r));
    });
  };
  aopts.cluster_drain = [&node](std::string id, auto done) {
    node.request_drain(id, std::move(done));
  };
  admin::add_admin_routes(routes, std::move(aopts));
  if (cfg.admin.token.empty())
    log::warn("admin_api_disabled", {{"hint", "set PARLEY_ADMIN_TOKEN to enable /admin/v1"}});
  if (cfg.runtime.debug_faults)
    log::warn("debug_faults_enabled",
              {{"hint", "kill endpoint and poison messages are on: never in production"}});
  routes.add("GET", "/healthz", [](http::request&&, http::responder reply) {
    reply(http::response::json(200, "{\"status\":\"alive\"}"));
  });
  routes.add("GET", "/readyz", [readiness](http::request&&, http::responder reply) {
    actors::request_readiness(readiness, std::move(reply));
  });
  routes.add("GET", "/metrics", [registry_ptr](http::request&&, http::responder reply) {
    http::response res;
    res.content_type = metrics::content_type;
    res.body = metrics::render(*registry_ptr);
    reply(std::move(res));
  });

  http::server_options hopts;
  hopts.address = cfg.http.address;
  hopts.port = cfg.http.port;
  hopts.threads = cfg.http.threads;
  if (on_lanes) hopts.lanes = &lanes;
  hopts.max_body_bytes = static_cast<std::size_t>(cfg.http.max_body_bytes);
  hopts.idle_timeout = std::chrono::milliseconds(cfg.http.idle_timeout_ms);
  hopts.header_timeout = std::chrono::milliseconds(cfg.http.header_timeout_ms);
  hopts.max_connections = static_cast<std::size_t>(cfg.http.max_connections);
  hopts.max_connections_per_address =
      static_cast<std::size_t>(cfg.http.max_connections_per_address);
  http::server server(hopts, std::move(routes), registry_ptr);
  auto cluster_port = node.start();
  if (!cluster_port) {
    log::error("cluster_start_failed", {{"error", cluster_port.err().message}});
    std::fprintf(stderr, "parleyd: %s\n", cluster_port.err().message.c_str());
    stopping = true;
    if (migrator.joinable()) migrator.join();
    regions->stop();
    rt.stop();
    caf::anon_send_exit(readiness, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    return 1;
  }
  if (auto started = server.start(); !started) {
    log::error("http_start_failed", {{"error", started.err().message}});
    std::fprintf(stderr, "parleyd: %s\n", started.err().message.c_str());
    stopping = true;
    if (migrator.joinable()) migrator.join();
    regions->stop();
    node.stop();
    rt.stop();
    caf::anon_send_exit(readiness, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    return 1;
  }
  http_port = server.port();
  node.set_http_url("http://" + cfg.http.address + ":" + std::to_string(server.port()));
  outbound_client->egress().add_own_port(server.port());
  if (*cluster_port != 0) outbound_client->egress().add_own_port(*cluster_port);
  regions->start();
  log::info("http_listening",
            {{"address", cfg.http.address},
             {"port", std::to_string(server.port())},
             {"url", "http://" + cfg.http.address + ":" + std::to_string(server.port())},
             {"node", cfg.node.name},
             {"region", cfg.node.region}});

  int sig = 0;
  sigwait(&signals, &sig);
  log::info("shutdown_started", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                 {"in_flight", std::to_string(server.in_flight())}});
  // Drain: hand every shard to the other up nodes (their turns follow), then stop.
  // A lone node has nobody to hand to: its leases are released when it leaves.
  node.drain();
  bool drained = node.wait_drained(std::chrono::milliseconds(cfg.cluster.handoff_timeout_ms) +
                                   std::chrono::milliseconds(cfg.http.shutdown_grace_ms));
  log::info("cluster_drained", {{"node", cfg.node.name}, {"complete", drained ? "true" : "false"}});
  stopping = true;
  server.stop(std::chrono::milliseconds(cfg.http.shutdown_grace_ms));
  if (migrator.joinable()) migrator.join();
  regions->stop();
  node.stop();
  cluster_ptr = nullptr;
  rt.stop();
  canaries.stop();  // after the last turns: they are flushed too
  caf::anon_send_exit(readiness, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
  registry.stop();
  transcripts.flush(std::chrono::milliseconds(2000));
  transcripts.stop();
  log::info("shutdown_complete");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parleyd: a Parley node (clustered runtime for chatbot conversations)"};
  std::string config_path = "config/local.yaml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "node configuration file (YAML)")
      ->capture_default_str();
  app.add_flag("--check-config", check_only,
               "validate the configuration and exit (0 valid, 2 invalid)");
  app.footer(parley::settings::describe() +
             "\nEnvironment: PORT, DATABASE_URL and REDIS_URL override http.port, postgres.url and "
             "redis.url.");
  CLI11_PARSE(app, argc, argv);

  auto cfg = parley::settings::load(config_path, parley::settings::process_environment());
  if (!cfg) {
    std::fprintf(stderr, "parleyd: %s\n", cfg.err().message.c_str());
    return 2;
  }
  if (auto egress = parley::http::egress_policy::make(cfg->actions.egress_allow); !egress) {
    std::fprintf(stderr, "parleyd: %s: %s\n", config_path.c_str(), egress.err().message.c_str());
    return 2;
  }
  if (check_only) {
    std::printf("parleyd: %s is valid\n", config_path.c_str());
    return 0;
  }
  return run(*cfg);
}
