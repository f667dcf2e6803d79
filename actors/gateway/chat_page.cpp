#include "actors/gateway/chat_page.hpp"

#include <string>
#include <string_view>
#include <unordered_map>

#include "actors/gateway/directline_gateway.hpp"

namespace parley::actors {
namespace {

constexpr std::string_view page_prefix = "/chat/";
constexpr std::string_view static_prefix = "/chat-static/";

constexpr const char* csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

std::string content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

http::response secured(http::response r) {
  r.headers.emplace_back("Content-Security-Policy", csp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

http::response asset(std::string_view name, int status = 200) {
  std::size_t n = 0;
  const auto* all = detail::chat_assets(&n);
  for (std::size_t i = 0; i < n; ++i) {
    if (name == all[i].name) {
      http::response r;
      r.status = status;
      r.content_type = content_type_of(name);
      r.body = all[i].body;
      r.headers.emplace_back("Cache-Control", "no-cache");
      return secured(std::move(r));
    }
  }
  return secured(http::response::error(404, "not_found", "no such file"));
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  return s != "." && s != "..";
}

/// "/chat/{tenant}/{bot}[/rest]" → tenant, bot, rest; false when malformed.
bool split(std::string_view path, std::string& tenant, std::string& bot, std::string& rest) {
  path.remove_prefix(page_prefix.size());
  auto a = path.find('/');
  if (a == std::string_view::npos) return false;
  tenant = std::string(path.substr(0, a));
  path.remove_prefix(a + 1);
  auto b = path.find('/');
  bot = std::string(path.substr(0, b));
  rest = b == std::string_view::npos ? "" : std::string(path.substr(b + 1));
  return valid_name(tenant) && valid_name(bot);
}

}  // namespace

void add_chat_routes(http::router& routes, std::shared_ptr<void> directline) {
  routes.add_prefix("GET", std::string(page_prefix), "/chat/{tenant}/{bot}",
                    [](http::request&& req, http::responder reply) {
                      std::string tenant, bot, rest;
                      if (!split(req.path, tenant, bot, rest) || !rest.empty())
                        return reply(secured(http::response::error(
                            404, "not_found",
                            "the chat page is at /chat/{tenant}/{bot} (letters, digits, "
                            "'-', '_' and '.')")));
                      reply(asset("index.html"));
                    });
  routes.add_prefix(
      "GET", std::string(static_prefix), "/chat-static/{file}",
      [](http::request&& req, http::responder reply) {
        std::string_view name = req.path;
        name.remove_prefix(static_prefix.size());
        if (name == "index.html")
          return reply(secured(http::response::error(404, "not_found", "no such file")));
        reply(asset(name));
      });
  routes.add_prefix(
      "POST", std::string(page_prefix), "/chat/{tenant}/{bot}/token",
      [directline](http::request&& req, http::responder reply) {
        std::string tenant, bot, rest;
        if (!split(req.path, tenant, bot, rest) || rest != "token")
          return reply(http::response::error(404, "not_found",
                                             "the token route is POST /chat/{tenant}/{bot}/token"));
        auto r = http::responder::to([reply](http::response res) {
          res.headers.emplace_back("Cache-Control", "no-store");
          reply(std::move(res));
        });
        directline_page_token(directline, tenant, bot, std::move(r));
      });
}

}  // namespace parley::actors
