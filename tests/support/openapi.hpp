#pragma once
/// A small OpenAPI 3.0 contract checker for tests: loads a contract (YAML) and
/// validates JSON bodies and headers against the schemas it names.
///
/// Supported schema keywords: $ref (local "#/..." pointers), type, nullable,
/// properties, required, additionalProperties (bool or schema), enum, items,
/// oneOf (exactly one), anyOf, allOf, minItems/maxItems, minLength/maxLength,
/// minimum/maximum (numbers only), pattern (ECMAScript), format (int32, int64,
/// date, date-time, uuid). Other keywords (example, description, ...) are ignored.
///
/// Not thread-safe to load; a loaded contract is immutable and may be shared.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::test {

/// One finding: where in the instance (a JSON path such as "$.messages[0].id", or
/// "header X-Request-ID") and what is wrong.
struct violation {
  std::string where;
  std::string message;
  std::string to_string() const { return where + ": " + message; }
};

/// All findings, one per line; empty when valid. For test failure messages.
std::string to_string(const std::vector<violation>& violations);

class openapi {
 public:
  /// Loads and parses the contract; throws std::runtime_error naming the file on
  /// failure (a test without its contract cannot run).
  static openapi load(const std::string& path);
  /// Parses a contract from text (tests of the validator itself).
  static openapi parse(std::string_view yaml_text);

  /// The whole contract as JSON (YAML scalars typed: quoted → string).
  const nlohmann::json& document() const { return doc_; }

  /// The path template of the contract matching a concrete path
  /// ("/v5.3.0/sessions/abc/messages" → "/v5.3.0/sessions/{session-id}/messages"),
  /// or "" when none matches.
  std::string match_path(std::string_view concrete_path) const;

  /// Validates a response body for (path template, method, status): the response
  /// for that status, else `default`. Reports a missing operation or response,
  /// a response without an application/json schema, and every schema violation.
  std::vector<violation> validate_response(std::string_view path_template, std::string_view method,
                                           int status, const nlohmann::json& body) const;

  /// Same, from the raw body text (unparsable JSON is a violation).
  std::vector<violation> validate_response(std::string_view path_template, std::string_view method,
                                           int status, std::string_view body_text) const;

  /// Checks the response headers the contract marks `required: true` are present
  /// and that every header the contract describes and that is present matches
  /// its schema (headers are strings; typed schemas are checked on the text).
  std::vector<violation> validate_response_headers(
      std::string_view path_template, std::string_view method, int status,
      const std::vector<std::pair<std::string, std::string>>& headers) const;

  /// The names of the headers the contract lists for a response (any case).
  std::vector<std::string> response_header_names(std::string_view path_template,
                                                 std::string_view method, int status) const;

  /// Validates a request body against the operation's requestBody schema.
  std::vector<violation> validate_request(std::string_view path_template, std::string_view method,
                                          const nlohmann::json& body) const;

  /// Validates an instance against a schema given by pointer
  /// ("#/components/schemas/Error").
  std::vector<violation> validate_schema(std::string_view ref,
                                         const nlohmann::json& instance) const;

 private:
  explicit openapi(nlohmann::json doc) : doc_(std::move(doc)) {}
  const nlohmann::json* operation(std::string_view path_template, std::string_view method) const;
  const nlohmann::json* response(std::string_view path_template, std::string_view method,
                                 int status, std::vector<violation>& out) const;

  nlohmann::json doc_;
};

}  // namespace parley::test
