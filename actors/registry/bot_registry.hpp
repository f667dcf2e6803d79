#pragma once
/// The bot registry of one node: compiled programs by (tenant, bot, version) and the
/// active version of each bot, shared by every conversation actor.
///
/// Postgres stays the truth. Programs are immutable, so a loaded version is cached
/// for the life of the node. The active version of each bot follows Postgres by
/// polling its change log (`changes`) every `poll_interval` (default 250 ms), so a
/// new activation reaches every node within a second without a restart. The node's
/// change listener (actors/changes) calls poll_now() when any node's admin API
/// activates or rolls back a version, and when its Redis subscription (re)connects:
/// the poll then runs at once instead of at the next tick, which stays the backstop.
///
/// Thread-safe. Callbacks run inline on a cache hit, else on the loader's thread:
/// they must not block (send a message to an actor).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/common/result.hpp"
#include "src/store/catalog/bot_versions.hpp"

namespace parley::actors {

/// Whether a new session with this id starts on a canary that takes `percent` % of new
/// sessions: FNV-1a of the id, mod 100, below `percent`. The same on every node and
/// after restarts, so a retried start lands on the same version.
bool takes_canary(std::string_view session_id, int percent);

struct loaded_program {
  uint32_t version = 0;
  std::shared_ptr<const bot::program> program;
};

/// Where programs come from (the app wires these to the Postgres catalog).
struct program_source {
  /// Loads version `version` of a bot (0: the active one): the version number and the
  /// serialized program. A bot or version that does not exist fails with code `not_found`.
  std::function<void(const std::string& tenant, const std::string& bot, uint32_t version,
                     std::function<void(result<std::pair<uint32_t, std::string>>)>)>
      load;
  /// Change-log rows with change_seq > `since`, ascending (store::active_changes_since).
  std::function<void(int64_t since, std::function<void(result<std::vector<store::active_change>>)>)>
      changes;
};

class bot_registry {
 public:
  explicit bot_registry(program_source source,
                        std::chrono::milliseconds poll_interval = std::chrono::milliseconds(250));
  ~bot_registry();
  bot_registry(const bot_registry&) = delete;
  bot_registry& operator=(const bot_registry&) = delete;

  using callback = std::function<void(result<loaded_program>)>;

  /// The active version of a bot. Fails with `not_found` when the bot has none.
  void active(const std::string& tenant, const std::string& bot, callback done);

  /// The version a new session starts on: the bot's running canary when
  /// takes_canary(session_id, its percent), else the active version. Before the first
  /// poll of the change log, and for a bot not in it yet, the active version.
  void for_new_session(const std::string& tenant, const std::string& bot,
                       std::string_view session_id, callback done);

  /// A running canary as this node follows it.
  struct canary_split {
    std::string tenant;
    std::string bot;
    uint32_t version = 0;
    int percent = 0;
  };
  /// Every bot's running canary, from the change log (for the canary monitor's gauges).
  std::vector<canary_split> canaries() const;

  /// A given version (a conversation stays on the version it started with).
  void version(const std::string& tenant, const std::string& bot, uint32_t version, callback done);

  /// Starts the poller thread; stop() (or the destructor) ends it.
  void start();
  void stop();

  /// Polls the change log now instead of at the next tick; when a poll is in flight,
  /// once more as soon as it is done (it may have read the log before the change).
  /// Any thread, never blocks. Before start() the first poll runs at start.
  void poll_now();

  /// Change-log rows applied so far (for tests and metrics).
  int64_t applied_change_seq() const { return applied_seq_.load(); }

 private:
  void poll_loop();
  void load_version(const std::string& tenant, const std::string& bot, uint32_t version,
                    callback done);

  program_source source_;
  std::chrono::milliseconds poll_interval_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const bot::program>> programs_;  // tenant\0bot\0version
  struct pointers {
    uint32_t active = 0;
    uint32_t canary = 0;  // 0: none
    int percent = 0;
  };
  std::map<std::string, pointers> active_;  // tenant\0bot, from the log
  std::atomic<bool> log_loaded_{false};
  std::atomic<int64_t> applied_seq_{0};
  std::atomic<bool> stop_{false};
  bool poll_now_ = false;  // guarded by stop_mutex_
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  std::thread poller_;
};

}  // namespace parley::actors
