#pragma once
/// Performs the bots' HTTP actions (callouts to tenants' endpoints) on a small pool
/// of its own threads, so conversation actors never block: an actor calls `run` and
/// gets the answer back as a message from `done`.
///
/// Each call is bounded by the action's timeout, at most 10 s. A transport failure
/// or timeout becomes an ActionResult with ok=false and the reason.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "src/bot/bot.hpp"

namespace parley::actors {

class action_runner {
 public:
  explicit action_runner(std::size_t threads = 8);
  ~action_runner();
  action_runner(const action_runner&) = delete;
  action_runner& operator=(const action_runner&) = delete;

  /// Any thread. `done` runs once, on a pool thread.
  void run(bot::v1::ActionRequest request, std::function<void(bot::v1::ActionResult)> done);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace parley::actors
