// Bot engine benchmarks. Run (Release build):
//   build/bot-rel/bench/bot/bot_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
// Figures and machine: bench/README.md, sections "Bot engine (issue 3)" and
// "Regex entities: std::regex against RE2 (issue 14)".

#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "bench/bot/samples.hpp"
#include "src/bot/bot.hpp"
#include "src/bot/nlu_eval.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

using parley::bench::load_sample;
using parley::bench::now;

// One turn of free text at the order-status main menu: menu matching fails,
// exact match fails, the classifier picks order_status, entities are
// extracted, the track_order dialog runs to its question.
void BM_turn_order_status_intent(benchmark::State& state) {
  auto p = load_sample("order-status");
  auto at_menu = bot::start(*p, {}, now).state();
  auto input = bot::text_input("hi, where's my package? it should have arrived", now);
  for (auto _ : state) {
    auto r = bot::resume(*p, at_menu, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_order_status_intent);

// The answer to the order-number question: regex entity, two assignments,
// then the action request is built (URL template, headers).
void BM_turn_order_status_answer(benchmark::State& state) {
  auto p = load_sample("order-status");
  auto s = bot::start(*p, {}, now).state();
  s = bot::resume(*p, s, bot::text_input("track my order", now)).state();
  auto input = bot::text_input("it's AB-123456", now);
  for (auto _ : state) {
    auto r = bot::resume(*p, s, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_order_status_answer);

// Resuming with the action's JSON answer and rendering the reply.
void BM_turn_order_status_action_result(benchmark::State& state) {
  auto p = load_sample("order-status");
  auto s = bot::start(*p, {}, now).state();
  s = bot::resume(*p, s, bot::text_input("track my order", now)).state();
  s = bot::resume(*p, s, bot::text_input("AB-123456", now)).state();
  auto input = bot::action_input(
      200, R"({"status":"shipped","shipment":{"tracking":"1Z999AA10123456784","carrier":"UPS"}})",
      now);
  for (auto _ : state) {
    auto r = bot::resume(*p, s, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_order_status_action_result);

// A free-text turn on the 33-intent help-desk bot (larger model).
void BM_turn_help_desk_intent(benchmark::State& state) {
  auto p = load_sample("help-desk");
  auto idle = bot::start(*p, {}, now).state();
  auto input = bot::text_input("my laptop screen is cracked and flickering", now);
  for (auto _ : state) {
    auto r = bot::resume(*p, idle, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_help_desk_intent);

// Parsing a snapshot, running a turn, serializing the new state: what a
// conversation actor does per message, minus I/O.
void BM_turn_with_state_bytes(benchmark::State& state) {
  auto p = load_sample("order-status");
  auto s = bot::start(*p, {}, now).state();
  s = bot::resume(*p, s, bot::text_input("track my order", now)).state();
  auto bytes = s.SerializeAsString();
  auto input = bot::text_input("AB-123456", now);
  for (auto _ : state) {
    v1::State in;
    in.ParseFromString(bytes);
    auto r = bot::resume(*p, in, input);
    auto out = r.state().SerializeAsString();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_turn_with_state_bytes);

// A bot whose question waits for a regex entity (issue 14: std::regex against
// RE2). Every text turn runs every entity extractor, and the question runs its
// own once more, so the answer turn matches the regex twice.
std::shared_ptr<const bot::program> regex_bot(const std::string& pattern) {
  std::string y =
      "bot: {name: regex-bench, welcome: ask}\n"
      "variables: {ticket: text}\n"
      "entities:\n  ticket: {regex: '" +
      pattern +
      "'}\n"
      "dialogs:\n"
      "  ask:\n"
      "    - question: {prompt: 'Your ticket number?', entity: ticket, into: ticket}\n"
      "    - message: 'Looking up {{ticket}}.'\n"
      "    - goto: ask\n";
  auto r = bot::compile(y, "regex-bench.yaml");
  if (!r.ok()) std::abort();
  return *bot::load(std::move(*r.program));
}

// The answer to the question: a sentence with the ticket number near its end.
void BM_turn_regex_entity(benchmark::State& state) {
  auto p = regex_bot(R"(\b(INC|REQ)-?\d{5}\b)");
  auto waiting = bot::start(*p, {}, now).state();
  auto input =
      bot::text_input("hello, my printer on the third floor is still broken, see inc-12345", now);
  for (auto _ : state) {
    auto r = bot::resume(*p, waiting, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_regex_entity);

// The answer to a datetime question in a zone with daylight saving: the
// datetime entity (a date, a time, the zone's offset twice) and every other
// system entity run on the sentence.
void BM_turn_datetime_entity(benchmark::State& state) {
  std::string y =
      "bot: {name: datetime-bench, welcome: ask, timezone: Europe/Paris}\n"
      "variables: {when: datetime}\n"
      "dialogs:\n"
      "  ask:\n"
      "    - question: {prompt: 'When?', entity: datetime, into: when}\n"
      "    - message: 'Booked for {{when}}.'\n"
      "    - goto: ask\n";
  auto r = bot::compile(y, "datetime-bench.yaml");
  if (!r.ok()) std::abort();
  auto p = *bot::load(std::move(*r.program));
  auto waiting = bot::start(*p, {}, now).state();
  auto input = bot::text_input("could we meet tomorrow at 3:30 pm in the main office", now);
  for (auto _ : state) {
    auto res = bot::resume(*p, waiting, input);
    benchmark::DoNotOptimize(res);
  }
}
BENCHMARK(BM_turn_datetime_entity);

// The pathological entity of issue 14, `^(a+)+$`, answered with N 'a's and a
// '!': a backtracking engine takes time exponential in N.
void BM_turn_regex_entity_pathological(benchmark::State& state) {
  auto p = regex_bot("^(a+)+$");
  auto waiting = bot::start(*p, {}, now).state();
  auto input =
      bot::text_input(std::string(static_cast<std::size_t>(state.range(0)), 'a') + "!", now);
  for (auto _ : state) {
    auto r = bot::resume(*p, waiting, input);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_turn_regex_entity_pathological)->Arg(16)->Arg(20)->Unit(benchmark::kMicrosecond);
// The issue's case: 26 'a's, seconds per turn on a backtracking engine.
BENCHMARK(BM_turn_regex_entity_pathological)->Arg(26)->Iterations(1)->Unit(benchmark::kMillisecond);

// Serialized size of the order-status state mid-conversation (waiting for the
// order API, all variables that matter set).
void BM_state_size_order_status(benchmark::State& state) {
  auto p = load_sample("order-status");
  bot::variables vars;
  vars["customer_name"].set_text("Ann Example");
  auto s = bot::start(*p, vars, now).state();
  s = bot::resume(*p, s, bot::text_input("where is my order", now)).state();
  s = bot::resume(*p, s, bot::text_input("AB-123456", now)).state();
  std::size_t waiting = s.ByteSizeLong();
  s = bot::resume(
          *p, s,
          bot::action_input(
              200,
              R"({"status":"shipped","shipment":{"tracking":"1Z999AA10123456784","carrier":"UPS"}})",
              now))
          .state();
  std::size_t after = s.ByteSizeLong();
  for (auto _ : state) benchmark::DoNotOptimize(s.SerializeAsString());
  state.counters["bytes_awaiting_action"] = static_cast<double>(waiting);
  state.counters["bytes_after_answer"] = static_cast<double>(after);
}
BENCHMARK(BM_state_size_order_status);

// A synthetic bot of `intents` intents with 20 utterances each, from a
// 2,000-word vocabulary (deterministic).
std::string synthetic_bot(int intents) {
  std::mt19937 rng(42);
  std::vector<std::string> vocab;
  const char* syll[] = {"ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "gu", "ze"};
  for (int i = 0; i < 2000; ++i) {
    std::string w;
    int n = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < n; ++j) w += syll[rng() % 12];
    vocab.push_back(w + std::to_string(i % 7));
  }
  std::string y = "bot: {name: synthetic, welcome: d0}\nintents:\n";
  for (int i = 0; i < intents; ++i) {
    y += "  i" + std::to_string(i) + ":\n";
    // Each intent draws most words from its own small topic vocabulary.
    for (int u = 0; u < 20; ++u) {
      y += "    - \"";
      int len = 3 + static_cast<int>(rng() % 6);
      for (int w = 0; w < len; ++w) {
        auto idx =
            (rng() % 3 == 0) ? rng() % 2000 : (static_cast<unsigned>(i) * 10 + rng() % 10) % 2000;
        y += (w ? " " : "") + vocab[idx];
      }
      y += "\"\n";
    }
  }
  y += "dialogs:\n";
  for (int i = 0; i < intents; ++i)
    y += "  d" + std::to_string(i) + ":\n    intent: i" + std::to_string(i) +
         "\n    steps:\n      - message: \"answer " + std::to_string(i) + "\"\n";
  return y;
}

void BM_compile_200_intents_4000_utterances(benchmark::State& state) {
  auto text = synthetic_bot(200);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto r = bot::compile(text, "synthetic.yaml");
    if (!r.ok()) state.SkipWithError("synthetic bot does not compile");
    bytes = bot::serialize(*r.program).size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["program_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_compile_200_intents_4000_utterances)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_load_200_intents(benchmark::State& state) {
  auto r = bot::compile(synthetic_bot(200), "synthetic.yaml");
  for (auto _ : state) {
    auto p = bot::load(*r.program);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_load_200_intents)->Unit(benchmark::kMillisecond);

void BM_turn_200_intents(benchmark::State& state) {
  auto r = bot::compile(synthetic_bot(200), "synthetic.yaml");
  auto p = *bot::load(*r.program);
  auto idle = bot::start(*p, {}, now).state();
  auto input = bot::text_input(r.program->intents(117).utterances(3) + " please", now);
  for (auto _ : state) {
    auto res = bot::resume(*p, idle, input);
    benchmark::DoNotOptimize(res);
  }
}
BENCHMARK(BM_turn_200_intents);

// Held-out top-1 accuracy of the help-desk sample (every 5th utterance of each
// intent held out), reported as counters; the timing is that of retraining.
void BM_nlu_accuracy_help_desk(benchmark::State& state) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  bot::nlu_evaluation ev;
  for (auto _ : state) ev = bot::evaluate_holdout(*r.program, 5);
  state.counters["accuracy_pct"] = 100.0 * ev.accuracy();
  state.counters["held_out"] = static_cast<double>(ev.tested);
}
BENCHMARK(BM_nlu_accuracy_help_desk)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
