#pragma once
// A runtime on CAF's test_coordinator and the in-memory snapshot store: every actor
// runs on the test's thread when the test calls run(), delayed messages (the
// supervisors' ticks, the orphaned-commit fence) fire when it calls fire_timers(), and
// the store completes or fails what the test tells it to. No server, no sleep, no
// second thread.

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <string>
#include <vector>

#include "actors/registry/bot_registry.hpp"
#include "actors/runtime/runtime.hpp"
#include "actors/snapshot/memory_snapshot_store.hpp"
#include "src/bot/bot.hpp"
#include "src/store/catalog/quarantine.hpp"

namespace parley::actors::testing {

/// Asks a question, echoes the answer, asks again; its error dialog says so.
inline const char* echo_bot = R"(bot:
  name: echo
  welcome: welcome
  error: oops
variables:
  said: text
dialogs:
  welcome:
    - question:
        prompt: "Say something."
        entity: text
        into: said
    - message: "You said {{said}}."
    - goto: welcome
  oops:
    - message: "Something went wrong."
    - goto: welcome
)";

/// What one submitted message got: every answer, so a test checks there was one.
struct answers {
  std::vector<turn_outcome> got;
  /// The texts the one answer shows.
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    if (got.size() == 1 && got[0].result)
      for (const auto& m : got[0].result->messages()) out.push_back(m.text());
    return out;
  }
};
using answers_ptr = std::shared_ptr<answers>;

class runtime_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    cfg_.set("logger.verbosity", caf::atom("quiet"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    program_source src;
    src.load = [](const std::string&, const std::string& bot, uint32_t v,
                  std::function<void(result<std::pair<uint32_t, std::string>>)> done) {
      if (bot != "echo" || v > 1) return done(make_error("not_found", "no such bot"));
      auto r = bot::compile(echo_bot, "echo.yaml");
      if (!r.ok()) return done(make_error("internal", "the echo bot does not compile"));
      done(std::make_pair(uint32_t{1}, bot::serialize(*r.program)));
    };
    src.changes = [](int64_t, std::function<void(result<std::vector<store::active_change>>)> done) {
      done(std::vector<store::active_change>{});
    };
    registry_ = std::make_unique<bot_registry>(src);
  }

  void TearDown() override {
    // The actors exit (and read the runtime's counters) before the runtime goes.
    if (rt_) rt_->stop();
    run();
    rt_.reset();
    registry_.reset();
    sys_.reset();
  }

  /// Starts the runtime (call after setting options_).
  void start_runtime() {
    runtime::deps d;
    d.system = sys_.get();
    d.snapshots = &store_;
    d.registry = registry_.get();
    d.metrics = &metrics_;
    // Generic: the quarantine record's type is the store's (only these fields are read).
    d.quarantine = [this](auto q) { quarantined_.push_back({q.message_id, q.attempts}); };
    rt_ = std::make_unique<runtime>(d, options_);
  }

  /// Submits a message; its answers land in the returned list (on this thread: the
  /// coordinator runs every actor here).
  answers_ptr submit(inbound in) {
    auto a = std::make_shared<answers>();
    rt_->submit(std::move(in), [a](turn_outcome out) { a->got.push_back(std::move(out)); });
    return a;
  }

  static inbound start_in(const std::string& session) {
    inbound in;
    in.what = inbound::kind::start;
    in.tenant = "t";
    in.bot = "echo";
    in.channel = "botapi";
    in.session_id = session;
    in.now_unix = 1000;
    return in;
  }

  static inbound text_in(const std::string& session, const std::string& message_id,
                         int64_t sequence_id, const std::string& text) {
    inbound in;
    in.what = inbound::kind::text;
    in.tenant = "t";
    in.channel = "botapi";
    in.session_id = session;
    in.message_id = message_id;
    in.sequence_id = sequence_id;
    in.text = text;
    in.now_unix = 1001;
    return in;
  }

  /// Runs every actor until no message is left.
  void run() { sched_->run(); }
  /// Fires every delayed message due so far (whatever its delay), then runs.
  void fire_timers() {
    sched_->trigger_timeouts();
    run();
  }

  /// Starts conversation `session` and checks its welcome.
  void started(const std::string& session) {
    auto a = submit(start_in(session));
    run();
    ASSERT_EQ(a->got.size(), 1u);
    ASSERT_EQ(a->got[0].st, turn_outcome::status::ok) << a->got[0].message;
    ASSERT_EQ(a->texts(), std::vector<std::string>{"Say something."});
  }

  /// A sample of the runtime's metrics ("name{labels}" as the text format writes it);
  /// -1 when absent.
  double metric(const std::string& series) {
    auto text = prometheus::TextSerializer{}.Serialize(metrics_.Collect());
    auto pos = text.find("\n" + series + " ");
    return pos == std::string::npos ? -1 : std::stod(text.substr(pos + series.size() + 2));
  }

  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  prometheus::Registry metrics_;
  memory_snapshot_store store_;
  std::unique_ptr<bot_registry> registry_;
  struct quarantine_record {
    std::string message_id;
    int attempts = 0;
  };
  std::vector<quarantine_record> quarantined_;
  runtime_options options_;
  std::unique_ptr<runtime> rt_;
};

}  // namespace parley::actors::testing
