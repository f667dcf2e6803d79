#include "src/bot/conversation_test.hpp"

// GCC 12 at -O3 reports -Wdangling-pointer inside yaml-cpp 0.7's inlined Node
// copies (a false positive: Node holds shared ownership of its memory).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>

#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "src/bot/text.hpp"

namespace parley::bot {

namespace {

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    auto o = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = yaml_to_json(it->second);
    return o;
  }
  if (n.IsSequence()) {
    auto a = nlohmann::json::array();
    for (const auto& i : n) a.push_back(yaml_to_json(i));
    return a;
  }
  if (n.IsNull()) return nullptr;
  // Plain scalars that look like numbers or booleans become those; quoted
  // scalars stay texts.
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {
    if (s == "true" || s == "false") return s == "true";
    char* endp = nullptr;
    double d = std::strtod(s.c_str(), &endp);
    if (!s.empty() && *endp == '\0') return d;
  }
  return s;
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

std::string choices_text(const v1::Outbound& m) {
  std::string out;
  for (int i = 0; i < m.choices_size(); ++i) out += (i ? " | " : "") + m.choices(i).label();
  return out;
}

struct test_run {
  const program& prog;
  std::int64_t now = 0;
  std::map<std::string, YAML::Node> answers;
  v1::State state;
  std::deque<v1::Outbound> pending;
  std::vector<std::string> actions_called;  // not yet asserted
  std::string last_intent;
  std::string transcript;
  std::string failure;
  v1::TurnResult last;

  void absorb(v1::TurnResult r) {
    for (;;) {
      for (const auto& m : r.messages()) {
        pending.push_back(m);
        transcript += "  bot>  " + m.text();
        if (m.choices_size()) transcript += "  [" + choices_text(m) + "]";
        transcript += "\n";
      }
      if (!r.intents().empty()) last_intent = r.intents(0).name();
      state = r.state();
      if (state.status() != v1::AWAITING_ACTION) {
        last = std::move(r);
        return;
      }
      const auto& name = r.action().name();
      actions_called.push_back(name);
      transcript += "  (action " + name + ": " + r.action().method() + " " + r.action().url() +
                    (r.action().body().empty() ? "" : " " + r.action().body()) + ")\n";
      auto it = answers.find(name);
      if (it == answers.end()) {
        failure = "the bot called action '" + name +
                  "' but the test gives no answer for it (add it under 'actions')";
        last = std::move(r);
        return;
      }
      const auto& a = it->second;
      v1::Input in;
      if (a["error"]) {
        in = action_failure_input(a["error"].Scalar(), now);
      } else {
        int status = a["status"] ? a["status"].as<int>() : 200;
        std::string body = a["body"] ? yaml_to_json(a["body"]).dump() : "";
        in = action_input(status, body, now);
      }
      r = resume(prog, state, in);
    }
  }

  bool expect_bot(const YAML::Node& spec) {
    std::string want_text;
    std::vector<std::string> want_choices;
    bool has_choices = false;
    if (spec.IsMap()) {
      if (spec["text"]) want_text = spec["text"].Scalar();
      if (spec["choices"]) {
        has_choices = true;
        for (const auto& c : spec["choices"]) want_choices.push_back(c.Scalar());
      }
    } else {
      want_text = spec.Scalar();
    }
    if (pending.empty()) {
      failure = "expected the bot to say " + quote(want_text) + "\n    but it said nothing more";
      if (state.status() != v1::AWAITING_INPUT)
        failure += " (the session is " + std::string(status_name(state.status())) + ")";
      if (!last.error().empty()) failure += "\n    runtime error: " + last.error();
      return false;
    }
    auto m = pending.front();
    pending.pop_front();
    if (m.text() != want_text) {
      failure = "expected the bot to say\n      " + quote(want_text) + "\n    but it said\n      " +
                quote(m.text());
      return false;
    }
    if (has_choices) {
      std::vector<std::string> got;
      for (const auto& c : m.choices()) got.push_back(c.label());
      if (got != want_choices) {
        std::string w;
        for (const auto& c : want_choices) w += (w.empty() ? "" : " | ") + c;
        failure = "expected the choices\n      [" + w + "]\n    but the bot offered\n      [" +
                  choices_text(m) + "]";
        return false;
      }
    }
    return true;
  }

  bool no_unread(const char* before) {
    if (pending.empty()) return true;
    failure = std::string("the bot said ") + quote(pending.front().text()) +
              " which the test does not expect (add a 'bot' step " + before + ")";
    return false;
  }

  bool step(const YAML::Node& s) {
    if (!s.IsMap() || s.size() != 1) {
      failure =
          "a test step is a map with one key (user, payload, bot, intent, action, vars, "
          "status, transfer)";
      return false;
    }
    auto key = s.begin()->first.Scalar();
    const YAML::Node v = s.begin()->second;  // a copy: -> points into a temporary
    if (key == "user" || key == "payload") {
      if (!no_unread("before this user message")) return false;
      transcript += "  user> " + v.Scalar() + "\n";
      last_intent.clear();
      absorb(resume(prog, state,
                    key == "user" ? text_input(v.Scalar(), now) : payload_input(v.Scalar(), now)));
      return failure.empty();
    }
    if (key == "bot") return expect_bot(v);
    if (key == "intent") {
      if (last_intent != v.Scalar()) {
        failure = "expected intent '" + v.Scalar() + "' but the top intent was '" +
                  (last_intent.empty() ? "(none)" : last_intent) + "'";
        return false;
      }
      return true;
    }
    if (key == "action") {
      if (actions_called.empty() || actions_called.front() != v.Scalar()) {
        failure = "expected a call of action '" + v.Scalar() + "' but " +
                  (actions_called.empty() ? std::string("no action was called")
                                          : "action '" + actions_called.front() + "' was");
        return false;
      }
      actions_called.erase(actions_called.begin());
      return true;
    }
    if (key == "vars") {
      for (auto it = v.begin(); it != v.end(); ++it) {
        auto name = it->first.Scalar();
        auto got = get_variable(prog, state, name);
        if (!got) {
          failure = "the bot has no variable '" + name + "'";
          return false;
        }
        auto want = it->second.IsNull() ? std::string() : it->second.Scalar();
        if (to_text(*got) != want) {
          failure = "expected variable '" + name + "' to be " + quote(want) + " but it is " +
                    quote(to_text(*got));
          return false;
        }
      }
      return true;
    }
    if (key == "status") {
      if (v.Scalar() != status_name(state.status())) {
        failure = "expected the session to be " + v.Scalar() + " but it is " +
                  status_name(state.status());
        if (!last.error().empty()) failure += " (runtime error: " + last.error() + ")";
        return false;
      }
      return true;
    }
    if (key == "transfer") {
      if (state.status() != v1::TRANSFERRED || last.transfer().queue() != v.Scalar()) {
        failure = "expected a transfer to queue '" + v.Scalar() + "' but " +
                  (state.status() == v1::TRANSFERRED
                       ? "the transfer went to '" + last.transfer().queue() + "'"
                       : std::string("the session is ") + status_name(state.status()));
        return false;
      }
      return true;
    }
    failure = "unknown test step '" + key + "'";
    return false;
  }
};

std::int64_t parse_now(const YAML::Node& n) {
  if (!n) return 1798243200;  // 2026-12-26T00:00:00Z: a fixed clock by default
  unsigned y = 0, m = 0, d = 0;
  if (std::sscanf(n.Scalar().c_str(), "%4u-%2u-%2u", &y, &m, &d) != 3) return -1;
  detail::civil_date cd{static_cast<int>(y), m, d};
  if (!detail::valid_date(cd)) return -1;
  return detail::days_from_civil(cd) * 86400 + 12 * 3600;
}

}  // namespace

namespace {
result<std::vector<conversation_test_result>> run_tests(const program& prog,
                                                        std::string_view tests_yaml,
                                                        std::string_view file_name);
}  // namespace

result<std::vector<conversation_test_result>> run_conversation_tests(const program& prog,
                                                                     std::string_view tests_yaml,
                                                                     std::string_view file_name) {
  try {
    return run_tests(prog, tests_yaml, file_name);
  } catch (const YAML::Exception& ex) {
    return make_error("bad_tests", std::string(file_name) + ":" + std::to_string(ex.mark.line + 1) +
                                       ": " + ex.msg);
  }
}

namespace {
result<std::vector<conversation_test_result>> run_tests(const program& prog,
                                                        std::string_view tests_yaml,
                                                        std::string_view file_name) {
  std::string file(file_name);
  auto bad = [&](const YAML::Node* n, const std::string& msg) {
    std::string where = file;
    if (n && n->IsDefined() && n->Mark().line >= 0)
      where += ":" + std::to_string(n->Mark().line + 1);
    return make_error("bad_tests", where + ": " + msg);
  };
  YAML::Node root;
  try {
    root = YAML::Load(std::string(tests_yaml));
  } catch (const YAML::ParserException& ex) {
    return make_error("bad_tests", file + ":" + std::to_string(ex.mark.line + 1) + ":" +
                                       std::to_string(ex.mark.column + 1) + ": " + ex.msg);
  }
  if (!root.IsMap() || !root["tests"] || !root["tests"].IsSequence())
    return bad(&root, "a test file is a map with a list 'tests'");
  std::int64_t now = parse_now(root["now"]);
  if (now < 0) return bad(&root, "'now' must be a date YYYY-MM-DD");
  std::vector<conversation_test_result> out;
  for (const auto& t : root["tests"]) {
    if (!t.IsMap() || !t["steps"] || !t["steps"].IsSequence())
      return bad(&t, "each test needs 'name' and a list of 'steps'");
    conversation_test_result res;
    res.name = t["name"] ? t["name"].Scalar() : "test at line " + std::to_string(t.Mark().line + 1);
    res.line = t.Mark().line + 1;
    test_run run{prog, now, {}, {}, {}, {}, {}, {}, {}, {}};
    if (t["actions"]) {
      if (!t["actions"].IsMap()) return bad(&t, "'actions' maps action names to answers");
      for (auto it = t["actions"].begin(); it != t["actions"].end(); ++it)
        run.answers[it->first.Scalar()] = it->second;
    }
    variables vars;
    if (t["variables"]) {
      for (auto it = t["variables"].begin(); it != t["variables"].end(); ++it) {
        v1::Value v;
        v.set_text(it->second.Scalar());
        auto j = yaml_to_json(it->second);
        if (j.is_number())
          v.set_number(j.get<double>());
        else if (j.is_boolean())
          v.set_boolean(j.get<bool>());
        vars[it->first.Scalar()] = v;
      }
    }
    run.absorb(start(prog, vars, now));
    bool ok = run.failure.empty();
    int index = 0;
    for (const auto& s : t["steps"]) {
      ++index;
      if (!ok) break;
      if (!run.step(s)) {
        ok = false;
        run.failure = "step " + std::to_string(index) + " (" + file + ":" +
                      std::to_string(s.Mark().line + 1) + "): " + run.failure;
      }
    }
    if (ok && !run.pending.empty()) {
      ok = false;
      run.failure = "the bot said " + quote(run.pending.front().text()) +
                    " after the last step, which the test does not expect";
    }
    res.passed = ok;
    res.failure = run.failure;
    res.transcript = run.transcript;
    out.push_back(std::move(res));
  }
  return out;
}

}  // namespace

}  // namespace parley::bot
