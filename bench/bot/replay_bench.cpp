// Replay speed (issue 14): recorded conversations of the order-status sample run
// through a candidate, as `parleyctl replay` does once the pages are fetched. Run
// (Release build):
//   build/bot-rel/bench/bot/replay_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
// Figures and machine: bench/README.md, section "Replay against a candidate (issue 14)".

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/bot/samples.hpp"
#include "src/bot/replay.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

using parley::bench::load_sample;
using parley::bench::now;

/// One turn as the conversation actor runs and records it; the action is answered as
/// the order API of the integration tests answers.
struct recorded {
  std::string record;  // the replay record's JSON, as Postgres keeps it
  bot::recorded_turn turn;
};

/// A whole tracked order: start, "track my order", the order number (the action), "No,
/// that's all" (a menu payload). Each turn's record is the JSON the node stores.
std::vector<recorded> record_conversation(const bot::program& p) {
  std::vector<recorded> out;
  v1::State state;
  const std::vector<std::pair<const char*, const char*>> inputs = {
      {"start", ""}, {"text", "track my order"}, {"text", "it's AB-123456"}, {"payload", "done"}};
  std::int64_t seq = 0;
  for (const auto& [op, text] : inputs) {
    bot::turn_recorder rec;
    rec.enter(op, text);
    const std::int64_t at = now + seq * 30;
    v1::TurnResult r = std::string(op) == "start" ? bot::start(p, {}, at)
                       : std::string(op) == "text"
                           ? bot::resume(p, state, bot::text_input(text, at))
                           : bot::resume(p, state, bot::payload_input(text, at));
    while (r.state().status() == v1::AWAITING_ACTION) {
      auto in = bot::action_input(
          200, R"({"status":"shipped","shipment":{"tracking":"1Z999","carrier":"UPS"}})", at);
      rec.action(r.action().name(), in);
      auto next = bot::resume(p, r.state(), in);
      for (auto& m : *next.mutable_messages()) *r.add_messages() = std::move(m);
      *r.mutable_state() = next.state();
      r.set_end_reason(next.end_reason());
    }
    recorded t;
    t.record = rec.finish(at, r);
    t.turn.sequence = ++seq;
    t.turn.user = text;
    for (const auto& m : r.messages()) t.turn.replies.push_back(m.text());
    if (!bot::parse_record(t.record, t.turn).ok()) std::abort();
    out.push_back(std::move(t));
    state = r.state();
  }
  return out;
}

// The replay engine alone: four turns, one action, the outcome compared.
void BM_replay_conversation(benchmark::State& state) {
  auto p = load_sample("order-status");
  bot::recorded_conversation c;
  c.session_id = "s";
  for (auto& t : record_conversation(*p)) c.turns.push_back(t.turn);
  if (bot::replay(*p, c).verdict != bot::replay_verdict::same) std::abort();
  for (auto _ : state) {
    auto r = bot::replay(*p, c);
    benchmark::DoNotOptimize(r);
  }
  state.counters["conversations/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_replay_conversation);

// What parleyctl does per conversation once a page is read: parse each turn's record
// from its JSON, then replay.
void BM_replay_conversation_with_parsing(benchmark::State& state) {
  auto p = load_sample("order-status");
  auto turns = record_conversation(*p);
  for (auto _ : state) {
    bot::recorded_conversation c;
    c.session_id = "s";
    for (const auto& t : turns) {
      bot::recorded_turn turn;
      turn.sequence = t.turn.sequence;
      turn.user = t.turn.user;
      turn.replies = t.turn.replies;
      if (!bot::parse_record(t.record, turn).ok()) std::abort();
      c.turns.push_back(std::move(turn));
    }
    auto r = bot::replay(*p, c);
    benchmark::DoNotOptimize(r);
  }
  state.counters["conversations/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_replay_conversation_with_parsing);

// The recorder's cost on the node, per turn with one action answer.
void BM_record_turn_with_action(benchmark::State& state) {
  v1::TurnResult r;
  r.mutable_state()->set_status(v1::AWAITING_INPUT);
  auto in = bot::action_input(
      200, R"({"status":"shipped","shipment":{"tracking":"1Z999","carrier":"UPS"}})", now);
  for (auto _ : state) {
    bot::turn_recorder rec;
    rec.enter("text", "it's AB-123456");
    rec.action("lookup_order", in);
    auto s = rec.finish(now, r);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_record_turn_with_action);

}  // namespace

BENCHMARK_MAIN();
