// parleyctl bot developer commands: validate, compile, chat, test, nlu.
// They run with no servers: everything happens in this process.

#include "src/app/parleyctl.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "src/bot/bot.hpp"
#include "src/bot/conversation_test.hpp"
#include "src/bot/nlu_eval.hpp"
#include "src/common/clock.hpp"

#if __has_include("src/http/client.hpp")
#include "src/http/client.hpp"
#define PARLEYCTL_HAVE_HTTP 1
#endif

namespace parley::ctl {

namespace {

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

/// Compiles and prints diagnostics to stderr; nullptr on errors.
std::shared_ptr<const bot::program> compile_or_report(const std::string& file, bool quiet_ok) {
  auto res = bot::compile_file(file);
  for (const auto& d : res.diagnostics) std::cerr << d.to_string() << "\n";
  if (!res.ok()) {
    std::cerr << file << ": " << res.error_count() << " error(s), " << res.warning_count()
              << " warning(s)\n";
    return nullptr;
  }
  auto loaded = bot::load(std::move(*res.program));
  if (!loaded) {
    std::cerr << file << ": " << loaded.err().message << "\n";
    return nullptr;
  }
  if (!quiet_ok)
    std::cout << file << ": ok, program " << (*loaded)->id() << " (" << res.warning_count()
              << " warning(s))\n";
  return *loaded;
}

void print_messages(const v1::TurnResult& r) {
  for (const auto& m : r.messages()) {
    std::cout << "bot> " << m.text() << "\n";
    for (int i = 0; i < m.choices_size(); ++i)
      std::cout << "     [" << i + 1 << "] " << m.choices(i).label() << "\n";
  }
}

/// Answers one action request for `chat`: from the answers file, over HTTP, or
/// by asking the person at the terminal.
v1::Input answer_action(const v1::ActionRequest& req, const nlohmann::json& answers, bool http) {
  std::cout << "     (action " << req.name() << ": " << req.method() << " " << req.url()
            << (req.body().empty() ? "" : " " + req.body()) << ")\n";
  if (answers.contains(req.name())) {
    const auto& a = answers[req.name()];
    if (a.contains("error"))
      return bot::action_failure_input(a["error"].dump(), common::now_unix_s());
    return bot::action_input(a.value("status", 200), a.contains("body") ? a["body"].dump() : "",
                             common::now_unix_s());
  }
  if (http) {
#ifdef PARLEYCTL_HAVE_HTTP
    // Secrets come from the environment: {{secret.NAME}} reads PARLEY_SECRET_NAME.
    auto resolved =
        bot::resolve_secrets(req, [](std::string_view name) -> std::optional<std::string> {
          const char* v = std::getenv(("PARLEY_SECRET_" + std::string(name)).c_str());
          if (!v) return std::nullopt;
          return std::string(v);
        });
    if (!resolved) return bot::action_failure_input(resolved.err().message, common::now_unix_s());
    parley::http::client_request hr;
    hr.method = resolved->method();
    hr.url = resolved->url();
    for (const auto& h : resolved->headers()) hr.headers.emplace_back(h.name(), h.value());
    if (!resolved->body().empty()) hr.headers.emplace_back("Content-Type", "application/json");
    hr.body = resolved->body();
    hr.timeout = std::chrono::milliseconds(resolved->timeout_ms());
    auto resp = parley::http::fetch(hr);
    if (!resp) return bot::action_failure_input(resp.err().message, common::now_unix_s());
    std::cout << "     (HTTP " << resp->status << ")\n";
    return bot::action_input(resp->status, resp->body, common::now_unix_s());
#else
    std::cout << "     (this parleyctl was built without the HTTP client)\n";
#endif
  }
  std::cout << "     answer as JSON (or 'error <message>', or '<status> <json>'): " << std::flush;
  std::string line;
  if (!std::getline(std::cin, line))
    return bot::action_failure_input("no answer", common::now_unix_s());
  if (line.rfind("error", 0) == 0)
    return bot::action_failure_input(line.substr(5), common::now_unix_s());
  int status = 200;
  if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) {
    status = std::atoi(line.c_str());
    auto sp = line.find(' ');
    line = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  return bot::action_input(status, line, common::now_unix_s());
}

int cmd_chat(const std::string& file, const std::string& actions_file, bool http,
             const std::vector<std::string>& sets) {
  auto prog = compile_or_report(file, true);
  if (!prog) return 1;
  nlohmann::json answers = nlohmann::json::object();
  if (!actions_file.empty()) {
    auto text = read_file(actions_file);
    if (!text) {
      std::cerr << actions_file << ": cannot read the file\n";
      return 1;
    }
    answers = nlohmann::json::parse(*text, nullptr, false);
    if (answers.is_discarded() || !answers.is_object()) {
      std::cerr << actions_file
                << ": expected a JSON object {\"action\": {\"status\": 200, \"body\": {...}}}\n";
      return 1;
    }
  }
  bot::variables vars;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos) {
      std::cerr << "--set wants NAME=VALUE, got '" << s << "'\n";
      return 2;
    }
    vars[s.substr(0, eq)].set_text(s.substr(eq + 1));
  }
  std::cout << "Chatting with " << prog->id() << ". Commands: /state, /quit.\n";
  auto r = bot::start(*prog, vars, common::now_unix_s());
  for (;;) {
    print_messages(r);
    if (!r.error().empty()) std::cout << "     (error: " << r.error() << ")\n";
    if (r.state().status() == v1::AWAITING_ACTION) {
      r = bot::resume(*prog, r.state(), answer_action(r.action(), answers, http));
      continue;
    }
    if (r.state().status() == v1::ENDED) {
      std::cout << "(session ended: " << v1::EndReason_Name(r.end_reason()) << ")\n";
      return 0;
    }
    if (r.state().status() == v1::TRANSFERRED) {
      std::cout << "(transferred to queue '" << r.transfer().queue() << "')\n";
      return 0;
    }
    std::cout << "you> " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line) || line == "/quit") return 0;
    if (line == "/state") {
      std::cout << r.state().DebugString() << "(" << r.state().ByteSizeLong()
                << " bytes serialized)\n";
      r.clear_messages();
      r.clear_error();
      continue;
    }
    auto state = r.state();
    // A typed menu number selects that button.
    r = bot::resume(*prog, state, bot::text_input(line, common::now_unix_s()));
    if (!r.intents().empty())
      std::cout << "     (intent " << r.intents(0).name() << " " << r.intents(0).confidence()
                << ", matched by " << (r.matched_by().empty() ? "-" : r.matched_by()) << ")\n";
    for (const auto& e : r.entities())
      std::cout << "     (entity " << e.entity() << " = " << e.value() << ")\n";
  }
}

std::string default_tests_file(const std::string& bot_file) {
  std::filesystem::path p(bot_file);
  auto stem = p.stem().string();
  return (p.parent_path() / (stem + ".tests.yaml")).string();
}

int cmd_test(const std::string& file, std::string tests_file, bool verbose) {
  auto prog = compile_or_report(file, true);
  if (!prog) return 1;
  if (tests_file.empty()) tests_file = default_tests_file(file);
  auto text = read_file(tests_file);
  if (!text) {
    std::cerr << tests_file << ": cannot read the test file\n";
    return 1;
  }
  auto results = bot::run_conversation_tests(*prog, *text, tests_file);
  if (!results) {
    std::cerr << results.err().message << "\n";
    return 1;
  }
  std::size_t failed = 0;
  for (const auto& t : *results) {
    if (t.passed) {
      std::cout << "PASS  " << t.name << "\n";
      if (verbose) std::cout << t.transcript;
      continue;
    }
    ++failed;
    std::cout << "FAIL  " << t.name << " (" << tests_file << ":" << t.line << ")\n    " << t.failure
              << "\n  conversation so far:\n"
              << t.transcript;
  }
  std::cout << results->size() - failed << " passed, " << failed << " failed\n";
  return failed ? 1 : 0;
}

nlohmann::json rates_json(const bot::threshold_rates& r) {
  return {{"threshold", r.threshold},
          {"in_scope_accuracy", r.in_scope_accuracy},
          {"correct_kept", r.correct_kept},
          {"oos_recall", r.oos_recall}};
}

struct nlu_options {
  std::string file, oos_file;
  int k = 5;
  bool misses = false, folds = false, json = false;
  std::size_t confused = 10;
};

int cmd_nlu(const nlu_options& o) {
  auto res = bot::compile_file(o.file);
  if (!res.ok()) {
    for (const auto& d : res.diagnostics) std::cerr << d.to_string() << "\n";
    return 1;
  }
  std::vector<std::string> oos;
  if (!o.oos_file.empty()) {
    std::ifstream in(o.oos_file);
    if (!in) {
      std::cerr << "--oos: cannot read " << o.oos_file << "\n";
      return 1;
    }
    oos = bot::read_oos(in);
    if (oos.empty()) {
      std::cerr << "--oos: " << o.oos_file << " has no messages (one per line)\n";
      return 1;
    }
  }
  auto ev = bot::evaluate_holdout(*res.program, o.k, 1, oos);
  std::size_t utterances = 0;
  for (const auto& in : res.program->intents()) utterances += in.utterances_size();
  const double threshold = res.program->confidence_threshold();
  auto at = bot::rates_at(ev, threshold);
  std::vector<double> steps;
  for (int i = 0; i <= 20; ++i) steps.push_back(i * 0.05);
  auto curve = bot::threshold_curve(ev, steps);
  const std::size_t top_confused = std::min(o.confused, ev.confusions.size());

  if (o.json) {
    nlohmann::json j = {{"file", o.file},
                        {"intents", res.program->intents_size()},
                        {"utterances", utterances},
                        {"trained", ev.train},
                        {"held_out", ev.tested},
                        {"holdout_every", o.k},
                        {"top1_accuracy", ev.accuracy()},
                        {"correct", ev.correct},
                        {"threshold", threshold},
                        {"at_threshold", rates_json(at)}};
    if (!oos.empty()) {
      j["oos_messages"] = oos.size();
      j["oos_halves"] = {rates_json(bot::rates_at(ev, threshold, 0)),
                         rates_json(bot::rates_at(ev, threshold, 1))};
    }
    auto& c = j["curve"] = nlohmann::json::array();
    for (const auto& r : curve) c.push_back(rates_json(r));
    auto& cf = j["confused"] = nlohmann::json::array();
    for (std::size_t i = 0; i < top_confused; ++i)
      cf.push_back({{"expected", ev.confusions[i].expected},
                    {"got", ev.confusions[i].got},
                    {"count", ev.confusions[i].count}});
    if (o.misses) j["misses"] = ev.misses;
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("%s: %d intents, %zu utterances; trained on %zu, held out %zu (every %d-th)\n",
              o.file.c_str(), res.program->intents_size(), utterances, ev.train, ev.tested, o.k);
  std::printf("top-1 accuracy %.1f%% (%zu/%zu); right and above the threshold %.2f: %.1f%%\n",
              100.0 * ev.accuracy(), ev.correct, ev.tested, threshold,
              100.0 * at.in_scope_accuracy);
  std::printf("at the threshold %.2f: in-scope accuracy %.1f%%, correct answers kept %.1f%%",
              threshold, 100.0 * at.in_scope_accuracy, 100.0 * at.correct_kept);
  if (!oos.empty()) {
    auto h0 = bot::rates_at(ev, threshold, 0), h1 = bot::rates_at(ev, threshold, 1);
    std::printf(", out-of-scope recall %.1f%% of %zu (halves %.1f%% and %.1f%%)",
                100.0 * at.oos_recall, oos.size(), 100.0 * h0.oos_recall, 100.0 * h1.oos_recall);
  }
  std::printf("\n\nthreshold  in-scope acc  correct kept%s\n", oos.empty() ? "" : "  oos recall");
  for (const auto& r : curve) {
    std::printf("     %.2f        %5.1f%%        %5.1f%%", r.threshold, 100.0 * r.in_scope_accuracy,
                100.0 * r.correct_kept);
    if (!oos.empty()) std::printf("      %5.1f%%", 100.0 * r.oos_recall);
    std::printf("\n");
  }
  if (top_confused) {
    std::printf("\nmost confused (expected -> got):\n");
    for (std::size_t i = 0; i < top_confused; ++i)
      std::printf("  %3zu  %s -> %s\n", ev.confusions[i].count, ev.confusions[i].expected.c_str(),
                  ev.confusions[i].got.c_str());
  }
  if (o.misses)
    for (const auto& m : ev.misses) std::printf("  miss: %s\n", m.c_str());
  if (o.folds) {
    std::size_t correct = 0, tested = 0;
    std::printf("%d-fold cross-validation:", o.k);
    for (int off = 0; off < o.k; ++off) {
      auto f = bot::evaluate_holdout(*res.program, o.k, off);
      correct += f.correct;
      tested += f.tested;
      std::printf(" %.1f%%", 100.0 * f.accuracy());
    }
    std::printf("; overall %.1f%% (%zu/%zu)\n", tested ? 100.0 * correct / tested : 0.0, correct,
                tested);
  }
  return 0;
}

}  // namespace

void add_bot_commands(CLI::App& app, int& exit_code) {
  auto* validate = app.add_subcommand(
      "validate", "Check a bot file and print its diagnostics (exit 1 on errors)");
  static std::string v_file;
  validate->add_option("FILE", v_file, "bot definition (YAML or JSON)")->required();
  validate->callback([&exit_code] { exit_code = compile_or_report(v_file, false) ? 0 : 1; });

  auto* compile = app.add_subcommand("compile", "Compile a bot file into a program (protobuf)");
  static std::string c_file, c_out;
  compile->add_option("FILE", c_file, "bot definition")->required();
  compile->add_option("-o,--output", c_out, "where to write the program")->required();
  compile->callback([&exit_code] {
    auto res = bot::compile_file(c_file);
    for (const auto& d : res.diagnostics) std::cerr << d.to_string() << "\n";
    if (!res.ok()) {
      exit_code = 1;
      return;
    }
    std::ofstream out(c_out, std::ios::binary);
    out << bot::serialize(*res.program);
    if (!out) {
      std::cerr << c_out << ": cannot write\n";
      exit_code = 1;
      return;
    }
    std::cout << c_out << ": program " << res.program->id() << "\n";
  });

  auto* chat = app.add_subcommand("chat", "Talk to a bot in the terminal, with no servers");
  static std::string ch_file, ch_actions;
  static bool ch_http = false;
  static std::vector<std::string> ch_sets;
  chat->add_option("FILE", ch_file, "bot definition")->required();
  chat->add_option("--actions", ch_actions,
                   "JSON file answering actions: {\"name\": {\"status\": 200, \"body\": {...}}}");
  chat->add_flag("--http", ch_http,
                 "call action endpoints for real; {{secret.NAME}} comes from $PARLEY_SECRET_NAME");
  chat->add_option("--set", ch_sets, "client variable at start, NAME=VALUE (repeatable)");
  chat->callback([&exit_code] { exit_code = cmd_chat(ch_file, ch_actions, ch_http, ch_sets); });

  auto* test =
      app.add_subcommand("test", "Run a bot's conversation tests (FILE.tests.yaml by default)");
  static std::string t_file, t_tests;
  static bool t_verbose = false;
  test->add_option("FILE", t_file, "bot definition")->required();
  test->add_option("--tests", t_tests, "conversation test file");
  test->add_flag("-v,--verbose", t_verbose, "print every conversation");
  test->callback([&exit_code] { exit_code = cmd_test(t_file, t_tests, t_verbose); });

  auto* nlu = app.add_subcommand("nlu", "Measure intent accuracy on a held-out split");
  static nlu_options n;
  nlu->add_option("FILE", n.file, "bot definition")->required();
  nlu->add_option("--holdout-every", n.k, "hold out every k-th utterance of each intent")
      ->check(CLI::Range(2, 100));
  nlu->add_option("--oos", n.oos_file,
                  "out-of-scope messages, one per line (# comments), for the recall at each "
                  "threshold");
  nlu->add_option("--confused", n.confused, "how many confused intent pairs to list (10)");
  nlu->add_flag("--misses", n.misses, "list the misclassified utterances");
  nlu->add_flag("--folds", n.folds, "also run the k-fold cross-validation (every offset)");
  nlu->add_flag("--json", n.json, "print the report as JSON");
  nlu->callback([&exit_code] { exit_code = cmd_nlu(n); });
}

}  // namespace parley::ctl
