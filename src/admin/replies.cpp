#include "src/admin/replies.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace parley::admin::replies {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

http::response json_response(int status, const json& body) {
  return http::response::json(status, dump(body));
}

http::response error_response(int status, std::string_view code, std::string_view message,
                              std::string_view field) {
  json e = {{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return json_response(status, {{"error", e}});
}

int status_of(const error& e) {
  const std::string& c = e.code;
  if (c == "invalid_argument") return 400;
  if (c == "tenant_not_found" || c == "bot_not_found" || c == "version_not_found" ||
      c == "api_key_not_found" || c == "secret_not_found")
    return 404;
  if (c == "tenant_exists" || c == "no_active_version" || c == "no_previous_version" ||
      c == "canary_running" || c == "no_canary")
    return 409;
  if (c == "postgres_unavailable" || c == "secrets_key_missing") return 503;
  return 500;
}

std::string iso_time(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::size_t start = 0;
  while (start <= query.size()) {
    auto end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    auto part = query.substr(start, end - start);
    auto eq = part.find('=');
    if (percent_decode(part.substr(0, eq)) == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1));
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace parley::admin::replies
