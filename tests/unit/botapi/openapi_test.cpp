// The contract checker itself (tests/support/openapi.hpp): it must accept what
// the contract allows and report, with a JSON path, what it does not.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/botapi/botapi_support.hpp"

namespace parley::test {
namespace {

using json = nlohmann::json;
using parley::channels::botapi::testing::contract;

json valid_error() {
  return json::parse(R"({"status":400,"path":"/p","requestId":"r","error":"BadRequestError",
                         "message":"m","timestamp":1531245973799})");
}

bool reports(const std::vector<violation>& v, const std::string& where,
             const std::string& what = "") {
  for (const auto& x : v)
    if (x.where == where && x.message.find(what) != std::string::npos) return true;
  return false;
}

TEST(OpenApi, LoadsTheContract) {
  const auto& doc = contract().document();
  EXPECT_EQ(doc["openapi"], "3.0.0");
  EXPECT_EQ(doc["info"]["version"], "v5.3.0");  // quoted scalar stays a string
  // Unquoted "200:" key is found like a quoted one.
  EXPECT_TRUE(doc["paths"]["/versions"]["get"]["responses"].contains("200"));
  EXPECT_TRUE(doc["components"]["schemas"]["ResponseSessionId"]["nullable"].is_boolean());
  EXPECT_THROW(openapi::load("/nonexistent/contract.yml"), std::runtime_error);
  EXPECT_THROW(openapi::parse("a: 1"), std::runtime_error);
}

TEST(OpenApi, MatchesPathTemplates) {
  EXPECT_EQ(contract().match_path("/v5.3.0/sessions/abc/messages"),
            "/v5.3.0/sessions/{session-id}/messages");
  EXPECT_EQ(contract().match_path("/v5.3.0/sessions/abc"), "/v5.3.0/sessions/{session-id}");
  EXPECT_EQ(contract().match_path("/v5.3.0/bots/b/sessions"), "/v5.3.0/bots/{bot-id}/sessions");
  EXPECT_EQ(contract().match_path("/status"), "/status");
  EXPECT_EQ(contract().match_path("/nope"), "");
}

TEST(OpenApi, AcceptsAValidErrorForEveryStatus) {
  for (int status : {400, 401, 403, 404, 422, 423, 429, 503, 500}) {
    auto v = contract().validate_response("/v5.3.0/sessions/{session-id}", "DELETE", status,
                                          valid_error());
    EXPECT_TRUE(v.empty()) << status << ": " << to_string(v);
  }
}

TEST(OpenApi, ReportsViolationsWithPaths) {
  auto body = valid_error();
  body.erase("requestId");
  body["status"] = "400";
  body["extra"] = 1;
  body["timestamp"] = 1.5;
  auto v =
      contract().validate_response("/v5.3.0/sessions/{session-id}/messages", "POST", 400, body);
  EXPECT_TRUE(reports(v, "$.requestId", "required property missing")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.status", "expected integer, got string")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.extra", "not allowed")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.timestamp", "expected integer")) << to_string(v);
  EXPECT_EQ(v.size(), 4u) << to_string(v);

  auto status = json::parse(R"({"status":"SIDEWAYS"})");
  v = contract().validate_response("/status", "GET", 200, status);
  EXPECT_TRUE(reports(v, "$.status", "is not one of")) << to_string(v);

  body = valid_error();
  body["status"] = 5000000000LL;
  v = contract().validate_response("/status", "GET", 500, body);
  EXPECT_TRUE(reports(v, "$.status", "int32")) << to_string(v);

  v = contract().validate_response("/status", "GET", 200, std::string_view("{not json"));
  EXPECT_TRUE(reports(v, "$", "not valid JSON"));
}

TEST(OpenApi, OneOfAnyOfNullableAndNestedRefs) {
  const std::string path = "/v5.3.0/sessions/{session-id}/messages";
  auto good = json::parse(R"({
    "botVersion": null, "processedSequenceIds": [1],
    "messages": [{"type":"text","id":"a","text":"hi"},
                 {"type":"choices","id":"b","widget":"menu","choices":[{"label":"x","id":"1","alias":null}]}],
    "variables": [{"name":"c","type":"object","value":[{"name":"n","type":"number","value":null}]},
                  {"name":"o","type":"object","value":null}],
    "_links": {"self": {"href": "/x"}}})");
  auto v = contract().validate_response(path, "POST", 200, good);
  EXPECT_TRUE(v.empty()) << to_string(v);

  auto bad = good;
  bad["messages"][0]["type"] = "image";  // matches no oneOf branch
  v = contract().validate_response(path, "POST", 200, bad);
  EXPECT_TRUE(reports(v, "$.messages[0]", "none of oneOf")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.messages[0].type", "is not one of")) << to_string(v);

  bad = good;
  bad["messages"][1].erase("widget");
  v = contract().validate_response(path, "POST", 200, bad);
  EXPECT_TRUE(reports(v, "$.messages[1].widget", "required")) << to_string(v);

  bad = good;
  bad["variables"][0]["value"][0]["value"] = "ten";  // number variable with a string
  v = contract().validate_response(path, "POST", 200, bad);
  EXPECT_TRUE(reports(v, "$.variables[0]", "none of anyOf")) << to_string(v);

  bad = good;
  bad["messages"][0]["text"] = nullptr;  // not nullable
  v = contract().validate_response(path, "POST", 200, bad);
  EXPECT_FALSE(v.empty());

  bad = good;
  bad.erase("_links");
  bad["_links"] = json::object();
  v = contract().validate_response(path, "POST", 200, bad);
  EXPECT_TRUE(reports(v, "$._links.self", "required")) << to_string(v);
}

TEST(OpenApi, UnknownOperationsAndStatuses) {
  auto v = contract().validate_response("/nope", "GET", 200, json::object());
  EXPECT_FALSE(v.empty());
  v = contract().validate_response("/status", "POST", 200, json::object());
  EXPECT_FALSE(v.empty());
}

constexpr const char* small_contract = R"(
openapi: 3.0.0
paths:
  /things/{id}:
    get:
      responses:
        200:
          description: ok
          headers:
            X-Must:
              required: true
              schema: {type: string}
            X-Count:
              schema: {type: integer}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Thing"}
        "404":
          description: none
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Missing"}
components:
  schemas:
    Thing:
      type: object
      properties:
        code: {type: string, pattern: "^[A-Z]+$", minLength: 2, maxLength: 4}
        when: {type: string, format: date-time}
        day: {type: string, format: date}
        n: {type: number, minimum: 1, maximum: 10}
        list: {type: array, items: {type: integer}, minItems: 1}
        label: {enum: ["1", "yes"]}
        all: {allOf: [{type: object, required: [a]}, {type: object, required: [b]}]}
        extra: {type: object, additionalProperties: {type: boolean}}
      required: [code]
)";

TEST(OpenApi, KeywordsOnASmallContract) {
  auto c = openapi::parse(small_contract);
  auto good = json::parse(R"({"code":"AB","when":"2026-11-26T14:30:00Z","day":"2026-11-26","n":3,
                              "list":[1,2],"label":"1","all":{"a":1,"b":2},"extra":{"x":true}})");
  auto v = c.validate_response("/things/{id}", "GET", 200, good);
  EXPECT_TRUE(v.empty()) << to_string(v);

  auto bad = json::parse(R"({"code":"abcde","when":"yesterday","day":"26/11/2026","n":11,
                             "list":[],"label":1,"all":{"a":1},"extra":{"x":"no"}})");
  v = c.validate_response("/things/{id}", "GET", 200, bad);
  EXPECT_TRUE(reports(v, "$.code", "pattern")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.code", "maxLength")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.when", "date-time")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.day", "date")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.n", "maximum")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.list", "minItems")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.label", "is not one of")) << to_string(v);  // "1" quoted: a string
  EXPECT_TRUE(reports(v, "$.all.b", "required")) << to_string(v);
  EXPECT_TRUE(reports(v, "$.extra.x", "expected boolean")) << to_string(v);

  // A broken $ref is reported, not ignored.
  v = c.validate_response("/things/{id}", "GET", 404, json::object());
  EXPECT_TRUE(reports(v, "$", "unresolvable")) << to_string(v);
  // No response for the status and no default.
  v = c.validate_response("/things/{id}", "GET", 500, json::object());
  EXPECT_FALSE(v.empty());
}

TEST(OpenApi, Headers) {
  auto c = openapi::parse(small_contract);
  auto v =
      c.validate_response_headers("/things/{id}", "GET", 200, {{"x-must", "1"}, {"X-Count", "3"}});
  EXPECT_TRUE(v.empty()) << to_string(v);
  v = c.validate_response_headers("/things/{id}", "GET", 200, {{"X-Count", "three"}});
  EXPECT_TRUE(reports(v, "header X-Must", "required header missing")) << to_string(v);
  EXPECT_TRUE(reports(v, "header X-Count", "expected integer")) << to_string(v);
  EXPECT_EQ(c.response_header_names("/things/{id}", "GET", 200),
            (std::vector<std::string>{"X-Count", "X-Must"}));
  // The Bot API contract lists X-Request-ID for its errors, none required.
  EXPECT_EQ(contract().response_header_names("/v5.3.0/sessions/{session-id}", "DELETE", 429),
            (std::vector<std::string>{"X-Request-ID"}));
  EXPECT_TRUE(contract()
                  .validate_response_headers("/v5.3.0/sessions/{session-id}", "DELETE", 429, {})
                  .empty());
}

TEST(OpenApi, RequestBodies) {
  auto v = contract().validate_request(
      "/v5.3.0/sessions/{session-id}/messages", "POST",
      json::parse(R"({"message":{"type":"text","sequenceId":1,"text":"x"}})"));
  EXPECT_TRUE(v.empty()) << to_string(v);
  v = contract().validate_request("/v5.3.0/sessions/{session-id}/messages", "POST",
                                  json::parse(R"({"message":{"type":"text","text":"x"}})"));
  EXPECT_FALSE(v.empty());
  v = contract().validate_request("/v5.3.0/bots/{bot-id}/sessions", "POST",
                                  json::parse(R"({"forceConfig":{"endpoint":"e"}})"));
  EXPECT_TRUE(reports(v, "$.externalSessionKey", "required")) << to_string(v);
}

}  // namespace
}  // namespace parley::test
