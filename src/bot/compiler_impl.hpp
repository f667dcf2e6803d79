#pragma once
/// The bot compiler's state and passes (internal to src/bot): one `compiler`
/// per compile() call. Split by job over compiler.cpp (sections, the driver),
/// compiler_checks.cpp (diagnostics, references, expressions, values) and
/// compiler_steps.cpp (dialog steps).

// GCC 12 at -O3 reports -Wdangling-pointer inside yaml-cpp 0.7's inlined Node
// copies (a false positive: Node holds shared ownership of its memory).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"

namespace parley::bot::detail {

/// Compiles one bot definition into `prog`, collecting every problem in
/// `res.diagnostics`; the members below are the passes over the YAML tree.
struct compiler {
  std::string file;
  compile_result res;
  v1::Program prog;
  bool threshold_given = false;  // the bot file sets confidence_threshold
  std::map<std::string, int> dialogs, vars, entities, intents;
  std::map<std::string, int> dialog_line;
  std::set<int> referenced_dialogs;
  std::map<std::string, YAML::Node> intent_keys;  // for diagnostics
  compile_options options;

  /// One key as the bot file gave it (a default-constructed Node is a null node, not
  /// an absent one: `given` says whether the file has the key).
  struct timer_key {
    YAML::Node node;
    bool given = false;
    std::uint32_t ms = 0;  // duration keys; 0: off
    explicit operator bool() const { return given; }
  };
  /// The timer keys of the `bot:` settings or of a question or menu
  /// (compiler_timers.cpp).
  struct timer_keys {
    timer_key nudge_after, close_after;
    timer_key nudge, close_message, on_close;
    std::string nudge_text, close_text;
  };
  timer_keys bot_timers;  // the bot's defaults for every question and menu

  // ------------------------------------------------------------ checks
  // (compiler_checks.cpp)

  void diag(severity s, const YAML::Node& n, std::string msg, std::size_t offset = 0);
  void error(const YAML::Node& n, std::string msg, std::size_t off = 0) {
    diag(severity::error, n, std::move(msg), off);
  }
  void warning(const YAML::Node& n, std::string msg) { diag(severity::warning, n, std::move(msg)); }

  // Chooses the node to blame; by value, so no reference to a temporary escapes.
  static YAML::Node pick(bool first, const YAML::Node& a, const YAML::Node& b) {
    return first ? a : b;
  }

  static int line_of(const YAML::Node& n) { return n.IsDefined() ? n.Mark().line + 1 : 0; }

  bool scalar(const YAML::Node& n, const char* what, std::string& out);
  /// A number from 0 to 1 into `out`; else an error "WHAT must be between 0 and 1".
  bool fraction(const YAML::Node& n, const std::string& what, float& out);
  void check_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                  const std::string& where);
  detail::var_resolver resolver();
  vtype check_expr(const YAML::Node& n, const std::string& text);
  // `secrets`: whether {{secret.NAME}} may appear (an action's url and headers only).
  void check_template(const YAML::Node& n, const std::string& text, bool secrets = false);
  int dialog_ref(const YAML::Node& n, const char* what);
  int var_ref(const YAML::Node& n, const char* what);
  std::vector<std::string> texts(const YAML::Node& n, const char* what);
  void check_assign(const YAML::Node& n, int var, vtype t);
  void assignments(const YAML::Node& n, google::protobuf::RepeatedPtrField<v1::Assignment>* out);
  static bool parse_duration_ms(const std::string& s, std::uint64_t& ms);

  // ------------------------------------------------------------ steps
  // (compiler_steps.cpp)

  // Compiles a block of steps into `out`; returns true when the block never
  // falls through (ends with goto, end, transfer or return).
  bool block(const YAML::Node& steps, v1::Dialog& d, const std::string& where);
  v1::Step& add(v1::Dialog& d, v1::Step::Kind k, const YAML::Node& n);
  bool step(const YAML::Node& s, v1::Dialog& d, std::string& kind);
  bool question(const YAML::Node& q, v1::Dialog& d, const YAML::Node& s);
  void retries(const YAML::Node& q, v1::Step& st);
  bool menu(const YAML::Node& m, v1::Dialog& d, const YAML::Node& s);
  bool action(const YAML::Node& a, v1::Dialog& d, const YAML::Node& s);

  // ------------------------------------------------------------ timers
  // (compiler_timers.cpp)

  /// Reads the timer keys of `m` (the `bot:` settings, or a question's or menu's
  /// map), with the diagnostics of each value; on_close is resolved by the caller.
  timer_keys read_timers(const YAML::Node& m);
  /// The bot's defaults: read, and checked against each other and session_timeout
  /// (after session_timeout is known, before the dialogs).
  void bot_timer_settings(const YAML::Node& bot);
  /// Merges a question's or menu's keys over the bot's defaults into `st.timers`
  /// (left unset without a timer), checking the result: close_after longer than
  /// nudge_after, both shorter than session_timeout.
  void step_timers(const YAML::Node& m, v1::Step& st);
  /// The dialog index of the bot's on_close, resolved (and reported) once.
  int bot_on_close();
  int bot_on_close_ = -2;  // -2: not resolved yet

  // Literal YAML values (compiler_checks.cpp).
  v1::Value to_value(const YAML::Node& n, v1::VarType t, const std::string& var);
  static v1::Value generic(const YAML::Node& n);

  // ------------------------------------------------------------ sections
  // (compiler.cpp)

  void variables(const YAML::Node& vs);
  void entities_section(const YAML::Node& es);
  void intents_section(const YAML::Node& is);
  void dialogs_section(const YAML::Node& ds);
  int special(const YAML::Node& bot, const char* key);
  void run(std::string_view text);
};

}  // namespace parley::bot::detail
