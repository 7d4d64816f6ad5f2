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
  if (o.api_key_required) body["ApiKeyRequired"] = true;
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
  if (r.value("ApiKeyRequired", false)) extra += ", API key required";
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
  fmt::print("{:<40} {:<32} {:<7} {:<24} {:<7} {}\n", "ROUTE", "FUNCTION", "PAYLOAD", "THROTTLE", "API KEY",
             "AUTHORIZER");
  for (const auto& r : routes) {
    std::string fn = r.value("FunctionName", "");
    if (r.contains("Qualifier")) fn += ":" + r.value("Qualifier", "");
    std::string throttle = "-";
    if (r.contains("ThrottlingRateLimit")) {
      throttle = fmt::format("{} rps, burst {}", r.value("ThrottlingRateLimit", 0.0), r.value("ThrottlingBurstLimit", 0));
    }
    std::string auth = r.value("Authorizer", "-");
    if (r.contains("AuthorizationScopes")) auth += " (" + joined(r["AuthorizationScopes"]) + ")";
    fmt::print("{:<40} {:<32} {:<7} {:<24} {:<7} {}\n", r.value("RouteKey", ""), fn,
               r.value("PayloadFormatVersion", ""), throttle, r.value("ApiKeyRequired", false) ? "yes" : "-", auth);
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

// --- API keys and usage plans -------------------------------------------------

int apikey_add(ControlClient& client, const std::string& name, const std::string& value) {
  json body = {{"Name", name}};
  if (!value.empty()) body["Value"] = value;
  auto reply = client.call(http::Verb::post, "/nimbus/v1/gateway/apikeys", body);
  if (!reply.ok()) return fail(reply.error().message);
  const json& k = reply->body;
  fmt::print("API key {} (id {})\n", k.value("Name", name), k.value("Id", ""));
  if (value.empty()) fmt::print("value (shown once, keep it): {}\n", k.value("Value", ""));
  fmt::print("attach it to a usage plan to use it: nimbus usage-plan attach PLAN {}\n", k.value("Name", name));
  return 0;
}

int apikey_list(ControlClient& client) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/gateway/apikeys");
  if (!reply.ok()) return fail(reply.error().message);
  const json keys = reply->body.value("ApiKeys", json::array());
  if (keys.empty()) {
    fmt::print("no API keys (add one with `nimbus apikey add NAME`)\n");
    return 0;
  }
  fmt::print("{:<32} {:<12} {:<9} {}\n", "NAME", "ID", "ENABLED", "USAGE PLAN");
  for (const auto& k : keys) {
    fmt::print("{:<32} {:<12} {:<9} {}\n", k.value("Name", ""), k.value("Id", ""),
               k.value("Enabled", false) ? "yes" : "no", k.value("UsagePlan", "-"));
  }
  return 0;
}

int apikey_remove(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::delete_, "/nimbus/v1/gateway/apikeys?Name=" + http::percent_encode(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed API key {}\n", name);
  return 0;
}

int apikey_set_enabled(ControlClient& client, const std::string& name, bool enabled) {
  auto reply = client.call(http::Verb::put, "/nimbus/v1/gateway/apikeys", json{{"Name", name}, {"Enabled", enabled}});
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("API key {} {}\n", name, enabled ? "enabled" : "disabled");
  return 0;
}

int usage_plan_add(ControlClient& client, const UsagePlanOptions& o) {
  json body = {{"Name", o.name}};
  if (o.throttle) {
    if (!(o.rate > 0)) return fail("--rate must be a number above 0");
    if (o.burst < 1) return fail("--burst must be an integer of at least 1");
    body["Throttle"] = {{"RateLimit", o.rate}, {"BurstLimit", o.burst}};
  }
  if (o.has_quota) {
    if (o.quota < 1) return fail("--quota must be an integer of at least 1");
    std::string period = o.period;
    for (char& c : period) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (period != "DAY" && period != "WEEK" && period != "MONTH") {
      return fail(fmt::format("--period must be DAY, WEEK or MONTH (got '{}')", o.period));
    }
    body["Quota"] = {{"Limit", o.quota}, {"Period", period}};
  } else if (!o.period.empty()) {
    return fail("--period needs --quota");
  }
  auto reply = client.call(http::Verb::post, "/nimbus/v1/gateway/usage-plans", body);
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("usage plan {} (id {})\n", reply->body.value("Name", o.name), reply->body.value("Id", ""));
  return 0;
}

int usage_plan_list(ControlClient& client) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/gateway/usage-plans");
  if (!reply.ok()) return fail(reply.error().message);
  const json plans = reply->body.value("UsagePlans", json::array());
  if (plans.empty()) {
    fmt::print("no usage plans (add one with `nimbus usage-plan add NAME --rate R --burst B`)\n");
    return 0;
  }
  fmt::print("{:<24} {:<12} {:<24} {:<20} {}\n", "NAME", "ID", "THROTTLE", "QUOTA", "API KEYS");
  for (const auto& p : plans) {
    std::string throttle = "-";
    if (p.contains("Throttle")) {
      throttle = fmt::format("{} rps, burst {}", p["Throttle"].value("RateLimit", 0.0), p["Throttle"].value("BurstLimit", 0));
    }
    std::string quota = "-";
    if (p.contains("Quota")) quota = fmt::format("{} per {}", p["Quota"].value("Limit", 0), p["Quota"].value("Period", ""));
    const json keys = p.value("ApiKeys", json::array());
    fmt::print("{:<24} {:<12} {:<24} {:<20} {}\n", p.value("Name", ""), p.value("Id", ""), throttle, quota,
               keys.empty() ? std::string("-") : joined(keys));
  }
  return 0;
}

int usage_plan_remove(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::delete_, "/nimbus/v1/gateway/usage-plans?Name=" + http::percent_encode(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed usage plan {}\n", name);
  return 0;
}

int usage_plan_attach(ControlClient& client, const std::string& plan, const std::string& key, bool attach) {
  auto reply = attach ? client.call(http::Verb::post, "/nimbus/v1/gateway/usage-plans/keys",
                                    json{{"UsagePlan", plan}, {"ApiKey", key}})
                      : client.call(http::Verb::delete_, "/nimbus/v1/gateway/usage-plans/keys?UsagePlan=" +
                                                             http::percent_encode(plan) +
                                                             "&ApiKey=" + http::percent_encode(key));
  if (!reply.ok()) return fail(reply.error().message);
  if (attach) {
    fmt::print("API key {} is in usage plan {}\n", key, plan);
  } else {
    fmt::print("API key {} left usage plan {}\n", key, plan);
  }
  return 0;
}

int gateway_cors(ControlClient& client, const CorsOptions& o) {
  const bool setting = !o.origins.empty() || !o.methods.empty() || !o.headers.empty() || !o.expose.empty() ||
                       o.max_age != -2 || o.credentials;
  if (o.remove) {
    auto reply = client.call(http::Verb::delete_, "/nimbus/v1/gateway/cors");
    if (!reply.ok()) return fail(reply.error().message);
    fmt::print("CORS disabled\n");
    return 0;
  }
  if (!setting) {
    auto reply = client.call(http::Verb::get, "/nimbus/v1/gateway/cors");
    if (!reply.ok()) return fail(reply.error().message);
    const json& config = reply->body["CorsConfiguration"];
    fmt::print("{}\n", config.is_null() ? std::string("CORS is not configured") : config.dump(2));
    return 0;
  }
  json body = {{"AllowOrigins", o.origins}, {"AllowMethods", o.methods}, {"AllowHeaders", o.headers},
               {"ExposeHeaders", o.expose}, {"AllowCredentials", o.credentials}};
  if (o.max_age != -2) body["MaxAge"] = o.max_age;
  auto reply = client.call(http::Verb::put, "/nimbus/v1/gateway/cors", body);
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("{}\n", reply->body["CorsConfiguration"].dump(2));
  return 0;
}

}  // namespace nimbus::cli
