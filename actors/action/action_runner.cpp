#include "actors/action/action_runner.hpp"

#include <chrono>
#include <map>
#include <string>

#include "src/http/outbound.hpp"
#include "src/metrics/metrics.hpp"

namespace parley::actors {

/// The actions' metric families; shared with the callbacks in flight, which may finish
/// after the runner is gone.
struct action_runner::probe {
  explicit probe(prometheus::Registry* reg) {
    if (reg == nullptr) return;
    for (const char* o : {"ok", "http_error", "timeout", "refused", "connect", "tls", "too_large",
                          "bad_request", "io", "shutdown", "error"})
      outcomes[o] = &metrics::counter(*reg, "parley_action_requests_total",
                                      "Bot HTTP actions by outcome.", {{"outcome", o}});
    duration = &metrics::histogram(
        *reg, "parley_action_duration_seconds",
        "Time from an action's start to its answer or failure, DNS and connecting included.",
        {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  }
  void record(const std::string& outcome, double seconds) {
    if (duration == nullptr) return;
    auto it = outcomes.find(outcome);
    (it == outcomes.end() ? outcomes.at("error") : it->second)->Increment();
    duration->Observe(seconds);
  }
  std::map<std::string, prometheus::Counter*> outcomes;
  prometheus::Histogram* duration = nullptr;
};

namespace {

std::string outcome_of(const std::string& code) {
  static const std::map<std::string, std::string> by_code = {
      {"http_timeout", "timeout"},   {"egress_refused", "refused"},   {"http_connect", "connect"},
      {"http_tls", "tls"},           {"http_too_large", "too_large"}, {"bad_url", "bad_request"},
      {"bad_header", "bad_request"}, {"bad_request", "bad_request"},  {"http_io", "io"},
      {"http_shutdown", "shutdown"},
  };
  auto it = by_code.find(code);
  return it == by_code.end() ? "error" : it->second;
}

}  // namespace

action_runner::action_runner(http::outbound_client& client, prometheus::Registry* registry)
    : client_(client), probe_(std::make_shared<probe>(registry)) {}

action_runner::~action_runner() = default;

void action_runner::run(bot::v1::ActionRequest request,
                        std::function<void(bot::v1::ActionResult)> done) {
  http::outbound_request r;
  r.method = request.method().empty() ? "GET" : request.method();
  r.url = request.url();
  for (const auto& h : request.headers()) r.headers.emplace_back(h.name(), h.value());
  r.body = request.body();
  if (!r.body.empty() && http::find_header(r.headers, "Content-Type") == nullptr)
    r.headers.emplace_back("Content-Type", "application/json");
  uint32_t ms = request.timeout_ms() == 0 ? 10000 : std::min<uint32_t>(request.timeout_ms(), 10000);
  r.timeout = std::chrono::milliseconds(ms);
  auto started = std::chrono::steady_clock::now();
  client_.send(std::move(r), [probe = probe_, started,
                              done = std::move(done)](result<http::client_response> res) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    bot::v1::ActionResult out;
    if (res) {
      probe->record(res->status >= 400 ? "http_error" : "ok", seconds);
      out.set_ok(true);
      out.set_status(res->status);
      out.set_body(std::move(res->body));
    } else {
      probe->record(outcome_of(res.err().code), seconds);
      out.set_ok(false);
      out.set_error(res.err().message);
    }
    done(std::move(out));
  });
}

}  // namespace parley::actors
