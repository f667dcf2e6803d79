#pragma once
/// An in-memory snapshot store for tests: a map, with failures and delays on demand.
///
/// By default a call completes inline, on the caller's thread, before it returns.
/// `hold_commits()` / `hold_loads()` make later calls wait until the test releases
/// them (`release_commit()` completes the oldest held one on the releasing thread),
/// which puts a commit "in flight" for as long as a test needs. `fail_next_commit()`
/// and `fail_next_load()` make the next call fail (a failed commit writes nothing).
/// Thread-safe; handlers run without the lock held.

#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include "actors/snapshot/snapshot_store.hpp"

namespace parley::actors {

class memory_snapshot_store final : public snapshot_store {
 public:
  void load(std::string_view tenant, std::string_view session,
            std::shared_ptr<load_handler> done) override;
  void commit(std::string_view tenant, std::string_view session, std::string_view bytes,
              std::chrono::seconds ttl, uint64_t expected_epoch,
              std::shared_ptr<commit_handler> done) override;

  /// The next commit (or load) fails with `redis_unavailable` and `message`.
  void fail_next_commit(std::string message = "injected commit failure");
  void fail_next_load(std::string message = "injected load failure");

  /// Calls from now on wait for release_*(); off again with `false`.
  void hold_commits(bool on = true);
  void hold_loads(bool on = true);
  /// Completes the oldest held call; false when none is held.
  bool release_commit();
  bool release_load();
  std::size_t held_commits() const;
  std::size_t held_loads() const;

  /// The stored bytes of (tenant, session), if any.
  std::optional<std::string> get(std::string_view tenant, std::string_view session) const;
  /// Stores bytes directly (a snapshot that another node committed, say).
  void put(std::string_view tenant, std::string_view session, std::string bytes);
  /// Calls made so far (held or failed ones included), and the last commit's epoch.
  int loads() const;
  int commits() const;
  uint64_t last_epoch() const;

 private:
  struct held {
    std::string key;
    std::optional<std::string> bytes;  // commit: what to write; load: unused
    std::optional<error> fail;
    std::shared_ptr<load_handler> on_load;
    std::shared_ptr<commit_handler> on_commit;
  };
  static std::string key_of(std::string_view tenant, std::string_view session);
  void finish(held h);
  bool release(std::deque<held>& from);

  mutable std::mutex m_;
  std::map<std::string, std::string> data_;
  std::optional<error> fail_commit_, fail_load_;
  bool hold_commits_ = false, hold_loads_ = false;
  std::deque<held> commits_held_, loads_held_;
  int loads_ = 0, commits_ = 0;
  uint64_t last_epoch_ = 0;
};

}  // namespace parley::actors
