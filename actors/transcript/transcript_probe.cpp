#include "actors/transcript/transcript_probe.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace parley::actors {

transcript_probe::transcript_probe(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  lag_ = &prometheus::BuildGauge()
              .Name("parley_transcript_lag_rows")
              .Help("Transcript rows waiting to be written to Postgres.")
              .Register(*registry)
              .Add({});
  written_ = &prometheus::BuildCounter()
                  .Name("parley_transcript_rows_written_total")
                  .Help("Transcript rows written to Postgres.")
                  .Register(*registry)
                  .Add({});
  dropped_ = &prometheus::BuildCounter()
                  .Name("parley_transcript_rows_dropped_total")
                  .Help("Transcript rows dropped because the buffer was full.")
                  .Register(*registry)
                  .Add({});
  failures_ = &prometheus::BuildCounter()
                   .Name("parley_transcript_write_failures_total")
                   .Help("Failed transcript batch writes (retried).")
                   .Register(*registry)
                   .Add({});
}

void transcript_probe::lag(std::size_t rows) {
  if (lag_ != nullptr) lag_->Set(static_cast<double>(rows));
}

void transcript_probe::rows_written(std::size_t rows) {
  if (written_ != nullptr) written_->Increment(static_cast<double>(rows));
}

void transcript_probe::rows_dropped(std::size_t rows) {
  if (dropped_ != nullptr) dropped_->Increment(static_cast<double>(rows));
}

void transcript_probe::write_failed() {
  if (failures_ != nullptr) failures_->Increment();
}

}  // namespace parley::actors
