#pragma once
/// What the admin API's route files share: JSON answers, the error body
/// ({"error": {"code", "message", "field"}}), the HTTP status of a catalog
/// failure, times as ISO 8601, and query parameters. Internal to src/admin.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::admin::replies {

/// Compact JSON; invalid UTF-8 in a value becomes U+FFFD rather than an exception.
std::string dump(const nlohmann::json& j);

http::response json_response(int status, const nlohmann::json& body);

/// {"error": {"code", "message"[, "field"]}} with `status`.
http::response error_response(int status, std::string_view code, std::string_view message,
                              std::string_view field = {});

/// The HTTP status for a catalog or Postgres failure: 400 invalid_argument, 404 for
/// what does not exist, 409 for a state that forbids it, 503 Postgres or the
/// secrets key unavailable, else 500.
int status_of(const error& e);

/// "2026-12-03T13:16:51.535Z" from milliseconds since the epoch.
std::string iso_time(std::int64_t ms);

std::string percent_decode(std::string_view in);

/// The decoded value of query parameter `name` ("" when given without '='), or none.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace parley::admin::replies
