#pragma once
/// A small blocking HTTP/1.1 client (http:// and https://), for tools (parleyctl) and
/// tests. It blocks the calling thread for up to `timeout`: never call it from an
/// actor or an HTTP handler.

#include <chrono>
#include <string>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::http {

struct client_request {
  std::string method = "GET";
  std::string url;  ///< http://host[:port]/path?query or https://...
  header_list headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};  ///< for the whole exchange
};

struct client_response {
  int status = 0;
  header_list headers;
  std::string body;
  const std::string* header(std::string_view name) const { return find_header(headers, name); }
};

/// Parts of an absolute http(s) URL.
struct url_parts {
  std::string scheme;  ///< "http" or "https"
  std::string host;
  std::string port;    ///< explicit or the scheme's default
  std::string target;  ///< path and query, "/" at least
};

/// Fails with `bad_url` naming what is wrong.
result<url_parts> parse_url(const std::string& url);

/// Performs one request. Errors: `bad_url`, `http_timeout`, `http_connect`, `http_io`.
/// A response with any status (including 4xx/5xx) is a success.
result<client_response> fetch(const client_request& req);

}  // namespace parley::http
