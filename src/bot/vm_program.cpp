// The bot VM, outside the interpreter: values, loading a program, inputs,
// secrets and the read-only queries on a loaded program.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/program_impl.hpp"
#include "src/bot/text.hpp"

namespace parley::bot {

using v1::Value;

// ------------------------------------------------------------------ values

std::string to_text(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolean:
      return v.boolean() ? "true" : "false";
    case Value::kNumber:
      return detail::format_number(v.number());
    case Value::kText:
      return v.text();
    case Value::kList: {
      std::string out;
      for (int i = 0; i < v.list().items_size(); ++i) {
        if (i) out += ", ";
        out += to_text(v.list().items(i));
      }
      return out;
    }
    case Value::kObject:
      return detail::to_json(v).dump();
    default:
      return {};
  }
}

namespace detail {

nlohmann::json to_json(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolean:
      return v.boolean();
    case Value::kNumber:
      return v.number();
    case Value::kText:
      return v.text();
    case Value::kList: {
      auto a = nlohmann::json::array();
      for (const auto& i : v.list().items()) a.push_back(to_json(i));
      return a;
    }
    case Value::kObject: {
      auto o = nlohmann::json::object();
      for (const auto& f : v.object().fields()) o[f.key()] = to_json(f.value());
      return o;
    }
    default:
      return nullptr;
  }
}

Value from_json(const nlohmann::json& j, int depth) {
  Value v;
  if (depth > 16) {
    v.set_null_value(true);
    return v;
  }
  if (j.is_boolean())
    v.set_boolean(j.get<bool>());
  else if (j.is_number())
    v.set_number(j.get<double>());
  else if (j.is_string())
    v.set_text(std::string(utf8_prefix(j.get_ref<const std::string&>(), max_text_value_bytes)));
  else if (j.is_array()) {
    auto* l = v.mutable_list();
    for (const auto& i : j) {
      if (static_cast<std::size_t>(l->items_size()) >= max_list_items) break;
      *l->add_items() = from_json(i, depth + 1);
    }
  } else if (j.is_object()) {
    auto* o = v.mutable_object();  // nlohmann's object is a sorted map
    for (auto it = j.begin(); it != j.end(); ++it) {
      auto* f = o->add_fields();
      f->set_key(it.key());
      *f->mutable_value() = from_json(it.value(), depth + 1);
    }
  } else
    v.set_null_value(true);
  return v;
}

std::optional<Value> coerce(const Value& v, v1::VarType t) {
  if (v.kind_case() == Value::KIND_NOT_SET || v.kind_case() == Value::kNullValue) return v;
  Value out;
  switch (t) {
    case v1::VAR_TEXT:
    case v1::VAR_DATE:
    case v1::VAR_DATETIME:
      if (v.kind_case() == Value::kText) return v;
      if (v.kind_case() == Value::kNumber || v.kind_case() == Value::kBoolean) {
        out.set_text(to_text(v));
        return out;
      }
      return std::nullopt;
    case v1::VAR_NUMBER:
    case v1::VAR_MONEY: {
      if (v.kind_case() == Value::kNumber) return v;
      if (v.kind_case() != Value::kText) return std::nullopt;
      std::string s = trim(v.text());
      s.erase(std::remove(s.begin(), s.end(), ','), s.end());
      if (!s.empty() && s[0] == '$') s.erase(0, 1);
      char* endp = nullptr;
      double d = std::strtod(s.c_str(), &endp);
      if (s.empty() || *endp != '\0') return std::nullopt;
      out.set_number(d);
      return out;
    }
    case v1::VAR_BOOLEAN: {
      if (v.kind_case() == Value::kBoolean) return v;
      if (v.kind_case() != Value::kText) return std::nullopt;
      auto s = to_lower(v.text());
      if (s == "yes" || s == "true")
        out.set_boolean(true);
      else if (s == "no" || s == "false")
        out.set_boolean(false);
      else
        return std::nullopt;
      return out;
    }
    case v1::VAR_LIST:
      if (v.kind_case() == Value::kList) return v;
      return std::nullopt;
    case v1::VAR_OBJECT:
      if (v.kind_case() == Value::kObject) return v;
      return std::nullopt;
    default:
      return v;
  }
}

}  // namespace detail

// ------------------------------------------------------------------ program

program::program(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
program::~program() = default;
const v1::Program& program::proto() const { return impl_->proto; }
const std::string& program::id() const { return impl_->proto.id(); }
std::chrono::seconds program::idle_timeout() const {
  return std::chrono::seconds(impl_->proto.idle_timeout_s());
}

result<std::shared_ptr<const program>> load(v1::Program compiled) {
  auto bad = [&](const std::string& why) {
    return make_error("bad_program", "program '" + compiled.id() + "' cannot be loaded: " + why);
  };
  if (compiled.format_version() != 1)
    return bad("format version " + std::to_string(compiled.format_version()) + " is not supported");
  auto p = std::make_unique<program::impl>();
  p->proto = std::move(compiled);
  const auto& pr = p->proto;
  auto nvars = pr.variables_size();
  auto resolver = [&pr](std::string_view name) -> detail::var_info {
    for (int i = 0; i < pr.variables_size(); ++i)
      if (pr.variables(i).name() == name) return {i, detail::vtype_of(pr.variables(i).type())};
    return {};
  };
  std::string problem;
  auto expr = [&](const std::string& text) -> detail::expr_ptr {
    auto e = detail::parse_expr(text, resolver);
    if (!e.root && problem.empty()) problem = "expression '" + text + "' does not parse";
    return e.root;
  };
  auto tmpl = [&](const std::string& text) {
    auto t = detail::parse_template(text, resolver);
    if (!t.errors.empty() && problem.empty()) problem = "template '" + text + "' does not parse";
    return t;
  };
  auto dialog_ok = [&](int d) { return d >= -1 && d < pr.dialogs_size(); };
  auto var_ok = [&](int v) { return v >= -1 && v < nvars; };
  if (!dialog_ok(pr.welcome()) || !dialog_ok(pr.main_menu()) || !dialog_ok(pr.fallback()) ||
      !dialog_ok(pr.error()))
    return bad("special dialog index out of range");
  for (const auto& v : pr.variables()) p->names.emplace_back(v.name());
  p->steps.resize(static_cast<std::size_t>(pr.dialogs_size()));
  for (int d = 0; d < pr.dialogs_size(); ++d) {
    const auto& dl = pr.dialogs(d);
    auto& rts = p->steps[static_cast<std::size_t>(d)];
    rts.resize(static_cast<std::size_t>(dl.steps_size()));
    for (int s = 0; s < dl.steps_size(); ++s) {
      const auto& st = dl.steps(s);
      auto& rt = rts[static_cast<std::size_t>(s)];
      for (const auto& t : st.texts()) rt.texts.push_back(tmpl(t));
      if (st.has_timers()) {
        rt.nudge = tmpl(st.timers().nudge());
        rt.close_message = tmpl(st.timers().close_message());
        if (!dialog_ok(st.timers().on_close()))
          return bad("on_close dialog out of range in dialog '" + dl.name() + "'");
      }
      bool jump = st.kind() == v1::Step::BRANCH || st.kind() == v1::Step::JUMP;
      if (jump ? (st.target() < 0 || st.target() > dl.steps_size()) : !dialog_ok(st.target()))
        return bad("step target out of range in dialog '" + dl.name() + "'");
      if (!var_ok(st.var()) || !var_ok(st.status_var()))
        return bad("variable index out of range in dialog '" + dl.name() + "'");
      if ((st.kind() == v1::Step::GOTO || st.kind() == v1::Step::CALL) && st.target() < 0)
        return bad("goto without a target in dialog '" + dl.name() + "'");
      if (st.kind() == v1::Step::QUESTION &&
          (st.entity() < 0 || st.entity() >= pr.entities_size() || st.var() < 0 ||
           st.texts_size() < 2))
        return bad("malformed question in dialog '" + dl.name() + "'");
      if (st.kind() == v1::Step::MENU && (st.texts_size() < 1 || st.options_size() == 0))
        return bad("malformed menu in dialog '" + dl.name() + "'");
      if (st.kind() == v1::Step::BRANCH) rt.expr = expr(st.expr());
      for (const auto& a : st.assign()) {
        if (a.var() < 0 || a.var() >= nvars) return bad("assignment to an unknown variable");
        rt.assign.emplace_back(a.var(), expr(a.expr()));
      }
      for (const auto& o : st.options()) {
        if (!dialog_ok(o.go_to())) return bad("menu option target out of range");
        rt.option_norm.push_back(detail::normalize(o.label()));
        std::vector<std::pair<int, detail::expr_ptr>> as;
        for (const auto& a : o.assign()) {
          if (a.var() < 0 || a.var() >= nvars) return bad("assignment to an unknown variable");
          as.emplace_back(a.var(), expr(a.expr()));
        }
        rt.option_assign.push_back(std::move(as));
      }
      if (st.kind() == v1::Step::ACTION) {
        rt.url = tmpl(st.url());
        for (const auto& h : st.headers()) rt.headers.push_back(tmpl(h.value()));
        for (const auto& b : st.body()) rt.body.emplace_back(b.key(), expr(b.expr()));
        for (const auto& r : st.result())
          if (r.var() < 0 || r.var() >= nvars) return bad("action result into an unknown variable");
      }
    }
  }
  if (!problem.empty()) return bad(problem);
  for (const auto& in : pr.intents())
    if (!dialog_ok(in.dialog())) return bad("intent dialog out of range");
  if (pr.nlu().centroids_size() != pr.intents_size())
    return bad("the NLU model does not match the intents");
  for (const auto& v : pr.variables()) p->defaults.push_back(v.default_value());
  for (auto& d : p->defaults)
    if (d.kind_case() == Value::KIND_NOT_SET) d.set_null_value(true);
  // The zone is located here, once per loaded program, never per turn.
  {
    std::string why;
    p->zone = detail::zone::locate(pr.timezone(), why);
    if (!p->zone) return bad(why);
  }
  // Each regex is compiled here, once per loaded program, never per turn.
  for (const auto& e : pr.entities()) {
    std::shared_ptr<const re2::RE2> re;
    std::string why;
    if (!e.regex().empty() && !(re = detail::compile_regex(e.regex(), e.case_sensitive(), why)))
      return bad("entity '" + e.name() + "': " + why);
    p->extractors.emplace_back(e, std::move(re), p->zone.get());
  }
  p->nlu = detail::classifier(pr);
  return std::shared_ptr<const program>(new program(std::move(p)));
}

namespace detail {
std::string normalize_path(std::string_view path) {
  std::string out(path);
  for (auto& c : out)
    if (c == '.' || c == '[' || c == ']') c = ' ';
  // Collapse spaces so words() yields the parts.
  std::string compact;
  for (char c : out) {
    if (c == ' ' && (compact.empty() || compact.back() == ' ')) continue;
    compact.push_back(c);
  }
  if (!compact.empty() && compact.back() == ' ') compact.pop_back();
  return compact;
}
}  // namespace detail

v1::Input text_input(std::string_view text, std::int64_t now_unix) {
  v1::Input i;
  i.set_text(std::string(text));
  i.set_now_unix(now_unix);
  return i;
}
v1::Input payload_input(std::string_view payload, std::int64_t now_unix) {
  v1::Input i;
  i.set_payload(std::string(payload));
  i.set_now_unix(now_unix);
  return i;
}
v1::Input action_input(int http_status, std::string_view json_body, std::int64_t now_unix) {
  v1::Input i;
  i.mutable_action()->set_ok(true);
  i.mutable_action()->set_status(http_status);
  i.mutable_action()->set_body(std::string(json_body));
  i.set_now_unix(now_unix);
  return i;
}
v1::Input action_failure_input(std::string_view error, std::int64_t now_unix) {
  v1::Input i;
  i.mutable_action()->set_ok(false);
  i.mutable_action()->set_error(std::string(error));
  i.set_now_unix(now_unix);
  return i;
}
v1::Input failure_input(std::string_view error, std::int64_t now_unix) {
  v1::Input i;
  i.set_failure(std::string(error));
  i.set_now_unix(now_unix);
  return i;
}

result<v1::ActionRequest> resolve_secrets(
    v1::ActionRequest request,
    const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  struct slot {
    std::string* text;
    std::size_t offset, length;
    std::string value;
  };
  std::vector<slot> slots;
  slots.reserve(static_cast<std::size_t>(request.secrets_size()));
  // Every reference is checked and looked up before anything is replaced, in
  // the order the VM recorded them, so the first missing one is named.
  for (const auto& ref : request.secrets()) {
    std::string* text = nullptr;
    if (ref.field() == v1::SecretRef::URL)
      text = request.mutable_url();
    else if (ref.field() == v1::SecretRef::HEADER && ref.header() >= 0 &&
             ref.header() < request.headers_size())
      text = request.mutable_headers(ref.header())->mutable_value();
    std::string placeholder = "{{secret." + ref.name() + "}}";
    if (text == nullptr || ref.name().empty() || ref.offset() > text->size() ||
        text->compare(ref.offset(), placeholder.size(), placeholder) != 0)
      return make_error("bad_secret_ref", "secret reference '" + ref.name() + "' of action '" +
                                              request.name() + "' is not at its placeholder");
    auto v = lookup(ref.name());
    if (!v) return make_error("missing_secret", "secret '" + ref.name() + "' is not defined");
    slots.push_back({text, ref.offset(), placeholder.size(), std::move(*v)});
  }
  // Back to front within each value, so the offsets still to be used stay valid.
  std::sort(slots.begin(), slots.end(), [](const slot& a, const slot& b) {
    return a.text != b.text ? std::less<const std::string*>()(a.text, b.text) : a.offset > b.offset;
  });
  for (std::size_t i = 1; i < slots.size(); ++i)
    if (slots[i - 1].text == slots[i].text &&
        slots[i].offset + slots[i].length > slots[i - 1].offset)
      return make_error("bad_secret_ref",
                        "secret references of action '" + request.name() + "' overlap");
  for (const auto& s : slots) s.text->replace(s.offset, s.length, s.value);
  request.clear_secrets();
  return request;
}

std::optional<v1::Value> get_variable(const program& prog, const v1::State& state,
                                      std::string_view name) {
  const auto& p = prog.internals();
  auto it = std::find(p.names.begin(), p.names.end(), name);
  if (it == p.names.end()) return std::nullopt;
  auto index = static_cast<std::uint32_t>(it - p.names.begin());
  for (const auto& s : state.vars())
    if (s.index() == index) return s.value();
  return p.defaults[index];
}

std::vector<v1::IntentScore> classify(const program& prog, std::string_view text, std::size_t top) {
  const auto& p = prog.internals();
  std::vector<v1::IntentScore> out;
  for (const auto& s : p.nlu.classify(detail::normalize(text), top)) {
    v1::IntentScore sc;
    sc.set_name(p.proto.intents(s.intent).name());
    sc.set_confidence(s.confidence);
    out.push_back(std::move(sc));
  }
  return out;
}

std::vector<v1::EntityMatch> extract_entities(const program& prog, std::string_view text,
                                              std::int64_t now_unix) {
  const auto& p = prog.internals();
  std::vector<v1::EntityMatch> out;
  auto norm = detail::normalize(text);
  detail::entity_hit hit;
  for (std::size_t i = 0; i < p.extractors.size(); ++i) {
    if (p.proto.entities(static_cast<int>(i)).system() == v1::SYS_TEXT) continue;
    if (p.extractors[i].extract(text, norm, now_unix, hit)) {
      v1::EntityMatch m;
      m.set_entity(p.proto.entities(static_cast<int>(i)).name());
      m.set_value(hit.value);
      m.set_text(hit.text);
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace parley::bot
