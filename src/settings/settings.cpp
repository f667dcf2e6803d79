#include "src/settings/settings.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>

extern char** environ;

namespace parley::settings {
namespace {

/// How one key's text becomes a value. Returns an empty string on success, else
/// what was expected.
using setter = std::function<std::string(settings&, const std::string&)>;

struct key_spec {
  const char* section;
  const char* key;
  const char* type;  // for --help
  const char* description;
  bool required;
  setter set;
  std::function<std::string(const settings&)> get;  // current value, for --help and checks
};

std::string set_int(int64_t& out, const std::string& text, int64_t lo, int64_t hi) {
  std::ostringstream want;
  want << "expected an integer from " << lo << " to " << hi;
  if (text.empty()) return want.str();
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || v < lo || v > hi) return want.str();
  out = v;
  return {};
}

std::string set_bool(bool& out, const std::string& text) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") {
    out = true;
    return {};
  }
  if (text == "false" || text == "no" || text == "off" || text == "0") {
    out = false;
    return {};
  }
  return "expected true or false";
}

std::string set_enum(std::string& out, const std::string& text,
                     std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (text == a) {
      out = text;
      return {};
    }
  }
  std::string want = "expected one of";
  for (const char* a : allowed) want += std::string(" ") + a;
  return want;
}

#define PARLEY_STR(sec, k, desc, req)                                                 \
  key_spec {                                                                          \
#sec, #k, "string", desc, req,                                                      \
        [](settings& s, const std::string& t) {                                         \
          s.sec.k = t;                                                                  \
          return std::string{};                                                         \
        },                                                                              \
        [](const settings& s) { return s.sec.k; } \
  }
#define PARLEY_INT(sec, k, lo, hi, desc)                                              \
  key_spec {                                                                          \
#sec, #k, "integer", desc, false,                                                   \
        [](settings& s, const std::string& t) {                                         \
          int64_t v = 0;                                                                \
          auto e = set_int(v, t, lo, hi);                                               \
          if (e.empty()) s.sec.k = static_cast<decltype(s.sec.k)>(v);                   \
          return e;                                                                     \
        },                                                                              \
        [](const settings& s) { return std::to_string(s.sec.k); } \
  }
#define PARLEY_BOOL(sec, k, desc)                                                     \
  key_spec {                                                                          \
#sec, #k, "boolean", desc, false,                                                   \
        [](settings& s, const std::string& t) { return set_bool(s.sec.k, t); },         \
        [](const settings& s) { return std::string(s.sec.k ? "true" : "false"); } \
  }
#define PARLEY_ENUM(sec, k, desc, ...)                                                           \
  key_spec {                                                                                     \
#sec, #k, "string", desc, false,                                                             \
        [](settings & s,                                                                         \
           const std::string&                                                                    \
               t) { return set_enum(s.sec.k, t, {__VA_ARGS__}); }, [](const settings&            \
                                                                          s) { return s.sec.k; } \
  }

/// A list: comma-separated text (the environment), or a YAML sequence joined with commas.
#define PARLEY_LIST(sec, k, desc)                                                     \
  key_spec {                                                                          \
#sec, #k, "list", desc, false,                                                      \
        [](settings& s, const std::string& t) {                                         \
          s.sec.k = split_list(t);                                                      \
          return std::string{};                                                         \
        },                                                                              \
        [](const settings& s) { return join_list(s.sec.k); } \
  }

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    auto b = cur.find_first_not_of(" \t");
    auto e = cur.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
    cur.clear();
  };
  for (char c : text) {
    if (c == ',')
      flush();
    else
      cur += c;
  }
  flush();
  return out;
}

std::string join_list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& e : v) out += (out.empty() ? "" : ",") + e;
  return out;
}

const std::vector<key_spec>& schema() {
  static const std::vector<key_spec> keys = {
      PARLEY_STR(node, name,
                 "node id, unique within the region, stable across restarts; empty = "
                 "<hostname>-<http.port>",
                 false),
      PARLEY_STR(node, region, "region this node belongs to", false),
      PARLEY_INT(cluster, port, 0, 65535, "CAF middleman port for peers; 0 picks a free one"),
      PARLEY_STR(cluster, advertise, "address peers reach this node at; empty = http.address",
                 false),
      PARLEY_STR(cluster, seeds,
                 "comma-separated host:port of peers' cluster ports; not used yet: members "
                 "find each other in the region's Redis",
                 false),
      PARLEY_INT(cluster, shards, 1, 65536, "shards of the region; the same on every node"),
      PARLEY_INT(cluster, heartbeat_ms, 20, 60000,
                 "member record refresh and lease renewal period"),
      PARLEY_INT(cluster, lease_ms, 100, 600000,
                 "shard lease and member record TTL: a silent node loses its shards after this"),
      PARLEY_INT(cluster, handoff_batch, 1, 65536, "shards handed over per heartbeat at most"),
      PARLEY_INT(cluster, handoff_timeout_ms, 0, 600000,
                 "how long a moving shard's turns in flight may take before its lease is released"),
      PARLEY_INT(cluster, buffer_max, 0, 10000000,
                 "messages waiting for moving shards on this node; past it the answer is 503"),
      PARLEY_INT(cluster, buffer_timeout_ms, 1, 600000,
                 "a message waiting for its moving shard is answered 503 after this"),
      PARLEY_INT(cluster, forward_timeout_ms, 100, 600000,
                 "a turn forwarded to its owner node answers within this (else 503)"),
      PARLEY_STR(cluster, peer_regions,
                 "other regions' cluster endpoints, for their tenants' requests: "
                 "name=host:port[,host:port][;name=...]; empty = no peer regions",
                 false),
      PARLEY_INT(transcripts, backlog_max_per_shard, 1, 100000000,
                 "transcript lines waiting in Redis per shard (Postgres down) before "
                 "transcripts.backlog_full applies"),
      PARLEY_ENUM(transcripts, backlog_full,
                  "at the backlog bound: refuse the shard's new turns (503) or drop the oldest "
                  "waiting lines (counted)",
                  "refuse", "drop_oldest"),
      PARLEY_INT(timers, poll_ms, 10, 60000,
                 "how often the owner of each shard looks for its conversations' timers due"),
      PARLEY_INT(timers, batch, 1, 100000, "timers read per shard per poll at most"),
      PARLEY_INT(timers, min_after_ms, 100, 10000,
                 "the shortest nudge_after / close_after a deployed bot may set (tests lower "
                 "it)"),
      PARLEY_STR(channels, public_url,
                 "scheme://host[:port] SMS and Messenger webhooks are configured with (their "
                 "signatures cover it); empty = http://<http.address>:<http.port>",
                 false),
      PARLEY_STR(channels, twilio_api_base, "Twilio's REST API base URL", false),
      PARLEY_STR(channels, messenger_api_base, "Messenger's Graph API base URL (with version)",
                 false),
      PARLEY_INT(channels, retry_max_ms, 10, 3600000,
                 "longest wait between attempts to deliver a reply the provider could not take"),
      PARLEY_INT(channels, give_up_after_s, 1, 30 * 86400,
                 "a reply still failing after this becomes a dead letter"),
      PARLEY_STR(http, address, "address the HTTP server binds", false),
      PARLEY_INT(http, port, 0, 65535, "HTTP port; 0 picks a free one (env PORT too)"),
      PARLEY_INT(http, threads, 1, 256,
                 "Asio threads serving HTTP (with scheduler_policy stealing or sharing; lanes "
                 "serve HTTP on the actor threads)"),
      PARLEY_INT(http, max_body_bytes, 1024, 64 << 20, "largest request body accepted"),
      PARLEY_INT(http, idle_timeout_ms, 100, 3600000,
                 "idle keep-alive connections close after this"),
      PARLEY_INT(http, shutdown_grace_ms, 0, 600000, "time SIGTERM waits for requests in flight"),
      PARLEY_INT(http, header_timeout_ms, 100, 3600000,
                 "a new connection without a complete request head after this is closed"),
      PARLEY_INT(http, max_connections, 0, 10000000,
                 "open HTTP connections at most, past it new ones close at once; 0 = "
                 "RLIMIT_NOFILE minus a tenth (at least 256) kept for Redis, Postgres, actions"),
      PARLEY_INT(http, max_connections_per_address, 0, 10000000,
                 "open HTTP connections per client address at most; 0 = no cap"),
      PARLEY_STR(redis, url, "redis://host:port[/db] or unix:///path (env REDIS_URL too)", true),
      PARLEY_INT(redis, command_timeout_ms, 10, 60000, "Redis command timeout"),
      PARLEY_BOOL(redis, lane_connections,
                  "one Redis connection per lane for conversations (scheduler_policy lanes)"),
      PARLEY_STR(postgres, url, "libpq connection URI (env DATABASE_URL too)", true),
      PARLEY_INT(postgres, pool_size, 1, 64, "Postgres connections (one thread each)"),
      PARLEY_BOOL(postgres, migrate, "apply schema migrations at start-up"),
      PARLEY_ENUM(log, level, "log level", "trace", "debug", "info", "warn", "error"),
      PARLEY_ENUM(log, format, "log line format", "json", "logfmt"),
      PARLEY_INT(actors, scheduler_threads, 0, 256, "CAF scheduler threads; 0 = one per core"),
      PARLEY_ENUM(actors, scheduler_policy,
                  "CAF scheduler: lanes (actors on the HTTP event-loop threads), work stealing, or "
                  "one shared queue",
                  "lanes", "stealing", "sharing"),
      PARLEY_INT(runtime, stripes, 1, 4096,
                 "local lock groups of live conversations, each with its supervisor actor"),
      PARLEY_INT(runtime, passivate_after_ms, 10, 86400000,
                 "idle conversation actors stop after this"),
      PARLEY_INT(runtime, max_attempts, 1, 100, "deaths of one message before it is quarantined"),
      PARLEY_INT(runtime, recent_turns, 1, 1000,
                 "answered messages kept per conversation for replay"),
      PARLEY_INT(runtime, max_queued, 0, 100000,
                 "waiting messages per conversation before the API answers 429"),
      key_spec{
          "runtime", "action_threads", "integer",
          "deprecated and ignored: actions use the asynchronous outbound client "
          "(actions.threads)",
          false,
          [](settings& s, const std::string&) {
            s.warnings.push_back(
                "runtime.action_threads is deprecated and ignored: bot actions use the "
                "asynchronous outbound client (actions.threads, actions.max_connections_per_host)");
            return std::string{};
          },
          [](const settings&) { return std::string{}; }},
      PARLEY_BOOL(runtime, debug_faults,
                  "debug only: enables the kill endpoint and poison messages"),
      PARLEY_LIST(actions, egress_allow,
                  "destinations bot actions may reach despite the egress policy (loopback, "
                  "link-local, private addresses and the node's own ports are refused): "
                  "networks, addresses, address:port, host[:port]; comma-separated in "
                  "PARLEY_ACTIONS_EGRESS_ALLOW"),
      PARLEY_STR(actions, ca_file,
                 "PEM certificate authorities trusted for https calls instead of the system store",
                 false),
      PARLEY_INT(actions, max_connections_per_host, 1, 4096,
                 "open connections per destination (scheme, host, port); more requests wait"),
      PARLEY_INT(actions, max_response_bytes, 1024, 64 << 20,
                 "largest response body an action accepts; larger fails the call"),
      PARLEY_INT(actions, threads, 1, 16, "I/O threads of the outbound HTTP client"),
      PARLEY_STR(admin, token,
                 "admin API bearer token (set PARLEY_ADMIN_TOKEN; empty disables the admin API)",
                 false),
  };
  return keys;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool known_section(const std::string& name) {
  for (const auto& k : schema())
    if (name == k.section) return true;
  return false;
}

const key_spec* find_key(const std::string& section, const std::string& key) {
  for (const auto& k : schema())
    if (section == k.section && key == k.key) return &k;
  return nullptr;
}

/// Keys renamed, still read under their old name with a warning.
struct renamed_key {
  const char* section;
  const char* old_key;
  const char* new_key;
};
constexpr renamed_key renamed_keys[] = {{"runtime", "shards", "stripes"}};

/// The key `key` was renamed to, recording the warning; null when it was not renamed.
const key_spec* find_renamed(const std::string& section, const std::string& key,
                             const std::string& where, settings& s) {
  for (const auto& r : renamed_keys) {
    if (section != r.section || key != r.old_key) continue;
    s.warnings.push_back(where + " is deprecated: use " + r.section + "." + r.new_key);
    return find_key(section, r.new_key);
  }
  return nullptr;
}

std::string describe_value(const std::string& text) {
  return text.size() > 40 ? "'" + text.substr(0, 40) + "...'" : "'" + text + "'";
}

error bad(const std::string& where, const std::string& key, const std::string& problem) {
  return make_error("bad_config", where + ": " + key + ": " + problem);
}

}  // namespace

environment process_environment() {
  environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

result<settings> parse(const std::string& yaml_text, const std::string& origin,
                       const environment& env) {
  settings s;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return make_error("bad_config", origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                                        std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root && !root.IsNull()) {
    if (!root.IsMap()) return bad(origin, "(top level)", "expected a mapping of sections");
    for (const auto& sec : root) {
      const auto section = sec.first.as<std::string>();
      if (!known_section(section)) return bad(origin, section, "unknown section");
      if (sec.second.IsNull()) continue;
      if (!sec.second.IsMap()) return bad(origin, section, "expected a mapping of keys");
      for (const auto& kv : sec.second) {
        const auto key = kv.first.as<std::string>();
        const std::string dotted = section + "." + key;
        const auto* spec = find_key(section, key);
        if (spec == nullptr) spec = find_renamed(section, key, origin + ": " + dotted, s);
        if (spec == nullptr) return bad(origin, dotted, "unknown key");
        std::string text;
        if (std::string(spec->type) == "list" && kv.second.IsSequence()) {
          for (const auto& item : kv.second) {
            if (!item.IsScalar()) return bad(origin, dotted, "expected a list of strings");
            if (item.Scalar().find(',') != std::string::npos)
              return bad(origin, dotted,
                         "an entry holds a comma, got " + describe_value(item.Scalar()));
            text += (text.empty() ? "" : ",") + item.Scalar();
          }
        } else if (kv.second.IsNull() && std::string(spec->type) == "list") {
          text.clear();
        } else if (!kv.second.IsScalar()) {
          return bad(origin, dotted, std::string("expected a ") + spec->type + " value");
        } else {
          text = kv.second.Scalar();
        }
        if (auto problem = spec->set(s, text); !problem.empty())
          return bad(origin, dotted, problem + ", got " + describe_value(text));
      }
    }
  }
  // PARLEY_<SECTION>_<KEY>: a variable naming a known section must name a known key,
  // so a typo fails loudly instead of being ignored.
  for (const auto& [name, value] : env) {
    if (name.rfind("PARLEY_", 0) != 0) continue;
    const std::string rest = name.substr(7);
    const key_spec* match = nullptr;
    bool section_matched = false;
    for (const auto& k : schema()) {
      const std::string prefix = upper(k.section) + "_";
      if (rest.rfind(prefix, 0) != 0) continue;
      section_matched = true;
      if (rest.substr(prefix.size()) == upper(k.key)) match = &k;
    }
    for (const auto& r : renamed_keys)
      if (match == nullptr && rest == upper(r.section) + "_" + upper(r.old_key))
        match = find_renamed(r.section, r.old_key, "environment: " + name, s);
    if (!section_matched) continue;
    if (match == nullptr) return bad("environment", name, "unknown key");
    if (auto problem = match->set(s, value); !problem.empty())
      return bad("environment", name, problem + ", got " + describe_value(value));
  }
  struct alias {
    const char* var;
    const char* section;
    const char* key;
  };
  for (const alias& a : {alias{"PORT", "http", "port"}, alias{"DATABASE_URL", "postgres", "url"},
                         alias{"REDIS_URL", "redis", "url"}}) {
    auto it = env.find(a.var);
    if (it == env.end()) continue;
    const auto* spec = find_key(a.section, a.key);
    if (auto problem = spec->set(s, it->second); !problem.empty())
      return bad("environment", a.var, problem + ", got " + describe_value(it->second));
  }
  for (const auto& k : schema()) {
    if (k.required && k.get(s).empty()) {
      const std::string dotted = std::string(k.section) + "." + k.key;
      std::string hint =
          "required: set it in the config file or PARLEY_" + upper(k.section) + "_" + upper(k.key);
      if (dotted == "redis.url") hint += " or REDIS_URL";
      if (dotted == "postgres.url") hint += " or DATABASE_URL";
      return bad(origin, dotted, hint);
    }
  }
  if (s.cluster.heartbeat_ms * 2 > s.cluster.lease_ms)
    return bad(origin, "cluster.heartbeat_ms",
               "must be at most half of cluster.lease_ms (" + std::to_string(s.cluster.lease_ms) +
                   "), so a lease is renewed at least twice before it expires");
  if (auto peers = parse_peer_regions(s.cluster.peer_regions, s.node.region); !peers)
    return bad(origin, "cluster.peer_regions", peers.err().message);
  return s;
}

namespace {

std::string_view trim_spaces(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::vector<std::string_view> split(std::string_view v, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto at = v.find(sep);
    out.push_back(trim_spaces(v.substr(0, at)));
    if (at == std::string_view::npos) return out;
    v.remove_prefix(at + 1);
  }
}

}  // namespace

result<std::vector<peer_region>> parse_peer_regions(const std::string& spec,
                                                    const std::string& own) {
  std::vector<peer_region> out;
  if (trim_spaces(spec).empty()) return out;
  for (auto part : split(spec, ';')) {
    if (part.empty()) continue;  // a trailing ';'
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      return make_error("bad_config", "'" + std::string(part) + "' must be name=host:port");
    peer_region r;
    r.name = std::string(trim_spaces(part.substr(0, eq)));
    if (r.name.empty())
      return make_error("bad_config", "'" + std::string(part) + "' has no region name");
    if (r.name == own)
      return make_error("bad_config",
                        "region '" + r.name + "' is this node's own region (node.region)");
    for (const auto& p : out)
      if (p.name == r.name)
        return make_error("bad_config", "region '" + r.name + "' is named twice");
    for (auto ep : split(part.substr(eq + 1), ',')) {
      auto colon = ep.rfind(':');
      std::string host(colon == std::string_view::npos ? ep : ep.substr(0, colon));
      std::string port(colon == std::string_view::npos ? "" : ep.substr(colon + 1));
      int n = 0;
      bool digits = !port.empty() && port.size() <= 5 &&
                    port.find_first_not_of("0123456789") == std::string::npos;
      if (digits) n = std::stoi(port);
      if (host.empty() || !digits || n < 1 || n > 65535)
        return make_error("bad_config", "region '" + r.name + "': '" + std::string(ep) +
                                            "' must be host:port with a port of 1-65535");
      r.endpoints.emplace_back(std::move(host), static_cast<uint16_t>(n));
    }
    out.push_back(std::move(r));
  }
  return out;
}

result<settings> load(const std::string& path, const environment& env) {
  std::ifstream in(path);
  if (!in) return make_error("bad_config", path + ": cannot read the config file");
  std::stringstream buf;
  buf << in.rdbuf();
  return parse(buf.str(), path, env);
}

std::string describe() {
  std::ostringstream out;
  out << "Configuration keys (YAML section.key; environment PARLEY_SECTION_KEY):\n";
  settings defaults;
  for (const auto& k : schema()) {
    std::string dotted = std::string(k.section) + "." + k.key;
    out << "  " << dotted << std::string(dotted.size() < 28 ? 28 - dotted.size() : 1, ' ') << k.type
        << (k.required ? ", required" : ", default " + describe_value(k.get(defaults)))
        << "\n      " << k.description << "\n";
  }
  return out.str();
}

}  // namespace parley::settings
