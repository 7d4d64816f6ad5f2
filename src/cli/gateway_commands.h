#pragma once
// `nimbus route ...`, `nimbus authorizer ...`, `nimbus apikey ...`,
// `nimbus usage-plan ...` and `nimbus gateway cors`: the HTTP gateway's routes,
// authorizers, API keys, usage plans and CORS through the daemon's
// /nimbus/v1/routes and /nimbus/v1/gateway/... extensions.

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
  bool api_key_required = false;
};

struct UsagePlanOptions {
  std::string name;
  double rate = 0;
  std::int64_t burst = 0;
  bool throttle = false;  // --rate/--burst given
  std::int64_t quota = 0;
  std::string period;     // DAY, WEEK, MONTH (any case)
  bool has_quota = false; // --quota given
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
int apikey_add(ControlClient& client, const std::string& name, const std::string& value);
int apikey_list(ControlClient& client);
int apikey_remove(ControlClient& client, const std::string& name);
int apikey_set_enabled(ControlClient& client, const std::string& name, bool enabled);
int usage_plan_add(ControlClient& client, const UsagePlanOptions& options);
int usage_plan_list(ControlClient& client);
int usage_plan_remove(ControlClient& client, const std::string& name);
// attach: true puts KEY in PLAN, false takes it out.
int usage_plan_attach(ControlClient& client, const std::string& plan, const std::string& key, bool attach);

struct CorsOptions {
  std::vector<std::string> origins, methods, headers, expose;
  int max_age = -2;  // -2: not given
  bool credentials = false;
  bool remove = false;
};

// No option: prints the configuration; --remove deletes it; else sets it.
int gateway_cors(ControlClient& client, const CorsOptions& options);

}  // namespace nimbus::cli
