// Rendering of the Bot API codec's responses, written straight into their bodies
// with the shared JSON writer (src/channels/json/writer.hpp).

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "src/channels/botapi/botapi.hpp"
#include "src/channels/botapi/ids.hpp"
#include "src/channels/botapi/route.hpp"
#include "src/channels/json/writer.hpp"
#include "src/common/strings.hpp"

namespace parley::channels::botapi {

namespace {

using namespace detail;
using json::append_bool;
using json::append_escaped;
using json::append_int;
using json::append_number;
using json::append_string;
using json::lit;

void append_plain(std::string& out, const v1::Value& v, int depth) {
  json::append_value(out, v, depth);
}

// An empty value is left out, so that the server's own X-Request-Id stands.
void add_header(http::response& resp, const char* name, std::string value) {
  if (!value.empty()) resp.headers.emplace_back(name, std::move(value));
}

// A value as text, the way the bot's templates show it ("12.5", "true", "a, b").
std::string value_text(const v1::Value& v) {
  std::string out;
  switch (v.kind_case()) {
    case v1::Value::kText:
      return v.text();
    case v1::Value::kNumber:
      append_number(out, v.number());
      return out;
    case v1::Value::kBoolean:
      return v.boolean() ? "true" : "false";
    case v1::Value::kList:
      for (const auto& item : v.list().items()) {
        if (!out.empty()) out += ", ";
        if (item.kind_case() == v1::Value::kList)
          append_plain(out, item, 1);
        else
          out += value_text(item);
      }
      return out;
    case v1::Value::kObject:
      append_plain(out, v, 0);
      return out;
    default:
      return out;
  }
}

const char* inferred_type(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kBoolean:
      return "boolean";
    case v1::Value::kNumber:
      return "number";
    case v1::Value::kList:
      return "list";
    case v1::Value::kObject:
      return "object";
    default:
      return "text";
  }
}

std::string money_text(double amount, std::string_view currency) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, amount, std::chars_format::fixed, 2);
  std::string out(currency.empty() ? "USD" : currency);
  out += ' ';
  out.append(buf, ec == std::errc() ? end : buf);
  return out;
}

void append_typed(std::string& out, const v1::Value& v, std::string_view type,
                  std::string_view currency, int depth);

// `{"name":..,"type":..,"value":..}`; the type names need no escaping.
void append_variable(std::string& out, std::string_view name, const char* type, const v1::Value& v,
                     std::string_view currency, int depth) {
  lit(out, "{\"name\":");
  append_string(out, name);
  lit(out, ",\"type\":\"");
  out += type;
  lit(out, "\",\"value\":");
  append_typed(out, v, type, currency, depth);
  out += '}';
}

// A value as the JSON `value` of a contract variable of `type`.
void append_typed(std::string& out, const v1::Value& v, std::string_view type,
                  std::string_view currency, int depth) {
  const auto kind = v.kind_case();
  if (depth > json::max_depth || kind == v1::Value::KIND_NOT_SET || kind == v1::Value::kNullValue)
    return lit(out, "null");
  if (type == "boolean") {
    if (kind == v1::Value::kBoolean) return append_bool(out, v.boolean());
    return lit(out, "null");
  }
  if (type == "number") {
    if (kind == v1::Value::kNumber) return append_number(out, v.number());
    return lit(out, "null");
  }
  if (type == "money") {
    if (kind == v1::Value::kNumber && std::isfinite(v.number()))
      return append_string(out, money_text(v.number(), currency));
    if (kind == v1::Value::kText) return append_string(out, v.text());
    return lit(out, "null");
  }
  if (type == "list") {
    if (kind != v1::Value::kList) return lit(out, "null");
    out += '[';
    bool first = true;
    for (const auto& item : v.list().items()) {
      if (!first) out += ',';
      first = false;
      const char* t = inferred_type(item);
      lit(out, "{\"type\":\"");
      out += t;
      lit(out, "\",\"value\":");
      append_typed(out, item, t, currency, depth + 1);
      out += '}';
    }
    out += ']';
    return;
  }
  if (type == "object") {
    // ObjectValue → Variables array.
    if (kind != v1::Value::kObject) return lit(out, "null");
    out += '[';
    bool first = true;
    for (const auto& f : v.object().fields()) {
      if (!first) out += ',';
      first = false;
      append_variable(out, f.key(), inferred_type(f.value()), f.value(), currency, depth + 1);
    }
    out += ']';
    return;
  }
  // text, date, dateTime, ref
  if (kind == v1::Value::kText) return append_string(out, v.text());
  append_string(out, value_text(v));
}

const char* type_name(v1::VarType t, const v1::Value& v) {
  switch (t) {
    case v1::VAR_TEXT:
      return "text";
    case v1::VAR_NUMBER:
      return "number";
    case v1::VAR_BOOLEAN:
      return "boolean";
    case v1::VAR_DATE:
      return "date";
    case v1::VAR_DATETIME:
      return "dateTime";
    case v1::VAR_MONEY:
      return "money";
    case v1::VAR_LIST:
      return "list";
    case v1::VAR_OBJECT:
      return "object";
    default:
      return inferred_type(v);
  }
}

// `"id":"<message id>"` of the next message of the turn.
struct message_ids {
  explicit message_ids(const reply& r) : hash(r.session_id, r.sequence_id) {}
  message_id_hash hash;
  std::size_t index = 0;
  void append(std::string& out) {
    lit(out, "\"id\":\"");
    hash.append(out, index++);
    out += '"';
  }
};

void append_escalate_target(std::string& out, std::string_view t) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> prefixes = {{
      {"bot:", "Salesforce:Core:Bot:Id"},
      {"flow:", "Salesforce:Core:Flow:Id"},
      {"queue:", "Salesforce:Core:Queue:Id"},
      {"skill:", "Salesforce:Core:Skill:Id"},
  }};
  std::string_view type = "Salesforce:Core:Skill:Id";
  for (const auto& [prefix, name] : prefixes)
    if (common::istarts_with(t, prefix)) {
      type = name;
      t.remove_prefix(prefix.size());
      break;
    }
  lit(out, "{\"type\":\"");
  out += type;
  lit(out, "\",\"value\":");
  append_string(out, t);
  out += '}';
}

const char* end_reason_name(v1::EndReason r) {
  switch (r) {
    case v1::COMPLETED:
      return "Action";
    case v1::INFINITE_LOOP_DETECTED:
      return "InfiniteLoopDetected";
    default:
      return "Error";
  }
}

// `"messages":[...]` of a turn.
void append_messages(std::string& out, const reply& r, const v1::TurnResult& turn) {
  lit(out, "\"messages\":[");
  message_ids ids{r};
  bool first = true;
  auto next = [&] {
    if (!first) out += ',';
    first = false;
  };
  for (const auto& m : turn.messages()) {
    if (!m.text().empty()) {
      next();
      lit(out, "{\"type\":\"text\",");
      ids.append(out);
      lit(out, ",\"text\":");
      append_string(out, m.text());
      out += '}';
    }
    if (m.choices_size() > 0) {
      next();
      lit(out, "{\"type\":\"choices\",");
      ids.append(out);
      lit(out, ",\"choices\":[");
      int alias = 1;
      for (const auto& c : m.choices()) {
        if (alias > 1) out += ',';
        lit(out, "{\"label\":");
        append_string(out, c.label());
        lit(out, ",\"alias\":\"");
        append_int(out, alias++);
        lit(out, "\",\"id\":");
        append_string(out, c.payload().empty() ? c.label() : c.payload());
        out += '}';
      }
      lit(out, "],\"widget\":\"buttons\"}");
    }
  }
  if (turn.state().status() == v1::TRANSFERRED) {
    next();
    lit(out, "{\"type\":\"escalate\",");
    ids.append(out);
    lit(out, ",\"targets\":[");
    bool first_target = true;
    if (!turn.transfer().queue().empty()) {
      lit(out, "{\"type\":\"Salesforce:Core:Queue:Id\",\"value\":");
      append_string(out, turn.transfer().queue());
      out += '}';
      first_target = false;
    }
    for (const auto& t : turn.transfer().targets()) {
      if (!first_target) out += ',';
      first_target = false;
      append_escalate_target(out, t);
    }
    lit(out, "]}");
  } else if (turn.state().status() == v1::ENDED) {
    next();
    lit(out, "{\"type\":\"sessionEnded\",");
    ids.append(out);
    lit(out, ",\"reason\":\"");
    out += end_reason_name(turn.end_reason());
    lit(out, "\"}");
  }
  out += ']';
}

// `"_links":{...}`. The href is base URL, "/v5.3.0/sessions/" and the session
// id: escaped piece by piece, which gives the escaping of the whole, as every
// piece is followed by ASCII or the end of the string.
void append_links(std::string& out, const reply& r) {
  auto href = [&](bool messages) {
    lit(out, "{\"href\":\"");
    append_escaped(out, r.base_url);
    out += '/';
    out += api_version;
    lit(out, "/sessions/");
    append_escaped(out, r.session_id);
    if (messages) lit(out, "/messages");
    lit(out, "\"}");
  };
  lit(out, "\"_links\":{\"self\":");
  href(false);
  lit(out, ",\"messages\":");
  href(true);
  lit(out, ",\"session\":");
  href(false);
  out += '}';
}

// `"variables"`, `"metrics"`, `"intents"`, `"entities"` as the options ask, each
// followed by a comma.
void append_extras(std::string& out, const reply& r, const v1::TurnResult* turn) {
  if (r.options.variables) {
    lit(out, "\"variables\":[");
    bool first = true;
    for (const auto& v : r.variables) {
      if (!first) out += ',';
      first = false;
      append_variable(out, v.name, type_name(v.type, v.value), v.value, r.currency, 0);
    }
    lit(out, "],");
  }
  if (r.options.metrics) lit(out, "\"metrics\":{},");
  if (r.options.intents) {
    lit(out, "\"intents\":[");
    if (turn) {
      const bool direct = turn->matched_by() == "exact" || turn->matched_by() == "menu";
      bool first = true;
      for (const auto& i : turn->intents()) {
        if (!first) out += ',';
        first = false;
        lit(out, "{\"label\":");
        append_string(out, i.name());
        lit(out, ",\"confidenceScore\":");
        append_number(out, i.confidence());
        if (direct)
          lit(out, ",\"intentSource\":\"DIRECT\"}");
        else
          lit(out, ",\"intentSource\":\"CORE_NLP\"}");
      }
    }
    lit(out, "],");
  }
  if (r.options.entities) {
    lit(out, "\"entities\":[");
    if (turn) {
      bool first = true;
      for (const auto& e : turn->entities()) {
        if (!first) out += ',';
        first = false;
        lit(out, "{\"confidenceScore\":1,\"value\":");
        append_string(out, e.value());
        lit(out, ",\"type\":");
        append_string(out, e.entity());
        lit(out, ",\"entitySource\":\"BOT_SERVICE\"}");
      }
    }
    lit(out, "],");
  }
}

// A first guess at the size of a response body, so that it is allocated once.
std::size_t body_size_hint(const reply& r, const v1::TurnResult* turn) {
  std::size_t n = 320 + r.bot_version.size() + 3 * (r.base_url.size() + r.session_id.size()) +
                  24 * r.processed_sequence_ids.size() + 64 * r.variables.size();
  if (turn) {
    for (const auto& m : turn->messages()) {
      n += 80 + m.text().size();
      for (const auto& c : m.choices()) n += 48 + c.label().size() + c.payload().size();
    }
    n += 64 * (turn->intents_size() + turn->entities_size() + turn->transfer().targets_size());
  }
  return n;
}

// The body of a session response: `sessionId` (start only), `botVersion`,
// `processedSequenceIds`, `messages`, the extras, `_links`.
template <class Messages>
std::string session_body(const reply& r, const v1::TurnResult* turn, bool start,
                         Messages&& messages) {
  std::string out;
  out.reserve(body_size_hint(r, turn));
  out += '{';
  if (start) {
    lit(out, "\"sessionId\":");
    append_string(out, r.session_id);
    out += ',';
  }
  lit(out, "\"botVersion\":");
  append_string(out, r.bot_version);
  lit(out, ",\"processedSequenceIds\":[");
  bool first = true;
  for (auto id : r.processed_sequence_ids) {
    if (!first) out += ',';
    first = false;
    append_int(out, id);
  }
  lit(out, "],");
  messages(out);
  out += ',';
  append_extras(out, r, turn);
  append_links(out, r);
  out += '}';
  return out;
}

std::string runtime_crc(const reply& r) {
  if (!r.runtime_crc.empty()) return safe_header_value(r.runtime_crc);
  return default_runtime_crc(r.session_id, r.bot_version);
}

http::response success(std::string body, const reply& r, bool start) {
  http::response resp = http::response::json(200, std::move(body));
  resp.headers.reserve(3);
  add_header(resp, "X-Request-ID", safe_header_value(r.request_id));
  add_header(resp, "X-Runtime-CRC", runtime_crc(r));
  if (start) resp.headers.emplace_back("X-Bot-Mode", "default");
  return resp;
}

}  // namespace

std::vector<variable_out> response_variables(const v1::Program& program, const v1::State& state,
                                             const response_options& options,
                                             const v1::State* previous) {
  std::vector<variable_out> out;
  if (!options.variables) return out;
  auto value_in = [&](const v1::State& s, int index) -> const v1::Value* {
    for (const auto& slot : s.vars())
      if (slot.index() == static_cast<std::uint32_t>(index)) return &slot.value();
    return nullptr;
  };
  for (int i = 0; i < program.variables_size(); ++i) {
    const auto& decl = program.variables(i);
    if (!options.filter.empty() && std::find(options.filter.begin(), options.filter.end(),
                                             decl.name()) == options.filter.end())
      continue;
    const v1::Value* now = value_in(state, i);
    if (options.only_changed && previous) {
      const v1::Value* before = value_in(*previous, i);
      if (now == before) continue;  // both unset
      if (now && before && now->SerializeAsString() == before->SerializeAsString()) continue;
    }
    variable_out v;
    v.name = decl.name();
    v.type = decl.type();
    v.value = now ? *now : (decl.has_default_value() ? decl.default_value() : null_value());
    out.push_back(std::move(v));
  }
  return out;
}

http::response render_start(const reply& r, const v1::TurnResult& turn) {
  return success(session_body(r, &turn, /*start=*/true,
                              [&](std::string& out) { append_messages(out, r, turn); }),
                 r, /*start=*/true);
}

http::response render_continue(const reply& r, const v1::TurnResult& turn) {
  return success(session_body(r, &turn, /*start=*/false,
                              [&](std::string& out) { append_messages(out, r, turn); }),
                 r, /*start=*/false);
}

http::response render_end(const reply& r) {
  return success(
      session_body(r, nullptr, /*start=*/false,
                   [&](std::string& out) {
                     lit(out, "\"messages\":[{\"type\":\"sessionEnded\",\"id\":\"");
                     message_id_hash(r.session_id, r.sequence_id).append(out, end_message_index);
                     lit(out, "\",\"reason\":\"ClientRequest\"}]");
                   }),
      r, /*start=*/false);
}

http::response render_error(int status, std::string_view message, std::string_view path,
                            std::string_view request_id, std::int64_t timestamp_ms,
                            std::optional<std::int64_t> retry_after_s) {
  std::string body;
  body.reserve(112 + 2 * (message.size() + path.size() + request_id.size()));
  lit(body, "{\"status\":");
  append_int(body, status);
  lit(body, ",\"path\":");
  append_string(body, path);
  lit(body, ",\"requestId\":");
  append_string(body, request_id);
  lit(body, ",\"error\":\"");
  body += error_class(status);
  lit(body, "\",\"message\":");
  append_string(body, message);
  lit(body, ",\"timestamp\":");
  append_int(body, timestamp_ms);
  body += '}';
  http::response resp = http::response::json(status, std::move(body));
  add_header(resp, "X-Request-ID", safe_header_value(request_id));
  if (retry_after_s)
    resp.headers.emplace_back("Retry-After",
                              std::to_string(std::max<std::int64_t>(0, *retry_after_s)));
  return resp;
}

http::response render_failure(const failure& f, const http::request& req,
                              std::int64_t timestamp_ms) {
  std::string request_id = safe_header_value(req.request_id);
  if (request_id.empty())
    if (const std::string* rid = req.header("X-Request-ID"))
      request_id = safe_header_value(trim(*rid));
  return render_error(f.status, f.message, req.path, request_id, timestamp_ms);
}

http::response render_status(bool up) {
  return http::response::json(200, up ? R"({"status":"UP"})" : R"({"status":"DOWN"})");
}

http::response render_versions() {
  std::string body = R"({"versions":[{"versionNumber":")";
  body += api_version;
  body += R"(","status":"ACTIVE"}]})";
  return http::response::json(200, std::move(body));
}

}  // namespace parley::channels::botapi
