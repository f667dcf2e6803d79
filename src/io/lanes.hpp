#pragma once
/// parley::io::lanes: the node's event-loop threads, one Asio io_context each.
///
/// A lane is one thread running one io_context. The HTTP server's connections and,
/// with the "lanes" actor scheduler (actors/runtime/lane_scheduler.hpp), the CAF
/// actors all run on lanes: a request, the conversation actor it reaches and the
/// answer it writes stay on one thread, with no queue hand-off or thread wake-up
/// between an I/O thread and an actor thread (on a small machine these hand-offs,
/// not the work, were most of a turn's cost; bench/README.md).
///
/// Lifetime: create the lanes before whatever runs on them (actor system, servers)
/// and stop them after those are gone. Handlers still queued at stop() are destroyed
/// without running.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace parley::io {

class lanes {
 public:
  /// `n` lanes (at least one), threads named "<name>-<i>" (at most 15 characters).
  explicit lanes(std::size_t n, std::string name = "parley-lane");
  ~lanes();  ///< stop()
  lanes(const lanes&) = delete;
  lanes& operator=(const lanes&) = delete;

  std::size_t size() const;
  boost::asio::io_context& at(std::size_t i);

  /// The index of the calling thread's lane, or -1 when it runs on none.
  static int current();

  /// Starts the threads. Idempotent.
  void start();

  /// Stops the io_contexts and joins the threads. Idempotent; never from a lane.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::io
