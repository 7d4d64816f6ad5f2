#include "gateway/event.h"

#include <ctime>
#include <map>

#include <fmt/format.h>

#include "base/crypto.h"
#include "gateway/jwt.h"
#include "gateway/detail/text.h"

namespace nimbus::gateway {

using nlohmann::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const std::string* header_value(const IncomingRequest& r, std::string_view lower_name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : r.headers) {
    if (detail::ascii_lower(k) == lower_name) found = &v;
  }
  return found;
}

// Splits every Cookie header on ';' into trimmed, non-empty cookies.
json cookies_of(const IncomingRequest& r) {
  json out = json::array();
  for (const auto& [k, v] : r.headers) {
    if (detail::ascii_lower(k) != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      const std::string_view one = trim(rest.substr(0, semi));
      if (!one.empty()) out.push_back(std::string(one));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    }
  }
  return out;
}

// The body as the event carries it: text, or base64 for binary content.
std::pair<std::string, bool> event_body(const IncomingRequest& r) {
  const std::string* ct = header_value(r, "content-type");
  if (is_text_body(ct ? std::string_view(*ct) : std::string_view{}, r.body)) return {r.body, false};
  return {base::base64_encode(r.body), true};
}

json string_map(const http::Params& params) {
  json out = json::object();
  for (const auto& [k, v] : params) out[k] = v;
  return out;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t j = 1; j < len; ++j) {
      const auto cc = static_cast<unsigned char>(text[i + j]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool is_text_body(std::string_view content_type, std::string_view body) {
  std::string type = detail::ascii_lower(trim(content_type.substr(0, content_type.find(';'))));
  bool text = type.empty() || type.starts_with("text/") || type == "application/json" ||
              type == "application/xml" || type == "application/javascript" ||
              type == "application/x-www-form-urlencoded" || type == "application/graphql" ||
              type.ends_with("+json") || type.ends_with("+xml");
  return text && is_valid_utf8(body);
}

std::string format_clf_time(std::int64_t epoch_ms) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000", tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string make_request_id() {
  std::string id = base::base64_encode(base::random_bytes(11));  // 16 characters, one '='
  for (char& c : id) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return id;
}

void add_forwarding_headers(IncomingRequest& request, std::uint16_t port, std::string_view proto,
                            std::int64_t time_ms) {
  std::string forwarded_for;
  for (auto it = request.headers.begin(); it != request.headers.end();) {
    const std::string name = detail::ascii_lower(it->first);
    if (name == "x-forwarded-for") {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + it->second;
      it = request.headers.erase(it);
    } else if (name == "x-forwarded-port" || name == "x-forwarded-proto") {
      it = request.headers.erase(it);  // only the gateway says these
    } else {
      ++it;
    }
  }
  forwarded_for += (forwarded_for.empty() ? "" : ", ") + request.source_ip;
  request.headers.emplace_back("x-forwarded-for", forwarded_for);
  request.headers.emplace_back("x-forwarded-port", std::to_string(port));
  request.headers.emplace_back("x-forwarded-proto", std::string(proto));
  if (header_value(request, "x-amzn-trace-id") == nullptr) {
    request.headers.emplace_back("x-amzn-trace-id",
                                 fmt::format("Root=1-{:08x}-{}", time_ms / 1000, base::to_hex(base::random_bytes(12))));
  }
}

namespace {

json jwt_authorizer(const AuthorizerGrant& grant) {
  return {{"claims", claims_as_strings(grant.claims)},
          {"scopes", grant.scopes.empty() ? json(nullptr) : json(grant.scopes)}};
}

// requestContext.authorizer of a 2.0 event: {"lambda": context} or {"jwt": {claims, scopes}}.
json authorizer_v2(const AuthorizerGrant& grant) {
  if (grant.kind == AuthorizerGrant::Kind::kJwt) return {{"jwt", jwt_authorizer(grant)}};
  return {{"lambda", grant.context}};
}

// requestContext.authorizer of a 1.0 event: a Lambda authorizer's context
// flattened to strings beside principalId and integrationLatency.
json authorizer_v1(const AuthorizerGrant& grant) {
  if (grant.kind == AuthorizerGrant::Kind::kJwt) return jwt_authorizer(grant);
  json out = grant.context.is_object() ? claims_as_strings(grant.context) : json::object();
  out["principalId"] = grant.principal_id;
  out["integrationLatency"] = grant.latency_ms;
  return out;
}

}  // namespace

json build_event_v2(const IncomingRequest& request, const EventContext& context) {
  json headers = json::object();
  for (const auto& [k, v] : request.headers) {
    std::string name = detail::ascii_lower(k);
    if (name == "cookie") continue;  // moved to "cookies"
    auto it = headers.find(name);
    if (it == headers.end()) {
      headers[name] = v;
    } else {
      it->get_ref<std::string&>() += "," + v;
    }
  }
  const std::string* ua = header_value(request, "user-agent");
  json event = {
      {"version", "2.0"},
      {"routeKey", context.route_key},
      {"rawPath", request.raw_path},
      {"rawQueryString", request.raw_query},
  };
  if (json cookies = cookies_of(request); !cookies.empty()) event["cookies"] = std::move(cookies);
  event["headers"] = std::move(headers);
  if (!request.raw_query.empty()) {
    json query = json::object();
    for (const auto& [k, v] : http::parse_query(request.raw_query)) {
      auto it = query.find(k);
      if (it == query.end()) {
        query[k] = v;
      } else {
        it->get_ref<std::string&>() += "," + v;
      }
    }
    event["queryStringParameters"] = std::move(query);
  }
  if (context.has_path_parameters) event["pathParameters"] = string_map(context.path_parameters);
  event["requestContext"] = {
      {"accountId", context.account_id},
      {"apiId", context.api_id},
      {"domainName", context.domain_name},
      {"domainPrefix", context.domain_prefix},
      {"http",
       {{"method", request.method},
        {"path", request.raw_path},
        {"protocol", request.protocol},
        {"sourceIp", request.source_ip},
        {"userAgent", ua ? *ua : std::string()}}},
      {"requestId", context.request_id},
      {"routeKey", context.route_key},
      {"stage", context.stage},
      {"time", format_clf_time(context.time_ms)},
      {"timeEpoch", context.time_ms},
  };
  if (context.authorizer) event["requestContext"]["authorizer"] = authorizer_v2(*context.authorizer);
  if (!request.body.empty()) {
    auto [body, encoded] = event_body(request);
    event["body"] = std::move(body);
    event["isBase64Encoded"] = encoded;
  } else {
    event["isBase64Encoded"] = false;
  }
  return event;
}

json build_event_v1(const IncomingRequest& request, const EventContext& context) {
  json headers = json::object();
  json multi_headers = json::object();
  for (const auto& [k, v] : request.headers) {
    const std::string name = detail::ascii_lower(k);  // HTTP APIs lower-case header names
    headers[name] = v;                  // the last value wins
    multi_headers[name].push_back(v);
  }
  json query = nullptr;
  json multi_query = nullptr;
  if (!request.raw_query.empty()) {
    query = json::object();
    multi_query = json::object();
    for (const auto& [k, v] : http::parse_query(request.raw_query)) {
      query[k] = v;
      multi_query[k].push_back(v);
    }
  }
  json path_parameters = nullptr;
  if (context.has_path_parameters) {
    http::Params params = context.path_parameters;
    // A greedy value loses one trailing '/', as API Gateway's 1.0 events show.
    for (auto& [k, v] : params) {
      if (v.size() > 1 && v.back() == '/') v.pop_back();
    }
    path_parameters = string_map(params);
  }
  const std::string* ua = header_value(request, "user-agent");
  json identity = json::object();
  for (const char* key : {"accessKey", "accountId", "apiKey", "apiKeyId", "caller", "clientCert",
                          "cognitoAuthenticationProvider", "cognitoAuthenticationType", "cognitoIdentityId",
                          "cognitoIdentityPoolId", "principalOrgId", "sourceIp", "user", "userAgent", "userArn"}) {
    identity[key] = nullptr;
  }
  identity["sourceIp"] = request.source_ip;
  identity["userAgent"] = ua ? json(*ua) : json(nullptr);
  if (!context.api_key.empty()) {
    identity["apiKey"] = context.api_key;
    identity["apiKeyId"] = context.api_key_id;
  }
  json event = {
      {"version", "1.0"},
      {"resource", context.resource_path},
      {"path", request.raw_path},
      {"httpMethod", request.method},
      {"headers", std::move(headers)},
      {"multiValueHeaders", std::move(multi_headers)},
      {"queryStringParameters", std::move(query)},
      {"multiValueQueryStringParameters", std::move(multi_query)},
      {"pathParameters", std::move(path_parameters)},
      {"stageVariables", nullptr},
      {"requestContext",
       {{"accountId", context.account_id},
        {"apiId", context.api_id},
        {"authorizer", context.authorizer ? authorizer_v1(*context.authorizer)
                                          : json{{"claims", nullptr}, {"scopes", nullptr}}},
        {"domainName", context.domain_name},
        {"domainPrefix", context.domain_prefix},
        {"extendedRequestId", context.request_id},
        {"httpMethod", request.method},
        {"identity", std::move(identity)},
        {"path", request.raw_path},  // the $default stage adds no prefix
        {"protocol", request.protocol},
        {"requestId", context.request_id},
        {"requestTime", format_clf_time(context.time_ms)},
        {"requestTimeEpoch", context.time_ms},
        {"resourceId", context.route_key},
        {"resourcePath", context.resource_path},
        {"stage", context.stage}}},
  };
  if (!request.body.empty()) {
    auto [body, encoded] = event_body(request);
    event["body"] = std::move(body);
    event["isBase64Encoded"] = encoded;
  } else {
    event["body"] = nullptr;
    event["isBase64Encoded"] = false;
  }
  return event;
}

}  // namespace nimbus::gateway
