#include "src/channels/json/writer.hpp"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace parley::channels::json {

namespace v1 = ::parley::bot::v1;

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_number(std::string& out, double d) {
  if (!std::isfinite(d)) return lit(out, "null");
  if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return append_int(out, static_cast<std::int64_t>(d));
  // nlohmann's own Grisu2 formatting, so that the digits are the ones it prints.
  char buf[64];
  char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, end);
}

void append_value(std::string& out, const v1::Value& v, int depth) {
  if (depth > max_depth) return lit(out, "null");
  switch (v.kind_case()) {
    case v1::Value::kText:
      return append_string(out, v.text());
    case v1::Value::kNumber:
      return append_number(out, v.number());
    case v1::Value::kBoolean:
      return append_bool(out, v.boolean());
    case v1::Value::kList: {
      out += '[';
      bool first = true;
      for (const auto& item : v.list().items()) {
        if (!first) out += ',';
        first = false;
        append_value(out, item, depth + 1);
      }
      out += ']';
      return;
    }
    case v1::Value::kObject: {
      const auto& fields = v.object().fields();
      const int n = fields.size();
      out += '{';
      bool first = true;
      for (int i = 0; i < n; ++i) {
        const std::string& key = fields[i].key();
        bool seen = false;
        for (int j = 0; j < i && !seen; ++j) seen = fields[j].key() == key;
        if (seen) continue;
        int last = i;
        for (int j = i + 1; j < n; ++j)
          if (fields[j].key() == key) last = j;
        if (!first) out += ',';
        first = false;
        append_string(out, key);
        out += ':';
        append_value(out, fields[last].value(), depth + 1);
      }
      out += '}';
      return;
    }
    default:
      return lit(out, "null");
  }
}

}  // namespace parley::channels::json
