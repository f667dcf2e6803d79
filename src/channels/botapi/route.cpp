// Routing of the Bot API codec, and the helpers parsing and rendering share.

#include <array>

#include "src/channels/botapi/route.hpp"

namespace parley::channels::botapi {

namespace detail {

failure bad(std::string_view field, std::string_view what) {
  std::string message;
  message.reserve(field.size() + 2 + what.size());
  message.append(field).append(": ").append(what);
  return make_failure(400, std::move(message));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// [A-Za-z0-9._~:-]
constexpr std::array<bool, 256> id_chars = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
                                     c == ':' || c == '-';
  return t;
}();

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > max_id_length) return false;
  for (char c : s)
    if (!id_chars[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Header values are echoed in response headers: keep only what cannot break them.
std::string safe_header_value(std::string_view s) {
  if (s.size() > max_request_id_length ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return {};
  return std::string(s);
}

std::string path_label(std::string_view path) {
  if (path.size() > 200 || !printable(path)) return "the path";
  return "'" + std::string(path) + "'";
}

std::optional<std::string> path_id(std::string_view path, endpoint kind) {
  auto r = match_route(kind == endpoint::end_session ? "DELETE" : "POST", path);
  if (!r || r->kind != kind) return std::nullopt;
  return std::move(r->id);
}

const char* error_class(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "UnauthorizedError";
    case 403:
      return "ForbiddenError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowedError";
    case 422:
      return "RequestProcessingException";
    case 423:
      return "ServerBusyError";
    case 429:
      return "TooManyRequestsError";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalServerError";
  }
}

}  // namespace detail

namespace {

// The segments of "/a/b/c"; empty segments make the path invalid. No route has
// more than 4, so at most 9 are kept.
struct path_segments {
  std::array<std::string_view, 9> seg;
  std::size_t n = 0;
  std::size_t size() const { return n; }
  bool empty() const { return n == 0; }
  std::string_view operator[](std::size_t i) const { return seg[i]; }
};

path_segments segments(std::string_view path) {
  path_segments out;
  if (path.empty() || path[0] != '/') return out;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.seg[out.n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (out.n == out.seg.size()) break;
  }
  return out;
}

}  // namespace

using namespace detail;

failure make_failure(int status, std::string message) {
  return failure{status, error_class(status), std::move(message)};
}

parsed<route> match_route(std::string_view method, std::string_view path) {
  auto seg = segments(path);
  auto method_is = [&](std::string_view m) { return method == m; };
  auto wrong_method = [&](std::string_view allowed) {
    return make_failure(
        405, "method: " +
                 std::string(method.size() <= 16 && printable(method) ? method : "this method") +
                 " not allowed on " + path_label(path) + ", use " + std::string(allowed));
  };
  auto not_found = [&] { return make_failure(404, "path: no such resource " + path_label(path)); };
  if (seg.size() == 1 && (seg[0] == "status" || seg[0] == "versions")) {
    if (!method_is("GET")) return wrong_method("GET");
    return route{seg[0] == "status" ? endpoint::status : endpoint::versions, {}};
  }
  if (seg.empty() || seg[0] != api_version) return not_found();
  if (seg.size() == 4 && seg[1] == "bots" && seg[3] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::start_session, std::string(seg[2])};
  }
  if (seg.size() == 4 && seg[1] == "sessions" && seg[3] == "messages") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("POST")) return wrong_method("POST");
    return route{endpoint::continue_session, std::string(seg[2])};
  }
  if (seg.size() == 3 && seg[1] == "sessions") {
    if (!valid_id(seg[2])) return not_found();
    if (!method_is("DELETE")) return wrong_method("DELETE");
    return route{endpoint::end_session, std::string(seg[2])};
  }
  return not_found();
}

std::string org_of(const http::request& req) {
  const std::string* org = req.header("X-Org-Id");
  if (org == nullptr) return {};
  auto id = detail::trim(*org);
  return detail::valid_id(id) ? std::string(id) : std::string();
}

}  // namespace parley::channels::botapi
