#pragma once
// `nimbus route ...` and `nimbus authorizer ...`: the HTTP gateway's routes
// and authorizers through the daemon's /nimbus/v1/routes and
// /nimbus/v1/gateway/authorizers extensions.

#include <cstdint>
#include <string>
#include <vector>

#include "cli/control_client.h"

namespace nimbus::cli {

struct RouteOptions {
  std::string key;
  std::string function;
  std::string qualifier;
  std::string payload_format;
  double rate = 0;
  std::int64_t burst = 0;
  std::string authorizer;
  std::vector<std::string> scopes;
  std::vector<std::string> required_parameters;  // method.request.querystring.NAME, ...
  std::string body_schema;                       // JSON text, or @file
};

struct AuthorizerOptions {
  std::string name;
  std::string function;  // NAME or NAME:QUALIFIER (Lambda authorizers)
  std::string payload_format = "2.0";
  bool simple = false;
  std::vector<std::string> identity_sources;
  int ttl = 0;
  std::string issuer;  // JWT authorizers
  std::vector<std::string> audiences;
  std::string jwks;
  std::string jwks_ca_file;
};

int route_add(ControlClient& client, const RouteOptions& options);
int route_list(ControlClient& client);
int route_remove(ControlClient& client, const std::string& key);
int authorizer_add(ControlClient& client, const AuthorizerOptions& options);
int authorizer_list(ControlClient& client);
int authorizer_remove(ControlClient& client, const std::string& name);

}  // namespace nimbus::cli
