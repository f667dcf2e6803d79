#include "tests/support/openapi.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace parley::test {

namespace {

using json = nlohmann::json;

constexpr int max_depth = 64;

bool matches(const std::string& s, const char* re) { return std::regex_match(s, std::regex(re)); }

// YAML 1.2 core schema for plain scalars; quoted scalars (tag "!") are strings.
json scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (matches(s, "[-+]?[0-9]+")) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  if (matches(s, "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?")) return std::stod(s);
  return s;
}

json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : n) arr.push_back(yaml_to_json(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : n) obj[kv.first.Scalar()] = yaml_to_json(kv.second);
      return obj;
    }
    default:
      return nullptr;
  }
}

std::string type_of(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "invalid";
  }
}

bool has_type(const json& j, const std::string& type) {
  if (type == "object") return j.is_object();
  if (type == "array") return j.is_array();
  if (type == "string") return j.is_string();
  if (type == "integer") return j.is_number_integer() || j.is_number_unsigned();
  if (type == "number") return j.is_number();
  if (type == "boolean") return j.is_boolean();
  return true;  // unknown types are not ours to judge
}

std::size_t utf8_length(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

std::string short_dump(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

class checker {
 public:
  checker(const json& doc, std::vector<violation>& out) : doc_(doc), out_(out) {}

  const json* resolve(const json& schema) const {
    const json* s = &schema;
    for (int i = 0; i < 32; ++i) {
      if (!s->is_object()) return s;
      auto ref = s->find("$ref");
      if (ref == s->end()) return s;
      if (!ref->is_string()) return nullptr;
      s = pointer(ref->get<std::string>());
      if (!s) return nullptr;
    }
    return nullptr;
  }

  const json* pointer(const std::string& ref) const {
    if (ref.rfind("#/", 0) != 0) return nullptr;
    try {
      const json& target = doc_.at(json::json_pointer(ref.substr(1)));
      return &target;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  void check(const json& schema_in, const json& inst, const std::string& where, int depth) {
    if (depth > max_depth) {
      add(where, "schema or instance nested too deeply");
      return;
    }
    const json* sp = resolve(schema_in);
    if (!sp) {
      add(where, "unresolvable $ref " + short_dump(schema_in));
      return;
    }
    const json& s = *sp;
    if (!s.is_object()) return;

    const bool nullable = s.value("nullable", false);
    if (inst.is_null() && nullable) return;

    if (auto t = s.find("type"); t != s.end() && t->is_string()) {
      const std::string type = t->get<std::string>();
      if (!has_type(inst, type)) {
        add(where, "expected " + type + (nullable ? " or null" : "") + ", got " + type_of(inst));
        return;
      }
    }

    if (auto e = s.find("enum"); e != s.end() && e->is_array()) {
      if (std::find(e->begin(), e->end(), inst) == e->end())
        add(where, short_dump(inst) + " is not one of " + short_dump(*e));
    }

    if (auto f = s.find("format"); f != s.end() && f->is_string()) check_format(*f, inst, where);

    if (inst.is_string()) {
      const std::string& str = inst.get_ref<const std::string&>();
      if (auto m = s.find("minLength");
          m != s.end() && m->is_number_integer() && utf8_length(str) < m->get<std::size_t>())
        add(where, "shorter than minLength " + m->dump());
      if (auto m = s.find("maxLength");
          m != s.end() && m->is_number_integer() && utf8_length(str) > m->get<std::size_t>())
        add(where, "longer than maxLength " + m->dump());
      if (auto p = s.find("pattern"); p != s.end() && p->is_string()) {
        try {
          if (!std::regex_search(str, std::regex(p->get<std::string>())))
            add(where, "does not match pattern " + p->get<std::string>());
        } catch (const std::regex_error&) {
          add(where, "contract pattern does not compile: " + p->get<std::string>());
        }
      }
    }

    if (inst.is_number()) {
      const double v = inst.get<double>();
      if (auto m = s.find("minimum"); m != s.end() && m->is_number()) {
        const bool excl = s.value("exclusiveMinimum", false);
        if (excl ? !(v > m->get<double>()) : v < m->get<double>())
          add(where, short_dump(inst) + " is below the minimum " + m->dump());
      }
      if (auto m = s.find("maximum"); m != s.end() && m->is_number()) {
        const bool excl = s.value("exclusiveMaximum", false);
        if (excl ? !(v < m->get<double>()) : v > m->get<double>())
          add(where, short_dump(inst) + " is above the maximum " + m->dump());
      }
    }

    if (inst.is_array()) {
      if (auto m = s.find("minItems");
          m != s.end() && m->is_number_integer() && inst.size() < m->get<std::size_t>())
        add(where, "fewer items than minItems " + m->dump());
      if (auto m = s.find("maxItems");
          m != s.end() && m->is_number_integer() && inst.size() > m->get<std::size_t>())
        add(where, "more items than maxItems " + m->dump());
      if (auto items = s.find("items"); items != s.end())
        for (std::size_t i = 0; i < inst.size(); ++i)
          check(*items, inst[i], where + "[" + std::to_string(i) + "]", depth + 1);
    }

    if (inst.is_object()) check_object(s, inst, where, depth);

    if (auto all = s.find("allOf"); all != s.end() && all->is_array())
      for (const auto& sub : *all) check(sub, inst, where, depth + 1);

    if (auto any = s.find("anyOf"); any != s.end() && any->is_array()) {
      std::vector<violation> closest;
      bool found = false;
      for (const auto& sub : *any) {
        auto v = trial(sub, inst, where, depth);
        if (v.empty()) {
          found = true;
          break;
        }
        if (closest.empty() || v.size() < closest.size()) closest = std::move(v);
      }
      if (!found) {
        add(where, "matches none of anyOf; closest branch says:");
        out_.insert(out_.end(), closest.begin(), closest.end());
      }
    }

    if (auto one = s.find("oneOf"); one != s.end() && one->is_array()) {
      std::vector<violation> closest;
      int valid = 0;
      for (const auto& sub : *one) {
        auto v = trial(sub, inst, where, depth);
        if (v.empty())
          ++valid;
        else if (closest.empty() || v.size() < closest.size())
          closest = std::move(v);
      }
      if (valid == 0) {
        add(where, "matches none of oneOf; closest branch says:");
        out_.insert(out_.end(), closest.begin(), closest.end());
      } else if (valid > 1) {
        add(where, "matches " + std::to_string(valid) + " branches of oneOf, exactly one allowed");
      }
    }
  }

 private:
  std::vector<violation> trial(const json& schema, const json& inst, const std::string& where,
                               int depth) {
    std::vector<violation> v;
    checker sub(doc_, v);
    sub.check(schema, inst, where, depth + 1);
    return v;
  }

  void check_object(const json& s, const json& inst, const std::string& where, int depth) {
    const json* props = nullptr;
    if (auto p = s.find("properties"); p != s.end() && p->is_object()) props = &*p;
    if (auto r = s.find("required"); r != s.end() && r->is_array())
      for (const auto& name : *r)
        if (name.is_string() && !inst.contains(name.get<std::string>()))
          add(where + "." + name.get<std::string>(), "required property missing");
    auto additional = s.find("additionalProperties");
    for (auto it = inst.begin(); it != inst.end(); ++it) {
      const std::string child = where + "." + it.key();
      if (props && props->contains(it.key())) {
        check((*props)[it.key()], it.value(), child, depth + 1);
      } else if (additional != s.end()) {
        if (additional->is_boolean()) {
          if (!additional->get<bool>()) add(child, "property not allowed by the schema");
        } else {
          check(*additional, it.value(), child, depth + 1);
        }
      }
    }
  }

  void check_format(const std::string& format, const json& inst, const std::string& where) {
    if (format == "int32" && inst.is_number_integer()) {
      auto v = inst.get<std::int64_t>();
      if (v < std::numeric_limits<std::int32_t>::min() ||
          v > std::numeric_limits<std::int32_t>::max())
        add(where, short_dump(inst) + " does not fit int32");
    } else if (format == "int32" && inst.is_number_unsigned()) {
      if (inst.get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
        add(where, short_dump(inst) + " does not fit int32");
    } else if (format == "int64" && inst.is_number_unsigned()) {
      if (inst.get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        add(where, short_dump(inst) + " does not fit int64");
    } else if (format == "date" && inst.is_string()) {
      if (!matches(inst.get<std::string>(), "[0-9]{4}-[0-9]{2}-[0-9]{2}"))
        add(where, short_dump(inst) + " is not a date YYYY-MM-DD");
    } else if (format == "date-time" && inst.is_string()) {
      if (!matches(inst.get<std::string>(),
                   "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{"
                   "2}:[0-9]{2})"))
        add(where, short_dump(inst) + " is not an RFC 3339 date-time");
    } else if (format == "uuid" && inst.is_string()) {
      if (!matches(inst.get<std::string>(),
                   "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"))
        add(where, short_dump(inst) + " is not a UUID");
    }
  }

  void add(const std::string& where, std::string message) {
    out_.push_back(violation{where, std::move(message)});
  }

  const json& doc_;
  std::vector<violation>& out_;
};

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty()) {
    if (p[0] == '/') {
      p.remove_prefix(1);
      continue;
    }
    auto slash = p.find('/');
    out.push_back(p.substr(0, slash));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash);
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string to_string(const std::vector<violation>& violations) {
  std::string out;
  for (const auto& v : violations) out += v.to_string() + "\n";
  return out;
}

openapi openapi::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open contract " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse(ss.str());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot parse contract " + path + ": " + e.what());
  }
}

openapi openapi::parse(std::string_view yaml_text) {
  YAML::Node root = YAML::Load(std::string(yaml_text));
  json doc = yaml_to_json(root);
  if (!doc.is_object() || !doc.contains("paths"))
    throw std::runtime_error("not an OpenAPI document: no 'paths'");
  return openapi(std::move(doc));
}

std::string openapi::match_path(std::string_view concrete_path) const {
  auto want = split_path(concrete_path);
  std::string best;
  int best_literals = -1;
  for (auto it = doc_["paths"].begin(); it != doc_["paths"].end(); ++it) {
    auto segs = split_path(it.key());
    if (segs.size() != want.size()) continue;
    int literals = 0;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      if (segs[i].size() >= 2 && segs[i].front() == '{' && segs[i].back() == '}') {
        ok = !want[i].empty();
      } else {
        ok = segs[i] == want[i];
        ++literals;
      }
    }
    if (ok && literals > best_literals) {
      best = it.key();
      best_literals = literals;
    }
  }
  return best;
}

const json* openapi::operation(std::string_view path_template, std::string_view method) const {
  const json& paths = doc_["paths"];
  auto p = paths.find(std::string(path_template));
  if (p == paths.end() || !p->is_object()) return nullptr;
  auto op = p->find(lower(method));
  if (op == p->end() || !op->is_object()) return nullptr;
  return &*op;
}

const json* openapi::response(std::string_view path_template, std::string_view method, int status,
                              std::vector<violation>& out) const {
  const std::string where = std::string(method) + " " + std::string(path_template);
  const json* op = operation(path_template, method);
  if (!op) {
    out.push_back({where, "no such operation in the contract"});
    return nullptr;
  }
  auto responses = op->find("responses");
  if (responses == op->end() || !responses->is_object()) {
    out.push_back({where, "operation lists no responses"});
    return nullptr;
  }
  auto r = responses->find(std::to_string(status));
  if (r == responses->end()) r = responses->find("default");
  if (r == responses->end()) {
    out.push_back({where, "status " + std::to_string(status) + " is not in the contract"});
    return nullptr;
  }
  std::vector<violation> scratch;
  checker c(doc_, scratch);
  const json* resolved = c.resolve(*r);
  if (!resolved) out.push_back({where, "unresolvable response $ref"});
  return resolved;
}

std::vector<violation> openapi::validate_response(std::string_view path_template,
                                                  std::string_view method, int status,
                                                  const json& body) const {
  std::vector<violation> out;
  const json* r = response(path_template, method, status, out);
  if (!r) return out;
  const json* schema = nullptr;
  if (auto content = r->find("content"); content != r->end() && content->is_object())
    if (auto media = content->find("application/json"); media != content->end())
      if (auto s = media->find("schema"); s != media->end()) schema = &*s;
  if (!schema) {
    out.push_back(
        {"$", "the contract has no application/json schema for status " + std::to_string(status)});
    return out;
  }
  checker(doc_, out).check(*schema, body, "$", 0);
  return out;
}

std::vector<violation> openapi::validate_response(std::string_view path_template,
                                                  std::string_view method, int status,
                                                  std::string_view body_text) const {
  json body = json::parse(body_text.begin(), body_text.end(), nullptr, false);
  if (body.is_discarded()) return {{"$", "body is not valid JSON"}};
  return validate_response(path_template, method, status, body);
}

std::vector<violation> openapi::validate_response_headers(
    std::string_view path_template, std::string_view method, int status,
    const std::vector<std::pair<std::string, std::string>>& headers) const {
  std::vector<violation> out;
  const json* r = response(path_template, method, status, out);
  if (!r) return out;
  auto hs = r->find("headers");
  if (hs == r->end() || !hs->is_object()) return out;
  for (auto it = hs->begin(); it != hs->end(); ++it) {
    const std::string name = it.key();
    const std::pair<std::string, std::string>* found = nullptr;
    for (const auto& h : headers)
      if (lower(h.first) == lower(name)) found = &h;
    checker c(doc_, out);
    const json* spec = c.resolve(it.value());
    if (!spec || !spec->is_object()) continue;
    if (!found) {
      if (spec->value("required", false))
        out.push_back({"header " + name, "required header missing"});
      continue;
    }
    auto schema = spec->find("schema");
    if (schema == spec->end()) continue;
    const json* s = c.resolve(*schema);
    json value = found->second;
    if (s && s->is_object() && s->contains("type")) {
      const std::string type = (*s)["type"].is_string() ? (*s)["type"].get<std::string>() : "";
      if (type == "integer" || type == "number" || type == "boolean") {
        json parsed = json::parse(found->second, nullptr, false);
        if (!parsed.is_discarded()) value = parsed;
      }
    }
    c.check(*schema, value, "header " + name, 0);
  }
  return out;
}

std::vector<std::string> openapi::response_header_names(std::string_view path_template,
                                                        std::string_view method, int status) const {
  std::vector<violation> ignored;
  std::vector<std::string> names;
  const json* r = response(path_template, method, status, ignored);
  if (!r) return names;
  if (auto hs = r->find("headers"); hs != r->end() && hs->is_object())
    for (auto it = hs->begin(); it != hs->end(); ++it) names.push_back(it.key());
  return names;
}

std::vector<violation> openapi::validate_request(std::string_view path_template,
                                                 std::string_view method, const json& body) const {
  std::vector<violation> out;
  const json* op = operation(path_template, method);
  if (!op) return {{std::string(method) + " " + std::string(path_template), "no such operation"}};
  checker c(doc_, out);
  const json* schema = nullptr;
  if (auto rb = op->find("requestBody"); rb != op->end())
    if (const json* resolved = c.resolve(*rb); resolved && resolved->is_object())
      if (auto content = resolved->find("content"); content != resolved->end())
        if (auto media = content->find("application/json"); media != content->end())
          if (auto s = media->find("schema"); s != media->end()) schema = &*s;
  if (!schema) return {{"$", "the operation has no application/json request body"}};
  c.check(*schema, body, "$", 0);
  return out;
}

std::vector<violation> openapi::validate_schema(std::string_view ref, const json& instance) const {
  std::vector<violation> out;
  checker c(doc_, out);
  const json* schema = c.pointer(std::string(ref));
  if (!schema) return {{"$", "no schema at " + std::string(ref)}};
  c.check(*schema, instance, "$", 0);
  return out;
}

}  // namespace parley::test
