#pragma once
// The Bot API codec's response rendering as it was before the hand-written JSON
// writer (src/channels/botapi/botapi.cpp, commit 2424549): an nlohmann::ordered_json
// DOM dumped with the `replace` error handler. Kept verbatim as the reference that
// the writer must match byte for byte (botapi_render_equivalence_test.cpp).
// Not used by the codec.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/channels/botapi/botapi.hpp"

namespace parley::channels::botapi::reference {

using ojson = nlohmann::ordered_json;
using botapi::reply;

constexpr int max_json_depth = 32;
constexpr std::size_t max_request_id_length = 200;

inline v1::Value null_value() {
  v1::Value v;
  v.set_null_value(true);
  return v;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Header values are echoed in response headers: keep only what cannot break them.
inline std::string safe_header_value(std::string_view s) {
  if (s.size() > max_request_id_length ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return {};
  return std::string(s);
}

// An empty value is left out, so that the server's own X-Request-Id stands.
inline void add_header(http::response& resp, const char* name, std::string value) {
  if (!value.empty()) resp.headers.emplace_back(name, std::move(value));
}

// ------------------------------------------------------------------ hashing

inline std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += hex[(v >> (i * 4)) & 0xf];
}

// ------------------------------------------------------------------ JSON out

inline std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

// Integral doubles render as integers ("3", not "3.0").
inline ojson number_json(double d) {
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return static_cast<std::int64_t>(d);
  if (!std::isfinite(d)) return nullptr;
  return d;
}

inline ojson plain_json(const v1::Value& v, int depth) {
  if (depth > max_json_depth) return nullptr;
  switch (v.kind_case()) {
    case v1::Value::kText:
      return v.text();
    case v1::Value::kNumber:
      return number_json(v.number());
    case v1::Value::kBoolean:
      return v.boolean();
    case v1::Value::kList: {
      ojson arr = ojson::array();
      for (const auto& item : v.list().items()) arr.push_back(plain_json(item, depth + 1));
      return arr;
    }
    case v1::Value::kObject: {
      ojson obj = ojson::object();
      for (const auto& f : v.object().fields()) obj[f.key()] = plain_json(f.value(), depth + 1);
      return obj;
    }
    default:
      return nullptr;
  }
}

// A value as text, the way the bot's templates show it ("12.5", "true", "a, b").
inline std::string value_text(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kText:
      return v.text();
    case v1::Value::kNumber:
      return number_json(v.number()).dump();
    case v1::Value::kBoolean:
      return v.boolean() ? "true" : "false";
    case v1::Value::kList: {
      std::string out;
      for (const auto& item : v.list().items()) {
        if (!out.empty()) out += ", ";
        out += item.kind_case() == v1::Value::kList ? dump(plain_json(item, 1)) : value_text(item);
      }
      return out;
    }
    case v1::Value::kObject:
      return dump(plain_json(v, 0));
    default:
      return {};
  }
}

inline const char* inferred_type(const v1::Value& v) {
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

inline std::string money_text(double amount, std::string_view currency) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, amount, std::chars_format::fixed, 2);
  std::string out(currency.empty() ? "USD" : currency);
  out += ' ';
  out.append(buf, ec == std::errc() ? end : buf);
  return out;
}

inline ojson typed_json(const v1::Value& v, std::string_view type, std::string_view currency,
                        int depth);

// ObjectValue → Variables array.
inline ojson variables_json(const v1::ObjectValue& obj, std::string_view currency, int depth) {
  ojson arr = ojson::array();
  for (const auto& f : obj.fields()) {
    const char* t = inferred_type(f.value());
    arr.push_back(ojson{
        {"name", f.key()}, {"type", t}, {"value", typed_json(f.value(), t, currency, depth + 1)}});
  }
  return arr;
}

// A value as the JSON `value` of a contract variable of `type`.
inline ojson typed_json(const v1::Value& v, std::string_view type, std::string_view currency,
                        int depth) {
  if (depth > max_json_depth || v.kind_case() == v1::Value::KIND_NOT_SET ||
      v.kind_case() == v1::Value::kNullValue)
    return nullptr;
  if (type == "boolean") {
    if (v.kind_case() == v1::Value::kBoolean) return v.boolean();
    return nullptr;
  }
  if (type == "number") {
    if (v.kind_case() == v1::Value::kNumber) return number_json(v.number());
    return nullptr;
  }
  if (type == "money") {
    if (v.kind_case() == v1::Value::kNumber && std::isfinite(v.number()))
      return money_text(v.number(), currency);
    if (v.kind_case() == v1::Value::kText) return v.text();
    return nullptr;
  }
  if (type == "list") {
    ojson arr = ojson::array();
    if (v.kind_case() != v1::Value::kList) return nullptr;
    for (const auto& item : v.list().items()) {
      const char* t = inferred_type(item);
      arr.push_back(ojson{{"type", t}, {"value", typed_json(item, t, currency, depth + 1)}});
    }
    return arr;
  }
  if (type == "object") {
    if (v.kind_case() != v1::Value::kObject) return nullptr;
    return variables_json(v.object(), currency, depth);
  }
  // text, date, dateTime, ref
  return value_text(v);
}

inline const char* type_name(v1::VarType t, const v1::Value& v) {
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

inline ojson text_message(const std::string& id, const std::string& text) {
  return ojson{{"type", "text"}, {"id", id}, {"text", text}};
}

inline std::string choice_id(const v1::Choice& c) {
  return c.payload().empty() ? c.label() : c.payload();
}

inline ojson escalate_target(std::string_view t) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> prefixes = {{
      {"bot:", "Salesforce:Core:Bot:Id"},
      {"flow:", "Salesforce:Core:Flow:Id"},
      {"queue:", "Salesforce:Core:Queue:Id"},
      {"skill:", "Salesforce:Core:Skill:Id"},
  }};
  for (const auto& [prefix, type] : prefixes)
    if (t.size() >= prefix.size() && iequals(t.substr(0, prefix.size()), prefix))
      return ojson{{"type", type}, {"value", t.substr(prefix.size())}};
  return ojson{{"type", "Salesforce:Core:Skill:Id"}, {"value", t}};
}

inline const char* end_reason_name(v1::EndReason r) {
  switch (r) {
    case v1::COMPLETED:
      return "Action";
    case v1::INFINITE_LOOP_DETECTED:
      return "InfiniteLoopDetected";
    default:
      return "Error";
  }
}

inline ojson messages_json(const reply& r, const v1::TurnResult& turn) {
  ojson msgs = ojson::array();
  std::size_t index = 0;
  auto next_id = [&] { return message_id(r.session_id, r.sequence_id, index++); };
  for (const auto& out : turn.messages()) {
    if (!out.text().empty() || out.choices_size() == 0) {
      if (out.text().empty()) continue;
      msgs.push_back(text_message(next_id(), out.text()));
    }
    if (out.choices_size() > 0) {
      ojson choices = ojson::array();
      int alias = 1;
      for (const auto& c : out.choices())
        choices.push_back(
            ojson{{"label", c.label()}, {"alias", std::to_string(alias++)}, {"id", choice_id(c)}});
      msgs.push_back(ojson{{"type", "choices"},
                           {"id", next_id()},
                           {"choices", std::move(choices)},
                           {"widget", "buttons"}});
    }
  }
  if (turn.state().status() == v1::TRANSFERRED) {
    ojson targets = ojson::array();
    if (!turn.transfer().queue().empty())
      targets.push_back(
          ojson{{"type", "Salesforce:Core:Queue:Id"}, {"value", turn.transfer().queue()}});
    for (const auto& t : turn.transfer().targets()) targets.push_back(escalate_target(t));
    msgs.push_back(ojson{{"type", "escalate"}, {"id", next_id()}, {"targets", std::move(targets)}});
  } else if (turn.state().status() == v1::ENDED) {
    msgs.push_back(ojson{{"type", "sessionEnded"},
                         {"id", next_id()},
                         {"reason", end_reason_name(turn.end_reason())}});
  }
  return msgs;
}

inline std::string session_path(const reply& r) {
  return r.base_url + "/" + std::string(api_version) + "/sessions/" + r.session_id;
}

inline ojson links_json(const reply& r) {
  std::string session = session_path(r);
  return ojson{{"self", {{"href", session}}},
               {"messages", {{"href", session + "/messages"}}},
               {"session", {{"href", session}}}};
}

inline void add_extras(ojson& body, const reply& r, const v1::TurnResult* turn) {
  if (r.options.variables) {
    ojson vars = ojson::array();
    for (const auto& v : r.variables) {
      const char* t = type_name(v.type, v.value);
      vars.push_back(
          ojson{{"name", v.name}, {"type", t}, {"value", typed_json(v.value, t, r.currency, 0)}});
    }
    body["variables"] = std::move(vars);
  }
  if (r.options.metrics) body["metrics"] = ojson::object();
  if (r.options.intents) {
    ojson intents = ojson::array();
    if (turn) {
      const bool direct = turn->matched_by() == "exact" || turn->matched_by() == "menu";
      for (const auto& i : turn->intents())
        intents.push_back(ojson{{"label", i.name()},
                                {"confidenceScore", number_json(i.confidence())},
                                {"intentSource", direct ? "DIRECT" : "CORE_NLP"}});
    }
    body["intents"] = std::move(intents);
  }
  if (r.options.entities) {
    ojson entities = ojson::array();
    if (turn)
      for (const auto& e : turn->entities())
        entities.push_back(ojson{{"confidenceScore", 1},
                                 {"value", e.value()},
                                 {"type", e.entity()},
                                 {"entitySource", "BOT_SERVICE"}});
    body["entities"] = std::move(entities);
  }
}

inline std::string runtime_crc(const reply& r) {
  if (!r.runtime_crc.empty()) return safe_header_value(r.runtime_crc);
  std::string out;
  append_hex(out, mix(fnv1a(r.bot_version, fnv1a(r.session_id, 0xcbf29ce484222325ULL) ^ 0xff)), 16);
  return out;
}

inline http::response success(ojson body, const reply& r, bool start) {
  http::response resp = http::response::json(200, dump(body));
  add_header(resp, "X-Request-ID", safe_header_value(r.request_id));
  add_header(resp, "X-Runtime-CRC", runtime_crc(r));
  if (start) resp.headers.emplace_back("X-Bot-Mode", "default");
  return resp;
}

inline ojson sequence_ids(const reply& r) {
  ojson ids = ojson::array();
  for (auto id : r.processed_sequence_ids) ids.push_back(id);
  return ids;
}

inline const char* error_class(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "UnauthorizedError";
    case 403:
      return "ForbiddenError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowedError";
    case 422:
      return "RequestProcessingException";
    case 423:
      return "ServerBusyError";
    case 429:
      return "TooManyRequestsError";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalServerError";
  }
}

inline std::string message_id(std::string_view session_id, std::int64_t sequence_id,
                              std::size_t index) {
  std::string key(session_id);
  key += '\0';
  key += std::to_string(sequence_id);
  key += '\0';
  key += std::to_string(index);
  std::uint64_t hi = mix(fnv1a(key, 0xcbf29ce484222325ULL));
  std::uint64_t lo = mix(fnv1a(key, 0x84222325cbf29ce4ULL) ^ hi);
  // RFC 9562 layout: version 8 (custom), variant 10.
  hi = (hi & ~0xf000ULL) | 0x8000ULL;
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
  std::string out;
  out.reserve(36);
  append_hex(out, hi >> 32, 8);
  out += '-';
  append_hex(out, (hi >> 16) & 0xffff, 4);
  out += '-';
  append_hex(out, hi & 0xffff, 4);
  out += '-';
  append_hex(out, lo >> 48, 4);
  out += '-';
  append_hex(out, lo & 0xffffffffffffULL, 12);
  return out;
}

inline http::response render_start(const reply& r, const v1::TurnResult& turn) {
  ojson body;
  body["sessionId"] = r.session_id;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] = messages_json(r, turn);
  add_extras(body, r, &turn);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/true);
}

inline http::response render_continue(const reply& r, const v1::TurnResult& turn) {
  ojson body;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] = messages_json(r, turn);
  add_extras(body, r, &turn);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/false);
}

inline http::response render_end(const reply& r) {
  ojson body;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] =
      ojson::array({ojson{{"type", "sessionEnded"},
                          {"id", message_id(r.session_id, r.sequence_id, end_message_index)},
                          {"reason", "ClientRequest"}}});
  add_extras(body, r, nullptr);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/false);
}

inline http::response render_error(int status, std::string_view message, std::string_view path,
                                   std::string_view request_id, std::int64_t timestamp_ms,
                                   std::optional<std::int64_t> retry_after_s) {
  ojson body;
  body["status"] = status;
  body["path"] = path;
  body["requestId"] = request_id;
  body["error"] = error_class(status);
  body["message"] = message;
  body["timestamp"] = timestamp_ms;
  http::response resp = http::response::json(status, dump(body));
  add_header(resp, "X-Request-ID", safe_header_value(request_id));
  if (retry_after_s)
    resp.headers.emplace_back("Retry-After",
                              std::to_string(std::max<std::int64_t>(0, *retry_after_s)));
  return resp;
}

inline http::response render_failure(const failure& f, const http::request& req,
                                     std::int64_t timestamp_ms) {
  std::string request_id = safe_header_value(req.request_id);
  if (request_id.empty())
    if (const std::string* rid = req.header("X-Request-ID"))
      request_id = safe_header_value(trim(*rid));
  return render_error(f.status, f.message, req.path, request_id, timestamp_ms, std::nullopt);
}

inline http::response render_status(bool up) {
  return http::response::json(200, dump(ojson{{"status", up ? "UP" : "DOWN"}}));
}

inline http::response render_versions() {
  return http::response::json(
      200, dump(ojson{{"versions", ojson::array({ojson{{"versionNumber", std::string(api_version)},
                                                       {"status", "ACTIVE"}}})}}));
}

}  // namespace parley::channels::botapi::reference
