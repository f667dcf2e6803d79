#include "actors/runtime/runtime_probe.hpp"

#include "src/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <iterator>
#include <tuple>

namespace parley::actors {

namespace {

using metrics::counter;

constexpr const char* activations_help = "Conversation actors activated, by source.";

}  // namespace

runtime_probe::runtime_probe(prometheus::Registry& reg)
    : turns_(prometheus::BuildCounter()
                 .Name("parley_turns_total")
                 .Help("Inbound messages answered, by outcome.")
                 .Register(reg)),
      turn_seconds_(
          prometheus::BuildHistogram()
              .Name("parley_turn_duration_seconds")
              .Help("Time from a message being submitted to its committed answer.")
              .Register(reg)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                               0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      live_(prometheus::BuildGauge()
                .Name("parley_conversations_live")
                .Help("Live conversation actors on this node.")
                .Register(reg)
                .Add({})),
      activated_snapshot_(counter(reg, "parley_conversation_activations_total", activations_help,
                                  {{"source", "snapshot"}})),
      activated_new_(counter(reg, "parley_conversation_activations_total", activations_help,
                             {{"source", "new"}})),
      restarts_(counter(reg, "parley_conversation_restarts_total",
                        "Conversation actors restarted from their snapshot after dying.")),
      quarantines_(
          counter(reg, "parley_messages_quarantined_total",
                  "Messages that killed their conversation too often and were quarantined.")),
      passivations_(counter(reg, "parley_conversations_passivated_total",
                            "Idle conversation actors stopped (their snapshot stays in Redis).")),
      commit_failures_(
          counter(reg, "parley_turn_commit_failures_total",
                  "Turns whose snapshot could not be written to Redis (answered unavailable).")),
      fenced_reads_(counter(reg, "parley_snapshot_reads_fenced_total",
                            "Snapshot reads that waited for the commit of a conversation actor "
                            "that died with it in flight.")) {
  const char* names[] = {"ok",
                         "replayed",
                         "session_not_found",
                         "session_ended",
                         "stale_sequence",
                         "bot_not_found",
                         "unavailable",
                         "internal",
                         "bad_input",
                         "busy",
                         "awaiting_transfer"};
  static_assert(std::size(names) == std::tuple_size<decltype(by_status_)>::value,
                "one outcome label per turn_outcome::status");
  for (std::size_t i = 0; i < by_status_.size(); ++i)
    by_status_[i] = &turns_.Add({{"outcome", names[i]}});
}

void runtime_probe::turn_answered(turn_outcome::status st, double seconds) {
  by_status_[static_cast<std::size_t>(st)]->Increment();
  turn_seconds_.Observe(seconds);
}
void runtime_probe::conversation_live() { live_.Increment(); }
void runtime_probe::conversation_gone() { live_.Decrement(); }
void runtime_probe::activated_from_snapshot() { activated_snapshot_.Increment(); }
void runtime_probe::activated_new() { activated_new_.Increment(); }
void runtime_probe::conversation_restarted() { restarts_.Increment(); }
void runtime_probe::message_quarantined() { quarantines_.Increment(); }
void runtime_probe::conversation_passivated() { passivations_.Increment(); }
void runtime_probe::commit_failed() { commit_failures_.Increment(); }
void runtime_probe::read_fenced() { fenced_reads_.Increment(); }

}  // namespace parley::actors
