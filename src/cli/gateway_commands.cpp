#include "cli/gateway_commands.h"

#include <fmt/format.h>

#include "base/files.h"
#include "cli/output.h"
#include "http/types.h"

namespace nimbus::cli {

using nlohmann::json;

namespace {

std::string joined(const json& list) {
  std::string out;
  for (const auto& v : list) out += (out.empty() ? "" : ",") + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

}  // namespace

int route_add(ControlClient& client, const RouteOptions& o) {
  json body = {{"RouteKey", o.key}, {"FunctionName", o.function}};
  if (!o.qualifier.empty()) body["Qualifier"] = o.qualifier;
  if (!o.payload_format.empty()) body["PayloadFormatVersion"] = o.payload_format;
  if (o.rate > 0 || o.burst > 0) {
    body["ThrottlingRateLimit"] = o.rate;
    body["ThrottlingBurstLimit"] = o.burst;
  }
  if (!o.authorizer.empty()) body["Authorizer"] = o.authorizer;
  if (!o.scopes.empty()) body["AuthorizationScopes"] = o.scopes;
  if (!o.required_parameters.empty() || !o.body_schema.empty()) {
    json validation = json::object();
    if (!o.required_parameters.empty()) validation["RequiredParameters"] = o.required_parameters;
    if (!o.body_schema.empty()) {
      std::string text = o.body_schema;
      if (text.starts_with("@")) {
        auto data = base::read_file(text.substr(1));
        if (!data.ok()) return fail(fmt::format("--body-schema: cannot read {}: {}", text.substr(1), data.error().message));
        text = std::move(*data);
      }
      json schema = json::parse(text, nullptr, false);
      if (schema.is_discarded()) return fail("--body-schema is not valid JSON");
      validation["BodySchema"] = std::move(schema);
    }
    body["RequestValidation"] = std::move(validation);
  }
  auto reply = client.call(http::Verb::post, "/nimbus/v1/routes", body);
  if (!reply.ok()) return fail(reply.error().message);
  const json& r = reply->body;
  std::string extra;
  if (r.contains("Authorizer")) extra += fmt::format(", authorizer {}", r.value("Authorizer", ""));
  if (r.contains("RequestValidation")) extra += ", validated";
  fmt::print("route {} -> {} (payload {}{})\n", r.value("RouteKey", o.key), r.value("FunctionName", o.function),
             r.value("PayloadFormatVersion", "2.0"), extra);
  return 0;
}

int route_list(ControlClient& client) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/routes");
  if (!reply.ok()) return fail(reply.error().message);
  const json routes = reply->body.value("Routes", json::array());
  if (routes.empty()) {
    fmt::print("no routes (add one with `nimbus route add 'GET /path' --function NAME`)\n");
    return 0;
  }
  fmt::print("{:<40} {:<32} {:<7} {:<24} {}\n", "ROUTE", "FUNCTION", "PAYLOAD", "THROTTLE", "AUTHORIZER");
  for (const auto& r : routes) {
    std::string fn = r.value("FunctionName", "");
    if (r.contains("Qualifier")) fn += ":" + r.value("Qualifier", "");
    std::string throttle = "-";
    if (r.contains("ThrottlingRateLimit")) {
      throttle = fmt::format("{} rps, burst {}", r.value("ThrottlingRateLimit", 0.0), r.value("ThrottlingBurstLimit", 0));
    }
    std::string auth = r.value("Authorizer", "-");
    if (r.contains("AuthorizationScopes")) auth += " (" + joined(r["AuthorizationScopes"]) + ")";
    fmt::print("{:<40} {:<32} {:<7} {:<24} {}\n", r.value("RouteKey", ""), fn, r.value("PayloadFormatVersion", ""),
               throttle, auth);
  }
  return 0;
}

int route_remove(ControlClient& client, const std::string& key) {
  auto reply = client.call(http::Verb::delete_, "/nimbus/v1/routes?RouteKey=" + http::percent_encode(key));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed route {}\n", key);
  return 0;
}

int authorizer_add(ControlClient& client, const AuthorizerOptions& o) {
  json body = {{"Name", o.name}};
  if (!o.issuer.empty()) {
    body["AuthorizerType"] = "JWT";
    body["JwtConfiguration"] = {{"Issuer", o.issuer}, {"Audience", o.audiences}};
    if (!o.jwks.empty()) body["JwksUri"] = o.jwks;
    if (!o.jwks_ca_file.empty()) body["JwksCaFile"] = o.jwks_ca_file;
    if (!o.identity_sources.empty()) body["IdentitySource"] = o.identity_sources;
  } else {
    const auto colon = o.function.find(':');
    body["AuthorizerType"] = "REQUEST";
    body["FunctionName"] = o.function.substr(0, colon);
    if (colon != std::string::npos) body["Qualifier"] = o.function.substr(colon + 1);
    body["AuthorizerPayloadFormatVersion"] = o.payload_format;
    body["EnableSimpleResponses"] = o.simple;
    body["IdentitySource"] = o.identity_sources;
    body["AuthorizerResultTtlInSeconds"] = o.ttl;
  }
  auto reply = client.call(http::Verb::post, "/nimbus/v1/gateway/authorizers", body);
  if (!reply.ok()) return fail(reply.error().message);
  const json& a = reply->body;
  if (a.value("AuthorizerType", "") == "JWT") {
    fmt::print("authorizer {}: JWT from {} for {}\n", a.value("Name", o.name),
               a["JwtConfiguration"].value("Issuer", ""), joined(a["JwtConfiguration"].value("Audience", json::array())));
  } else {
    fmt::print("authorizer {}: function {} (payload {}, {}, cache {} s)\n", a.value("Name", o.name),
               a.value("FunctionName", ""), a.value("AuthorizerPayloadFormatVersion", ""),
               a.value("EnableSimpleResponses", false) ? "simple responses" : "IAM policies",
               a.value("AuthorizerResultTtlInSeconds", 0));
  }
  return 0;
}

int authorizer_list(ControlClient& client) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/gateway/authorizers");
  if (!reply.ok()) return fail(reply.error().message);
  const json list = reply->body.value("Authorizers", json::array());
  if (list.empty()) {
    fmt::print("no authorizers (add one with `nimbus authorizer add NAME --function F` or `--issuer URL`)\n");
    return 0;
  }
  fmt::print("{:<20} {:<8} {:<40} {}\n", "NAME", "TYPE", "IDENTITY SOURCE", "CHECKED BY");
  for (const auto& a : list) {
    const bool jwt = a.value("AuthorizerType", "") == "JWT";
    const std::string by = jwt ? a["JwtConfiguration"].value("Issuer", "") : a.value("FunctionName", "");
    fmt::print("{:<20} {:<8} {:<40} {}\n", a.value("Name", ""), a.value("AuthorizerType", ""),
               joined(a.value("IdentitySource", json::array())), by);
  }
  return 0;
}

int authorizer_remove(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::delete_, "/nimbus/v1/gateway/authorizers?Name=" + http::percent_encode(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed authorizer {}\n", name);
  return 0;
}

}  // namespace nimbus::cli
