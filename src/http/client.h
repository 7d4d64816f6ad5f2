#pragma once
// A small blocking HTTP/1.1 client for the CLI and for tests: one request per
// call on a fresh connection. Not for hot paths.

#include <chrono>
#include <string>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::http {

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9000;
};

// Parses "http://host:port" (or "host:port"); only plain http.
[[nodiscard]] base::Result<Endpoint> parse_endpoint(std::string_view url);

// Sends `request` (Host and Content-Length are filled in) and returns the
// response. Connection failures come back as kService errors naming the
// endpoint.
[[nodiscard]] base::Result<Response> send(const Endpoint& endpoint, Request request,
                                          std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace nimbus::http
