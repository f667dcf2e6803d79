#pragma once
/// Writes transcripts (and conversation start/end records) to Postgres in batches,
/// off the turn's critical path.
///
/// Conversations append each committed turn as one formatted line
/// (store::transcript_line, built on the actor's thread). A flusher thread sends
/// batches (up to `max_batch` messages, at least every `flush_interval`) through
/// `write`, which must be idempotent on (session, sequence). An append wakes that
/// thread only when a batch is full (or a flush() waits), not per turn. A turn is
/// never split over two batches. Sizes, limits and metrics count messages ("rows"): a
/// line counts its inbound message and its replies.
/// When Postgres is slow or down, lines wait and the batch is retried with backoff;
/// the buffer is bounded (`max_buffered`): beyond it new turns are dropped and counted,
/// so a long outage costs transcript rows, never turns or memory.
///
/// Metrics: transcript_probe.hpp (`metrics` may be null).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/transcript/transcript_probe.hpp"
#include "src/common/result.hpp"
#include "src/store/catalog/transcripts.hpp"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace parley::actors {

/// What one write gets: whole turns and conversation events.
struct transcript_batch {
  /// Whole turns. Shared so that the write's job can hold them without a copy; the
  /// writer takes them back only after the write has answered.
  std::shared_ptr<std::vector<store::transcript_line>> lines =
      std::make_shared<std::vector<store::transcript_line>>();
  /// Conversations started or ended (store::write_turn_lines), in append order.
  std::vector<store::conversation_record> events;
  /// The messages of the lines.
  std::size_t messages() const;
};

class transcript_writer {
 public:
  /// Writes one batch in one transaction; must be idempotent. The batch stays with
  /// the writer (it is written again if this write fails).
  using write_fn = std::function<void(const transcript_batch&, std::function<void(result<void>)>)>;

  struct options {
    std::size_t max_batch = 500;
    std::chrono::milliseconds flush_interval{50};
    std::size_t max_buffered = 200000;
  };

  transcript_writer(write_fn write, options opts, prometheus::Registry* metrics);
  ~transcript_writer();
  transcript_writer(const transcript_writer&) = delete;
  transcript_writer& operator=(const transcript_writer&) = delete;

  /// One whole turn (the conversation actor's path). Any thread; never blocks on
  /// Postgres.
  void append(store::transcript_line turn, std::vector<store::conversation_record> events = {});

  /// Messages buffered and not yet written.
  std::size_t lag() const;

  /// Blocks until the buffer is empty or `deadline` passes (shutdown and tests).
  bool flush(std::chrono::milliseconds deadline);

  void stop();

 private:
  void loop();
  /// Whether the thread has work before flush_interval ends. Under mutex_.
  bool ready() const;
  /// Messages of the lines buffered, not counting the batch in flight. Under mutex_.
  std::size_t buffered() const { return line_messages_; }
  /// No lines or events wait (a batch may be in flight). Under mutex_.
  bool nothing_buffered() const { return lines_.empty() && events_.empty(); }
  /// Counts and logs dropped messages. Without mutex_.
  void count_dropped(std::size_t dropped);

  write_fn write_;
  options opts_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<store::transcript_line> lines_;
  std::size_t line_messages_ = 0;  ///< messages of lines_
  std::deque<store::conversation_record> events_;
  std::size_t in_flight_ = 0;
  int flushing_ = 0;  ///< flush() calls waiting
  bool stop_ = false;
  std::atomic<int64_t> last_drop_log_{0};
  std::atomic<std::size_t> dropped_since_log_{0};
  transcript_probe probe_;
  std::thread thread_;
};

}  // namespace parley::actors
