#pragma once
// Building the Lambda event for a gateway request: API Gateway's payload
// format 2.0 (HTTP APIs, function URLs) and 1.0 (REST-style proxy events),
// field by field as shared/reference/events.md §1.1 and §1.3 describe them.
// Pure functions over a plain description of the request; no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/types.h"

namespace nimbus::gateway {

// A request as it reached the gateway. Header names as the client sent them,
// in order, repeats kept.
struct IncomingRequest {
  std::string method;
  std::string raw_path;    // as received: not decoded, no query
  std::string raw_query;   // without '?'; empty when none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string protocol = "HTTP/1.1";
  std::string source_ip;
};

// What an authorizer let through, as the integration sees it in
// requestContext.authorizer.
struct AuthorizerGrant {
  enum class Kind : std::uint8_t { kLambda, kJwt };
  Kind kind = Kind::kLambda;
  nlohmann::json context;        // Lambda: the reply's context (object or null)
  nlohmann::json claims;         // JWT: the token's claims
  std::vector<std::string> scopes;
  std::string principal_id;      // Lambda IAM replies
  std::int64_t latency_ms = 0;   // the authorizer call (0 when cached)
};

// What the gateway knows about the request beyond the request itself.
struct EventContext {
  std::string route_key = "$default";     // as configured
  std::string resource_path = "$default"; // 1.0 "resource": the route's path template
  http::Params path_parameters;           // decoded, from the match
  bool has_path_parameters = false;       // the route has variables
  std::string request_id;
  std::int64_t time_ms = 0;
  std::string account_id;
  std::string api_id;
  std::string domain_name;
  std::string domain_prefix;
  std::string stage = "$default";
  std::optional<AuthorizerGrant> authorizer;  // set when the route has an authorizer
  std::string api_key;     // the request's API key (routes that require one); 1.0 identity.apiKey
  std::string api_key_id;  // its id; 1.0 identity.apiKeyId
};

// True when the body goes to the function as text: a textual content type
// (text/*, JSON, XML, JavaScript, form data; or none) and valid UTF-8.
// Anything else is base64-encoded with isBase64Encoded = true.
[[nodiscard]] bool is_text_body(std::string_view content_type, std::string_view body);
[[nodiscard]] bool is_valid_utf8(std::string_view text);

// "21/Apr/2020:15:08:21 +0000"
[[nodiscard]] std::string format_clf_time(std::int64_t epoch_ms);
// A short API Gateway style request id: 16 characters of base64 ("LV7fzho-PHcEJPw=").
[[nodiscard]] std::string make_request_id();

// The headers API Gateway adds before the integration sees the request:
// x-forwarded-for (appended to), x-forwarded-port, x-forwarded-proto
// (`proto`: "http", or "https" on a TLS listener), x-amzn-trace-id (unless
// present). A client's own x-forwarded-port/-proto are dropped.
void add_forwarding_headers(IncomingRequest& request, std::uint16_t port, std::string_view proto,
                            std::int64_t time_ms);

[[nodiscard]] nlohmann::json build_event_v2(const IncomingRequest& request, const EventContext& context);
[[nodiscard]] nlohmann::json build_event_v1(const IncomingRequest& request, const EventContext& context);

}  // namespace nimbus::gateway
