#include "src/http/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace parley::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

result<url_parts> parse_url(const std::string& url) {
  url_parts p;
  auto sep = url.find("://");
  if (sep == std::string::npos)
    return make_error("bad_url", "URL '" + url + "' has no scheme (http:// or https://)");
  p.scheme = url.substr(0, sep);
  if (p.scheme != "http" && p.scheme != "https")
    return make_error("bad_url", "URL '" + url + "': scheme must be http or https");
  auto rest = url.substr(sep + 3);
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  p.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!p.target.empty() && p.target[0] == '?') p.target = "/" + p.target;
  if (authority.empty()) return make_error("bad_url", "URL '" + url + "' has no host");
  if (authority.find('@') != std::string::npos)
    return make_error("bad_url", "URL '" + url + "': user info in URLs is not supported");
  std::string::size_type colon;
  if (authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos)
      return make_error("bad_url", "URL '" + url + "': unclosed IPv6 bracket");
    p.host = authority.substr(1, close - 1);
    colon = authority.find(':', close);
  } else {
    colon = authority.rfind(':');
    p.host = authority.substr(0, colon);
  }
  if (colon != std::string::npos) {
    p.port = authority.substr(colon + 1);
    if (p.port.empty() || p.port.find_first_not_of("0123456789") != std::string::npos ||
        p.port.size() > 5 || std::stoi(p.port) > 65535)
      return make_error("bad_url", "URL '" + url + "': port must be a number from 1 to 65535");
  } else {
    p.port = p.scheme == "https" ? "443" : "80";
  }
  if (p.host.empty()) return make_error("bad_url", "URL '" + url + "' has no host");
  return p;
}

namespace {

template <class Stream>
result<client_response> exchange(net::io_context& ioc, Stream& stream, const url_parts& u,
                                 const client_request& req, beast::error_code& ec) {
  bhttp::request<bhttp::string_body> r;
  r.method_string(req.method);
  r.target(u.target);
  r.version(11);
  bool default_port =
      (u.scheme == "https" && u.port == "443") || (u.scheme == "http" && u.port == "80");
  r.set(bhttp::field::host, default_port ? u.host : u.host + ":" + u.port);
  r.set(bhttp::field::user_agent, "parley");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  r.body() = req.body;
  r.keep_alive(false);
  r.prepare_payload();
  bool done = false;
  bhttp::async_write(stream, r, [&](beast::error_code e, std::size_t) {
    ec = e;
    done = true;
  });
  ioc.restart();
  ioc.run();
  if (ec || !done)
    return make_error(ec == beast::error::timeout ? "http_timeout" : "http_io",
                      "sending to " + req.url + ": " + ec.message());
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  bhttp::async_read(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.restart();
  ioc.run();
  if (ec)
    return make_error(ec == beast::error::timeout ? "http_timeout" : "http_io",
                      "reading from " + req.url + ": " + ec.message());
  auto msg = parser.release();
  client_response out;
  out.status = static_cast<int>(msg.result_int());
  for (const auto& f : msg)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(msg.body());
  return out;
}

}  // namespace

result<client_response> fetch(const client_request& req) {
  auto parts = parse_url(req.url);
  if (!parts) return parts.err();
  const auto& u = *parts;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec) return make_error("http_connect", "cannot resolve " + u.host + ": " + ec.message());
  if (u.scheme == "http") {
    beast::tcp_stream stream(ioc);
    stream.expires_after(req.timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    ioc.run();
    if (ec)
      return make_error(ec == beast::error::timeout ? "http_timeout" : "http_connect",
                        "cannot connect to " + u.host + ":" + u.port + ": " + ec.message());
    return exchange(ioc, stream, u, req, ec);
  }
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_default_verify_paths();
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
    return make_error("http_connect", "cannot set TLS server name for " + u.host);
  stream.set_verify_callback(net::ssl::host_name_verification(u.host));
  beast::get_lowest_layer(stream).expires_after(req.timeout);
  beast::get_lowest_layer(stream).async_connect(
      endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  if (ec)
    return make_error(ec == beast::error::timeout ? "http_timeout" : "http_connect",
                      "cannot connect to " + u.host + ":" + u.port + ": " + ec.message());
  stream.async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
  ioc.restart();
  ioc.run();
  if (ec)
    return make_error("http_connect", "TLS handshake with " + u.host + " failed: " + ec.message());
  return exchange(ioc, stream, u, req, ec);
}

}  // namespace parley::http
