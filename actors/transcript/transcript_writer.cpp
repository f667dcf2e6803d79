#include "actors/transcript/transcript_writer.hpp"

#include <future>

#include "src/log/log.hpp"

namespace parley::actors {

transcript_writer::transcript_writer(write_fn write, options opts, prometheus::Registry* metrics)
    : write_(std::move(write)), opts_(opts), probe_(metrics) {
  thread_ = std::thread([this] { loop(); });
}

transcript_writer::~transcript_writer() { stop(); }

void transcript_writer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t transcript_batch::messages() const {
  std::size_t n = 0;
  for (const auto& l : *lines) n += l.messages;
  return n;
}

void transcript_writer::append(store::transcript_line turn,
                               std::vector<store::conversation_record> events) {
  std::size_t dropped = 0;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& e : events) {
      if (events_.size() >= opts_.max_buffered) {
        ++dropped;
        continue;
      }
      events_.push_back(std::move(e));
    }
    if (buffered() + turn.messages > opts_.max_buffered) {
      dropped += turn.messages;
    } else {
      line_messages_ += turn.messages;
      lines_.push_back(std::move(turn));
    }
    probe_.lag(buffered() + in_flight_);
    // The thread waits for a full batch or flush_interval: waking it per turn cost a
    // futex wake and two context switches per turn for nothing. (Notifying a condition
    // variable nobody waits on, while a batch is being written, costs no system call.)
    wake = ready();
  }
  if (wake) cv_.notify_one();
  count_dropped(dropped);
}

void transcript_writer::count_dropped(std::size_t dropped) {
  if (dropped > 0) {
    probe_.rows_dropped(dropped);
    // One line per second at most: drops happen when the node is saturated, the worst
    // time to add a log line per turn.
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_drop_log_.load(std::memory_order_relaxed);
    dropped_since_log_.fetch_add(dropped, std::memory_order_relaxed);
    if (now - last >=
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::seconds(1))
                .count() &&
        last_drop_log_.compare_exchange_strong(last, now))
      log::warn("transcript_rows_dropped",
                {{"rows", std::to_string(dropped_since_log_.exchange(0))},
                 {"hint", "Postgres is too slow or down; see parley_transcript_lag_rows"}});
  }
}

bool transcript_writer::ready() const {
  return stop_ || (flushing_ > 0 && !nothing_buffered()) || buffered() >= opts_.max_batch ||
         events_.size() >= opts_.max_batch;
}

std::size_t transcript_writer::lag() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffered() + in_flight_;
}

bool transcript_writer::flush(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  // While a flush waits, the thread writes what is buffered without waiting for a
  // full batch or flush_interval.
  ++flushing_;
  cv_.notify_one();
  bool drained =
      drained_.wait_for(lock, deadline, [this] { return nothing_buffered() && in_flight_ == 0; });
  --flushing_;
  return drained;
}

void transcript_writer::loop() {
  auto backoff = std::chrono::milliseconds(50);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait_for(lock, opts_.flush_interval, [this] { return ready(); });
    if (nothing_buffered()) {
      if (stop_) return;
      continue;
    }
    // Whole turns up to max_batch messages. A turn is never split: a batch may pass
    // max_batch by the rest of the turn it reached.
    transcript_batch batch;
    std::size_t n = 0;
    while (!lines_.empty() && (n == 0 || n + lines_.front().messages <= opts_.max_batch)) {
      n += lines_.front().messages;
      line_messages_ -= lines_.front().messages;
      batch.lines->push_back(std::move(lines_.front()));
      lines_.pop_front();
    }
    std::size_t m = std::min(events_.size(), opts_.max_batch);
    batch.events.assign(std::make_move_iterator(events_.begin()),
                        std::make_move_iterator(events_.begin() + static_cast<long>(m)));
    events_.erase(events_.begin(), events_.begin() + static_cast<long>(m));
    in_flight_ = n;
    lock.unlock();
    auto p = std::make_shared<std::promise<result<void>>>();
    auto f = p->get_future();
    write_(batch, [p](result<void> r) { p->set_value(std::move(r)); });
    auto result = f.get();
    lock.lock();
    in_flight_ = 0;
    if (result) {
      probe_.rows_written(n);
      backoff = std::chrono::milliseconds(50);
    } else {
      probe_.write_failed();
      log::warn("transcript_write_failed",
                {{"rows", std::to_string(n)}, {"error", result.err().message}});
      // Back to the front, in order: the write is idempotent, so a partial success is harmless.
      for (auto& l : *batch.lines) {
        line_messages_ += l.messages;
        l.maybe_stored = true;
      }
      lines_.insert(lines_.begin(), std::make_move_iterator(batch.lines->begin()),
                    std::make_move_iterator(batch.lines->end()));
      events_.insert(events_.begin(), std::make_move_iterator(batch.events.begin()),
                     std::make_move_iterator(batch.events.end()));
      if (stop_) return;
      cv_.wait_for(lock, backoff, [this] { return stop_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
    probe_.lag(buffered());
    if (nothing_buffered()) drained_.notify_all();
  }
}

}  // namespace parley::actors
