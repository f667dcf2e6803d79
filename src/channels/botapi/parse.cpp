// Parsing of the Bot API codec's requests: headers, then the JSON body.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "src/channels/botapi/botapi.hpp"
#include "src/channels/botapi/route.hpp"
#include "src/channels/json/reader.hpp"
#include "src/common/strings.hpp"

namespace parley::channels::botapi {

namespace {

using namespace detail;
using common::iequals;
using jvalue = json::value;

// Deeper JSON is refused before it is parsed: nothing we accept nests this far,
// and it bounds every recursion below.
constexpr int max_json_depth = 32;

constexpr std::array<std::string_view, 9> variable_types = {
    "boolean", "date", "dateTime", "money", "number", "text", "object", "ref", "list"};
constexpr std::array<std::string_view, 2> transfer_failed_reasons = {"NoAgentAvailable", "Error"};
constexpr std::array<std::string_view, 2> referrer_types = {"Salesforce:Core:Bot:Id",
                                                            "Salesforce:BotRuntime:Session:Id"};

// Parses `body` into `doc`, whose root is then an object.
std::optional<failure> parse_body(const std::string& body, json::document& doc) {
  if (trim(body).empty()) return bad("body", "required JSON object, got an empty body");
  if (json::nested_deeper_than(body, max_json_depth))
    return bad("body", "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
  if (!json::read(body, doc)) return bad("body", "malformed JSON");
  if (!doc.root().is_object()) return bad("body", "must be a JSON object");
  return std::nullopt;
}

// Optional string member: absent or null leave `out` alone.
std::optional<failure> opt_string(const jvalue& obj, std::string_view key, std::string_view where,
                                  std::string& out) {
  const jvalue* v = obj.member(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) return bad(where, "must be a string");
  out = v->str();
  return std::nullopt;
}

std::optional<failure> req_string(const jvalue& obj, std::string_view key, std::string_view where,
                                  std::string& out) {
  const jvalue* v = obj.member(key);
  if (!v || !v->is_string()) return bad(where, "required string");
  out = v->str();
  return std::nullopt;
}

std::optional<failure> opt_bool(const jvalue& obj, std::string_view key, std::string_view where,
                                bool& out) {
  const jvalue* v = obj.member(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) return bad(where, "must be a boolean");
  out = v->boolean();
  return std::nullopt;
}

std::optional<failure> req_bool(const jvalue& obj, std::string_view key, std::string_view where,
                                bool& out) {
  const jvalue* v = obj.member(key);
  if (!v || !v->is_boolean()) return bad(where, "required boolean");
  out = v->boolean();
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
         digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) && s[16] == ':' && digits(s, 17, 2);
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

// Plain JSON → Value; depth is bounded by parse_body.
v1::Value plain_value(const jvalue& j) {
  v1::Value v;
  if (j.is_boolean()) {
    v.set_boolean(j.boolean());
  } else if (j.is_number()) {
    v.set_number(j.number());
  } else if (j.is_string()) {
    v.set_text(std::string(j.str()));
  } else if (j.is_array()) {
    auto* list = v.mutable_list();
    const jvalue* item = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, item = item->next())
      *list->add_items() = plain_value(*item);
  } else if (j.is_object()) {
    // Keys sorted (byte order), as ObjectValue wants them; a repeated key keeps
    // its last value.
    std::vector<const jvalue*> members;
    members.reserve(j.size());
    const jvalue* m = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, m = m->next()) members.push_back(m);
    std::stable_sort(members.begin(), members.end(),
                     [](const jvalue* a, const jvalue* b) { return a->key() < b->key(); });
    auto* obj = v.mutable_object();
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i + 1 < members.size() && members[i + 1]->key() == members[i]->key()) continue;
      auto* f = obj->add_fields();
      f->set_key(std::string(members[i]->key()));
      *f->mutable_value() = plain_value(*members[i]);
    }
  } else {
    v.set_null_value(true);
  }
  return v;
}

std::optional<failure> parse_variables(const jvalue& arr, std::string_view where,
                                       std::vector<variable>& out);

parsed<v1::Value> typed_value(std::string_view type, const jvalue& j, std::string_view where) {
  if (j.is_null()) return null_value();
  v1::Value v;
  if (type == "boolean") {
    if (!j.is_boolean()) return bad(where, "must be a boolean or null");
    v.set_boolean(j.boolean());
  } else if (type == "number") {
    if (!j.is_number()) return bad(where, "must be a number or null");
    v.set_number(j.number());
  } else if (type == "text" || type == "ref") {
    if (!j.is_string()) return bad(where, "must be a string or null");
    v.set_text(std::string(j.str()));
  } else if (type == "date") {
    if (!j.is_string() || !is_date(j.str()))
      return bad(where, "must be a date 'YYYY-MM-DD' or null");
    v.set_text(std::string(j.str()));
  } else if (type == "dateTime") {
    if (!j.is_string() || !is_date_time(j.str()))
      return bad(where, "must be a date-time 'YYYY-MM-DDTHH:MM:SS' or null");
    v.set_text(std::string(j.str()));
  } else if (type == "money") {
    std::optional<double> amount;
    if (j.is_number())
      amount = j.number();
    else if (j.is_string())
      amount = parse_money(j.str());
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
    const jvalue* item = j.first();
    for (std::size_t i = 0; i < j.size(); ++i, item = item->next()) {
      const jvalue* t = item->is_object() ? item->member("type") : nullptr;
      const jvalue* val = item->is_object() ? item->member("value") : nullptr;
      if (t && val && t->is_string() && one_of(t->str(), variable_types)) {
        auto converted =
            typed_value(t->str(), *val, std::string(where) + "[" + std::to_string(i) + "].value");
        if (!converted) return converted.err();
        *list->add_items() = std::move(*converted);
      } else {
        *list->add_items() = plain_value(*item);
      }
    }
  }
  return v;
}

std::optional<failure> parse_variable(const jvalue& j, const std::string& where, variable& out) {
  if (!j.is_object()) return bad(where, "must be an object {name, type, value}");
  if (auto f = req_string(j, "name", where + ".name", out.name)) return f;
  if (out.name.empty()) return bad(where + ".name", "must not be empty");
  const jvalue* t = j.member("type");
  if (!t || !t->is_string() || !one_of(t->str(), variable_types))
    return bad(where + ".type", "required, one of " + list_of(variable_types));
  out.type = t->str();
  const jvalue* v = j.member("value");
  if (!v) return bad(where + ".value", "required (null is allowed)");
  auto converted = typed_value(out.type, *v, where + ".value");
  if (!converted) return converted.err();
  out.value = std::move(*converted);
  return std::nullopt;
}

std::optional<failure> parse_variables(const jvalue& arr, std::string_view where,
                                       std::vector<variable>& out) {
  if (!arr.is_array()) return bad(where, "must be an array of variables");
  out.reserve(arr.size());
  const jvalue* item = arr.first();
  for (std::size_t i = 0; i < arr.size(); ++i, item = item->next()) {
    variable v;
    if (auto f = parse_variable(*item, std::string(where) + "[" + std::to_string(i) + "]", v))
      return f;
    out.push_back(std::move(v));
  }
  return std::nullopt;
}

std::optional<failure> parse_options(const jvalue& body, response_options& out) {
  const jvalue* o = body.member("responseOptions");
  if (!o || o->is_null()) return std::nullopt;
  if (!o->is_object()) return bad("responseOptions", "must be an object");
  if (const jvalue* v = o->member("variables"); v && !v->is_null()) {
    if (!v->is_object()) return bad("responseOptions.variables", "must be an object");
    if (auto f = req_bool(*v, "include", "responseOptions.variables.include", out.variables))
      return f;
    if (auto f =
            req_bool(*v, "onlyChanged", "responseOptions.variables.onlyChanged", out.only_changed))
      return f;
    if (const jvalue* filter = v->member("filter"); filter && !filter->is_null()) {
      if (!filter->is_array())
        return bad("responseOptions.variables.filter", "must be an array of strings or null");
      const jvalue* item = filter->first();
      for (std::size_t i = 0; i < filter->size(); ++i, item = item->next()) {
        if (!item->is_string())
          return bad("responseOptions.variables.filter[" + std::to_string(i) + "]",
                     "must be a string");
        out.filter.emplace_back(item->str());
      }
    }
  }
  if (auto f = opt_bool(*o, "metrics", "responseOptions.metrics", out.metrics)) return f;
  if (auto f = opt_bool(*o, "intents", "responseOptions.intents", out.intents)) return f;
  if (auto f = opt_bool(*o, "entities", "responseOptions.entities", out.entities)) return f;
  return std::nullopt;
}

// ------------------------------------------------------------------ headers and paths

// The headers the parse functions read, found in one pass over the request's
// headers: for each name the first, case-insensitively (as http::find_header
// finds them, without its locale-aware tolower per character).
struct request_headers {
  const std::string* authorization = nullptr;
  const std::string* org_id = nullptr;
  const std::string* request_id = nullptr;
  const std::string* runtime_crc = nullptr;
  const std::string* end_reason = nullptr;
};

request_headers find_headers(const http::request& req) {
  request_headers h;
  for (const auto& [name, value] : req.headers) {
    const std::string** slot = nullptr;
    switch (name.size()) {
      case 8:
        if (iequals(name, "X-Org-Id")) slot = &h.org_id;
        break;
      case 12:
        if (iequals(name, "X-Request-ID")) slot = &h.request_id;
        break;
      case 13:
        if (iequals(name, "Authorization"))
          slot = &h.authorization;
        else if (iequals(name, "X-Runtime-CRC"))
          slot = &h.runtime_crc;
        break;
      case 20:
        if (iequals(name, "X-Session-End-Reason")) slot = &h.end_reason;
        break;
      default:
        break;
    }
    if (slot && !*slot) *slot = &value;
  }
  return h;
}

std::optional<failure> parse_context(const http::request& req, const request_headers& headers,
                                     request_context& ctx) {
  const std::string* auth = headers.authorization;
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

  const std::string* org = headers.org_id;
  if (!org || trim(*org).empty()) return bad("X-Org-Id", "required header");
  std::string_view o = trim(*org);
  if (!valid_id(o))
    return bad("X-Org-Id", "must be 1 to 128 letters, digits or the characters . _ ~ : -");
  ctx.org_id = std::string(o);

  ctx.request_id = safe_header_value(req.request_id);
  if (ctx.request_id.empty())
    if (const std::string* rid = headers.request_id) ctx.request_id = safe_header_value(trim(*rid));
  if (const std::string* crc = headers.runtime_crc) ctx.runtime_crc = safe_header_value(trim(*crc));
  return std::nullopt;
}

std::string choice_id(const v1::Choice& c) { return c.payload().empty() ? c.label() : c.payload(); }

// What every session request is checked for first: its path (404), then its
// headers (401, 400). `id`: the id in the path.
std::optional<failure> parse_head(const http::request& req, endpoint kind, std::string& id,
                                  request_headers& headers, request_context& ctx) {
  auto found = path_id(req.path, kind);
  if (!found) return make_failure(404, "path: no such resource " + path_label(req.path));
  id = std::move(*found);
  headers = find_headers(req);
  return parse_context(req, headers, ctx);
}

}  // namespace

namespace {
botapi::variables by_name(const std::vector<variable>& vars) {
  botapi::variables out;
  for (const auto& v : vars) out[v.name] = v.value;
  return out;
}
}  // namespace

variables start_request::bot_variables() const { return by_name(variables); }
variables continue_request::bot_variables() const { return by_name(variables); }

parsed<start_request> parse_start(const http::request& req) try {
  start_request out;
  request_headers headers;
  if (auto f = parse_head(req, endpoint::start_session, out.bot_id, headers, out.ctx)) return *f;
  json::document doc;
  if (auto f = parse_body(req.body, doc)) return *f;
  const jvalue& j = doc.root();

  if (auto f = req_string(j, "externalSessionKey", "externalSessionKey", out.external_session_key))
    return *f;
  if (out.external_session_key.empty()) return bad("externalSessionKey", "must not be empty");
  const jvalue* fc = j.member("forceConfig");
  if (!fc || !fc->is_object()) return bad("forceConfig", "required object {endpoint}");
  if (auto f = req_string(*fc, "endpoint", "forceConfig.endpoint", out.endpoint)) return *f;
  if (const jvalue* m = j.member("message"); m && !m->is_null()) {
    if (!m->is_object()) return bad("message", "must be an object {text}");
    if (const jvalue* t = m->member("text"); t && !t->is_null()) {
      if (!t->is_string()) return bad("message.text", "must be a string");
      out.text = std::string(t->str());
    }
  }
  if (const jvalue* tz = j.member("tz"); tz && !tz->is_null()) {
    if (!tz->is_string()) return bad("tz", "must be a string or null");
    out.tz = std::string(tz->str());
  }
  if (const jvalue* vars = j.member("variables"); vars && !vars->is_null())
    if (auto f = parse_variables(*vars, "variables", out.variables)) return *f;
  if (const jvalue* refs = j.member("referrers"); refs && !refs->is_null()) {
    if (!refs->is_array()) return bad("referrers", "must be an array or null");
    const jvalue* item = refs->first();
    for (std::size_t i = 0; i < refs->size(); ++i, item = item->next()) {
      const std::string where = "referrers[" + std::to_string(i) + "]";
      const jvalue& r = *item;
      if (!r.is_object()) return bad(where, "must be an object {type, value}");
      const jvalue* t = r.member("type");
      if (!t || !t->is_string() || !one_of(t->str(), referrer_types))
        return bad(where + ".type", "required, one of " + list_of(referrer_types));
      referrer ref;
      ref.type = t->str();
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
  request_headers headers;
  if (auto f = parse_head(req, endpoint::continue_session, out.session_id, headers, out.ctx))
    return *f;
  json::document doc;
  if (auto f = parse_body(req.body, doc)) return *f;
  const jvalue& j = doc.root();

  const jvalue* mp = j.member("message");
  if (!mp || !mp->is_object()) return bad("message", "required object");
  const jvalue& m = *mp;
  static constexpr std::array<std::pair<std::string_view, message_kind>, 7> kinds = {{
      {"text", message_kind::text},
      {"choice", message_kind::choice},
      {"redirect", message_kind::redirect},
      {"transferSucceeded", message_kind::transfer_succeeded},
      {"transferFailed", message_kind::transfer_failed},
      {"endSession", message_kind::end_session},
      {"setVariables", message_kind::set_variables},
  }};
  const jvalue* type = m.member("type");
  auto kind = kinds.end();
  if (type && type->is_string())
    kind = std::find_if(kinds.begin(), kinds.end(),
                        [&](const auto& k) { return k.first == type->str(); });
  if (kind == kinds.end())
    return bad("message.type",
               "required, one of text, choice, redirect, transferSucceeded, transferFailed, "
               "endSession, setVariables");
  out.kind = kind->second;

  const jvalue* seq = m.member("sequenceId");
  if (!seq || !seq->is_number_integer()) return bad("message.sequenceId", "required integer");
  if (seq->is_number_unsigned() &&
      seq->uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return bad("message.sequenceId", "must fit in a signed 64-bit integer");
  out.sequence_id = seq->int64();
  if (out.sequence_id < 0) return bad("message.sequenceId", "must not be negative");
  if (auto f = opt_string(m, "inReplyToMessageId", "message.inReplyToMessageId", out.in_reply_to))
    return *f;

  switch (out.kind) {
    case message_kind::text:
      if (auto f = req_string(m, "text", "message.text", out.text)) return *f;
      break;
    case message_kind::choice: {
      const jvalue* idx = m.member("choiceIndex");
      if (idx && !idx->is_null()) {
        if (!idx->is_number_integer())
          return bad("message.choiceIndex", "must be an integer or null");
        if (idx->is_number_unsigned() &&
            idx->uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return bad("message.choiceIndex", "must be at least 1");
        const std::int64_t n = idx->int64();
        if (n < 1) return bad("message.choiceIndex", "must be at least 1");
        out.choice_index = n;
      }
      const jvalue* cid = m.member("choiceId");
      if (cid && !cid->is_null()) {
        if (!cid->is_string()) return bad("message.choiceId", "must be a string or null");
        out.choice_id = std::string(cid->str());
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
      const jvalue* r = m.member("reason");
      if (!r || !r->is_string() || !one_of(r->str(), transfer_failed_reasons))
        return bad("message.reason", "required, one of " + list_of(transfer_failed_reasons));
      out.reason = r->str();
      if (auto f = opt_string(m, "description", "message.description", out.description)) return *f;
      break;
    }
    case message_kind::end_session: {
      const jvalue* r = m.member("reason");
      if (!r || !r->is_string() || !one_of(r->str(), end_session_reasons))
        return bad("message.reason", "required, one of " + list_of(end_session_reasons));
      out.reason = r->str();
      break;
    }
    case message_kind::set_variables: {
      const jvalue* vars = m.member("variables");
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

parsed<end_request> parse_end(const http::request& req) try {
  end_request out;
  request_headers headers;
  if (auto f = parse_head(req, endpoint::end_session, out.session_id, headers, out.ctx)) return *f;
  const std::string* reason = headers.end_reason;
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
    default:
      return bad("message.type", "carries no user input for the bot");
  }
}
}  // namespace parley::channels::botapi
