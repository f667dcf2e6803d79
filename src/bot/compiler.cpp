// The bot compiler: YAML/JSON bot definition -> v1::Program, with every error
// found reported at once, positioned at the offending node.
// Split by job: compiler.cpp (sections and the driver), compiler_checks.cpp,
// compiler_steps.cpp; the shared state is in compiler_impl.hpp.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "src/bot/bot.hpp"
#include "src/bot/compiler_impl.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/text.hpp"
#include "src/bot/zone.hpp"

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

/// A turn's confidence is a calibrated probability that the top intent is right; at
/// 0.35 the sample bots keep over 98 % of right answers and send most out-of-scope
/// messages to the fallback (bench/README.md).
constexpr float default_confidence_threshold = 0.35f;
constexpr float uncalibrated_confidence_threshold = 0.5f;

constexpr std::uint32_t format_version = 1;

}  // namespace

namespace detail {

void compiler::variables(const YAML::Node& vs) {
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

void compiler::entities_section(const YAML::Node& es) {
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
        std::string why;
        if (re.empty())
          error(spec["regex"], "empty regex");
        else if (!detail::compile_regex(re, true, why))
          error(spec["regex"], why);
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

void compiler::intents_section(const YAML::Node& is) {
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
    YAML::Node us = it->second;  // a copy: it-> points into a temporary
    if (us.IsMap()) {
      // The long form: {utterances: [...], confidence_threshold: 0.6}.
      const YAML::Node m = us;
      check_keys(m, {"utterances", "confidence_threshold"}, "intent '" + name + "'");
      float t = 0;
      if (m["confidence_threshold"] &&
          fraction(m["confidence_threshold"], "intent '" + name + "': 'confidence_threshold'", t))
        in->set_confidence_threshold(t);
      if (!m["utterances"]) {
        error(it->first, "intent '" + name + "' needs a non-empty list of utterances");
        continue;
      }
      us.reset(m["utterances"]);
    }
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
      warning(it->first, "intent '" + name + "' has only " + std::to_string(in->utterances_size()) +
                             " utterance(s); 5 or more make it recognisable");
  }
}

void compiler::dialogs_section(const YAML::Node& ds) {
  if (!ds || !ds.IsMap() || ds.size() == 0) {
    error(pick(ds.IsDefined(), ds, YAML::Node()), "'dialogs' must map dialog names to their steps");
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
                                      prog.dialogs(prog.intents(ii->second).dialog()).name() + "'");
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

int compiler::special(const YAML::Node& bot, const char* key) {
  if (!bot[key]) return -1;
  return dialog_ref(bot[key], key);
}

void compiler::run(std::string_view text) {
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
    d.message = "a bot file is a map with the sections bot, variables, entities, intents, dialogs";
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
                "error", "confidence_threshold", "ambiguity_threshold", "session_timeout",
                "handoff_after_fallbacks", "handoff", "timezone", "nudge_after", "nudge",
                "close_after", "on_close", "close_message"},
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
    if (bot["timezone"] && scalar(bot["timezone"], "'timezone'", s)) {
      std::string why;
      // Kept empty for UTC, the default, so that other bots compile as before.
      if (!zone::locate(s, why))
        error(bot["timezone"], "'timezone': " + why);
      else if (s != "UTC")
        prog.set_timezone(s);
    }
    prog.set_currency("USD");
    if (bot["currency"] && scalar(bot["currency"], "'currency'", s)) prog.set_currency(s);
    prog.set_confidence_threshold(default_confidence_threshold);
    float t = 0;
    if (bot["confidence_threshold"]) {
      threshold_given = true;
      if (fraction(bot["confidence_threshold"], "'confidence_threshold'", t))
        prog.set_confidence_threshold(t);
    }
    if (bot["ambiguity_threshold"] &&
        fraction(bot["ambiguity_threshold"], "'ambiguity_threshold'", t))
      prog.set_ambiguity_threshold(t);
    if (bot["handoff_after_fallbacks"]) {
      long n = -1;
      try {
        n = bot["handoff_after_fallbacks"].as<long>();
      } catch (const YAML::Exception&) {
      }
      if (n < 1 || n > 100)
        error(bot["handoff_after_fallbacks"],
              "'handoff_after_fallbacks' must be a whole number from 1 to 100");
      else
        prog.set_handoff_after_fallbacks(static_cast<std::uint32_t>(n));
    }
    prog.set_idle_timeout_s(1800);
    if (bot["session_timeout"] && scalar(bot["session_timeout"], "'session_timeout'", s)) {
      std::uint64_t ms = 0;
      if (!parse_duration_ms(s, ms) || ms < 1000 || ms > 7ull * 86400 * 1000)
        error(bot["session_timeout"],
              "bad 'session_timeout' '" + s + "' (between 1s and 7 days; examples: 90s, 30m, 2h)");
      else
        prog.set_idle_timeout_s(static_cast<std::uint32_t>(ms / 1000));
    }
  }
  variables(root["variables"]);
  entities_section(root["entities"]);
  intents_section(root["intents"]);
  // After the variables (the nudge is a template), before the steps that take them over.
  if (bot && bot.IsMap()) bot_timer_settings(bot);
  dialogs_section(root["dialogs"]);
  if (bot && bot.IsMap()) {
    if (bot["on_close"]) bot_on_close();  // reported even when no question uses it
    prog.set_welcome(special(bot, "welcome"));
    prog.set_main_menu(special(bot, "main_menu"));
    prog.set_fallback(special(bot, "fallback"));
    prog.set_error(special(bot, "error"));
    // Set only with a limit (read only then), so that other bots compile to the same
    // bytes, and ids, as before the setting existed.
    int handoff = special(bot, "handoff");
    if (prog.handoff_after_fallbacks() > 0) prog.set_handoff(handoff);
    if (bot["handoff"] && !bot["handoff_after_fallbacks"])
      warning(
          bot["handoff"],
          "'handoff' never runs without 'handoff_after_fallbacks' (how many fallbacks in a row)");
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

}  // namespace detail

compile_result compile(std::string_view text, std::string_view file_name,
                       const compile_options& options) {
  detail::compiler c;
  c.file = std::string(file_name);
  c.options = options;
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
    // Too few utterances to calibrate: the confidence stays the softmax, whose
    // default threshold was 0.5.
    if (!c.threshold_given && !c.prog.nlu().has_calibration())
      c.prog.set_confidence_threshold(uncalibrated_confidence_threshold);
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
