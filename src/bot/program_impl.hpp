#pragma once
/// The loaded form of a program (internal to src/bot): expressions and
/// templates parsed once, extractors and the classifier built once.

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/nlu.hpp"

namespace parley::bot {

struct program::impl {
  struct step_rt {
    std::vector<detail::parsed_template> texts;
    detail::expr_ptr expr;
    std::vector<std::pair<int, detail::expr_ptr>> assign;
    std::vector<std::vector<std::pair<int, detail::expr_ptr>>> option_assign;
    std::vector<std::string> option_norm;  // normalized option labels
    detail::parsed_template url;
    std::vector<detail::parsed_template> headers;
    std::vector<std::pair<std::string, detail::expr_ptr>> body;
    detail::parsed_template nudge, close_message;  // Step.timers
  };
  // `extractors` point into `proto`: the impl is never moved once built.
  v1::Program proto;
  std::vector<std::string> names;           // variable names by index
  std::vector<v1::Value> defaults;          // by variable index; null when none
  std::vector<std::vector<step_rt>> steps;  // [dialog][step]
  detail::classifier nlu;
  std::shared_ptr<const detail::zone> zone;   // the bot's time zone; never null once loaded
  std::vector<detail::extractor> extractors;  // by entity index; they point at `zone`
};

namespace detail {
nlohmann::json to_json(const v1::Value& v);
v1::Value from_json(const nlohmann::json& j, int depth);
std::optional<v1::Value> coerce(const v1::Value& v, v1::VarType t);
/// "a.b[0].c" -> "a b 0 c"
std::string normalize_path(std::string_view path);
}  // namespace detail

}  // namespace parley::bot
