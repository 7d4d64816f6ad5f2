#pragma once
// Request validation for gateway routes, as API Gateway REST APIs' request
// validators do it: required query string, header and path parameters, and a
// JSON Schema (the draft-04 subset API Gateway models use) for the body.
// Everything here is pure: a RequestValidation is an immutable value built
// from the route's configuration and read by any number of threads; the
// gateway calls validate_request() before it invokes the route's function and
// answers 400 {"message": ...} when it returns a message.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "gateway/event.h"
#include "http/types.h"

namespace nimbus::gateway {

// A compiled JSON Schema. Keywords: type, properties, required,
// additionalProperties, patternProperties, dependencies, items (one schema or
// a tuple), additionalItems, enum, const, minimum, maximum, exclusiveMinimum
// and exclusiveMaximum (draft-04 booleans and draft-06 numbers), multipleOf,
// minLength and maxLength (in code points), pattern (ECMAScript, search
// semantics), minItems, maxItems, uniqueItems, minProperties, maxProperties,
// allOf, anyOf, oneOf, not, definitions and local "$ref" ("#/definitions/x",
// any "#/..." pointer). Keywords beside "$ref" are ignored (draft-04).
// Annotations (title, description, $schema, id, default, format, examples,
// $comment, x-*) are ignored; any other keyword is refused by compile().
//
// Limits that keep hostile input from exhausting the stack or the CPU: values
// nested deeper than kMaxInstanceDepth, schema documents nested deeper than
// kMaxSchemaDepth, more than kMaxEvaluationDepth nested schema applications
// (a recursive $ref) and more than kMaxSteps schema applications in one
// validate() call each fail with a message saying so. Patterns are matched
// only against strings and property names of at most kMaxPatternInput bytes
// (std::regex recurses once per character); longer ones fail the pattern.
//
// An immutable value: copy it freely, call validate() from any thread.
class JsonSchema {
 public:
  static constexpr std::size_t kMaxInstanceDepth = 64;
  static constexpr std::size_t kMaxSchemaDepth = 128;
  static constexpr std::size_t kMaxEvaluationDepth = 512;
  static constexpr std::size_t kMaxSteps = 1'000'000;
  static constexpr std::size_t kMaxPatternInput = 1024;

  // Checks the schema itself: unknown keywords and types, bad regex
  // patterns, negative lengths, unresolvable or remote "$ref", "$ref" cycles
  // that never descend into the value. The error (kValidation) names the
  // JSON pointer in the schema and what is wrong:
  // "BodySchema /properties/age/minimum must be a number".
  static base::Result<JsonSchema> compile(const nlohmann::json& schema);

  // Empty when `instance` is valid; otherwise up to `max_errors` (at least
  // one) messages, each naming the JSON pointer of the failing value and the
  // rule: "/age: 7 is less than the minimum of 18",
  // "/: missing required property 'name'", "/tags/2: expected string, found number".
  [[nodiscard]] std::vector<std::string> validate(const nlohmann::json& instance,
                                                  std::size_t max_errors = 10) const;
  // The schema as given to compile().
  [[nodiscard]] const nlohmann::json& document() const;

  JsonSchema(const JsonSchema& other);
  JsonSchema(JsonSchema&& other) noexcept;
  JsonSchema& operator=(const JsonSchema& other);
  JsonSchema& operator=(JsonSchema&& other) noexcept;
  ~JsonSchema();

  struct Node;  // one compiled schema object; defined in validation.cpp

 private:
  JsonSchema();

  nlohmann::json document_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
};

// What a route validates before its function is invoked.
struct RequestValidation {
  // API Gateway REST names, in the order configured:
  // "method.request.querystring.NAME", "method.request.header.NAME" (the
  // name matched case-insensitively), "method.request.path.NAME".
  std::vector<std::string> required_parameters;
  std::optional<JsonSchema> body_schema;
};

// Parses {"RequiredParameters": [...], "BodySchema": {...}}. Both members are
// optional; BodySchema may also be a string holding the schema's JSON text
// (as API Gateway's Model.schema is). Unknown members are refused. Errors name
// the member and what is wrong: kValidation, or kInvalidRequestContent when a
// BodySchema string is not JSON.
[[nodiscard]] base::Result<RequestValidation> parse_request_validation(const nlohmann::json& doc);
// The object form parse_request_validation() reads (BodySchema as an object).
[[nodiscard]] nlohmann::json to_json(const RequestValidation& validation);

// The message of the gateway's 400 answer, or nullopt when the request passes.
//  "Missing required request parameters: [name, x-api-key]": every missing
//   one, in configured order. A query string parameter with an empty value
//   is present (as in API Gateway); a header with an empty value is missing.
//  "Invalid request body: <validate() messages joined by "; ">" when the route
//   has a body schema. The body must be JSON: an empty or non-JSON body fails
//   with "Invalid request body: the body is not valid JSON". The raw body is
//   validated as sent (base64 bodies are not decoded).
// Parameters are checked first; the body only when they are all present.
[[nodiscard]] std::optional<std::string> validate_request(const RequestValidation& validation,
                                                          const IncomingRequest& request,
                                                          const http::Params& path_parameters);

}  // namespace nimbus::gateway
