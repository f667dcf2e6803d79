// What the parleyctl commands over the admin REST API share: where the node is, its
// token, and one call that prints the server's error (parleyctl.hpp).

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "src/app/parleyctl.hpp"
#include "src/http/client.hpp"

namespace parley::ctl {

using json = nlohmann::json;

void add_target_options(CLI::App* cmd, admin_target& t) {
  cmd->add_option("--url", t.url, "node base URL (default: $PARLEY_URL or http://127.0.0.1:8080)");
  cmd->add_option("--token", t.token, "admin token (default: $PARLEY_ADMIN_TOKEN)");
  cmd->add_flag("--json", t.raw_json, "print the server's JSON answer as is");
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string seg(const std::string& s) {
  std::ostringstream out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out << c;
    } else {
      out << '%' << std::uppercase << std::hex << std::setw(2) << std::setfill('0')
          << static_cast<int>(c) << std::nouppercase << std::dec;
    }
  }
  return out.str();
}

std::string admin_base(const admin_target& target) {
  std::string base =
      target.url.empty() ? env_or("PARLEY_URL", "http://127.0.0.1:8080") : target.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

std::optional<admin_answer> admin_call(const admin_target& target, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       int& exit_code, const std::string& content_type) {
  std::string token = target.token.empty() ? env_or("PARLEY_ADMIN_TOKEN", "") : target.token;
  if (token.empty()) {
    std::cerr << "parleyctl: no admin token: pass --token or set PARLEY_ADMIN_TOKEN\n";
    exit_code = 2;
    return std::nullopt;
  }
  http::client_request req;
  req.method = method;
  req.url = admin_base(target) + path;
  req.body = body;
  req.headers.emplace_back("Authorization", "Bearer " + token);
  req.headers.emplace_back("Accept", "application/json");
  if (!body.empty()) req.headers.emplace_back("Content-Type", content_type);
  req.headers.emplace_back("X-Parley-Actor", env_or("USER", "parleyctl"));
  auto r = http::fetch(req);
  if (!r) {
    std::cerr << "parleyctl: " << method << " " << req.url << ": " << r.err().message << "\n";
    exit_code = 2;
    return std::nullopt;
  }
  admin_answer a{r->status, json::parse(r->body, nullptr, false), r->body};
  if (target.raw_json)
    std::cout << r->body << (r->body.empty() || r->body.back() != '\n' ? "\n" : "");
  if (a.status >= 400) {
    exit_code = 1;
    if (target.raw_json) return std::nullopt;
    const json* e = a.body.is_object() && a.body.contains("error") ? &a.body["error"] : nullptr;
    if (e != nullptr && e->is_object()) {
      std::cerr << "error: " << e->value("message", "") << " (" << e->value("code", "") << ", HTTP "
                << a.status << ")\n";
    } else {
      std::cerr << "error: HTTP " << a.status << ": " << r->body << "\n";
    }
    // A 422 carries diagnostics the caller prints.
    if (a.status == 422) return a;
    return std::nullopt;
  }
  return a;
}

}  // namespace parley::ctl
