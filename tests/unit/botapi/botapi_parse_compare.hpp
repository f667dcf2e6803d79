#pragma once
// Everything a parse function returns, as one string: two parses agree when
// their descriptions are equal. Shared by botapi_parse_equivalence_test.cpp and
// the fuzz target, which compare the codec with botapi_reference_parse.hpp.

#include <string>

#include "src/channels/botapi/botapi.hpp"

namespace parley::channels::botapi::compare {

inline void field(std::string& out, const char* name, const std::string& value) {
  out += name;
  out += '=';
  out += std::to_string(value.size());  // length first: no value can fake a separator
  out += ':';
  out += value;
  out += ';';
}

inline void field(std::string& out, const char* name, std::int64_t value) {
  field(out, name, std::to_string(value));
}

inline std::string describe(const failure& f) {
  std::string out = "failure;";
  field(out, "status", f.status);
  field(out, "error", f.error);
  field(out, "message", f.message);
  return out;
}

inline void describe(std::string& out, const request_context& c) {
  field(out, "org", c.org_id);
  field(out, "bearer", c.bearer_token);
  field(out, "request_id", c.request_id);
  field(out, "crc", c.runtime_crc);
}

inline void describe(std::string& out, const std::vector<variable>& vars) {
  field(out, "variables", static_cast<std::int64_t>(vars.size()));
  for (const auto& v : vars) {
    field(out, "name", v.name);
    field(out, "type", v.type);
    field(out, "value", v.value.SerializeAsString());
  }
}

inline void describe(std::string& out, const response_options& o) {
  field(out, "options",
        std::string{o.variables ? 'v' : '-', o.only_changed ? 'c' : '-', o.metrics ? 'm' : '-',
                    o.intents ? 'i' : '-', o.entities ? 'e' : '-'});
  field(out, "filter", static_cast<std::int64_t>(o.filter.size()));
  for (const auto& f : o.filter) field(out, "f", f);
}

inline std::string describe(const parsed<start_request>& p) {
  if (!p.ok()) return describe(p.err());
  const start_request& r = *p;
  std::string out = "start;";
  describe(out, r.ctx);
  field(out, "bot", r.bot_id);
  field(out, "key", r.external_session_key);
  field(out, "endpoint", r.endpoint);
  field(out, "text", r.text ? "1" + *r.text : "0");
  describe(out, r.variables);
  field(out, "referrers", static_cast<std::int64_t>(r.referrers.size()));
  for (const auto& ref : r.referrers) {
    field(out, "ref_type", ref.type);
    field(out, "ref_value", ref.value);
  }
  field(out, "tz", r.tz ? "1" + *r.tz : "0");
  describe(out, r.options);
  return out;
}

inline std::string describe(const parsed<continue_request>& p) {
  if (!p.ok()) return describe(p.err());
  const continue_request& r = *p;
  std::string out = "continue;";
  describe(out, r.ctx);
  field(out, "session", r.session_id);
  field(out, "seq", r.sequence_id);
  field(out, "kind", static_cast<std::int64_t>(r.kind));
  field(out, "in_reply_to", r.in_reply_to);
  field(out, "text", r.text);
  field(out, "choice_index", r.choice_index ? "1" + std::to_string(*r.choice_index) : "0");
  field(out, "choice_id", r.choice_id ? "1" + *r.choice_id : "0");
  field(out, "dialog", r.dialog_id);
  field(out, "reason", r.reason);
  field(out, "description", r.description);
  describe(out, r.variables);
  describe(out, r.options);
  return out;
}

inline std::string describe(const parsed<end_request>& p) {
  if (!p.ok()) return describe(p.err());
  std::string out = "end;";
  describe(out, p->ctx);
  field(out, "session", p->session_id);
  field(out, "reason", p->reason);
  return out;
}

inline std::string describe(const parsed<route>& p) {
  if (!p.ok()) return describe(p.err());
  std::string out = "route;";
  field(out, "kind", static_cast<std::int64_t>(p->kind));
  field(out, "id", p->id);
  return out;
}

}  // namespace parley::channels::botapi::compare
