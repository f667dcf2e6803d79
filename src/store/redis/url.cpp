#include <charconv>
#include <optional>
#include <string>

#include "src/store/redis.hpp"
#include "src/store/redis/wire.hpp"

namespace parley::store {

namespace {

error bad_url(std::string_view url, const std::string& what) {
  return make_error("bad_redis_url", "Redis URL '" + detail::redact(url) + "': " + what);
}

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

result<redis_endpoint> parse_redis_url(std::string_view url) {
  redis_endpoint ep;
  constexpr std::string_view unix_scheme = "unix://";
  constexpr std::string_view redis_scheme = "redis://";
  if (url.substr(0, unix_scheme.size()) == unix_scheme) {
    auto rest = url.substr(unix_scheme.size());
    // unix://[[username:]password@]/path: the userinfo ends where the path begins.
    if (auto at = rest.find("@/");
        !rest.empty() && rest.front() != '/' && at != std::string_view::npos) {
      auto userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
      auto colon = userinfo.find(':');
      if (colon == std::string_view::npos) {
        ep.password = std::string(userinfo);
      } else {
        ep.username = std::string(userinfo.substr(0, colon));
        ep.password = std::string(userinfo.substr(colon + 1));
      }
    }
    auto q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path.front() != '/')
      return bad_url(url,
                     "the socket path must be absolute (unix:///path/to.sock, or "
                     "unix://[user:]password@/path/to.sock)");
    ep.unix_path = std::string(path);
    if (q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      constexpr std::string_view db_key = "db=";
      if (query.substr(0, db_key.size()) != db_key)
        return bad_url(url, "unknown query '" + std::string(query) + "' (only db=N is supported)");
      auto db = parse_int(query.substr(db_key.size()));
      if (!db || *db < 0)
        return bad_url(url, "database '" + std::string(query.substr(db_key.size())) +
                                "' is not a non-negative number");
      ep.db = *db;
    }
    return ep;
  }
  if (url.substr(0, redis_scheme.size()) != redis_scheme) {
    auto colon = url.find("://");
    return bad_url(url, colon == std::string_view::npos
                            ? std::string("missing scheme (expected redis:// or unix://)")
                            : "unsupported scheme '" + std::string(url.substr(0, colon)) +
                                  "' (expected redis:// or unix://)");
  }
  auto rest = url.substr(redis_scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      ep.password = std::string(userinfo);  // redis://secret@host, as redis-cli accepts
    } else {
      ep.username = std::string(userinfo.substr(0, colon));
      ep.password = std::string(userinfo.substr(colon + 1));
    }
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad_url(url, "unterminated IPv6 host '" + std::string(authority) + "'");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return bad_url(url, "unexpected '" + std::string(after) + "' after the host");
      auto port = parse_int(after.substr(1));
      if (!port || *port <= 0 || *port > 65535)
        return bad_url(url,
                       "port '" + std::string(after.substr(1)) + "' is not a number in 1..65535");
      ep.port = *port;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    auto port = parse_int(authority.substr(colon + 1));
    if (!port || *port <= 0 || *port > 65535)
      return bad_url(url, "port '" + std::string(authority.substr(colon + 1)) +
                              "' is not a number in 1..65535");
    ep.port = *port;
  }
  if (host.empty()) return bad_url(url, "missing host");
  ep.host = std::string(host);
  if (slash != std::string_view::npos) {
    auto db_part = rest.substr(slash + 1);
    if (!db_part.empty()) {
      auto db = parse_int(db_part);
      if (!db || *db < 0)
        return bad_url(url, "database '" + std::string(db_part) + "' is not a non-negative number");
      ep.db = *db;
    }
  }
  return ep;
}

}  // namespace parley::store
