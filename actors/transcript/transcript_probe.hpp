#pragma once
/// The transcript writer's Prometheus families, registered in the node's registry:
/// parley_transcript_lag_rows, parley_transcript_rows_written_total,
/// parley_transcript_rows_dropped_total and parley_transcript_write_failures_total.
/// Rows are messages (a turn's inbound message and each reply). Thread-safe.

#include <cstddef>

namespace prometheus {
class Registry;
class Gauge;
class Counter;
}  // namespace prometheus

namespace parley::actors {

class transcript_probe {
 public:
  /// Registers the families in `registry`; null: every verb does nothing (tests).
  explicit transcript_probe(prometheus::Registry* registry);

  /// `rows` are buffered or being written.
  void lag(std::size_t rows);
  /// A batch of `rows` was written.
  void rows_written(std::size_t rows);
  /// `rows` did not fit in the buffer.
  void rows_dropped(std::size_t rows);
  /// A batch write failed (it is retried).
  void write_failed();

 private:
  prometheus::Gauge* lag_ = nullptr;
  prometheus::Counter* written_ = nullptr;
  prometheus::Counter* dropped_ = nullptr;
  prometheus::Counter* failures_ = nullptr;
};

}  // namespace parley::actors
