#pragma once
/// Node configuration: one YAML file, every key overridable from the environment.
///
/// Precedence, lowest first: built-in defaults, the YAML file, `PARLEY_<SECTION>_<KEY>`
/// variables, then the twelve-factor names platforms set (`PORT`, `DATABASE_URL`,
/// `REDIS_URL`). Loading is pure: it reads the file and the environment map it is
/// given and never exits; parleyd turns an error into exit code 2.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/common/result.hpp"

namespace parley::settings {

struct node_settings {
  /// The node's id, unique within the region and stable across restarts (its leases and
  /// member record carry it). Empty: "<hostname>-<http.port>".
  std::string name = "local-1";
  std::string region = "local";
};

/// The region's cluster (cluster/): membership in the region's Redis, shard leases,
/// routing to owners over CAF's middleman.
struct cluster_settings {
  uint16_t port = 0;           ///< CAF middleman (BASP) port; 0 picks a free one
  std::string advertise;       ///< address peers reach this node at; empty: http.address
  std::string seeds;           ///< comma-separated host:port of peers' cluster ports (optional)
  int shards = 1024;           ///< shards of the region; the same on every node
  int64_t heartbeat_ms = 250;  ///< member record refresh and lease renewal period
  int64_t lease_ms = 3000;     ///< lease and member record TTL
  int handoff_batch = 1024;    ///< shards handed over per heartbeat at most
  int64_t handoff_timeout_ms = 5000;   ///< in-flight turns of a moving shard get this long
  int buffer_max = 10000;              ///< messages waiting for moving shards, node-wide
  int64_t buffer_timeout_ms = 5000;    ///< a waiting message is answered 503 after this
  int64_t forward_timeout_ms = 15000;  ///< a turn forwarded to the owner answers within this
  /// The other regions' cluster endpoints, where requests for their tenants are
  /// forwarded (cluster/region): "eu-west=10.0.1.11:7946,10.0.1.12:7946;us-east=...".
  /// Empty: a single region (nothing is forwarded).
  std::string peer_regions;
};

/// A peer region's name and the host:port of some of its nodes' cluster endpoints.
struct peer_region {
  std::string name;
  std::vector<std::pair<std::string, uint16_t>> endpoints;
};
/// Parses cluster.peer_regions: regions separated by ';', each `name=host:port[,host:port]`
/// (spaces around tokens ignored). Fails (`bad_config`, naming the part) on an empty
/// name or endpoint list, a port outside 1-65535, a region named twice, or `own`
/// (this node's region) among them.
result<std::vector<peer_region>> parse_peer_regions(const std::string& spec,
                                                    const std::string& own);

/// Transcripts of a cluster node: each turn's transcript line is appended to its
/// shard's Redis stream by the fenced commit itself, and the shard's owner copies the
/// stream into Postgres (cluster/README.md).
struct transcript_settings {
  /// Lines waiting in one shard's stream at most (a Postgres outage): past it, see
  /// backlog_full.
  int64_t backlog_max_per_shard = 20000;
  /// At the bound: "refuse" new turns of that shard (503, nothing lost) or
  /// "drop_oldest" waiting lines (counted in parley_transcript_lines_dropped_total).
  std::string backlog_full = "refuse";
};

/// Timers of questions and menus (nudge_after, close_after; docs/bot-format.md): the
/// owner of each shard polls its timer set (cluster/node/timer_poller.hpp).
struct timer_settings {
  int64_t poll_ms = 250;  ///< between polls of the held shards' timer sets
  int batch = 200;        ///< timers read per shard per poll at most
  /// The shortest nudge_after / close_after a deployed bot may set (tests lower it).
  int64_t min_after_ms = 10000;
};

struct http_settings {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  ///< 0 picks a free port (parleyd prints it)
  int threads = 2;       ///< Asio threads serving HTTP
  int64_t max_body_bytes = 1 << 20;
  int64_t idle_timeout_ms = 60000;    ///< a keep-alive connection idle this long is closed
  int64_t shutdown_grace_ms = 10000;  ///< how long SIGTERM waits for requests in flight
  /// A new connection's first complete request head must arrive within this, or it closes.
  int64_t header_timeout_ms = 10000;
  /// Open HTTP connections at most (past it new ones are closed at once); 0 derives it from
  /// RLIMIT_NOFILE, leaving a tenth (at least 256) for Redis, Postgres and actions.
  int64_t max_connections = 0;
  int64_t max_connections_per_address = 256;  ///< per client IP address; 0: no cap
};

struct redis_settings {
  std::string url;  ///< required: redis://host:port[/db] or unix:///path
  int64_t command_timeout_ms = 2000;
  /// One more connection per lane (actors.scheduler_policy lanes): a conversation's
  /// commands go on the connection of the lane it runs on, so a turn's commit is sent
  /// and answered on the thread that has its HTTP connection, with no hand-off to the
  /// client's I/O thread and back (bench/README.md). Off: every command goes through
  /// the I/O thread's one connection.
  bool lane_connections = true;
};

struct postgres_settings {
  std::string url;  ///< required: a libpq connection URI
  int pool_size = 4;
  bool migrate = true;  ///< apply migrations at start-up
};

struct log_settings {
  std::string level = "info";   ///< trace, debug, info, warn, error
  std::string format = "json";  ///< json or logfmt
};

struct actor_settings {
  int scheduler_threads = 0;               ///< 0 = one per core
  std::string scheduler_policy = "lanes";  ///< CAF scheduler: lanes, stealing or sharing
};

struct runtime_settings {
  int stripes = 32;                     ///< local lock groups (runtime.shards: deprecated alias)
  int64_t passivate_after_ms = 600000;  ///< idle conversation actors stop after this
  int max_attempts = 3;                 ///< deaths of one message before it is quarantined
  int recent_turns = 8;                 ///< answered messages kept per conversation for replay
  int max_queued = 32;                  ///< waiting messages per conversation before 429
  bool debug_faults = false;            ///< debug only: kill endpoint and poison messages
};

/// The node's outbound HTTP client (src/http/outbound.hpp), which bot actions use (and
/// channel deliveries will): its egress policy, TLS trust and bounds.
struct actions_settings {
  /// Destinations opened despite the egress policy (src/http/egress.hpp): networks
  /// (10.1.0.0/16), addresses (10.1.2.3), address:port (127.0.0.1:8081, [::1]:8081) and
  /// host names with or without a port. YAML: a list; environment: comma-separated.
  std::vector<std::string> egress_allow;
  /// PEM file of the certificate authorities to trust instead of the system's store.
  std::string ca_file;
  int64_t max_connections_per_host = 16;  ///< past it requests wait for a connection
  int64_t max_response_bytes = 1 << 20;   ///< a larger response body fails the call
  int threads = 1;                        ///< the client's I/O threads
};

struct admin_settings {
  std::string token;  ///< admin API bearer token; set PARLEY_ADMIN_TOKEN
};

/// The channels that call Parley (SMS, Messenger) and that Parley calls back.
struct channel_settings {
  /// scheme://host[:port] the providers are given for their webhooks: signatures cover
  /// the URL as the provider calls it. Empty: this node's http://address:port.
  std::string public_url;
  std::string twilio_api_base = "https://api.twilio.com";
  std::string messenger_api_base = "https://graph.facebook.com/v19.0";
  /// Replies the provider could not take now wait at most this between attempts...
  int64_t retry_max_ms = 10000;
  /// ...and become dead letters after failing this long.
  int64_t give_up_after_s = 3600;
};

struct settings {
  node_settings node;
  cluster_settings cluster;
  transcript_settings transcripts;
  timer_settings timers;
  http_settings http;
  redis_settings redis;
  postgres_settings postgres;
  log_settings log;
  actor_settings actors;
  runtime_settings runtime;
  actions_settings actions;
  admin_settings admin;
  channel_settings channels;
  /// Deprecated keys that were read, one sentence each, for the caller to log.
  std::vector<std::string> warnings;
};

/// The environment as a map, so tests can pass their own.
using environment = std::map<std::string, std::string>;

/// Reads `environ` into a map.
environment process_environment();

/// Parses YAML text (`origin` names it in errors, e.g. the file path) and applies
/// `env` on top. Errors name the key and the problem in one line, e.g.
/// "config/local.yaml: http.port: expected an integer from 0 to 65535, got 'abc'".
result<settings> parse(const std::string& yaml_text, const std::string& origin,
                       const environment& env);

/// Reads the file at `path` and calls parse(). A missing file is an error.
result<settings> load(const std::string& path, const environment& env);

/// One line per key: `section.key  type  default  env  description`, for --help.
std::string describe();

}  // namespace parley::settings
