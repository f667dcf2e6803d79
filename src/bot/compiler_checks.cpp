// The bot compiler's checks: positioned diagnostics, key, reference and type
// checks, expressions and templates, and literal YAML values.

#include <cstdlib>
#include <map>

#include "src/bot/bot.hpp"
#include "src/bot/compiler_impl.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/text.hpp"
#include "src/common/clock.hpp"
#include "src/secrets/secrets.hpp"

namespace parley::bot::detail {

void compiler::diag(severity s, const YAML::Node& n, std::string msg, std::size_t offset) {
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

bool compiler::scalar(const YAML::Node& n, const char* what, std::string& out) {
  if (!n.IsDefined() || !n.IsScalar()) {
    error(n, std::string(what) + " must be a text");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool compiler::fraction(const YAML::Node& n, const std::string& what, float& out) {
  double t = -1;
  try {
    t = n.as<double>();
  } catch (const YAML::Exception&) {
  }
  if (t < 0 || t > 1) {
    error(n, what + " must be between 0 and 1");
    return false;
  }
  out = static_cast<float>(t);
  return true;
}

void compiler::check_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                          const std::string& where) {
  if (!map.IsMap()) return;
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string k = it->first.Scalar();
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      error(it->first, "unknown key '" + k + "' in " + where + " (expected one of: " + list + ")");
    }
  }
}

detail::var_resolver compiler::resolver() {
  return [this](std::string_view name) -> detail::var_info {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return {};
    return {it->second, detail::vtype_of(prog.variables(it->second).type())};
  };
}

vtype compiler::check_expr(const YAML::Node& n, const std::string& text) {
  auto p = detail::parse_expr(text, resolver());
  for (auto& e : p.errors) error(n, e.message, e.offset);
  return p.type;
}

void compiler::check_template(const YAML::Node& n, const std::string& text, bool secrets) {
  auto p = detail::parse_template(text, resolver());
  for (auto& e : p.errors) error(n, e.message, e.offset);
  for (const auto& part : p.parts) {
    if (part.secret.empty()) continue;
    if (!secrets) {
      // Only the action's request is resolved; anywhere else the placeholder
      // would reach the user as it stands.
      error(n, "{{secret.NAME}} is only allowed in an action's url and headers", part.offset);
      continue;
    }
    // The rule of the secret store (src/secrets), so every name a bot writes can be set.
    if (!secrets::valid_name(part.secret))
      error(n, "bad secret name '" + part.secret + "' (1 to 64 letters, digits, '_', '-' and '.')",
            part.offset);
  }
}

int compiler::dialog_ref(const YAML::Node& n, const char* what) {
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

int compiler::var_ref(const YAML::Node& n, const char* what) {
  std::string name;
  if (!scalar(n, what, name)) return -1;
  auto it = vars.find(name);
  if (it == vars.end()) {
    error(n, "undefined variable '" + name + "' (declare it under 'variables')");
    return -1;
  }
  return it->second;
}

std::vector<std::string> compiler::texts(const YAML::Node& n, const char* what) {
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

void compiler::check_assign(const YAML::Node& n, int var, vtype t) {
  if (var < 0) return;
  const auto& v = prog.variables(var);
  vtype want = detail::vtype_of(v.type());
  if (t == vtype::any || t == vtype::null || want == vtype::any || t == want) return;
  error(n, "type mismatch: variable '" + v.name() + "' is " + detail::vtype_name(want) +
               " but the expression is " + detail::vtype_name(t));
}

void compiler::assignments(const YAML::Node& n,
                           google::protobuf::RepeatedPtrField<v1::Assignment>* out) {
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

bool compiler::parse_duration_ms(const std::string& s, std::uint64_t& ms) {
  auto d = common::parse_duration_ms(s);
  if (d) ms = *d;
  return d.has_value();
}

v1::Value compiler::to_value(const YAML::Node& n, v1::VarType t, const std::string& var) {
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

v1::Value compiler::generic(const YAML::Node& n) {
  v1::Value v;
  if (n.IsSequence()) {
    auto* l = v.mutable_list();
    for (const auto& i : n) *l->add_items() = generic(i);
  } else if (n.IsMap()) {
    std::map<std::string, v1::Value> sorted;
    for (auto it = n.begin(); it != n.end(); ++it) sorted[it->first.Scalar()] = generic(it->second);
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

}  // namespace parley::bot::detail
