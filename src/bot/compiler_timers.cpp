// The bot compiler's timers: `nudge_after`, `nudge`, `close_after`, `on_close` and
// `close_message`, as the bot's defaults (`bot:`) and per question or menu, merged
// into each step's v1::Timers (docs/bot-format.md, "Timers").

#include <string>

#include "src/bot/bot.hpp"
#include "src/bot/compiler_impl.hpp"

namespace parley::bot::detail {

namespace {

constexpr std::uint64_t max_timer_ms = 7ull * 86400 * 1000;

/// "90s", "2m", "1h", "7d", "500ms": the largest unit that divides `ms`.
std::string duration_text(std::uint64_t ms) {
  if (ms == 0) return "0s";
  if (ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

compiler::timer_keys compiler::read_timers(const YAML::Node& m) {
  timer_keys k;
  const auto min = static_cast<std::uint64_t>(std::max<std::int64_t>(options.min_timer.count(), 1));
  auto duration = [&](const char* key, timer_key& out) {
    const YAML::Node n = m[key];
    if (!n) return;
    out.node = n;
    out.given = true;
    const std::string what = std::string("'") + key + "'";
    std::string s;
    if (!scalar(n, what.c_str(), s)) return;
    if (s == "off") return;
    std::uint64_t ms = 0;
    if (!parse_duration_ms(s, ms) || ms < min || ms > max_timer_ms)
      error(n, "bad " + what + " '" + s + "' (from " + duration_text(min) +
                   " to 7d, or off; examples: 90s, 2m, 1h)");
    else
      out.ms = static_cast<std::uint32_t>(ms);
  };
  duration("nudge_after", k.nudge_after);
  duration("close_after", k.close_after);
  auto text = [&](const char* key, timer_key& node, std::string& out) {
    const YAML::Node n = m[key];
    if (!n) return;
    node.node = n;
    node.given = true;
    const std::string what = std::string("'") + key + "'";
    if (scalar(n, what.c_str(), out)) check_template(n, out);
  };
  text("nudge", k.nudge, k.nudge_text);
  text("close_message", k.close_message, k.close_text);
  if (m["on_close"]) k.on_close = {m["on_close"], true, 0};
  return k;
}

void compiler::bot_timer_settings(const YAML::Node& bot) {
  bot_timers = read_timers(bot);
  const auto& b = bot_timers;
  const std::uint64_t idle = std::uint64_t{prog.idle_timeout_s()} * 1000;
  if (b.nudge_after.ms > 0 && b.close_after.ms > 0 && b.close_after.ms <= b.nudge_after.ms)
    error(b.close_after.node, "'close_after' (" + duration_text(b.close_after.ms) +
                                  ") must be longer than 'nudge_after' (" +
                                  duration_text(b.nudge_after.ms) + ")");
  for (const auto* t : {&b.nudge_after, &b.close_after})
    if (t->ms > 0 && t->ms >= idle)
      error(t->node, std::string("'") + (t == &b.nudge_after ? "nudge_after" : "close_after") +
                         "' (" + duration_text(t->ms) +
                         ") must be shorter than 'session_timeout' (" + duration_text(idle) +
                         "): the session would expire first");
}

int compiler::bot_on_close() {
  if (bot_on_close_ == -2)
    bot_on_close_ = bot_timers.on_close ? dialog_ref(bot_timers.on_close.node, "'on_close'") : -1;
  return bot_on_close_;
}

void compiler::step_timers(const YAML::Node& m, v1::Step& st) {
  const auto k = read_timers(m);
  const auto& b = bot_timers;
  const timer_key& nudge = k.nudge_after.given ? k.nudge_after : b.nudge_after;
  const timer_key& close = k.close_after.given ? k.close_after : b.close_after;
  const int on_close = k.on_close ? dialog_ref(k.on_close.node, "'on_close'") : -1;
  if (nudge.ms == 0 && close.ms == 0) {
    if (k.nudge)
      warning(k.nudge.node, "'nudge' is never said: this step has no 'nudge_after' (nor the bot)");
    for (const auto* n : {&k.close_message, &k.on_close})
      if (*n) warning(n->node, "never used: this step has no 'close_after' (nor the bot)");
    return;
  }
  if (k.nudge && nudge.ms == 0)
    warning(k.nudge.node, "'nudge' is never said: this step has no 'nudge_after' (nor the bot)");
  for (const auto* n : {&k.close_message, &k.on_close})
    if (*n && close.ms == 0)
      warning(n->node, "never used: this step has no 'close_after' (nor the bot)");
  auto* t = st.mutable_timers();
  t->set_nudge_after_ms(nudge.ms);
  t->set_close_after_ms(close.ms);
  t->set_nudge(k.nudge ? k.nudge_text : b.nudge_text);
  t->set_close_message(k.close_message ? k.close_text : b.close_text);
  t->set_on_close(k.on_close ? on_close : close.ms > 0 && b.on_close ? bot_on_close() : -1);
  // The bot's own values were checked with the bot's settings: blame the step's keys.
  const bool own = k.nudge_after.given || k.close_after.given;
  if (own && nudge.ms > 0 && close.ms > 0 && close.ms <= nudge.ms) {
    const auto& blame = k.close_after.given ? k.close_after.node : k.nudge_after.node;
    error(blame, "'close_after' (" + duration_text(close.ms) +
                     (k.close_after.given ? "" : ", from the bot's settings") +
                     ") must be longer than 'nudge_after' (" + duration_text(nudge.ms) +
                     (k.nudge_after.given ? "" : ", from the bot's settings") + ")");
  }
  const std::uint64_t idle = std::uint64_t{prog.idle_timeout_s()} * 1000;
  for (const auto* t2 : {&k.nudge_after, &k.close_after})
    if (t2->ms > 0 && t2->ms >= idle)
      error(t2->node, std::string("'") + (t2 == &k.nudge_after ? "nudge_after" : "close_after") +
                          "' (" + duration_text(t2->ms) +
                          ") must be shorter than the bot's 'session_timeout' (" +
                          duration_text(idle) + "): the session would expire first");
}

}  // namespace parley::bot::detail
