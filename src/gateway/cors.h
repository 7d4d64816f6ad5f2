#pragma once
// CORS for the gateway, as API Gateway HTTP APIs' CorsConfiguration does it
// (shared/reference/events.md §1.8): preflight OPTIONS requests are answered
// by the gateway without invoking anything, and the configured headers are
// added to every response to a request with an Origin, replacing any CORS
// headers the function returned. Pure functions over a CorsConfig value.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace nimbus::gateway {

struct CorsConfig {
  std::vector<std::string> allow_origins;   // "https://app.example.com", "*", "https://*"
  std::vector<std::string> allow_methods;   // "GET", "*"
  std::vector<std::string> allow_headers;   // "authorization", "*"
  std::vector<std::string> expose_headers;
  std::optional<int> max_age;               // seconds, -1..86400
  bool allow_credentials = false;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// From/to the control API's JSON (AWS's CorsConfiguration member names:
// AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders, MaxAge,
// AllowCredentials). Errors name the member.
[[nodiscard]] base::Result<CorsConfig> parse_cors(const nlohmann::json& body);
[[nodiscard]] nlohmann::json to_json(const CorsConfig& config);

// Whether `origin` is allowed: listed (case-insensitively), "*", or a
// pattern with one '*' such as "https://*" or "https://*.example.com".
[[nodiscard]] bool origin_allowed(const CorsConfig& config, std::string_view origin);

// A preflight: OPTIONS with Origin and Access-Control-Request-Method.
[[nodiscard]] bool is_preflight(std::string_view method, std::string_view origin, std::string_view request_method);

// The headers of the gateway's answer to a preflight (status 204). Empty when
// the origin or the requested method is not allowed.
[[nodiscard]] HeaderList preflight_headers(const CorsConfig& config, std::string_view origin,
                                           std::string_view request_method);

// Replaces any Access-Control-* headers in `headers` with the configured
// ones for a request from `origin` (none when the origin is not allowed or
// the request had no Origin).
void apply_cors(const CorsConfig& config, std::string_view origin, HeaderList& headers);

}  // namespace nimbus::gateway
