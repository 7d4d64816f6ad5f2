#pragma once
// Small pieces every LambdaApi source file shares (internal to the api part):
// JSON and empty responses, the common query parameters, and the early
// return on a failed Result inside a route handler.

#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "http/router.h"
#include "http/types.h"

namespace nimbus::api::detail {

using nlohmann::json;
using base::ErrorCode;
using base::make_error;

inline http::Response json_response(http::Status status, const json& body, unsigned version) {
  http::Response res{status, version};
  res.set(http::Field::content_type, "application/json");
  // Error messages may quote what the client sent; never fail on bad UTF-8.
  res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return res;
}

// Lambda's wording for a member that fails a model constraint (a type, a
// range): "1 validation error detected: Value 'v' at 'member' failed to
// satisfy constraint: <rule>". Strings are quoted bare, other JSON dumped.
inline base::Error validation_error(std::string_view member, const json& value, std::string_view rule) {
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {}",
                                value.is_string() ? value.get<std::string>() : value.dump(), member, rule));
}

inline http::Response empty_response(http::Status status, unsigned version) {
  return http::Response{status, version};
}

// MaxItems of the list operations: 1..10000 (Lambda then caps the page at 50).
inline base::Result<std::size_t> max_items(const http::Params& query) {
  const std::string* m = http::find_param(query, "MaxItems");
  if (m == nullptr) return std::size_t{50};
  char* end = nullptr;
  const long v = std::strtol(m->c_str(), &end, 10);
  if (m->empty() || *end != '\0' || v < 1 || v > 10000) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'maxItems' failed to satisfy "
                                  "constraint: Member must have value between 1 and 10000",
                                  *m));
  }
  return static_cast<std::size_t>(v);
}

inline std::string query_value(const http::Params& query, std::string_view name) {
  const std::string* v = http::find_param(query, name);
  return v ? *v : std::string();
}

}  // namespace nimbus::api::detail

// In a route handler (`req` in scope): evaluates a Result into `var`, or
// returns its error rendered in Lambda's shape.
#define NIMBUS_API_TRY(result_expr, var)                                       \
  auto var = (result_expr);                                                    \
  if (!var.ok()) return render_error(var.error(), req.version())
