#include "actors/runtime/runtime_probe.hpp"

#include "src/metrics/metrics.hpp"
#include "src/store/catalog/canary.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <atomic>
#include <iterator>
#include <tuple>

namespace parley::actors {

namespace {

using metrics::counter;

constexpr const char* activations_help = "Conversation actors activated, by source.";

std::atomic<std::uint64_t> next_probe_id{1};

prometheus::Family<prometheus::Counter>& family(prometheus::Registry& reg, const char* name,
                                                const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(reg);
}

}  // namespace

struct runtime_probe::version_samples {
  prometheus::Counter* turns;
  prometheus::Counter* sessions;
  prometheus::Counter* fallbacks;
  prometheus::Counter* transfers;
  prometheus::Counter* ended;
  prometheus::Counter* action_failures;
  prometheus::Counter* error_dialogs;
};

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
                            "that died with it in flight.")),
      replay_cuts_(counter(reg, "parley_transcript_replay_answers_cut_total",
                           "Action answers longer than a turn's replay record keeps (16 KiB of "
                           "body, 1 KiB of error): their conversations cannot be replayed.")),
      bot_turns_(family(reg, "parley_bot_turns_total",
                        "Turns run by each bot version (tenant, bot, version).")),
      bot_sessions_(family(reg, "parley_bot_sessions_started_total",
                           "Sessions started on each bot version.")),
      bot_fallbacks_(family(reg, "parley_bot_fallbacks_total",
                            "Turns of each bot version whose input matched nothing (the "
                            "fallback); over parley_bot_turns_total, the fallback rate.")),
      bot_transfers_(family(reg, "parley_bot_transfers_total",
                            "Sessions of each bot version handed to an agent.")),
      bot_ended_(family(reg, "parley_bot_sessions_ended_total",
                        "Sessions of each bot version that the bot ended without a transfer "
                        "(containment: this over this plus parley_bot_transfers_total).")),
      bot_action_failures_(family(reg, "parley_bot_action_failures_total",
                                  "Actions of each bot version that failed (transport, "
                                  "non-2xx status or invalid JSON).")),
      bot_error_dialogs_(family(reg, "parley_bot_error_dialogs_total",
                                "Turns of each bot version that hit a runtime error (the "
                                "error dialog ran, or the session ended).")),
      id_(next_probe_id.fetch_add(1)) {
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
runtime_probe::~runtime_probe() = default;

const runtime_probe::version_samples& runtime_probe::samples_of(const std::string& tenant,
                                                                const std::string& bot,
                                                                std::int64_t version) {
  // Consecutive turns on a lane are mostly of one bot version: the last one found is
  // kept per thread, so such a turn takes no lock and builds no key.
  thread_local struct {
    std::uint64_t probe = 0;  // id_, not the address: a later probe may reuse it
    std::string tenant, bot;
    std::int64_t version = -1;
    const version_samples* samples = nullptr;
  } last;
  if (last.probe == id_ && last.version == version && last.bot == bot && last.tenant == tenant)
    return *last.samples;
  std::string key = tenant;
  key += '\0';
  key += bot;
  key += '\0';
  key += std::to_string(version);
  std::lock_guard<std::mutex> lock(versions_mutex_);
  auto& slot = versions_[key];
  if (!slot) {
    prometheus::Labels l{{"tenant", tenant}, {"bot", bot}, {"version", std::to_string(version)}};
    slot = std::make_unique<version_samples>(version_samples{
        &bot_turns_.Add(l), &bot_sessions_.Add(l), &bot_fallbacks_.Add(l), &bot_transfers_.Add(l),
        &bot_ended_.Add(l), &bot_action_failures_.Add(l), &bot_error_dialogs_.Add(l)});
  }
  // The map's entries live as long as the probe, so the pointer stays valid.
  last = {id_, tenant, bot, version, slot.get()};
  return *slot;
}

void runtime_probe::bot_turn(const std::string& tenant, const turn_outcome& out, bool started) {
  if (out.st != turn_outcome::status::ok || !out.result || out.bot.empty()) return;
  const auto& r = *out.result;
  const auto& v = samples_of(tenant, out.bot, out.bot_version);
  v.turns->Increment();
  if (started) v.sessions->Increment();
  if (r.matched_by() == "fallback") v.fallbacks->Increment();
  if (r.has_transfer()) v.transfers->Increment();
  if (r.state().status() == bot::v1::ENDED) v.ended->Increment();
  if (r.action_failed()) v.action_failures->Increment();
  if (r.error_dialog()) v.error_dialogs->Increment();
}

std::vector<store::version_delta> runtime_probe::version_totals() {
  std::vector<store::version_delta> out;
  std::lock_guard<std::mutex> lock(versions_mutex_);
  out.reserve(versions_.size());
  for (const auto& [key, v] : versions_) {
    // key: tenant \0 bot \0 version (samples_of)
    auto a = key.find('\0');
    auto b = key.find('\0', a + 1);
    store::version_delta d;
    d.tenant = key.substr(0, a);
    d.bot = key.substr(a + 1, b - a - 1);
    d.version = std::stoi(key.substr(b + 1));
    auto n = [](const prometheus::Counter* c) { return static_cast<std::int64_t>(c->Value()); };
    d.counts = {n(v->turns), n(v->sessions),        n(v->fallbacks),    n(v->transfers),
                n(v->ended), n(v->action_failures), n(v->error_dialogs)};
    out.push_back(std::move(d));
  }
  return out;
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
void runtime_probe::replay_answer_cut() { replay_cuts_.Increment(); }

}  // namespace parley::actors
