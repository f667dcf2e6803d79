#pragma once
// Helpers shared by the Bot API codec tests.

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "src/channels/botapi/botapi.hpp"
#include "tests/support/openapi.hpp"

namespace parley::channels::botapi::testing {

inline const test::openapi& contract() {
  static const test::openapi c =
      test::openapi::load(std::string(PARLEY_CONTRACTS_DIR) + "/einstein-bots-api-v5.3.0.yml");
  return c;
}

/// A request with valid default headers; `headers` replace the defaults by name
/// (an empty value removes the header).
inline http::request make_request(std::string method, std::string path, std::string body = {},
                                  http::header_list overrides = {}) {
  http::request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  r.body = std::move(body);
  r.headers = {{"Authorization", "Bearer key-123"},
               {"X-Org-Id", "demo"},
               {"X-Request-ID", "36a73651-a46d-4d16-9a8a-fd436ed62e1a"},
               {"Content-Type", "application/json"}};
  for (auto& [name, value] : overrides) {
    bool replaced = false;
    for (auto it = r.headers.begin(); it != r.headers.end(); ++it) {
      if (it->first == name) {
        if (value.empty())
          r.headers.erase(it);
        else
          it->second = value;
        replaced = true;
        break;
      }
    }
    if (!replaced && !value.empty()) r.headers.emplace_back(name, value);
  }
  return r;
}

/// Checks a rendered response against the contract: body schema, header schemas,
/// and that every header the contract lists for it is present.
inline void expect_conforms(const http::response& resp, const std::string& path_template,
                            const std::string& method) {
  SCOPED_TRACE(method + " " + path_template + " " + std::to_string(resp.status) + " " + resp.body);
  EXPECT_EQ(resp.content_type, "application/json");
  auto v =
      contract().validate_response(path_template, method, resp.status, std::string_view(resp.body));
  EXPECT_TRUE(v.empty()) << test::to_string(v);
  auto h = contract().validate_response_headers(path_template, method, resp.status, resp.headers);
  EXPECT_TRUE(h.empty()) << test::to_string(h);
  for (const auto& name : contract().response_header_names(path_template, method, resp.status)) {
    bool found = false;
    for (const auto& [k, val] : resp.headers)
      if (k == name) found = true;
    EXPECT_TRUE(found) << "header " << name << " missing";
  }
}

inline constexpr const char* start_path = "/v5.3.0/bots/{bot-id}/sessions";
inline constexpr const char* messages_path = "/v5.3.0/sessions/{session-id}/messages";
inline constexpr const char* session_path = "/v5.3.0/sessions/{session-id}";

}  // namespace parley::channels::botapi::testing
