// The bot compiler: YAML/JSON bot definition -> v1::Program, with every error
// found reported at once, positioned at the offending node.

// GCC 12 at -O3 reports -Wdangling-pointer inside yaml-cpp 0.7's inlined Node
// copies (a false positive: Node holds shared ownership of its memory).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/text.hpp"

namespace parley::bot {

using detail::vtype;

std::string diagnostic::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += level == severity::error ? ": error: " : ": warning: ";
  out += message;
  return out;
}

std::size_t compile_result::error_count() const {
  return static_cast<std::size_t>(std::count_if(
      diagnostics.begin(), diagnostics.end(), [](auto& d) { return d.level == severity::error; }));
}

std::size_t compile_result::warning_count() const { return diagnostics.size() - error_count(); }

std::string serialize(const v1::Program& program) {
  std::string out;
  google::protobuf::io::StringOutputStream sos(&out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  program.SerializeToCodedStream(&cos);
  cos.Trim();
  return out;
}

namespace {

constexpr std::uint32_t format_version = 1;

const char* const step_kinds[] = {"message", "question", "menu", "set",      "if",    "action",
                                  "goto",    "call",     "end",  "transfer", "return"};

struct compiler {
  std::string file;
  compile_result res;
  v1::Program prog;
  std::map<std::string, int> dialogs, vars, entities, intents;
  std::map<std::string, int> dialog_line;
  std::set<int> referenced_dialogs;
  std::map<std::string, YAML::Node> intent_keys;  // for diagnostics

  void diag(severity s, const YAML::Node& n, std::string msg, std::size_t offset = 0) {
    diagnostic d;
    d.level = s;
    d.file = file;
    if (n.IsDefined()) {
      auto m = n.Mark();
      if (m.line >= 0) {
        d.line = m.line + 1;
        // Quoted scalars carry the non-specific tag "!": skip the opening quote.
        int quote = (n.IsScalar() && n.Tag() == "!") ? 1 : 0;
        d.column = m.column + 1 + quote + static_cast<int>(offset);
      }
    }
    d.message = std::move(msg);
    res.diagnostics.push_back(std::move(d));
  }
  void error(const YAML::Node& n, std::string msg, std::size_t off = 0) {
    diag(severity::error, n, std::move(msg), off);
  }
  void warning(const YAML::Node& n, std::string msg) { diag(severity::warning, n, std::move(msg)); }

  // Chooses the node to blame; by value, so no reference to a temporary escapes.
  static YAML::Node pick(bool first, const YAML::Node& a, const YAML::Node& b) {
    return first ? a : b;
  }

  static int line_of(const YAML::Node& n) { return n.IsDefined() ? n.Mark().line + 1 : 0; }

  bool scalar(const YAML::Node& n, const char* what, std::string& out) {
    if (!n.IsDefined() || !n.IsScalar()) {
      error(n, std::string(what) + " must be a text");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  void check_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                  const std::string& where) {
    if (!map.IsMap()) return;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.Scalar();
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        error(it->first,
              "unknown key '" + k + "' in " + where + " (expected one of: " + list + ")");
      }
    }
  }

  detail::var_resolver resolver() {
    return [this](std::string_view name) -> detail::var_info {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return {};
      return {it->second, detail::vtype_of(prog.variables(it->second).type())};
    };
  }

  vtype check_expr(const YAML::Node& n, const std::string& text) {
    auto p = detail::parse_expr(text, resolver());
    for (auto& e : p.errors) error(n, e.message, e.offset);
    return p.type;
  }

  void check_template(const YAML::Node& n, const std::string& text) {
    auto p = detail::parse_template(text, resolver());
    for (auto& e : p.errors) error(n, e.message, e.offset);
  }

  int dialog_ref(const YAML::Node& n, const char* what) {
    std::string name;
    if (!scalar(n, what, name)) return -1;
    auto it = dialogs.find(name);
    if (it == dialogs.end()) {
      std::string hint;
      for (auto& [d, _] : dialogs)
        if (detail::to_lower(d) == detail::to_lower(name)) hint = " (did you mean '" + d + "'?)";
      error(n, "unknown dialog '" + name + "'" + hint);
      return -1;
    }
    referenced_dialogs.insert(it->second);
    return it->second;
  }

  int var_ref(const YAML::Node& n, const char* what) {
    std::string name;
    if (!scalar(n, what, name)) return -1;
    auto it = vars.find(name);
    if (it == vars.end()) {
      error(n, "undefined variable '" + name + "' (declare it under 'variables')");
      return -1;
    }
    return it->second;
  }

  std::vector<std::string> texts(const YAML::Node& n, const char* what) {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
      check_template(n, out.back());
    } else if (n.IsSequence()) {
      for (const auto& t : n) {
        if (!t.IsScalar()) {
          error(t, std::string(what) + " must be a text or a list of texts");
          continue;
        }
        out.push_back(t.Scalar());
        check_template(t, out.back());
      }
    } else if (!n.IsNull()) {
      error(n, std::string(what) + " must be a text or a list of texts");
    }
    return out;
  }

  void check_assign(const YAML::Node& n, int var, vtype t) {
    if (var < 0) return;
    const auto& v = prog.variables(var);
    vtype want = detail::vtype_of(v.type());
    if (t == vtype::any || t == vtype::null || want == vtype::any || t == want) return;
    error(n, "type mismatch: variable '" + v.name() + "' is " + detail::vtype_name(want) +
                 " but the expression is " + detail::vtype_name(t));
  }

  void assignments(const YAML::Node& n, google::protobuf::RepeatedPtrField<v1::Assignment>* out) {
    if (!n.IsMap()) {
      error(n, "'set' must map variable names to expressions, e.g. set: {count: \"count + 1\"}");
      return;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      int var = var_ref(it->first, "a variable name");
      std::string e;
      if (!scalar(it->second, "an expression", e)) continue;
      auto t = check_expr(it->second, e);
      check_assign(it->second, var, t);
      auto* a = out->Add();
      a->set_var(var);
      a->set_expr(e);
    }
  }

  static bool parse_duration_ms(const std::string& s, std::uint64_t& ms) {
    if (s.empty()) return false;
    char* endp = nullptr;
    double v = std::strtod(s.c_str(), &endp);
    std::string unit = detail::trim(endp);
    double f = 1000;
    if (unit == "ms")
      f = 1;
    else if (unit == "s" || unit.empty())
      f = 1000;
    else if (unit == "m" || unit == "min")
      f = 60000;
    else if (unit == "h")
      f = 3600000;
    else
      return false;
    if (endp == s.c_str() || v < 0) return false;
    ms = static_cast<std::uint64_t>(v * f);
    return true;
  }

  // ------------------------------------------------------------ steps

  // Compiles a block of steps into `out`; returns true when the block never
  // falls through (ends with goto, end, transfer or return).
  bool block(const YAML::Node& steps, v1::Dialog& d, const std::string& where) {
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

  v1::Step& add(v1::Dialog& d, v1::Step::Kind k, const YAML::Node& n) {
    auto* s = d.add_steps();
    s->set_kind(k);
    s->set_line(static_cast<std::uint32_t>(line_of(n)));
    s->set_target(-1);
    s->set_var(-1);
    s->set_entity(-1);
    s->set_status_var(-1);
    return *s;
  }

  bool step(const YAML::Node& s, v1::Dialog& d, std::string& kind) {
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

  bool question(const YAML::Node& q, v1::Dialog& d, const YAML::Node& s) {
    check_keys(s, {"question"}, "a question step");
    auto& st = add(d, v1::Step::QUESTION, s);
    if (!q.IsMap()) {
      error(q, "'question' needs a map: {prompt: ..., entity: ..., into: ...}");
      return false;
    }
    check_keys(q, {"prompt", "reprompt", "entity", "into", "retries", "on_failure"}, "'question'");
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
      if (e.system() == v1::SYS_NUMBER || e.system() == v1::SYS_MONEY)
        ok = ok || vt == vtype::number;
      if (e.system() == v1::SYS_YES_NO) ok = ok || vt == vtype::boolean;
      if (!ok)
        error(q["into"], "type mismatch: entity '" + e.name() + "' cannot fill variable '" +
                             v.name() + "' of type " + detail::vtype_name(vt));
    }
    retries(q, st);
    if (q["on_failure"]) st.set_target(dialog_ref(q["on_failure"], "'on_failure'"));
    return false;
  }

  void retries(const YAML::Node& q, v1::Step& st) {
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

  bool menu(const YAML::Node& m, v1::Dialog& d, const YAML::Node& s) {
    check_keys(s, {"menu"}, "a menu step");
    auto& st = add(d, v1::Step::MENU, s);
    if (!m.IsMap()) {
      error(m, "'menu' needs a map: {prompt: ..., options: [...]}");
      return false;
    }
    check_keys(m, {"prompt", "options"}, "'menu'");
    std::string prompt;
    if (m["prompt"] && scalar(m["prompt"], "'prompt'", prompt)) check_template(m["prompt"], prompt);
    st.add_texts(prompt);
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

  bool action(const YAML::Node& a, v1::Dialog& d, const YAML::Node& s) {
    check_keys(s, {"action"}, "an action step");
    auto& st = add(d, v1::Step::ACTION, s);
    if (!a.IsMap()) {
      error(a, "'action' needs a map: {name: ..., url: ..., result: {...}}");
      return false;
    }
    check_keys(a,
               {"name", "url", "method", "headers", "body", "timeout", "result", "status_into",
                "on_error"},
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
      check_template(a["url"], url);
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
          check_template(it->second, v);
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

  // ------------------------------------------------------------ sections

  v1::Value to_value(const YAML::Node& n, v1::VarType t, const std::string& var) {
    v1::Value v;
    if (n.IsNull()) {
      v.set_null_value(true);
      return v;
    }
    auto bad = [&](const char* want) {
      error(n, "type mismatch: the default of '" + var + "' must be " + want);
    };
    switch (t) {
      case v1::VAR_NUMBER:
      case v1::VAR_MONEY: {
        try {
          v.set_number(n.as<double>());
        } catch (const YAML::Exception&) {
          bad("a number");
        }
        return v;
      }
      case v1::VAR_BOOLEAN: {
        try {
          v.set_boolean(n.as<bool>());
        } catch (const YAML::Exception&) {
          bad("true or false");
        }
        return v;
      }
      case v1::VAR_DATE: {
        std::string s = n.IsScalar() ? n.Scalar() : "";
        unsigned y = 0, m = 0, d = 0;
        if (std::sscanf(s.c_str(), "%4u-%2u-%2u", &y, &m, &d) != 3 ||
            !detail::valid_date({static_cast<int>(y), m, d}))
          bad("a date YYYY-MM-DD");
        v.set_text(s);
        return v;
      }
      case v1::VAR_LIST:
        if (!n.IsSequence()) bad("a list");
        break;
      case v1::VAR_OBJECT:
        if (!n.IsMap()) bad("a map");
        break;
      default:
        if (!n.IsScalar()) bad("a text");
        break;
    }
    return generic(n);
  }

  static v1::Value generic(const YAML::Node& n) {
    v1::Value v;
    if (n.IsSequence()) {
      auto* l = v.mutable_list();
      for (const auto& i : n) *l->add_items() = generic(i);
    } else if (n.IsMap()) {
      std::map<std::string, v1::Value> sorted;
      for (auto it = n.begin(); it != n.end(); ++it)
        sorted[it->first.Scalar()] = generic(it->second);
      auto* o = v.mutable_object();
      for (auto& [k, val] : sorted) {
        auto* f = o->add_fields();
        f->set_key(k);
        *f->mutable_value() = val;
      }
    } else if (n.IsNull()) {
      v.set_null_value(true);
    } else {
      v.set_text(n.Scalar());
    }
    return v;
  }

  void variables(const YAML::Node& vs) {
    if (!vs) return;
    if (!vs.IsMap()) {
      error(vs, "'variables' must map names to types, e.g. order_number: text");
      return;
    }
    static const std::pair<const char*, v1::VarType> types[] = {
        {"text", v1::VAR_TEXT}, {"number", v1::VAR_NUMBER},     {"boolean", v1::VAR_BOOLEAN},
        {"date", v1::VAR_DATE}, {"datetime", v1::VAR_DATETIME}, {"money", v1::VAR_MONEY},
        {"list", v1::VAR_LIST}, {"object", v1::VAR_OBJECT}};
    for (auto it = vs.begin(); it != vs.end(); ++it) {
      std::string name = it->first.Scalar();
      if (name == "secret") error(it->first, "'secret' is reserved for {{secret.NAME}}");
      if (vars.count(name)) {
        error(it->first, "duplicate variable '" + name + "'");
        continue;
      }
      const YAML::Node spec = it->second;  // a copy: it-> points into a temporary
      std::string type;
      if (spec.IsScalar())
        type = spec.Scalar();
      else if (spec.IsMap()) {
        check_keys(spec, {"type", "default", "client_settable"}, "variable '" + name + "'");
        if (spec["type"]) scalar(spec["type"], "'type'", type);
      }
      auto* v = prog.add_variables();
      v->set_name(name);
      for (auto [tn, tv] : types)
        if (type == tn) v->set_type(tv);
      if (v->type() == v1::VAR_TYPE_UNSPECIFIED)
        error(pick(spec.IsMap() && spec["type"], spec["type"], it->second),
              "unknown type '" + type + "' for variable '" + name +
                  "' (text, number, boolean, date, datetime, money, list, object)");
      if (spec.IsMap() && spec["default"])
        *v->mutable_default_value() = to_value(spec["default"], v->type(), name);
      if (spec.IsMap() && spec["client_settable"]) {
        try {
          v->set_client_settable(spec["client_settable"].as<bool>());
        } catch (const YAML::Exception&) {
          error(spec["client_settable"], "'client_settable' must be true or false");
        }
      }
      vars[name] = prog.variables_size() - 1;
    }
  }

  void entities_section(const YAML::Node& es) {
    static const std::pair<const char*, v1::SystemEntity> system[] = {
        {"number", v1::SYS_NUMBER}, {"email", v1::SYS_EMAIL},   {"phone", v1::SYS_PHONE},
        {"date", v1::SYS_DATE},     {"yes_no", v1::SYS_YES_NO}, {"money", v1::SYS_MONEY},
        {"text", v1::SYS_TEXT}};
    for (auto [n, s] : system) {
      auto* e = prog.add_entities();
      e->set_name(n);
      e->set_system(s);
      entities[n] = prog.entities_size() - 1;
    }
    if (!es) return;
    if (!es.IsMap()) {
      error(es, "'entities' must map names to {values: ...} or {regex: ...}");
      return;
    }
    for (auto it = es.begin(); it != es.end(); ++it) {
      std::string name = it->first.Scalar();
      if (entities.count(name)) {
        error(it->first, "duplicate entity '" + name + "'" +
                             (entities[name] < 7 ? " (a system entity has this name)" : ""));
        continue;
      }
      const YAML::Node spec = it->second;  // a copy: it-> points into a temporary
      auto* e = prog.add_entities();
      e->set_name(name);
      entities[name] = prog.entities_size() - 1;
      if (!spec.IsMap()) {
        error(spec, "entity '" + name + "' needs {values: ...} or {regex: ...}");
        continue;
      }
      check_keys(spec, {"values", "regex", "case_sensitive"}, "entity '" + name + "'");
      if (spec["values"] && spec["regex"])
        error(spec, "entity '" + name + "' has either 'values' or 'regex', not both");
      if (spec["regex"]) {
        std::string re;
        if (scalar(spec["regex"], "'regex'", re)) {
          if (re.empty()) error(spec["regex"], "empty regex");
          try {
            std::regex test(re, std::regex::ECMAScript);
          } catch (const std::regex_error& ex) {
            error(spec["regex"], "regex does not compile: " + std::string(ex.what()));
          }
          e->set_regex(re);
        }
        if (spec["case_sensitive"]) {
          try {
            e->set_case_sensitive(spec["case_sensitive"].as<bool>());
          } catch (const YAML::Exception&) {
            error(spec["case_sensitive"], "'case_sensitive' must be true or false");
          }
        }
      } else if (spec["values"]) {
        const auto& vals = spec["values"];
        if (vals.IsSequence()) {
          for (const auto& v : vals) {
            std::string s;
            if (scalar(v, "a value", s)) e->add_values()->set_value(s);
          }
        } else if (vals.IsMap()) {
          for (auto vi = vals.begin(); vi != vals.end(); ++vi) {
            auto* ev = e->add_values();
            ev->set_value(vi->first.Scalar());
            const YAML::Node syns = vi->second;  // a copy: vi-> points into a temporary
            if (syns.IsSequence())
              for (const auto& syn : syns) {
                std::string s;
                if (scalar(syn, "a synonym", s)) ev->add_synonyms(detail::normalize(s));
              }
            else if (!vi->second.IsNull())
              error(vi->second, "synonyms must be a list");
          }
        } else {
          error(vals, "'values' must be a list, or a map of value to synonyms");
        }
        if (e->values_size() == 0) error(vals, "entity '" + name + "' has no values");
      } else {
        error(spec, "entity '" + name + "' needs 'values' or 'regex'");
      }
    }
  }

  void intents_section(const YAML::Node& is) {
    if (!is) return;
    if (!is.IsMap()) {
      error(is, "'intents' must map intent names to lists of example utterances");
      return;
    }
    std::map<std::string, std::pair<std::string, int>> utterance_owner;
    for (auto it = is.begin(); it != is.end(); ++it) {
      std::string name = it->first.Scalar();
      if (intents.count(name)) {
        error(it->first, "duplicate intent '" + name + "' (first defined on line " +
                             std::to_string(dialog_line["intent:" + name]) + ")");
        continue;
      }
      dialog_line["intent:" + name] = line_of(it->first);
      intent_keys[name] = it->first;
      auto* in = prog.add_intents();
      in->set_name(name);
      in->set_dialog(-1);
      intents[name] = prog.intents_size() - 1;
      const YAML::Node us = it->second;  // a copy: it-> points into a temporary
      if (!us.IsSequence() || us.size() == 0) {
        error(pick(us.IsDefined() && !us.IsNull(), us, it->first),
              "intent '" + name + "' needs a non-empty list of utterances");
        continue;
      }
      std::set<std::string> seen;
      for (const auto& u : us) {
        std::string s;
        if (!scalar(u, "an utterance", s)) continue;
        auto n = detail::normalize(s);
        if (n.empty()) {
          error(u, "empty utterance");
          continue;
        }
        if (!seen.insert(n).second) continue;
        auto [pos, fresh] = utterance_owner.emplace(n, std::make_pair(name, line_of(u)));
        if (!fresh && pos->second.first != name)
          warning(u, "utterance '" + s + "' is also listed under intent '" + pos->second.first +
                         "' (line " + std::to_string(pos->second.second) + ")");
        in->add_utterances(n);
      }
      if (in->utterances_size() > 0 && in->utterances_size() < 5)
        warning(it->first, "intent '" + name + "' has only " +
                               std::to_string(in->utterances_size()) +
                               " utterance(s); 5 or more make it recognisable");
    }
  }

  void dialogs_section(const YAML::Node& ds) {
    if (!ds || !ds.IsMap() || ds.size() == 0) {
      error(pick(ds.IsDefined(), ds, YAML::Node()),
            "'dialogs' must map dialog names to their steps");
      return;
    }
    // First pass: names, so dialogs may refer to dialogs defined later.
    for (auto it = ds.begin(); it != ds.end(); ++it) {
      std::string name = it->first.Scalar();
      if (dialogs.count(name)) {
        error(it->first, "duplicate dialog '" + name + "' (first defined on line " +
                             std::to_string(dialog_line[name]) + ")");
        continue;
      }
      dialogs[name] = static_cast<int>(dialogs.size());
      dialog_line[name] = line_of(it->first);
      auto* d = prog.add_dialogs();
      d->set_name(name);
      d->set_intent(-1);
    }
    std::set<std::string> done;
    for (auto it = ds.begin(); it != ds.end(); ++it) {
      std::string name = it->first.Scalar();
      if (!done.insert(name).second) continue;
      auto& d = *prog.mutable_dialogs(dialogs[name]);
      const YAML::Node spec = it->second;  // a copy: it-> points into a temporary
      YAML::Node steps;
      if (spec.IsSequence())
        steps = spec;
      else if (spec.IsMap()) {
        check_keys(spec, {"intent", "steps"}, "dialog '" + name + "'");
        steps = spec["steps"];
        if (spec["intent"]) {
          std::string in;
          if (scalar(spec["intent"], "'intent'", in)) {
            auto ii = intents.find(in);
            if (ii == intents.end())
              error(spec["intent"], "unknown intent '" + in + "'");
            else if (prog.intents(ii->second).dialog() >= 0)
              error(spec["intent"], "intent '" + in + "' already triggers dialog '" +
                                        prog.dialogs(prog.intents(ii->second).dialog()).name() +
                                        "'");
            else {
              d.set_intent(ii->second);
              prog.mutable_intents(ii->second)->set_dialog(dialogs[name]);
              referenced_dialogs.insert(dialogs[name]);
            }
          }
        }
      }
      if (!steps || steps.IsNull() || (steps.IsSequence() && steps.size() == 0)) {
        error(pick(spec.IsDefined() && !spec.IsNull(), spec, it->first),
              "dialog '" + name + "' has no steps");
        continue;
      }
      block(steps, d, "the steps of dialog '" + name + "'");
    }
  }

  int special(const YAML::Node& bot, const char* key) {
    if (!bot[key]) return -1;
    return dialog_ref(bot[key], key);
  }

  void run(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& ex) {
      diagnostic d;
      d.file = file;
      d.line = ex.mark.line + 1;
      d.column = ex.mark.column + 1;
      d.message = "syntax error: " + ex.msg;
      res.diagnostics.push_back(d);
      return;
    }
    if (!root.IsMap()) {
      diagnostic d;
      d.file = file;
      d.line = 1;
      d.column = 1;
      d.message =
          "a bot file is a map with the sections bot, variables, entities, intents, dialogs";
      res.diagnostics.push_back(d);
      return;
    }
    check_keys(root, {"bot", "variables", "entities", "intents", "dialogs"}, "the bot file");
    prog.set_format_version(format_version);
    const auto bot = root["bot"];
    if (!bot || !bot.IsMap()) {
      error(pick(bot.IsDefined(), bot, root),
            "the file needs a 'bot' section with at least a 'name'");
    } else {
      check_keys(bot,
                 {"name", "version", "locale", "currency", "welcome", "main_menu", "fallback",
                  "error", "confidence_threshold", "session_timeout"},
                 "'bot'");
      std::string s;
      if (!bot["name"])
        error(bot, "the bot needs a 'name'");
      else if (scalar(bot["name"], "'name'", s)) {
        bool ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
        });
        if (!ok) error(bot["name"], "the bot name may only hold letters, digits, '-' and '_'");
        prog.set_name(s);
      }
      if (bot["version"] && scalar(bot["version"], "'version'", s)) prog.set_version(s);
      prog.set_locale("en-US");
      if (bot["locale"] && scalar(bot["locale"], "'locale'", s)) prog.set_locale(s);
      prog.set_currency("USD");
      if (bot["currency"] && scalar(bot["currency"], "'currency'", s)) prog.set_currency(s);
      prog.set_confidence_threshold(0.5f);
      if (bot["confidence_threshold"]) {
        double t = -1;
        try {
          t = bot["confidence_threshold"].as<double>();
        } catch (const YAML::Exception&) {
        }
        if (t < 0 || t > 1)
          error(bot["confidence_threshold"], "'confidence_threshold' must be between 0 and 1");
        else
          prog.set_confidence_threshold(static_cast<float>(t));
      }
      prog.set_idle_timeout_s(1800);
      if (bot["session_timeout"] && scalar(bot["session_timeout"], "'session_timeout'", s)) {
        std::uint64_t ms = 0;
        if (!parse_duration_ms(s, ms) || ms < 1000 || ms > 7ull * 86400 * 1000)
          error(bot["session_timeout"], "bad 'session_timeout' '" + s +
                                            "' (between 1s and 7 days; examples: 90s, 30m, 2h)");
        else
          prog.set_idle_timeout_s(static_cast<std::uint32_t>(ms / 1000));
      }
    }
    variables(root["variables"]);
    entities_section(root["entities"]);
    intents_section(root["intents"]);
    dialogs_section(root["dialogs"]);
    if (bot && bot.IsMap()) {
      prog.set_welcome(special(bot, "welcome"));
      prog.set_main_menu(special(bot, "main_menu"));
      prog.set_fallback(special(bot, "fallback"));
      prog.set_error(special(bot, "error"));
      if (prog.welcome() < 0 && prog.main_menu() < 0 && !bot["welcome"] && !bot["main_menu"])
        warning(bot, "no 'welcome' nor 'main_menu' dialog: the bot says nothing at start");
    }
    for (const auto& in : prog.intents())
      if (in.dialog() < 0 && root["intents"])
        warning(intent_keys[in.name()], "intent '" + in.name() + "' triggers no dialog");
    for (auto it = root["dialogs"].begin(); root["dialogs"].IsMap() && it != root["dialogs"].end();
         ++it) {
      auto di = dialogs.find(it->first.Scalar());
      if (di != dialogs.end() && !referenced_dialogs.count(di->second))
        warning(it->first, "dialog '" + di->first +
                               "' is unreachable: no intent triggers it and no step goes to it");
    }
  }
};

}  // namespace

compile_result compile(std::string_view text, std::string_view file_name) {
  compiler c;
  c.file = std::string(file_name);
  try {
    c.run(text);
  } catch (const YAML::Exception& ex) {
    // A shape the checks above did not anticipate: still a positioned error,
    // never a crash.
    diagnostic d;
    d.file = c.file;
    d.line = ex.mark.line >= 0 ? ex.mark.line + 1 : 0;
    d.column = ex.mark.column >= 0 ? ex.mark.column + 1 : 0;
    d.message = "unexpected structure: " + ex.msg;
    c.res.diagnostics.push_back(d);
  }
  auto& ds = c.res.diagnostics;
  std::stable_sort(ds.begin(), ds.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (c.res.error_count() == 0) {
    *c.prog.mutable_nlu() = detail::train(c.prog.intents());
    auto bytes = serialize(c.prog);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(detail::fnv1a64(bytes)));
    c.prog.set_id(c.prog.name() + "@" + hex);
    c.res.program = std::move(c.prog);
  }
  return std::move(c.res);
}

compile_result compile_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    compile_result r;
    r.diagnostics.push_back({severity::error, path, 0, 0, "cannot read the file"});
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return compile(ss.str(), path);
}

}  // namespace parley::bot
