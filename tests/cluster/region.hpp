#pragma once
/// A region of real parleyd processes for the cluster tests: N nodes on loopback
/// sharing one Redis and the Postgres of scripts/test, each on HTTP port 0 and
/// cluster port 0 with a distinct node.name. The harness reads each node's ports from
/// its `http_listening` and `cluster_listening` log lines, awaits membership by polling
/// `GET /admin/v1/cluster` with a deadline, and kills (-9), stops (SIGSTOP), continues
/// (SIGCONT), terminates (SIGTERM, a drain), restarts or adds nodes.
///
/// Redis: by default every region starts a redis-server of its own (a Unix socket in a
/// temp folder), so the membership records, leases and snapshots of one test never meet
/// another's; `options::redis_url` shares a given one instead. Postgres: DATABASE_URL.
///
/// Threads: the test thread drives the region; endpoints() and url() may be called from
/// any thread (the load driver's).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/http/client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace parley::cluster::testing {

using namespace std::chrono_literals;
using json = nlohmann::json;

inline const std::string admin_token = "cluster-test-admin-token";

/// An environment variable, or "" after a failure that says to run under scripts/test.
inline std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0')
    ADD_FAILURE() << name << " is not set: the cluster tests need the servers scripts/test "
                  << "starts. Run them with scripts/test -L cluster.";
  return v ? v : "";
}

/// One parleyd of a region.
class region_node {
 public:
  region_node(std::string name, std::map<std::string, std::string> env)
      : name_(std::move(name)), env_(std::move(env)) {}

  /// Starts the process and reads its two ports (deadline 60 s: ASan builds start
  /// slowly on a busy machine). False, after a failure naming what was missing, when
  /// it did not report both.
  bool start() {
    http_port_.clear();
    cluster_port_.clear();
    stopped_ = false;
    proc_ = std::make_unique<parley::testing::child_process>(
        std::vector<std::string>{PARLEYD_PATH, "--config",
                                 std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml"},
        env_);
    if (!proc_->started()) {
      ADD_FAILURE() << name_ << ": could not start " << PARLEYD_PATH;
      return false;
    }
    // The two lines come in either order; wait_for_line skips the lines it passed, so one
    // predicate takes both.
    proc_->wait_for_line(
        [&](const std::string& l) {
          auto port = [&](const char* event) -> std::optional<std::string> {
            if (l.find(event) == std::string::npos) return std::nullopt;
            auto j = json::parse(l.substr(l.find('{')), nullptr, false);
            if (!j.is_object() || !j.contains("port")) return std::nullopt;
            return j["port"].is_string() ? j["port"].get<std::string>()
                                         : std::to_string(j["port"].get<long>());
          };
          if (auto p = port("\"http_listening\"")) http_port_ = *p;
          if (auto p = port("\"cluster_listening\"")) cluster_port_ = *p;
          return !http_port_.empty() && !cluster_port_.empty();
        },
        60s);
    if (http_port_.empty() || cluster_port_.empty()) {
      ADD_FAILURE() << name_ << " did not log " << (http_port_.empty() ? "http_listening " : "")
                    << (cluster_port_.empty() ? "cluster_listening " : "")
                    << "within 60 s; output:\n"
                    << output();
      return false;
    }
    return true;
  }

  const std::string& name() const { return name_; }
  const std::map<std::string, std::string>& env() const { return env_; }
  const std::string& http_port() const { return http_port_; }
  const std::string& cluster_port() const { return cluster_port_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + http_port_ + path;
  }
  bool running() const { return proc_ && !exited_; }
  bool stopped() const { return stopped_; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }

  /// Sends `sig`. SIGSTOP returns once every thread of the process is stopped (state T
  /// in /proc), since the kernel stops them asynchronously: a request sent after that
  /// is not read until SIGCONT. False when they did not all stop within 10 s.
  bool signal(int sig) {
    if (!proc_) return false;
    proc_->kill(sig);
    if (sig == SIGCONT) stopped_ = false;
    if (sig != SIGSTOP) return true;
    stopped_ = true;
    bool all = parley::store::testing::eventually([&] { return all_threads_stopped(); }, 10s);
    if (!all) ADD_FAILURE() << name_ << " did not stop within 10 s of SIGSTOP";
    return all;
  }
  /// Whether every thread of the process is in state T (stopped).
  bool all_threads_stopped() const {
    std::error_code ec;
    auto dir = std::filesystem::path("/proc") / std::to_string(pid()) / "task";
    bool any = false;
    for (const auto& t : std::filesystem::directory_iterator(dir, ec)) {
      std::ifstream in(t.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size()) return false;
      if (stat[close + 2] != 'T' && stat[close + 2] != 't') return false;
      any = true;
    }
    return any && !ec;
  }

  /// kill -9, then reaps it.
  void kill9() {
    signal(SIGKILL);
    wait_exit(10s);
  }
  /// The exit code once it ended within `deadline` (128+signal when killed).
  std::optional<int> wait_exit(std::chrono::milliseconds deadline) {
    if (!proc_) return std::nullopt;
    auto code = proc_->wait_exit(deadline);
    if (code) exited_ = true;
    return code;
  }
  /// The process's output so far, for failure messages (reads what is pending).
  std::string output() {
    if (!proc_) return {};
    if (!exited_) proc_->wait_for_line([](const std::string&) { return false; }, 50ms);
    std::string out;
    for (const auto& l : proc_->lines()) out += l + "\n";
    return out;
  }
  /// Whether a line logged so far contains `needle` (reads what is pending).
  bool logged(const std::string& needle) {
    for (const auto& l : proc_->lines())
      if (l.find(needle) != std::string::npos) return true;
    return proc_
        ->wait_for_line([&](const std::string& l) { return l.find(needle) != std::string::npos; },
                        10ms)
        .has_value();
  }

  /// `GET /admin/v1/cluster` from this node; a null json when it did not answer 200.
  json cluster_status(std::chrono::milliseconds timeout = 2s) const {
    parley::http::client_request r;
    r.url = url("/admin/v1/cluster");
    r.timeout = timeout;
    r.headers = {{"Authorization", "Bearer " + admin_token}};
    auto res = parley::http::fetch(r);
    if (!res.ok() || res->status != 200) return nullptr;
    auto j = json::parse(res->body, nullptr, false);
    return j.is_discarded() ? json(nullptr) : j;
  }

 private:
  std::string name_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<parley::testing::child_process> proc_;
  std::string http_port_, cluster_port_;
  bool stopped_ = false;
  bool exited_ = false;
};

/// The state a status document gives `id`, "" when it does not list it.
inline std::string state_of(const json& status, const std::string& id) {
  if (!status.is_object() || !status.contains("nodes")) return "";
  for (const auto& n : status["nodes"])
    if (n.value("id", "") == id) return n.value("state", "");
  return "";
}

/// `field` of `id` in a status document (e.g. "shards_owned"), -1 when absent.
inline long field_of(const json& status, const std::string& id, const std::string& field) {
  if (!status.is_object() || !status.contains("nodes")) return -1;
  for (const auto& n : status["nodes"])
    if (n.value("id", "") == id && n.contains(field) && n[field].is_number())
      return n[field].get<long>();
  return -1;
}

class region {
 public:
  struct options {
    std::size_t nodes = 3;
    std::string redis_url;  ///< empty: a redis-server of the region's own
    /// Extra PARLEY_* keys for every node (e.g. PARLEY_CLUSTER_LEASE_MS).
    std::map<std::string, std::string> env;
  };

  explicit region(options o) : opts_(std::move(o)) {
    // In a Redis of its own, the region's node names can be plain (and its placement
    // the same from run to run); in a shared one they must not meet another region's.
    prefix_ = opts_.redis_url.empty() ? "node" : parley::store::testing::unique_name("n");
    redis_url_ = opts_.redis_url;
    if (redis_url_.empty()) {
      redis_ = std::make_unique<parley::store::testing::redis_process>(dir_.path());
      if (!redis_->start()) {
        ADD_FAILURE() << "the region's redis-server did not start";
        return;
      }
      redis_url_ = redis_->url();
    }
    for (std::size_t i = 0; i < opts_.nodes; ++i)
      if (!add()) return;
    ok_ = true;
  }
  ~region() {
    for (auto& n : nodes_) {
      n->signal(SIGCONT);
      n->kill9();
    }
  }
  region(const region&) = delete;
  region& operator=(const region&) = delete;

  /// Every node started (false after a failure saying which did not).
  bool ok() const { return ok_; }
  const std::string& redis_url() const { return redis_url_; }
  std::size_t size() const { return nodes_.size(); }
  region_node& node(std::size_t i) { return *nodes_.at(i); }
  /// The index of the node named `id`, or size() when none is.
  std::size_t index_of(const std::string& id) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i]->name() == id) return i;
    return nodes_.size();
  }

  /// Starts one more node (named "node-<index>", or "<unique prefix>-<index>" in a
  /// shared Redis); false when it did not start.
  bool add() {
    std::map<std::string, std::string> env = {
        {"PORT", "0"},
        {"PARLEY_CLUSTER_PORT", "0"},
        {"REDIS_URL", redis_url_},
        {"DATABASE_URL", env_or_fail("DATABASE_URL")},
        {"PARLEY_ADMIN_TOKEN", admin_token},
        {"PARLEY_LOG_LEVEL", "info"},
    };
    auto name = prefix_ + "-" + std::to_string(nodes_.size());
    env["PARLEY_NODE_NAME"] = name;
    for (const auto& [k, v] : opts_.env) env[k] = v;
    auto n = std::make_unique<region_node>(name, env);
    bool started = n->start();
    {
      std::lock_guard<std::mutex> lock(m_);
      nodes_.push_back(std::move(n));
    }
    return started;
  }

  /// Starts node `i` again under the same name, after it exited; it gets new ports.
  /// Until the new process listens, endpoints() keeps the old (refusing) address.
  bool restart(std::size_t i) {
    auto fresh = std::make_unique<region_node>(nodes_.at(i)->name(), nodes_.at(i)->env());
    bool started = fresh->start();
    std::lock_guard<std::mutex> lock(m_);
    nodes_.at(i) = std::move(fresh);
    return started;
  }

  /// The base URLs a load balancer in front of the region sends to: every node started,
  /// whether it is alive or not (a dead one refuses connections, a stopped one times
  /// out: the client retries elsewhere, as behind a real balancer before its health
  /// check notices).
  std::vector<std::string> endpoints() const {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back(n->url());
    return out;
  }

  /// The names of the nodes that are running and not stopped.
  std::set<std::string> live() const {
    std::set<std::string> out;
    for (const auto& n : nodes_)
      if (n->running() && !n->stopped()) out.insert(n->name());
    return out;
  }

  /// Awaits, polling every node in `live()` with a deadline, until each one's
  /// /admin/v1/cluster lists exactly the live nodes as "up" (every other node it lists
  /// is not "up"). On failure, records which node saw what.
  bool await_converged(std::chrono::milliseconds deadline = 60s) {
    return await_converged_on(live(), deadline);
  }
  bool await_converged_on(const std::set<std::string>& expected,
                          std::chrono::milliseconds deadline = 60s) {
    std::string last;
    bool ok = parley::store::testing::eventually(
        [&] {
          for (const auto& n : nodes_) {
            if (!expected.count(n->name())) continue;
            auto s = n->cluster_status();
            if (s.is_null()) {
              last = n->name() + ": /admin/v1/cluster did not answer 200";
              return false;
            }
            std::set<std::string> up;
            for (const auto& m : s.value("nodes", json::array()))
              if (m.value("state", "") == "up") up.insert(m.value("id", ""));
            if (up != expected) {
              last = n->name() + " sees: " + s.dump();
              return false;
            }
          }
          return true;
        },
        deadline);
    if (!ok)
      ADD_FAILURE() << "the region did not converge on " << json(expected).dump() << ": " << last;
    return ok;
  }

  /// Awaits until node `from` answers a status for which `pred` holds; the last status
  /// seen goes to `last` (for failure messages).
  bool await_status(std::size_t from, const std::function<bool(const json&)>& pred,
                    std::chrono::milliseconds deadline, json* last = nullptr) {
    json s;
    bool ok = parley::store::testing::eventually(
        [&] {
          s = nodes_.at(from)->cluster_status();
          return !s.is_null() && pred(s);
        },
        deadline);
    if (last) *last = s;
    return ok;
  }

  /// Sum of shards_owned over the nodes `status` lists as up.
  static long shards_owned_by_up(const json& status) {
    long sum = 0;
    for (const auto& m : status.value("nodes", json::array()))
      if (m.value("state", "") == "up") sum += m.value("shards_owned", 0L);
    return sum;
  }

 private:
  options opts_;
  parley::store::testing::temp_dir dir_;
  std::unique_ptr<parley::store::testing::redis_process> redis_;
  std::string redis_url_, prefix_;
  mutable std::mutex m_;
  std::vector<std::unique_ptr<region_node>> nodes_;
  bool ok_ = false;
};

}  // namespace parley::cluster::testing
