#include "gateway/authorizer.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/files.h"
#include "http/client.h"
#include "gateway/detail/text.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr int kMaxTtlSeconds = 3600;
constexpr std::size_t kMaxAudiences = 50;
constexpr std::size_t kMaxIdentitySources = 10;
constexpr std::size_t kMaxDocumentBytes = 150000;

base::Error invalid(std::string message) { return make_error(ErrorCode::kValidation, std::move(message)); }

base::Result<std::vector<std::string>> string_list(const json& body, const char* name) {
  std::vector<std::string> out;
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return out;
  if (it->is_string()) {  // AWS's CLI shorthand allows one comma-separated string
    std::string_view text = it->get_ref<const std::string&>();
    while (!text.empty()) {
      const auto comma = std::min(text.find(','), text.size());
      std::string_view item = text.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) out.emplace_back(item);
      text.remove_prefix(std::min(comma + 1, text.size()));
    }
    return out;
  }
  if (!it->is_array()) return invalid(fmt::format("{} must be a list of strings", name));
  for (const auto& v : *it) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return invalid(fmt::format("{} must be a list of non-empty strings", name));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

base::Status check_identity_source(std::string_view source) {
  for (std::string_view prefix : {"$request.header.", "$request.querystring.", "$context.", "$stageVariables."}) {
    if (source.starts_with(prefix) && source.size() > prefix.size()) return base::Ok{};
  }
  return invalid(fmt::format("Identity source '{}' must be $request.header.NAME, $request.querystring.NAME, "
                             "$context.VARIABLE or $stageVariables.NAME",
                             source));
}

std::optional<std::string> context_variable(std::string_view name, const IncomingRequest& request,
                                            const EventContext& context) {
  if (name == "routeKey") return context.route_key;
  if (name == "stage") return context.stage;
  if (name == "apiId") return context.api_id;
  if (name == "requestId") return context.request_id;
  if (name == "domainName") return context.domain_name;
  if (name == "httpMethod") return request.method;
  if (name == "path") return request.raw_path;
  if (name == "identity.sourceIp") return request.source_ip;
  return std::nullopt;
}

// Statement members that may be a string or a list of strings.
std::vector<std::string> as_strings(const json& value) {
  std::vector<std::string> out;
  if (value.is_string()) out.push_back(value.get<std::string>());
  if (value.is_array()) {
    for (const auto& v : value) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool action_matches(const std::vector<std::string>& actions) {
  return std::any_of(actions.begin(), actions.end(), [](const std::string& a) {
    return resource_matches(detail::ascii_lower(a), "execute-api:invoke");
  });
}

base::Result<AuthorizerDecision> evaluate_policy(const json& reply, std::string_view arn) {
  const auto principal = reply.find("principalId");
  const auto policy = reply.find("policyDocument");
  if (principal == reply.end() || !principal->is_string() || policy == reply.end() || !policy->is_object()) {
    return invalid("the authorizer reply needs principalId (string) and policyDocument (object)");
  }
  const auto statements_it = policy->find("Statement");
  if (statements_it == policy->end()) return invalid("the policy document has no Statement");
  json statements = statements_it->is_array() ? *statements_it : json::array({*statements_it});
  bool allowed = false;
  for (const auto& st : statements) {
    if (!st.is_object()) return invalid("a policy Statement is not an object");
    const std::string effect = st.value("Effect", std::string());
    if (effect != "Allow" && effect != "Deny") return invalid("a policy Statement's Effect must be Allow or Deny");
    if (!action_matches(as_strings(st.value("Action", json())))) continue;
    const auto resources = as_strings(st.value("Resource", json()));
    const bool hit = std::any_of(resources.begin(), resources.end(),
                                 [&](const std::string& r) { return resource_matches(r, arn); });
    if (!hit) continue;
    if (effect == "Deny") {
      allowed = false;
      break;
    }
    allowed = true;
  }
  AuthorizerDecision out;
  out.allowed = allowed;
  out.principal_id = principal->get<std::string>();
  if (const auto ctx = reply.find("context"); ctx != reply.end() && ctx->is_object()) out.context = *ctx;
  return out;
}

struct Url {
  std::string scheme, host, target;
  std::uint16_t port = 80;
};

std::optional<Url> parse_http_url(std::string_view uri) {
  Url url;
  const auto sep = uri.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  url.scheme = detail::ascii_lower(uri.substr(0, sep));
  if (url.scheme == "https") url.port = 443;
  std::string_view rest = uri.substr(sep + 3);
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    unsigned port = 0;
    for (char c : authority.substr(colon + 1)) {
      if (c < '0' || c > '9' || port > 65535) return std::nullopt;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
    url.port = static_cast<std::uint16_t>(port);
    authority = authority.substr(0, colon);
  }
  url.host = std::string(authority);
  if (url.host.empty()) return std::nullopt;
  return url;
}

}  // namespace

base::Result<AuthorizerConfig> parse_authorizer(const json& body) {
  if (!body.is_object()) return make_error(ErrorCode::kInvalidRequestContent, "The authorizer must be a JSON object");
  static constexpr std::string_view kKnown[] = {
      "Name", "AuthorizerType", "IdentitySource", "FunctionName", "Qualifier", "AuthorizerPayloadFormatVersion",
      "EnableSimpleResponses", "AuthorizerResultTtlInSeconds", "JwtConfiguration", "JwksUri", "JwksCaFile"};
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return invalid(fmt::format("Unknown authorizer member '{}'", key));
    }
  }
  const auto text = [&](const char* name) -> base::Result<std::string> {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::string();
    if (!it->is_string()) return invalid(fmt::format("{} must be a string", name));
    return it->get<std::string>();
  };
  AuthorizerConfig config;
  NIMBUS_TRY_ASSIGN(config.name, text("Name"));
  if (config.name.empty() || config.name.size() > 128 ||
      !std::all_of(config.name.begin(), config.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    return invalid("Name is required: 1-128 letters, digits, '-', '_' or '.'");
  }
  std::string type;
  NIMBUS_TRY_ASSIGN(type, text("AuthorizerType"));
  if (type == "REQUEST") {
    config.type = AuthorizerType::kRequest;
  } else if (type == "JWT") {
    config.type = AuthorizerType::kJwt;
  } else {
    return invalid(fmt::format("AuthorizerType '{}' must be REQUEST or JWT", type));
  }
  NIMBUS_TRY_ASSIGN(config.identity_sources, string_list(body, "IdentitySource"));
  if (config.identity_sources.size() > kMaxIdentitySources) {
    return invalid(fmt::format("An authorizer has at most {} identity sources", kMaxIdentitySources));
  }
  for (const auto& source : config.identity_sources) NIMBUS_TRY(check_identity_source(source));

  if (config.type == AuthorizerType::kRequest) {
    NIMBUS_TRY_ASSIGN(config.function, text("FunctionName"));
    NIMBUS_TRY_ASSIGN(config.qualifier, text("Qualifier"));
    if (config.function.empty()) return invalid("A REQUEST authorizer needs FunctionName");
    std::string format;
    NIMBUS_TRY_ASSIGN(format, text("AuthorizerPayloadFormatVersion"));
    if (format.empty()) return invalid("A REQUEST authorizer needs AuthorizerPayloadFormatVersion (1.0 or 2.0)");
    NIMBUS_TRY_ASSIGN(config.payload_format, parse_payload_format(format));
    if (const auto it = body.find("EnableSimpleResponses"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return invalid("EnableSimpleResponses must be true or false");
      config.simple_responses = it->get<bool>();
    }
    if (config.simple_responses && config.payload_format != PayloadFormat::kV2) {
      return invalid("EnableSimpleResponses needs AuthorizerPayloadFormatVersion 2.0");
    }
    if (const auto it = body.find("AuthorizerResultTtlInSeconds"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > kMaxTtlSeconds) {
        return invalid(fmt::format("AuthorizerResultTtlInSeconds must be an integer from 0 to {}", kMaxTtlSeconds));
      }
      config.ttl_seconds = it->get<int>();
    }
    if (config.ttl_seconds > 0 && config.identity_sources.empty()) {
      return invalid("Caching (AuthorizerResultTtlInSeconds > 0) needs at least one IdentitySource");
    }
    for (const char* jwt_only : {"JwtConfiguration", "JwksUri", "JwksCaFile"}) {
      if (body.contains(jwt_only)) return invalid(fmt::format("{} is for JWT authorizers", jwt_only));
    }
    return config;
  }

  for (const char* request_only : {"FunctionName", "Qualifier", "AuthorizerPayloadFormatVersion",
                                   "EnableSimpleResponses", "AuthorizerResultTtlInSeconds"}) {
    if (body.contains(request_only)) return invalid(fmt::format("{} is for REQUEST authorizers", request_only));
  }
  if (config.identity_sources.empty()) config.identity_sources = {"$request.header.Authorization"};
  if (config.identity_sources.size() != 1 || !config.identity_sources[0].starts_with("$request.")) {
    return invalid("A JWT authorizer takes exactly one identity source from the request, "
                   "e.g. $request.header.Authorization");
  }
  const auto jwt = body.find("JwtConfiguration");
  if (jwt == body.end() || !jwt->is_object()) return invalid("A JWT authorizer needs JwtConfiguration {Issuer, Audience}");
  const auto issuer = jwt->find("Issuer");
  if (issuer == jwt->end() || !issuer->is_string() || issuer->get_ref<const std::string&>().empty()) {
    return invalid("JwtConfiguration.Issuer is required");
  }
  config.jwt.issuer = issuer->get<std::string>();
  NIMBUS_TRY_ASSIGN(config.jwt.audience, string_list(*jwt, "Audience"));
  if (config.jwt.audience.empty()) return invalid("JwtConfiguration.Audience needs at least one audience");
  if (config.jwt.audience.size() > kMaxAudiences) {
    return invalid(fmt::format("JwtConfiguration.Audience has at most {} entries", kMaxAudiences));
  }
  NIMBUS_TRY_ASSIGN(config.jwks_uri, text("JwksUri"));
  NIMBUS_TRY_ASSIGN(config.jwks_ca_file, text("JwksCaFile"));
  if (!config.jwks_ca_file.empty() && !config.jwks_ca_file.starts_with("/")) {
    return invalid(
        fmt::format("JwksCaFile '{}' must be an absolute path on the daemon's host", config.jwks_ca_file));
  }
  return config;
}

json to_json(const AuthorizerConfig& config) {
  json out = {{"Name", config.name},
              {"AuthorizerType", config.type == AuthorizerType::kJwt ? "JWT" : "REQUEST"},
              {"IdentitySource", config.identity_sources}};
  if (config.type == AuthorizerType::kRequest) {
    out["FunctionName"] = config.function;
    if (!config.qualifier.empty()) out["Qualifier"] = config.qualifier;
    out["AuthorizerPayloadFormatVersion"] = to_string(config.payload_format);
    out["EnableSimpleResponses"] = config.simple_responses;
    out["AuthorizerResultTtlInSeconds"] = config.ttl_seconds;
  } else {
    out["JwtConfiguration"] = {{"Issuer", config.jwt.issuer}, {"Audience", config.jwt.audience}};
    if (!config.jwks_uri.empty()) out["JwksUri"] = config.jwks_uri;
    if (!config.jwks_ca_file.empty()) out["JwksCaFile"] = config.jwks_ca_file;
  }
  return out;
}

std::optional<std::vector<std::string>> identity_values(const AuthorizerConfig& config,
                                                        const IncomingRequest& request,
                                                        const EventContext& context) {
  std::vector<std::string> out;
  for (const auto& source : config.identity_sources) {
    std::optional<std::string> value;
    if (source.starts_with("$request.header.")) {
      const std::string name = detail::ascii_lower(std::string_view(source).substr(16));
      for (const auto& [k, v] : request.headers) {
        if (detail::ascii_lower(k) != name) continue;
        value = value ? *value + "," + v : v;  // repeats are comma-joined, as in events
      }
    } else if (source.starts_with("$request.querystring.")) {
      const std::string_view name = std::string_view(source).substr(21);
      for (const auto& [k, v] : http::parse_query(request.raw_query)) {
        if (k == name) value = value ? *value + "," + v : v;
      }
    } else if (source.starts_with("$context.")) {
      value = context_variable(std::string_view(source).substr(9), request, context);
    }  // $stageVariables: nimbus has no stage variables, so they are always missing
    if (!value || value->empty()) return std::nullopt;
    out.push_back(std::move(*value));
  }
  return out;
}

std::string route_arn(std::string_view region, const EventContext& context, std::string_view method,
                      std::string_view raw_path) {
  if (!raw_path.empty() && raw_path.front() == '/') raw_path.remove_prefix(1);
  return fmt::format("arn:aws:execute-api:{}:{}:{}/{}/{}/{}", region, context.account_id, context.api_id,
                     context.stage, method, raw_path);
}

json build_authorizer_event(const AuthorizerConfig& config, const IncomingRequest& request,
                            const EventContext& context, const std::vector<std::string>& identity,
                            std::string_view arn) {
  if (config.payload_format == PayloadFormat::kV2) {
    json event = build_event_v2(request, context);
    event.erase("body");
    event.erase("isBase64Encoded");
    event["type"] = "REQUEST";
    event["routeArn"] = arn;
    event["identitySource"] = identity;
    return event;
  }
  json event = build_event_v1(request, context);
  event.erase("body");
  event.erase("isBase64Encoded");
  event.erase("multiValueHeaders");
  event.erase("multiValueQueryStringParameters");
  std::string joined;
  for (const auto& v : identity) joined += (joined.empty() ? "" : ",") + v;
  event["type"] = "REQUEST";
  event["methodArn"] = arn;
  event["identitySource"] = joined;
  event["authorizationToken"] = joined;
  event["requestContext"].erase("authorizer");
  return event;
}

base::Result<AuthorizerDecision> evaluate_reply(const AuthorizerConfig& config, const json& reply,
                                                std::string_view arn) {
  if (!reply.is_object()) return invalid("the authorizer reply is not a JSON object");
  if (!config.simple_responses) return evaluate_policy(reply, arn);
  const auto ok = reply.find("isAuthorized");
  if (ok == reply.end() || !ok->is_boolean()) return invalid("a simple authorizer reply needs isAuthorized (boolean)");
  AuthorizerDecision out;
  out.allowed = ok->get<bool>();
  if (const auto ctx = reply.find("context"); ctx != reply.end() && !ctx->is_null()) {
    if (!ctx->is_object()) return invalid("the authorizer reply's context must be an object");
    out.context = *ctx;
  }
  return out;
}

bool resource_matches(std::string_view pattern, std::string_view arn) {
  // Iterative wildcard match with backtracking to the last '*'.
  std::size_t p = 0, a = 0, star = std::string_view::npos, mark = 0;
  while (a < arn.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == arn[a])) {
      ++p;
      ++a;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = a;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      a = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<json> AuthorizerCache::get(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires_ms <= now_ms) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.reply;
}

void AuthorizerCache::put(const std::string& key, json reply, std::int64_t expires_ms) {
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_ && !entries_.contains(key)) {
    // Drop whatever expires first: expired entries, else the one nearest its end.
    auto victim = std::min_element(entries_.begin(), entries_.end(), [](const auto& x, const auto& y) {
      return x.second.expires_ms < y.second.expires_ms;
    });
    entries_.erase(victim);
  }
  entries_[key] = Entry{std::move(reply), expires_ms};
}

std::size_t AuthorizerCache::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::shared_ptr<const KeySet> JwksKeys::keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

void JwksKeys::set(std::shared_ptr<const KeySet> keys) {
  std::lock_guard lock(mu_);
  keys_ = std::move(keys);
}

bool JwksKeys::claim_refresh(std::int64_t now_ms, std::int64_t interval_ms) {
  std::lock_guard lock(mu_);
  if (last_attempt_ms_ >= 0 && now_ms - last_attempt_ms_ < interval_ms) return false;
  last_attempt_ms_ = now_ms;
  return true;
}

base::Result<std::string> fetch_document(const std::string& uri, const std::string& ca_file) {
  if (uri.starts_with("/") || uri.starts_with("file://")) {
    const std::string path = uri.starts_with("file://") ? uri.substr(7) : uri;
    auto text = base::read_file(path);
    if (!text.ok()) return invalid(fmt::format("cannot read {}: {}", path, text.error().message));
    if (text->size() > kMaxDocumentBytes) return invalid(fmt::format("{} is over {} bytes", path, kMaxDocumentBytes));
    return text;
  }
  const auto url = parse_http_url(uri);
  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    return invalid(fmt::format("'{}' is neither a file path nor an http(s):// URL", uri));
  }
  http::Request request{http::Verb::get, url->target, 11};
  request.set(http::Field::accept, "application/json");
  const http::Endpoint endpoint{url->host, url->port,
                                url->scheme == "https" ? http::Scheme::kHttps : http::Scheme::kHttp, ca_file};
  auto response = http::send(endpoint, std::move(request), std::chrono::seconds(2));
  if (!response.ok()) return invalid(fmt::format("cannot fetch {}: {}", uri, response.error().message));
  if (response->result_int() != 200) {
    return invalid(fmt::format("fetching {} answered HTTP {}", uri, response->result_int()));
  }
  if (response->body().size() > kMaxDocumentBytes) {
    return invalid(fmt::format("{} answered more than {} bytes", uri, kMaxDocumentBytes));
  }
  return std::move(response->body());
}

base::Result<KeySet> load_key_set(const AuthorizerConfig& config) {
  std::string uri = config.jwks_uri;
  if (uri.empty()) {
    std::string issuer = config.jwt.issuer;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    auto discovery = fetch_document(issuer + "/.well-known/openid-configuration", config.jwks_ca_file);
    if (!discovery.ok()) return std::move(discovery).error();
    const json doc = json::parse(*discovery, nullptr, false);
    if (!doc.is_object() || !doc.contains("jwks_uri") || !doc["jwks_uri"].is_string()) {
      return invalid(fmt::format("the OpenID configuration of {} names no jwks_uri", issuer));
    }
    uri = doc["jwks_uri"].get<std::string>();
  }
  auto text = fetch_document(uri, config.jwks_ca_file);
  if (!text.ok()) return std::move(text).error();
  auto keys = KeySet::parse(*text);
  if (!keys.ok()) return invalid(fmt::format("{}: {}", uri, keys.error().message));
  return keys;
}

}  // namespace nimbus::gateway
