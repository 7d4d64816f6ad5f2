#pragma once
// A small blocking HTTP/1.1 client for the CLI and for tests: one request per
// call on a fresh connection. Not for hot paths.

#include <chrono>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::http {

enum class Scheme : std::uint8_t { kHttp, kHttps };

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9000;
  // kHttps: TLS 1.2+, the server's certificate verified against the system's
  // trusted CAs (/etc/ssl/certs) and `ca_file` when set, and its name
  // against `host` (SNI sent; RFC 6125 matching, IP addresses too).
  Scheme scheme = Scheme::kHttp;
  std::string ca_file;  // PEM: extra trusted CAs (private issuers)
};

// Parses "http://host:port" (or "host:port"); only plain http.
[[nodiscard]] base::Result<Endpoint> parse_endpoint(std::string_view url);

// Sends `request` (Host and Content-Length are filled in) and returns the
// response. Connection failures, and with https a certificate that does not
// verify, come back as kService errors naming the endpoint and the reason.
[[nodiscard]] base::Result<Response> send(const Endpoint& endpoint, Request request,
                                          std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace nimbus::http
