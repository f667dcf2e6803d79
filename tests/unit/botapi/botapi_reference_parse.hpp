#pragma once
// The Bot API codec's request parsing as it was before its own JSON parser
// (src/channels/botapi/botapi.cpp, commit 2424549): bodies parsed into an
// nlohmann::json DOM. Kept verbatim as the reference that the parser must match
// (botapi_parse_equivalence_test.cpp and the fuzz target tests/fuzz/botapi):
// the same requests accepted with the same values, the same failures with the
// same status and message. Not used by the codec.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/channels/botapi/botapi.hpp"

namespace parley::channels::botapi::reference_parse {

using json = nlohmann::json;
using botapi::failure;
using botapi::parsed;

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

inline failure make_failure(int status, std::string message) {
  return failure{status, error_class(status), std::move(message)};
}

inline parsed<route> match_route(std::string_view method, std::string_view path);

constexpr int max_json_depth = 32;
constexpr std::size_t max_id_length = 128;
constexpr std::size_t max_request_id_length = 200;

constexpr std::array<std::string_view, 9> variable_types = {
    "boolean", "date", "dateTime", "money", "number", "text", "object", "ref", "list"};
constexpr std::array<std::string_view, 5> end_session_reasons = {"UserRequest", "Transfer",
                                                                 "Expiration", "Error", "Other"};
constexpr std::array<std::string_view, 2> transfer_failed_reasons = {"NoAgentAvailable", "Error"};
constexpr std::array<std::string_view, 2> referrer_types = {"Salesforce:Core:Bot:Id",
                                                            "Salesforce:BotRuntime:Session:Id"};

template <std::size_t N>
inline bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

template <std::size_t N>
inline std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto s : set) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

inline failure bad(const std::string& field, std::string_view what) {
  return make_failure(400, field + ": " + std::string(what));
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

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == ':' || c == '-';
}

inline bool valid_id(std::string_view s) {
  return !s.empty() && s.size() <= max_id_length && std::all_of(s.begin(), s.end(), is_id_char);
}

inline bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
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

// ------------------------------------------------------------------ JSON in

// Nesting depth of a JSON text, counted outside strings. Cheap, and it keeps
// hostile bodies ("[[[[...") away from every recursive step after parsing.
inline int nesting_depth(std::string_view body) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

inline parsed<json> parse_body(std::string_view body) {
  if (trim(body).empty()) return bad("body", "required JSON object, got an empty body");
  if (nesting_depth(body) > max_json_depth)
    return bad("body", "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("body", "malformed JSON");
  if (!j.is_object()) return bad("body", "must be a JSON object");
  return j;
}

inline const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// Optional string member: absent or null leave `out` alone.
inline std::optional<failure> opt_string(const json& obj, const char* key, const std::string& where,
                                         std::string& out) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) return bad(where, "must be a string");
  out = v->get<std::string>();
  return std::nullopt;
}

inline std::optional<failure> req_string(const json& obj, const char* key, const std::string& where,
                                         std::string& out) {
  const json* v = member(obj, key);
  if (!v || !v->is_string()) return bad(where, "required string");
  out = v->get<std::string>();
  return std::nullopt;
}

inline std::optional<failure> opt_bool(const json& obj, const char* key, const std::string& where,
                                       bool& out) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) return bad(where, "must be a boolean");
  out = v->get<bool>();
  return std::nullopt;
}

inline std::optional<failure> req_bool(const json& obj, const char* key, const std::string& where,
                                       bool& out) {
  const json* v = member(obj, key);
  if (!v || !v->is_boolean()) return bad(where, "required boolean");
  out = v->get<bool>();
  return std::nullopt;
}

inline bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

inline bool is_date(std::string_view s) {
  return s.size() == 10 && digits(s, 0, 4) && s[4] == '-' && digits(s, 5, 2) && s[7] == '-' &&
         digits(s, 8, 2);
}

// ISO local date-time "YYYY-MM-DDTHH:MM:SS"; a fraction, "Z" or an offset may follow.
inline bool is_date_time(std::string_view s) {
  return s.size() >= 19 && s.size() <= 40 && is_date(s.substr(0, 10)) && s[10] == 'T' &&
         digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) && s[16] == ':' && digits(s, 17, 2);
}

// "USD 10.40", or a bare amount "10.40".
inline std::optional<double> parse_money(std::string_view s) {
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

inline v1::Value null_value() {
  v1::Value v;
  v.set_null_value(true);
  return v;
}

// Plain JSON → Value; depth is bounded by parse_body.
inline v1::Value plain_value(const json& j) {
  v1::Value v;
  switch (j.type()) {
    case json::value_t::boolean:
      v.set_boolean(j.get<bool>());
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      v.set_number(j.get<double>());
      break;
    case json::value_t::string:
      v.set_text(j.get<std::string>());
      break;
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
    default:
      v.set_null_value(true);
      break;
  }
  return v;
}

inline std::optional<failure> parse_variables(const json& arr, const std::string& where,
                                              std::vector<variable>& out);

inline parsed<v1::Value> typed_value(std::string_view type, const json& j,
                                     const std::string& where) {
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
    if (j.is_number())
      amount = j.get<double>();
    else if (j.is_string())
      amount = parse_money(j.get_ref<const std::string&>());
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

inline std::optional<failure> parse_variable(const json& j, const std::string& where,
                                             variable& out) {
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

inline std::optional<failure> parse_variables(const json& arr, const std::string& where,
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

inline std::optional<failure> parse_options(const json& body, response_options& out) {
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

inline std::optional<failure> parse_context(const http::request& req, request_context& ctx) {
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
    if (const std::string* rid = req.header("X-Request-ID"))
      ctx.request_id = safe_header_value(trim(*rid));
  if (const std::string* crc = req.header("X-Runtime-CRC"))
    ctx.runtime_crc = safe_header_value(trim(*crc));
  return std::nullopt;
}

// Splits "/a/b/c" into segments; empty segments make the path invalid.
inline std::vector<std::string_view> segments(std::string_view path) {
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

inline std::string path_label(std::string_view path) {
  if (path.size() > 200 || !printable(path)) return "the path";
  return "'" + std::string(path) + "'";
}

inline std::optional<std::string> path_id(std::string_view path, endpoint kind) {
  auto r = match_route(kind == endpoint::end_session ? "DELETE" : "POST", path);
  if (!r || r->kind != kind) return std::nullopt;
  return r->id;
}
inline parsed<route> match_route(std::string_view method, std::string_view path) {
  auto seg = segments(path);
  auto method_is = [&](std::string_view m) { return method == m; };
  auto wrong_method = [&](std::string_view allowed) {
    return make_failure(
        405, "method: " +
                 std::string(method.size() <= 16 && printable(method) ? method : "this method") +
                 " not allowed on " + path_label(path) + ", use " + std::string(allowed));
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
inline parsed<start_request> parse_start(const http::request& req) try {
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

inline parsed<continue_request> parse_continue(const http::request& req) try {
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
    case message_kind::transfer_succeeded:
      break;
    case message_kind::transfer_failed: {
      const json* r = member(m, "reason");
      if (!r || !r->is_string() ||
          !one_of(r->get_ref<const std::string&>(), transfer_failed_reasons))
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
      if (!vars || !vars->is_array())
        return bad("message.variables", "required array of variables");
      if (auto f = parse_variables(*vars, "message.variables", out.variables)) return *f;
      break;
    }
  }
  if (auto f = parse_options(j, out.options)) return *f;
  return out;
} catch (const std::exception&) {
  return bad("body", "could not be processed");
}

inline parsed<end_request> parse_end(const http::request& req) try {
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

}  // namespace parley::channels::botapi::reference_parse
