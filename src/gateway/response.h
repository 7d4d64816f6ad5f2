#pragma once
// Mapping a function's output to the HTTP response the client sees, as API
// Gateway HTTP APIs do (shared/reference/events.md §1.2 for format 2.0, §1.4
// for 1.0), and the gateway's own error answers ({"message": ...}).
// Pure functions; no I/O.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace nimbus::gateway {

struct GatewayResponse {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // in order; a name may repeat
  std::string body;
};

// The function's output under payload format 2.0: structured when it is an
// object with statusCode, else 200 with the output as a JSON body. An error
// (kService, message saying why) when the output is unusable → 500.
[[nodiscard]] base::Result<GatewayResponse> map_response_v2(std::string_view output);
// The same under format 1.0 (statusCode, headers, multiValueHeaders, body,
// isBase64Encoded; nothing else allowed).
[[nodiscard]] base::Result<GatewayResponse> map_response_v1(std::string_view output);

// {"message": "<message>"} with the given status, as API Gateway answers
// "Not Found", "Internal Server Error", "Too Many Requests", ...
[[nodiscard]] GatewayResponse message_response(unsigned status, std::string_view message);

}  // namespace nimbus::gateway
