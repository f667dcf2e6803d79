// The bot compiler's step lowering: a dialog's steps (message, question,
// menu, set, if, action, goto, call, end, transfer, return) -> v1::Step.

#include <set>
#include <string>

#include "src/bot/bot.hpp"
#include "src/bot/compiler_impl.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/text.hpp"

namespace parley::bot::detail {

namespace {

const char* const step_kinds[] = {"message", "question", "menu", "set",      "if",    "action",
                                  "goto",    "call",     "end",  "transfer", "return"};

}  // namespace

bool compiler::block(const YAML::Node& steps, v1::Dialog& d, const std::string& where) {
  if (!steps.IsSequence()) {
    error(steps, where + " must be a list of steps");
    return false;
  }
  bool terminated = false, reported = false;
  int term_line = 0;
  std::string term_kind;
  for (const auto& s : steps) {
    if (terminated && !reported) {
      error(s, "unreachable step: it comes after the '" + term_kind + "' on line " +
                   std::to_string(term_line));
      reported = true;  // once per block
    }
    std::string kind;
    bool t = step(s, d, kind);
    if (t && !terminated) {
      terminated = true;
      term_kind = kind;
      term_line = line_of(s);
    }
  }
  return terminated;
}

v1::Step& compiler::add(v1::Dialog& d, v1::Step::Kind k, const YAML::Node& n) {
  auto* s = d.add_steps();
  s->set_kind(k);
  s->set_line(static_cast<std::uint32_t>(line_of(n)));
  s->set_target(-1);
  s->set_var(-1);
  s->set_entity(-1);
  s->set_status_var(-1);
  return *s;
}

bool compiler::step(const YAML::Node& s, v1::Dialog& d, std::string& kind) {
  if (s.IsScalar() && (s.Scalar() == "return" || s.Scalar() == "end")) {
    kind = s.Scalar();
    add(d, kind == "return" ? v1::Step::RETURN : v1::Step::END, s);
    return true;
  }
  if (!s.IsMap()) {
    error(s, "a step must be a map such as {message: ...} or {goto: ...}");
    return false;
  }
  for (auto it = s.begin(); it != s.end(); ++it) {
    std::string k = it->first.Scalar();
    for (const char* sk : step_kinds)
      if (k == sk) {
        if (!kind.empty()) {
          error(it->first, "a step has one kind; found both '" + kind + "' and '" + k + "'");
          return false;
        }
        kind = k;
      }
  }
  if (kind.empty()) {
    std::string first = s.begin() != s.end() ? s.begin()->first.Scalar() : "";
    error(s, "unknown step '" + first +
                 "' (expected message, question, menu, set, if, action, goto, call, end, "
                 "transfer or return)");
    return false;
  }
  const auto body = s[kind];
  if (kind == "message") {
    check_keys(s, {"message"}, "a message step");
    auto& st = add(d, v1::Step::MESSAGE, s);
    for (auto& t : texts(body, "message")) st.add_texts(t);
    if (st.texts_size() == 0) error(s, "empty message");
    return false;
  }
  if (kind == "question") return question(body, d, s);
  if (kind == "menu") return menu(body, d, s);
  if (kind == "set") {
    check_keys(s, {"set"}, "a set step");
    auto& st = add(d, v1::Step::SET, s);
    assignments(body, st.mutable_assign());
    return false;
  }
  if (kind == "if") {
    check_keys(s, {"if", "then", "else"}, "an if step");
    std::string cond;
    auto& st = add(d, v1::Step::BRANCH, s);
    int at = d.steps_size() - 1;
    if (scalar(body, "an 'if' condition", cond)) {
      auto t = check_expr(body, cond);
      if (t != vtype::any && t != vtype::boolean)
        error(body, std::string("type mismatch: the condition is ") + detail::vtype_name(t) +
                        ", it must be a boolean");
      st.set_expr(cond);
    }
    if (!s["then"]) error(s, "an 'if' step needs 'then' steps");
    bool t1 = s["then"] ? block(s["then"], d, "'then'") : false;
    if (s["else"]) {
      int jump = d.steps_size();
      add(d, v1::Step::JUMP, s["else"]);
      d.mutable_steps(at)->set_target(d.steps_size());
      bool t2 = block(s["else"], d, "'else'");
      d.mutable_steps(jump)->set_target(d.steps_size());
      return t1 && t2;
    }
    d.mutable_steps(at)->set_target(d.steps_size());
    return false;
  }
  if (kind == "action") return action(body, d, s);
  if (kind == "goto" || kind == "call") {
    check_keys(s, {kind.c_str()}, "a " + kind + " step");
    auto& st = add(d, kind == "goto" ? v1::Step::GOTO : v1::Step::CALL, s);
    st.set_target(dialog_ref(body, "a dialog name"));
    return kind == "goto";
  }
  if (kind == "return") {
    add(d, v1::Step::RETURN, s);
    return true;
  }
  if (kind == "end") {
    check_keys(s, {"end"}, "an end step");
    auto& st = add(d, v1::Step::END, s);
    if (body.IsMap()) {
      check_keys(body, {"message"}, "'end'");
      if (body["message"])
        for (auto& t : texts(body["message"], "message")) st.add_texts(t);
    } else {
      for (auto& t : texts(body, "end message")) st.add_texts(t);
    }
    return true;
  }
  if (kind == "transfer") {
    check_keys(s, {"transfer"}, "a transfer step");
    auto& st = add(d, v1::Step::TRANSFER, s);
    if (!body.IsMap()) {
      error(body, "'transfer' needs a map: {queue: ..., message: ..., targets: [...]}");
      return true;
    }
    check_keys(body, {"queue", "message", "targets"}, "'transfer'");
    std::string q;
    if (!body["queue"])
      error(body, "'transfer' needs a 'queue'");
    else if (scalar(body["queue"], "'queue'", q))
      st.set_queue(q);
    if (body["message"])
      for (auto& t : texts(body["message"], "message")) st.add_texts(t);
    if (body["targets"]) {
      if (!body["targets"].IsSequence())
        error(body["targets"], "'targets' must be a list");
      else
        for (const auto& t : body["targets"]) {
          std::string v;
          if (scalar(t, "a target", v)) st.add_targets(v);
        }
    }
    return true;
  }
  return false;
}

bool compiler::question(const YAML::Node& q, v1::Dialog& d, const YAML::Node& s) {
  check_keys(s, {"question"}, "a question step");
  auto& st = add(d, v1::Step::QUESTION, s);
  if (!q.IsMap()) {
    error(q, "'question' needs a map: {prompt: ..., entity: ..., into: ...}");
    return false;
  }
  check_keys(q,
             {"prompt", "reprompt", "entity", "into", "retries", "on_failure", "nudge_after",
              "nudge", "close_after", "on_close", "close_message"},
             "'question'");
  std::string prompt, reprompt, ent;
  if (!q["prompt"])
    error(q, "a question needs a 'prompt'");
  else if (scalar(q["prompt"], "'prompt'", prompt))
    check_template(q["prompt"], prompt);
  if (q["reprompt"] && scalar(q["reprompt"], "'reprompt'", reprompt))
    check_template(q["reprompt"], reprompt);
  st.add_texts(prompt);
  st.add_texts(reprompt.empty() ? prompt : reprompt);
  if (!q["entity"])
    error(q, "a question needs an 'entity' (for example: text, number, date)");
  else if (scalar(q["entity"], "'entity'", ent)) {
    auto it = entities.find(ent);
    if (it == entities.end() && ent == "datetime") {
      // Added on first use, after the bot's own entities, so that bots which do not
      // ask for it compile to the same bytes and ids as before it existed (and a bot
      // entity of that name, older than this one, keeps working).
      auto* e = prog.add_entities();
      e->set_name(ent);
      e->set_system(v1::SYS_DATETIME);
      it = entities.emplace(ent, prog.entities_size() - 1).first;
    }
    if (it == entities.end())
      error(q["entity"], "unknown entity '" + ent + "'");
    else
      st.set_entity(it->second);
  }
  if (!q["into"])
    error(q, "a question needs 'into': the variable that receives the answer");
  else
    st.set_var(var_ref(q["into"], "'into'"));
  if (st.entity() >= 0 && st.var() >= 0) {
    const auto& e = prog.entities(st.entity());
    const auto& v = prog.variables(st.var());
    vtype vt = detail::vtype_of(v.type());
    bool ok = vt == vtype::any || vt == vtype::text;
    if (e.system() == v1::SYS_NUMBER || e.system() == v1::SYS_MONEY) ok = ok || vt == vtype::number;
    if (e.system() == v1::SYS_YES_NO) ok = ok || vt == vtype::boolean;
    if (!ok)
      error(q["into"], "type mismatch: entity '" + e.name() + "' cannot fill variable '" +
                           v.name() + "' of type " + detail::vtype_name(vt));
  }
  retries(q, st);
  if (q["on_failure"]) st.set_target(dialog_ref(q["on_failure"], "'on_failure'"));
  step_timers(q, st);
  return false;
}

void compiler::retries(const YAML::Node& q, v1::Step& st) {
  st.set_retries(2);
  if (q["retries"]) {
    try {
      int r = q["retries"].as<int>();
      if (r < 0 || r > 10) throw YAML::Exception(q["retries"].Mark(), "");
      st.set_retries(static_cast<std::uint32_t>(r));
    } catch (const YAML::Exception&) {
      error(q["retries"], "'retries' must be a whole number from 0 to 10");
    }
  }
}

bool compiler::menu(const YAML::Node& m, v1::Dialog& d, const YAML::Node& s) {
  check_keys(s, {"menu"}, "a menu step");
  auto& st = add(d, v1::Step::MENU, s);
  if (!m.IsMap()) {
    error(m, "'menu' needs a map: {prompt: ..., options: [...]}");
    return false;
  }
  check_keys(
      m, {"prompt", "options", "nudge_after", "nudge", "close_after", "on_close", "close_message"},
      "'menu'");
  std::string prompt;
  if (m["prompt"] && scalar(m["prompt"], "'prompt'", prompt)) check_template(m["prompt"], prompt);
  st.add_texts(prompt);
  step_timers(m, st);
  const auto opts = m["options"];
  if (!opts || !opts.IsSequence() || opts.size() == 0) {
    error(pick(opts.IsDefined(), opts, m), "a menu needs a non-empty list of 'options'");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& o : opts) {
    auto* opt = st.add_options();
    opt->set_go_to(-1);
    if (o.IsScalar()) {
      opt->set_label(o.Scalar());
    } else if (o.IsMap()) {
      check_keys(o, {"label", "payload", "goto", "call", "set"}, "a menu option");
      std::string label, payload;
      if (!o["label"])
        error(o, "a menu option needs a 'label'");
      else if (scalar(o["label"], "'label'", label))
        opt->set_label(label);
      if (o["payload"] && scalar(o["payload"], "'payload'", payload)) opt->set_payload(payload);
      if (o["goto"] && o["call"]) error(o, "a menu option has either 'goto' or 'call'");
      if (o["goto"]) opt->set_go_to(dialog_ref(o["goto"], "'goto'"));
      if (o["call"]) {
        opt->set_go_to(dialog_ref(o["call"], "'call'"));
        opt->set_call(true);
      }
      if (o["set"]) assignments(o["set"], opt->mutable_assign());
    } else {
      error(o, "a menu option is a label or a map {label: ..., goto: ...}");
      continue;
    }
    if (opt->payload().empty()) opt->set_payload(detail::normalize(opt->label()));
    if (!seen.insert(detail::normalize(opt->label())).second)
      error(o, "duplicate menu option '" + opt->label() + "'");
  }
  return false;
}

bool compiler::action(const YAML::Node& a, v1::Dialog& d, const YAML::Node& s) {
  check_keys(s, {"action"}, "an action step");
  auto& st = add(d, v1::Step::ACTION, s);
  if (!a.IsMap()) {
    error(a, "'action' needs a map: {name: ..., url: ..., result: {...}}");
    return false;
  }
  check_keys(
      a,
      {"name", "url", "method", "headers", "body", "timeout", "result", "status_into", "on_error"},
      "'action'");
  std::string name, url, method = "GET";
  if (!a["name"])
    error(a, "an action needs a 'name'");
  else
    scalar(a["name"], "'name'", name);
  st.set_action_name(name);
  if (!a["url"])
    error(a, "an action needs a 'url'");
  else if (scalar(a["url"], "'url'", url)) {
    check_template(a["url"], url, true);
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0 && url.rfind("{{", 0) != 0)
      error(a["url"], "the action url must start with http:// or https://");
  }
  st.set_url(url);
  if (a["method"] && scalar(a["method"], "'method'", method)) {
    for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" &&
        method != "DELETE")
      error(a["method"], "unsupported method '" + method + "' (GET, POST, PUT, PATCH, DELETE)");
  }
  st.set_method(method);
  if (a["headers"]) {
    if (!a["headers"].IsMap())
      error(a["headers"], "'headers' must be a map");
    else
      for (auto it = a["headers"].begin(); it != a["headers"].end(); ++it) {
        std::string v;
        if (!scalar(it->second, "a header value", v)) continue;
        check_template(it->second, v, true);
        auto* h = st.add_headers();
        h->set_name(it->first.Scalar());
        h->set_value(v);
      }
  }
  if (a["body"]) {
    if (!a["body"].IsMap())
      error(a["body"], "'body' must map JSON field names to expressions");
    else
      for (auto it = a["body"].begin(); it != a["body"].end(); ++it) {
        std::string e;
        if (!scalar(it->second, "an expression", e)) continue;
        check_expr(it->second, e);
        auto* f = st.add_body();
        f->set_key(it->first.Scalar());
        f->set_expr(e);
      }
  }
  std::uint64_t ms = 5000;
  if (a["timeout"]) {
    std::string t;
    if (scalar(a["timeout"], "'timeout'", t) && !parse_duration_ms(t, ms))
      error(a["timeout"], "bad duration '" + t + "' (examples: 500ms, 3s)");
    else if (ms == 0 || ms > 10000)
      error(a["timeout"], "an action timeout must be between 1ms and 10s");
  }
  st.set_timeout_ms(static_cast<std::uint32_t>(std::min<std::uint64_t>(ms, 10000)));
  if (a["result"]) {
    if (!a["result"].IsMap())
      error(a["result"], "'result' must map variables to fields of the JSON answer");
    else
      for (auto it = a["result"].begin(); it != a["result"].end(); ++it) {
        int var = var_ref(it->first, "a variable name");
        std::string path;
        if (!scalar(it->second, "a JSON field path", path)) continue;
        auto* f = st.add_result();
        f->set_var(var);
        f->set_path(path);
      }
  }
  if (a["status_into"]) {
    int v = var_ref(a["status_into"], "'status_into'");
    st.set_status_var(v);
    check_assign(a["status_into"], v, vtype::number);
  }
  if (a["on_error"]) st.set_target(dialog_ref(a["on_error"], "'on_error'"));
  return false;
}

}  // namespace parley::bot::detail
