#include "src/channels/botapi/botapi.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

namespace parley::channels::botapi {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Deeper JSON is refused before nlohmann parses it: nothing we accept nests
// this far, and it bounds every recursion below.
constexpr int max_json_depth = 32;
constexpr std::size_t max_id_length = 128;
constexpr std::size_t max_request_id_length = 200;

constexpr std::array<std::string_view, 9> variable_types = {
    "boolean", "date", "dateTime", "money", "number", "text", "object", "ref", "list"};
constexpr std::array<std::string_view, 5> end_session_reasons = {
    "UserRequest", "Transfer", "Expiration", "Error", "Other"};
constexpr std::array<std::string_view, 2> transfer_failed_reasons = {"NoAgentAvailable", "Error"};
constexpr std::array<std::string_view, 2> referrer_types = {"Salesforce:Core:Bot:Id",
                                                            "Salesforce:BotRuntime:Session:Id"};

template <std::size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

template <std::size_t N>
std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto s : set) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

failure bad(const std::string& field, std::string_view what) {
  return make_failure(400, field + ": " + std::string(what));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == ':' || c == '-';
}

bool valid_id(std::string_view s) {
  return !s.empty() && s.size() <= max_id_length && std::all_of(s.begin(), s.end(), is_id_char);
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Header values are echoed in response headers: keep only what cannot break them.
std::string safe_header_value(std::string_view s) {
  if (s.size() > max_request_id_length ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return {};
  return std::string(s);
}

// An empty value is left out, so that the server's own X-Request-Id stands.
void add_header(http::response& resp, const char* name, std::string value) {
  if (!value.empty()) resp.headers.emplace_back(name, std::move(value));
}

// ------------------------------------------------------------------ hashing

std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += hex[(v >> (i * 4)) & 0xf];
}

// ------------------------------------------------------------------ JSON in

// Nesting depth of a JSON text, counted outside strings. Cheap, and it keeps
// hostile bodies ("[[[[...") away from every recursive step after parsing.
int nesting_depth(std::string_view body) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return max_depth;
}

parsed<json> parse_body(std::string_view body) {
  if (trim(body).empty()) return bad("body", "required JSON object, got an empty body");
  if (nesting_depth(body) > max_json_depth)
    return bad("body", "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("body", "malformed JSON");
  if (!j.is_object()) return bad("body", "must be a JSON object");
  return j;
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// Optional string member: absent or null leave `out` alone.
std::optional<failure> opt_string(const json& obj, const char* key, const std::string& where,
                                  std::string& out) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) return bad(where, "must be a string");
  out = v->get<std::string>();
  return std::nullopt;
}

std::optional<failure> req_string(const json& obj, const char* key, const std::string& where,
                                  std::string& out) {
  const json* v = member(obj, key);
  if (!v || !v->is_string()) return bad(where, "required string");
  out = v->get<std::string>();
  return std::nullopt;
}

std::optional<failure> opt_bool(const json& obj, const char* key, const std::string& where,
                                bool& out) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) return bad(where, "must be a boolean");
  out = v->get<bool>();
  return std::nullopt;
}

std::optional<failure> req_bool(const json& obj, const char* key, const std::string& where,
                                bool& out) {
  const json* v = member(obj, key);
  if (!v || !v->is_boolean()) return bad(where, "required boolean");
  out = v->get<bool>();
  return std::nullopt;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool is_date(std::string_view s) {
  return s.size() == 10 && digits(s, 0, 4) && s[4] == '-' && digits(s, 5, 2) && s[7] == '-' &&
         digits(s, 8, 2);
}

// ISO local date-time "YYYY-MM-DDTHH:MM:SS"; a fraction, "Z" or an offset may follow.
bool is_date_time(std::string_view s) {
  return s.size() >= 19 && s.size() <= 40 && is_date(s.substr(0, 10)) && s[10] == 'T' &&
         digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) && s[16] == ':' &&
         digits(s, 17, 2);
}

// "USD 10.40", or a bare amount "10.40".
std::optional<double> parse_money(std::string_view s) {
  s = trim(s);
  if (s.size() > 4 && s[3] == ' ' &&
      std::all_of(s.begin(), s.begin() + 3, [](char c) { return c >= 'A' && c <= 'Z'; }))
    s = trim(s.substr(4));
  if (s.empty() || s.size() > 64) return std::nullopt;
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

v1::Value null_value() {
  v1::Value v;
  v.set_null_value(true);
  return v;
}

// Plain JSON → Value; depth is bounded by parse_body.
v1::Value plain_value(const json& j) {
  v1::Value v;
  switch (j.type()) {
    case json::value_t::boolean: v.set_boolean(j.get<bool>()); break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: v.set_number(j.get<double>()); break;
    case json::value_t::string: v.set_text(j.get<std::string>()); break;
    case json::value_t::array: {
      auto* list = v.mutable_list();
      for (const auto& item : j) *list->add_items() = plain_value(item);
      break;
    }
    case json::value_t::object: {
      // nlohmann::json keeps keys sorted, as ObjectValue wants them.
      auto* obj = v.mutable_object();
      for (auto it = j.begin(); it != j.end(); ++it) {
        auto* f = obj->add_fields();
        f->set_key(it.key());
        *f->mutable_value() = plain_value(it.value());
      }
      break;
    }
    default: v.set_null_value(true); break;
  }
  return v;
}

std::optional<failure> parse_variables(const json& arr, const std::string& where,
                                       std::vector<variable>& out);

parsed<v1::Value> typed_value(std::string_view type, const json& j, const std::string& where) {
  if (j.is_null()) return null_value();
  v1::Value v;
  if (type == "boolean") {
    if (!j.is_boolean()) return bad(where, "must be a boolean or null");
    v.set_boolean(j.get<bool>());
  } else if (type == "number") {
    if (!j.is_number()) return bad(where, "must be a number or null");
    v.set_number(j.get<double>());
  } else if (type == "text" || type == "ref") {
    if (!j.is_string()) return bad(where, "must be a string or null");
    v.set_text(j.get<std::string>());
  } else if (type == "date") {
    if (!j.is_string() || !is_date(j.get_ref<const std::string&>()))
      return bad(where, "must be a date 'YYYY-MM-DD' or null");
    v.set_text(j.get<std::string>());
  } else if (type == "dateTime") {
    if (!j.is_string() || !is_date_time(j.get_ref<const std::string&>()))
      return bad(where, "must be a date-time 'YYYY-MM-DDTHH:MM:SS' or null");
    v.set_text(j.get<std::string>());
  } else if (type == "money") {
    std::optional<double> amount;
    if (j.is_number()) amount = j.get<double>();
    else if (j.is_string()) amount = parse_money(j.get_ref<const std::string&>());
    if (!amount) return bad(where, "must be money 'CUR 12.34' or null");
    v.set_number(*amount);
  } else if (type == "object") {
    if (!j.is_array()) return bad(where, "must be an array of variables or null");
    std::vector<variable> fields;
    if (auto f = parse_variables(j, where, fields)) return *f;
    std::map<std::string, v1::Value> sorted;
    for (auto& f : fields) sorted[f.name] = std::move(f.value);
    auto* obj = v.mutable_object();
    for (auto& [k, val] : sorted) {
      auto* f = obj->add_fields();
      f->set_key(k);
      *f->mutable_value() = std::move(val);
    }
  } else if (type == "list") {
    if (!j.is_array()) return bad(where, "must be an array or null");
    auto* list = v.mutable_list();
    for (std::size_t i = 0; i < j.size(); ++i) {
      const json& item = j[i];
      const json* t = item.is_object() ? member(item, "type") : nullptr;
      const json* val = item.is_object() ? member(item, "value") : nullptr;
      if (t && val && t->is_string() && one_of(t->get_ref<const std::string&>(), variable_types)) {
        auto converted = typed_value(t->get_ref<const std::string&>(), *val,
                                     where + "[" + std::to_string(i) + "].value");
        if (!converted) return converted.err();
        *list->add_items() = std::move(*converted);
      } else {
        *list->add_items() = plain_value(item);
      }
    }
  }
  return v;
}

std::optional<failure> parse_variable(const json& j, const std::string& where, variable& out) {
  if (!j.is_object()) return bad(where, "must be an object {name, type, value}");
  if (auto f = req_string(j, "name", where + ".name", out.name)) return f;
  if (out.name.empty()) return bad(where + ".name", "must not be empty");
  const json* t = member(j, "type");
  if (!t || !t->is_string() || !one_of(t->get_ref<const std::string&>(), variable_types))
    return bad(where + ".type", "required, one of " + list_of(variable_types));
  out.type = t->get<std::string>();
  const json* v = member(j, "value");
  if (!v) return bad(where + ".value", "required (null is allowed)");
  auto converted = typed_value(out.type, *v, where + ".value");
  if (!converted) return converted.err();
  out.value = std::move(*converted);
  return std::nullopt;
}

std::optional<failure> parse_variables(const json& arr, const std::string& where,
                                       std::vector<variable>& out) {
  if (!arr.is_array()) return bad(where, "must be an array of variables");
  out.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    variable v;
    if (auto f = parse_variable(arr[i], where + "[" + std::to_string(i) + "]", v)) return f;
    out.push_back(std::move(v));
  }
  return std::nullopt;
}

std::optional<failure> parse_options(const json& body, response_options& out) {
  const json* o = member(body, "responseOptions");
  if (!o || o->is_null()) return std::nullopt;
  if (!o->is_object()) return bad("responseOptions", "must be an object");
  if (const json* v = member(*o, "variables"); v && !v->is_null()) {
    if (!v->is_object()) return bad("responseOptions.variables", "must be an object");
    if (auto f = req_bool(*v, "include", "responseOptions.variables.include", out.variables))
      return f;
    if (auto f =
            req_bool(*v, "onlyChanged", "responseOptions.variables.onlyChanged", out.only_changed))
      return f;
    if (const json* filter = member(*v, "filter"); filter && !filter->is_null()) {
      if (!filter->is_array())
        return bad("responseOptions.variables.filter", "must be an array of strings or null");
      for (std::size_t i = 0; i < filter->size(); ++i) {
        if (!(*filter)[i].is_string())
          return bad("responseOptions.variables.filter[" + std::to_string(i) + "]",
                     "must be a string");
        out.filter.push_back((*filter)[i].get<std::string>());
      }
    }
  }
  if (auto f = opt_bool(*o, "metrics", "responseOptions.metrics", out.metrics)) return f;
  if (auto f = opt_bool(*o, "intents", "responseOptions.intents", out.intents)) return f;
  if (auto f = opt_bool(*o, "entities", "responseOptions.entities", out.entities)) return f;
  return std::nullopt;
}

// ------------------------------------------------------------------ headers and paths

std::optional<failure> parse_context(const http::request& req, request_context& ctx) {
  const std::string* auth = req.header("Authorization");
  if (!auth || trim(*auth).empty())
    return make_failure(401, "Authorization: bearer token required");
  std::string_view a = trim(*auth);
  constexpr std::string_view scheme = "bearer";
  if (a.size() <= scheme.size() || !iequals(a.substr(0, scheme.size()), scheme) ||
      (a[scheme.size()] != ' ' && a[scheme.size()] != '\t'))
    return make_failure(401, "Authorization: must be 'Bearer <token>'");
  std::string_view token = trim(a.substr(scheme.size()));
  if (token.empty() || token.size() > 4096 || !printable(token))
    return make_failure(401, "Authorization: must be 'Bearer <token>'");
  ctx.bearer_token = std::string(token);

  const std::string* org = req.header("X-Org-Id");
  if (!org || trim(*org).empty()) return bad("X-Org-Id", "required header");
  std::string_view o = trim(*org);
  if (!valid_id(o))
    return bad("X-Org-Id", "must be 1 to 128 letters, digits or the characters . _ ~ : -");
  ctx.org_id = std::string(o);

  ctx.request_id = safe_header_value(req.request_id);
  if (ctx.request_id.empty())
    if (const std::string* rid = req.header("X-Request-ID")) ctx.request_id = safe_header_value(trim(*rid));
  if (const std::string* crc = req.header("X-Runtime-CRC"))
    ctx.runtime_crc = safe_header_value(trim(*crc));
  return std::nullopt;
}

// Splits "/a/b/c" into segments; empty segments make the path invalid.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path[0] != '/') return out;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (out.size() > 8) break;
  }
  return out;
}

std::string path_label(std::string_view path) {
  if (path.size() > 200 || !printable(path)) return "the path";
  return "'" + std::string(path) + "'";
}

std::optional<std::string> path_id(std::string_view path, endpoint kind) {
  auto r = match_route(kind == endpoint::end_session ? "DELETE" : "POST", path);
  if (!r || r->kind != kind) return std::nullopt;
  return r->id;
}

// ------------------------------------------------------------------ JSON out

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

// Integral doubles render as integers ("3", not "3.0").
ojson number_json(double d) {
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return static_cast<std::int64_t>(d);
  if (!std::isfinite(d)) return nullptr;
  return d;
}

ojson plain_json(const v1::Value& v, int depth) {
  if (depth > max_json_depth) return nullptr;
  switch (v.kind_case()) {
    case v1::Value::kText: return v.text();
    case v1::Value::kNumber: return number_json(v.number());
    case v1::Value::kBoolean: return v.boolean();
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
    default: return nullptr;
  }
}

// A value as text, the way the bot's templates show it ("12.5", "true", "a, b").
std::string value_text(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kText: return v.text();
    case v1::Value::kNumber: return number_json(v.number()).dump();
    case v1::Value::kBoolean: return v.boolean() ? "true" : "false";
    case v1::Value::kList: {
      std::string out;
      for (const auto& item : v.list().items()) {
        if (!out.empty()) out += ", ";
        out += item.kind_case() == v1::Value::kList ? dump(plain_json(item, 1)) : value_text(item);
      }
      return out;
    }
    case v1::Value::kObject: return dump(plain_json(v, 0));
    default: return {};
  }
}

const char* inferred_type(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kBoolean: return "boolean";
    case v1::Value::kNumber: return "number";
    case v1::Value::kList: return "list";
    case v1::Value::kObject: return "object";
    default: return "text";
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

ojson typed_json(const v1::Value& v, std::string_view type, std::string_view currency, int depth);

// ObjectValue → Variables array.
ojson variables_json(const v1::ObjectValue& obj, std::string_view currency, int depth) {
  ojson arr = ojson::array();
  for (const auto& f : obj.fields()) {
    const char* t = inferred_type(f.value());
    arr.push_back(ojson{{"name", f.key()},
                        {"type", t},
                        {"value", typed_json(f.value(), t, currency, depth + 1)}});
  }
  return arr;
}

// A value as the JSON `value` of a contract variable of `type`.
ojson typed_json(const v1::Value& v, std::string_view type, std::string_view currency,
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

const char* type_name(v1::VarType t, const v1::Value& v) {
  switch (t) {
    case v1::VAR_TEXT: return "text";
    case v1::VAR_NUMBER: return "number";
    case v1::VAR_BOOLEAN: return "boolean";
    case v1::VAR_DATE: return "date";
    case v1::VAR_DATETIME: return "dateTime";
    case v1::VAR_MONEY: return "money";
    case v1::VAR_LIST: return "list";
    case v1::VAR_OBJECT: return "object";
    default: return inferred_type(v);
  }
}

ojson text_message(const std::string& id, const std::string& text) {
  return ojson{{"type", "text"}, {"id", id}, {"text", text}};
}

std::string choice_id(const v1::Choice& c) { return c.payload().empty() ? c.label() : c.payload(); }

ojson escalate_target(std::string_view t) {
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

const char* end_reason_name(v1::EndReason r) {
  switch (r) {
    case v1::COMPLETED: return "Action";
    case v1::INFINITE_LOOP_DETECTED: return "InfiniteLoopDetected";
    default: return "Error";
  }
}

ojson messages_json(const reply& r, const v1::TurnResult& turn) {
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
      msgs.push_back(ojson{
          {"type", "choices"}, {"id", next_id()}, {"choices", std::move(choices)}, {"widget", "buttons"}});
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
    msgs.push_back(ojson{
        {"type", "sessionEnded"}, {"id", next_id()}, {"reason", end_reason_name(turn.end_reason())}});
  }
  return msgs;
}

std::string session_path(const reply& r) {
  return r.base_url + "/" + std::string(api_version) + "/sessions/" + r.session_id;
}

ojson links_json(const reply& r) {
  std::string session = session_path(r);
  return ojson{{"self", {{"href", session}}},
               {"messages", {{"href", session + "/messages"}}},
               {"session", {{"href", session}}}};
}

void add_extras(ojson& body, const reply& r, const v1::TurnResult* turn) {
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

std::string runtime_crc(const reply& r) {
  if (!r.runtime_crc.empty()) return safe_header_value(r.runtime_crc);
  std::string out;
  append_hex(out, mix(fnv1a(r.bot_version, fnv1a(r.session_id, 0xcbf29ce484222325ULL) ^ 0xff)),
             16);
  return out;
}

http::response success(ojson body, const reply& r, bool start) {
  http::response resp = http::response::json(200, dump(body));
  add_header(resp, "X-Request-ID", safe_header_value(r.request_id));
  add_header(resp, "X-Runtime-CRC", runtime_crc(r));
  if (start) resp.headers.emplace_back("X-Bot-Mode", "default");
  return resp;
}

ojson sequence_ids(const reply& r) {
  ojson ids = ojson::array();
  for (auto id : r.processed_sequence_ids) ids.push_back(id);
  return ids;
}

const char* error_class(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "UnauthorizedError";
    case 403: return "ForbiddenError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 422: return "RequestProcessingException";
    case 423: return "ServerBusyError";
    case 429: return "TooManyRequestsError";
    case 503: return "ServiceUnavailable";
    default: return "InternalServerError";
  }
}

}  // namespace

// ------------------------------------------------------------------ public

failure make_failure(int status, std::string message) {
  return failure{status, error_class(status), std::move(message)};
}

parsed<route> match_route(std::string_view method, std::string_view path) {
  auto seg = segments(path);
  auto method_is = [&](std::string_view m) { return method == m; };
  auto wrong_method = [&](std::string_view allowed) {
    return make_failure(405, "method: " + std::string(method.size() <= 16 && printable(method) ? method : "this method") +
                                 " not allowed on " + path_label(path) + ", use " +
                                 std::string(allowed));
  };
  auto not_found = [&] { return make_failure(404, "path: no such resource " + path_label(path)); };
  if (seg.size() == 1 && (seg[0] == "status" || seg[0] == "versions")) {
    if (!method_is("GET")) return wrong_method("GET");
    return route{seg[0] == "status" ? endpoint::status : endpoint::versions, {}};
  }
  if (seg.empty() || seg[0] != api_version) return not_found();
  if (seg.size() == 4 && seg[1] == "bots" && seg[3] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::start_session, std::string(seg[2])};
  }
  if (seg.size() == 4 && seg[1] == "sessions" && seg[3] == "messages") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::continue_session, std::string(seg[2])};
  }
  if (seg.size() == 3 && seg[1] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("DELETE")) return wrong_method("DELETE");
    return route{endpoint::end_session, std::string(seg[2])};
  }
  return not_found();
}

variables start_request::bot_variables() const {
  botapi::variables out;
  for (const auto& v : variables) out[v.name] = v.value;
  return out;
}

parsed<start_request> parse_start(const http::request& req) try {
  start_request out;
  auto id = path_id(req.path, endpoint::start_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.bot_id = std::move(*id);
  if (auto f = parse_context(req, out.ctx)) return *f;
  auto body = parse_body(req.body);
  if (!body) return body.err();
  const json& j = *body;

  if (auto f = req_string(j, "externalSessionKey", "externalSessionKey", out.external_session_key))
    return *f;
  if (out.external_session_key.empty()) return bad("externalSessionKey", "must not be empty");
  const json* fc = member(j, "forceConfig");
  if (!fc || !fc->is_object()) return bad("forceConfig", "required object {endpoint}");
  if (auto f = req_string(*fc, "endpoint", "forceConfig.endpoint", out.endpoint)) return *f;
  if (const json* m = member(j, "message"); m && !m->is_null()) {
    if (!m->is_object()) return bad("message", "must be an object {text}");
    if (const json* t = member(*m, "text"); t && !t->is_null()) {
      if (!t->is_string()) return bad("message.text", "must be a string");
      out.text = t->get<std::string>();
    }
  }
  if (const json* tz = member(j, "tz"); tz && !tz->is_null()) {
    if (!tz->is_string()) return bad("tz", "must be a string or null");
    out.tz = tz->get<std::string>();
  }
  if (const json* vars = member(j, "variables"); vars && !vars->is_null())
    if (auto f = parse_variables(*vars, "variables", out.variables)) return *f;
  if (const json* refs = member(j, "referrers"); refs && !refs->is_null()) {
    if (!refs->is_array()) return bad("referrers", "must be an array or null");
    for (std::size_t i = 0; i < refs->size(); ++i) {
      const std::string where = "referrers[" + std::to_string(i) + "]";
      const json& r = (*refs)[i];
      if (!r.is_object()) return bad(where, "must be an object {type, value}");
      const json* t = member(r, "type");
      if (!t || !t->is_string() || !one_of(t->get_ref<const std::string&>(), referrer_types))
        return bad(where + ".type", "required, one of " + list_of(referrer_types));
      referrer ref;
      ref.type = t->get<std::string>();
      if (auto f = req_string(r, "value", where + ".value", ref.value)) return *f;
      out.referrers.push_back(std::move(ref));
    }
  }
  if (auto f = parse_options(j, out.options)) return *f;
  return out;
} catch (const std::exception&) {
  // Only allocation failure can get here; the request is refused, not the process.
  return bad("body", "could not be processed");
}

parsed<continue_request> parse_continue(const http::request& req) try {
  continue_request out;
  auto id = path_id(req.path, endpoint::continue_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.session_id = std::move(*id);
  if (auto f = parse_context(req, out.ctx)) return *f;
  auto body = parse_body(req.body);
  if (!body) return body.err();
  const json& j = *body;

  const json* mp = member(j, "message");
  if (!mp || !mp->is_object()) return bad("message", "required object");
  const json& m = *mp;
  static constexpr std::array<std::pair<std::string_view, message_kind>, 7> kinds = {{
      {"text", message_kind::text},
      {"choice", message_kind::choice},
      {"redirect", message_kind::redirect},
      {"transferSucceeded", message_kind::transfer_succeeded},
      {"transferFailed", message_kind::transfer_failed},
      {"endSession", message_kind::end_session},
      {"setVariables", message_kind::set_variables},
  }};
  const json* type = member(m, "type");
  auto kind = kinds.end();
  if (type && type->is_string())
    kind = std::find_if(kinds.begin(), kinds.end(), [&](const auto& k) {
      return k.first == type->get_ref<const std::string&>();
    });
  if (kind == kinds.end())
    return bad("message.type",
               "required, one of text, choice, redirect, transferSucceeded, transferFailed, "
               "endSession, setVariables");
  out.kind = kind->second;

  const json* seq = member(m, "sequenceId");
  if (!seq || !(seq->is_number_integer() || seq->is_number_unsigned()))
    return bad("message.sequenceId", "required integer");
  if (seq->is_number_unsigned()) {
    if (seq->get<std::uint64_t>() >
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return bad("message.sequenceId", "must fit in a signed 64-bit integer");
    out.sequence_id = static_cast<std::int64_t>(seq->get<std::uint64_t>());
  } else {
    out.sequence_id = seq->get<std::int64_t>();
  }
  if (out.sequence_id < 0) return bad("message.sequenceId", "must not be negative");
  if (auto f = opt_string(m, "inReplyToMessageId", "message.inReplyToMessageId", out.in_reply_to))
    return *f;

  switch (out.kind) {
    case message_kind::text:
      if (auto f = req_string(m, "text", "message.text", out.text)) return *f;
      break;
    case message_kind::choice: {
      const json* idx = member(m, "choiceIndex");
      if (idx && !idx->is_null()) {
        if (!(idx->is_number_integer() || idx->is_number_unsigned()))
          return bad("message.choiceIndex", "must be an integer or null");
        if (idx->is_number_unsigned() &&
            idx->get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return bad("message.choiceIndex", "must be at least 1");
        std::int64_t n = idx->get<std::int64_t>();
        if (n < 1) return bad("message.choiceIndex", "must be at least 1");
        out.choice_index = n;
      }
      const json* cid = member(m, "choiceId");
      if (cid && !cid->is_null()) {
        if (!cid->is_string()) return bad("message.choiceId", "must be a string or null");
        out.choice_id = cid->get<std::string>();
      }
      if (!out.choice_index && !out.choice_id)
        return bad("message.choiceIndex", "either choiceIndex or choiceId is required");
      break;
    }
    case message_kind::redirect:
      if (auto f = req_string(m, "dialogId", "message.dialogId", out.dialog_id)) return *f;
      break;
    case message_kind::transfer_succeeded: break;
    case message_kind::transfer_failed: {
      const json* r = member(m, "reason");
      if (!r || !r->is_string() || !one_of(r->get_ref<const std::string&>(), transfer_failed_reasons))
        return bad("message.reason", "required, one of " + list_of(transfer_failed_reasons));
      out.reason = r->get<std::string>();
      if (auto f = opt_string(m, "description", "message.description", out.description)) return *f;
      break;
    }
    case message_kind::end_session: {
      const json* r = member(m, "reason");
      if (!r || !r->is_string() || !one_of(r->get_ref<const std::string&>(), end_session_reasons))
        return bad("message.reason", "required, one of " + list_of(end_session_reasons));
      out.reason = r->get<std::string>();
      break;
    }
    case message_kind::set_variables: {
      const json* vars = member(m, "variables");
      if (!vars || !vars->is_array()) return bad("message.variables", "required array of variables");
      if (auto f = parse_variables(*vars, "message.variables", out.variables)) return *f;
      break;
    }
  }
  if (auto f = parse_options(j, out.options)) return *f;
  return out;
} catch (const std::exception&) {
  return bad("body", "could not be processed");
}

parsed<end_request> parse_end(const http::request& req) try {
  end_request out;
  auto id = path_id(req.path, endpoint::end_session);
  if (!id) return make_failure(404, "path: no such resource " + path_label(req.path));
  out.session_id = std::move(*id);
  if (auto f = parse_context(req, out.ctx)) return *f;
  const std::string* reason = req.header("X-Session-End-Reason");
  std::string_view r = reason ? trim(*reason) : std::string_view{};
  if (!one_of(r, end_session_reasons))
    return bad("X-Session-End-Reason", "required header, one of " + list_of(end_session_reasons));
  out.reason = std::string(r);
  return out;
} catch (const std::exception&) {
  return bad("request", "could not be processed");
}

parsed<v1::Input> to_input(const continue_request& msg, const v1::TurnResult* last_turn,
                           std::int64_t now_unix) {
  switch (msg.kind) {
    case message_kind::text: {
      v1::Input in;
      in.set_text(msg.text);
      in.set_now_unix(now_unix);
      return in;
    }
    case message_kind::choice: {
      v1::Input in;
      in.set_now_unix(now_unix);
      if (msg.choice_id) {
        in.set_payload(*msg.choice_id);
        return in;
      }
      const v1::Outbound* menu = nullptr;
      if (last_turn)
        for (const auto& o : last_turn->messages())
          if (o.choices_size() > 0) menu = &o;
      if (!menu) return bad("message.choiceIndex", "the bot offered no choices to pick from");
      const std::int64_t n = msg.choice_index.value_or(0);
      if (n < 1 || n > menu->choices_size())
        return bad("message.choiceIndex", "no choice " + std::to_string(n) + " among the " +
                                              std::to_string(menu->choices_size()) + " offered");
      in.set_payload(choice_id(menu->choices(static_cast<int>(n - 1))));
      return in;
    }
    default: return bad("message.type", "carries no user input for the bot");
  }
}

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
    if (!options.filter.empty() &&
        std::find(options.filter.begin(), options.filter.end(), decl.name()) == options.filter.end())
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

std::string message_id(std::string_view session_id, std::int64_t sequence_id, std::size_t index) {
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

http::response render_start(const reply& r, const v1::TurnResult& turn) {
  ojson body;
  body["sessionId"] = r.session_id;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] = messages_json(r, turn);
  add_extras(body, r, &turn);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/true);
}

http::response render_continue(const reply& r, const v1::TurnResult& turn) {
  ojson body;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] = messages_json(r, turn);
  add_extras(body, r, &turn);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/false);
}

http::response render_end(const reply& r) {
  ojson body;
  body["botVersion"] = r.bot_version;
  body["processedSequenceIds"] = sequence_ids(r);
  body["messages"] = ojson::array(
      {ojson{{"type", "sessionEnded"},
             {"id", message_id(r.session_id, r.sequence_id, end_message_index)},
             {"reason", "ClientRequest"}}});
  add_extras(body, r, nullptr);
  body["_links"] = links_json(r);
  return success(std::move(body), r, /*start=*/false);
}

http::response render_error(int status, std::string_view message, std::string_view path,
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
    resp.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(0, *retry_after_s)));
  return resp;
}

http::response render_failure(const failure& f, const http::request& req,
                              std::int64_t timestamp_ms) {
  std::string request_id = safe_header_value(req.request_id);
  if (request_id.empty())
    if (const std::string* rid = req.header("X-Request-ID")) request_id = safe_header_value(trim(*rid));
  return render_error(f.status, f.message, req.path, request_id, timestamp_ms);
}

http::response render_status(bool up) {
  return http::response::json(200, dump(ojson{{"status", up ? "UP" : "DOWN"}}));
}

http::response render_versions() {
  return http::response::json(
      200, dump(ojson{{"versions", ojson::array({ojson{{"versionNumber", std::string(api_version)},
                                                       {"status", "ACTIVE"}}})}}));
}

}  // namespace parley::channels::botapi
