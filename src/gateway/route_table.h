#pragma once
// Route keys and the route table of the HTTP API gateway, as API Gateway HTTP
// APIs define them: "GET /pets/{id}", "ANY /{proxy+}", "$default".
//
// RouteTable is a pure value: built from a list of routes, then matched
// against a method and a raw (still percent-encoded) path. Priority follows
// API Gateway: routes without a greedy variable first (a literal segment beats
// a variable, then a specific method beats ANY), then greedy routes (more
// segments before the greedy one first, same tie-breaks), then $default.
// Immutable after construction, so one table may be read by any number of
// threads; the gateway swaps a new one in when routes change.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::gateway {

// Which event shape a route's function receives.
enum class PayloadFormat : std::uint8_t { kV2, kV1 };

[[nodiscard]] std::string_view to_string(PayloadFormat format);
[[nodiscard]] base::Result<PayloadFormat> parse_payload_format(std::string_view text);

// A parsed route key. method is empty for $default; "ANY" matches every method.
struct RouteKey {
  enum class SegmentKind : std::uint8_t { kLiteral, kVariable, kGreedy };
  struct Segment {
    SegmentKind kind;
    std::string text;  // decoded literal text, or the variable's name
    std::string raw;   // the literal as written in the key (escapes kept)
  };

  std::string method;               // "GET", ..., "ANY"; empty for $default
  std::vector<Segment> segments;    // empty for "/" and for $default
  bool is_default = false;

  // The key as written ("GET /pets/{id}", "$default").
  [[nodiscard]] std::string text() const;
  // The path template ("/pets/{id}"; "$default" for $default).
  [[nodiscard]] std::string path() const;
  [[nodiscard]] bool has_greedy() const { return !segments.empty() && segments.back().kind == SegmentKind::kGreedy; }
  [[nodiscard]] bool has_variables() const;
};

// Parses and validates a route key; errors name what is wrong.
[[nodiscard]] base::Result<RouteKey> parse_route_key(std::string_view text);

// Per-route throttling: `rate` requests per second on average, bursts of `burst`.
struct RouteThrottle {
  double rate = 0;
  std::int64_t burst = 0;
};

// What a route invokes and how.
struct RouteTarget {
  std::string function;
  std::string qualifier;  // empty: $LATEST
  PayloadFormat format = PayloadFormat::kV2;
  std::optional<RouteThrottle> throttle;
};

struct RequestValidation;  // gateway/validation.h

struct Route {
  RouteKey key;
  RouteTarget target;
  std::string authorizer;                          // an authorizer's name; empty: open route
  std::vector<std::string> authorization_scopes;   // JWT: the token needs one of them
  std::shared_ptr<const RequestValidation> validation;  // null: nothing validated
  bool api_key_required = false;                   // needs an x-api-key in a usage plan
};

// The outcome of a successful match. `route` points into the table.
struct RouteMatch {
  const Route* route = nullptr;
  http::Params path_parameters;  // decoded values, in template order
};

// Why a path cannot be routed at all (before any route is tried).
enum class PathProblem : std::uint8_t { kNone, kMalformedEscape, kDotSegment, kNulByte, kNotAbsolute };

// Checks a raw request path: it must start with '/', have well-formed %XX
// escapes, no NUL byte, and no segment that is (or decodes to, also across
// an encoded '/') "." or "..". Such paths are refused, never normalised, so
// "/public/../admin" can never reach a route for "/admin" nor a variable.
[[nodiscard]] PathProblem check_path(std::string_view raw_path);

class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(std::vector<Route> routes);

  // The best route for `method` and the raw path (check_path() must have
  // accepted it), or nullopt (404).
  [[nodiscard]] std::optional<RouteMatch> match(std::string_view method, std::string_view raw_path) const;

  [[nodiscard]] const std::vector<Route>& routes() const { return routes_; }  // in priority order
  [[nodiscard]] const Route* find(std::string_view key_text) const;

 private:
  std::vector<Route> routes_;
};

// Priority order of two route keys (true when `a` is tried before `b`).
[[nodiscard]] bool higher_priority(const RouteKey& a, const RouteKey& b);

}  // namespace nimbus::gateway
