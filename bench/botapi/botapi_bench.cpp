// Bot API codec benchmarks: what the gateway pays per turn in the codec.
// Run (Release build):
//   build/release/bench/botapi/botapi_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <string>

#include "src/channels/botapi/botapi.hpp"
#include "tests/unit/botapi/botapi_reference.hpp"

namespace botapi = parley::channels::botapi;
namespace v1 = parley::bot::v1;

namespace {

// The reply the gateway builds for a turn (make_reply in actors/gateway).
botapi::reply typical_reply(std::int64_t sequence_id) {
  botapi::reply r;
  r.session_id = "57904eb6-5352-4c5e-adf6-5f100572cf5d";
  r.sequence_id = sequence_id;
  r.bot_version = "order-status@0123456789abcdef";
  if (sequence_id > 0) r.processed_sequence_ids.push_back(sequence_id);
  r.request_id = "36a73651-a46d-4d16-9a8a-fd436ed62e1a";
  return r;
}

// A typical reply: two messages, the second with a two-option menu.
v1::TurnResult typical_turn() {
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::AWAITING_INPUT);
  t.add_messages()->set_text("Your order AB-123456 shipped on Tuesday and should arrive tomorrow.");
  auto* m = t.add_messages();
  m->set_text("Is there anything else I can help you with?");
  auto* c = m->add_choices();
  c->set_label("Yes, another question");
  c->set_payload("more");
  c = m->add_choices();
  c->set_label("No, thanks");
  c->set_payload("done");
  return t;
}

parley::http::request typical_request(std::string method, std::string path, std::string body) {
  parley::http::request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  r.body = std::move(body);
  r.headers = {{"Host", "bots.example.com"},
               {"Authorization", "Bearer 6c1f2a0e9d8b4c7a8e5f3d2b1a0c9e8f"},
               {"X-Org-Id", "demo"},
               {"X-Request-ID", "36a73651-a46d-4d16-9a8a-fd436ed62e1a"},
               {"X-Runtime-CRC", "1f0e2d3c4b5a6978"},
               {"Content-Type", "application/json"},
               {"Content-Length", std::to_string(r.body.size())}};
  r.request_id = "36a73651-a46d-4d16-9a8a-fd436ed62e1a";
  return r;
}

void BM_render_continue(benchmark::State& state) {
  const auto r = typical_reply(3);
  const auto t = typical_turn();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto resp = botapi::render_continue(r, t);
    bytes = resp.body.size();
    benchmark::DoNotOptimize(resp);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_render_continue);

// The alternative to the hand-written writer: the same response built as an
// nlohmann::ordered_json DOM and dumped (the code it replaced, kept as the test
// reference). The writer is kept only while it measures faster than this.
void BM_render_continue_nlohmann(benchmark::State& state) {
  const auto r = typical_reply(3);
  const auto t = typical_turn();
  for (auto _ : state) {
    auto resp = botapi::reference::render_continue(r, t);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_continue_nlohmann);

void BM_render_start(benchmark::State& state) {
  const auto r = typical_reply(0);
  const auto t = typical_turn();
  for (auto _ : state) {
    auto resp = botapi::render_start(r, t);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_start);

void BM_render_end(benchmark::State& state) {
  const auto r = typical_reply(0);
  for (auto _ : state) {
    auto resp = botapi::render_end(r);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_end);

void BM_render_error(benchmark::State& state) {
  for (auto _ : state) {
    auto resp =
        botapi::render_error(400, "message.sequenceId: required integer",
                             "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages",
                             "36a73651-a46d-4d16-9a8a-fd436ed62e1a", 1795651200123);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_error);

void BM_render_error_nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    auto resp = botapi::reference::render_error(
        400, "message.sequenceId: required integer",
        "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages",
        "36a73651-a46d-4d16-9a8a-fd436ed62e1a", 1795651200123, std::nullopt);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_error_nlohmann);

// With response variables and intents (responseOptions set by the client).
void BM_render_continue_variables(benchmark::State& state) {
  auto r = typical_reply(3);
  r.options.variables = r.options.intents = true;
  auto add = [&](const char* name, v1::VarType type, v1::Value v) {
    r.variables.push_back(botapi::variable_out{name, type, std::move(v)});
  };
  v1::Value v;
  v.set_text("AB-123456");
  add("order_number", v1::VAR_TEXT, v);
  v.set_number(3);
  add("attempts", v1::VAR_NUMBER, v);
  v.set_number(42.5);
  add("total", v1::VAR_MONEY, v);
  v.set_boolean(true);
  add("shipped", v1::VAR_BOOLEAN, v);
  auto t = typical_turn();
  auto* i = t.add_intents();
  i->set_name("order_status");
  i->set_confidence(0.83f);
  for (auto _ : state) {
    auto resp = botapi::render_continue(r, t);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_render_continue_variables);

void BM_parse_continue(benchmark::State& state) {
  const auto req = typical_request(
      "POST", "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages",
      R"({"message":{"type":"text","sequenceId":3,"inReplyToMessageId":"fd8b1ec6-6c6c-8d6b-b392-c135627c85cb","text":"where is my order AB-123456?"}})");
  for (auto _ : state) {
    auto parsed = botapi::parse_continue(req);
    if (!parsed) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_parse_continue);

void BM_parse_continue_choice(benchmark::State& state) {
  const auto req = typical_request(
      "POST", "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages",
      R"({"message":{"type":"choice","sequenceId":4,"choiceIndex":2},"responseOptions":{"variables":{"include":true,"onlyChanged":true},"intents":true}})");
  for (auto _ : state) {
    auto parsed = botapi::parse_continue(req);
    if (!parsed) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_parse_continue_choice);

void BM_parse_start(benchmark::State& state) {
  const auto req = typical_request(
      "POST", "/v5.3.0/bots/order-status/sessions",
      R"({"externalSessionKey":"57904eb6-5352-4c5e-adf6-5f100572cf5d","message":{"text":"Hello"},)"
      R"("forceConfig":{"endpoint":"https://example.my.salesforce.com/"},"tz":"America/Los_Angeles",)"
      R"("variables":[{"name":"customer_name","type":"text","value":"Ada"},{"name":"qty","type":"number","value":2}]})");
  for (auto _ : state) {
    auto parsed = botapi::parse_start(req);
    if (!parsed) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_parse_start);

void BM_parse_end(benchmark::State& state) {
  auto req = typical_request("DELETE", "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d", "");
  req.headers.emplace_back("X-Session-End-Reason", "UserRequest");
  for (auto _ : state) {
    auto parsed = botapi::parse_end(req);
    if (!parsed) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_parse_end);

void BM_match_route(benchmark::State& state) {
  const std::string path = "/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages";
  for (auto _ : state) {
    auto r = botapi::match_route("POST", path);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_match_route);

void BM_message_id(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto id = botapi::message_id("57904eb6-5352-4c5e-adf6-5f100572cf5d", 3, i++ & 3);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_message_id);

}  // namespace

BENCHMARK_MAIN();
