#pragma once
// Authorizers of the HTTP gateway, as API Gateway HTTP APIs define them
// (shared/reference/events.md §1.6, §1.7):
//  - Lambda REQUEST authorizers: identity sources, the authorizer event
//    (payload 1.0 or 2.0), simple responses {isAuthorized, context} or IAM
//    policies evaluated against the route ARN, results cached by identity;
//  - JWT authorizers: issuer, audiences, keys from a JWKS (URL or file),
//    scopes per route.
// Configuration parsing, identity extraction, event building and reply
// evaluation are pure; AuthorizerCache and JwksKeys are thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "gateway/event.h"
#include "gateway/jwt.h"
#include "gateway/route_table.h"

namespace nimbus::gateway {

enum class AuthorizerType : std::uint8_t { kRequest, kJwt };

struct AuthorizerConfig {
  std::string name;
  AuthorizerType type = AuthorizerType::kRequest;
  // "$request.header.Authorization", "$request.querystring.token",
  // "$context.routeKey", "$stageVariables.x".
  std::vector<std::string> identity_sources;

  // Lambda REQUEST authorizers.
  std::string function;
  std::string qualifier;
  PayloadFormat payload_format = PayloadFormat::kV2;
  bool simple_responses = false;
  int ttl_seconds = 0;  // 0..3600; 0 caches nothing

  // JWT authorizers. jwks_uri: an http(s) URL or a file path; empty means
  // OpenID discovery at <issuer>/.well-known/openid-configuration.
  // jwks_ca_file: a PEM file of CAs trusted (besides the system's) for the
  // https fetches, for issuers with a private CA.
  JwtPolicy jwt;
  std::string jwks_uri;
  std::string jwks_ca_file;

  bool operator==(const AuthorizerConfig&) const = default;
};

// From/to the control API's JSON: Name, AuthorizerType (REQUEST | JWT),
// IdentitySource (list), FunctionName, Qualifier,
// AuthorizerPayloadFormatVersion, EnableSimpleResponses,
// AuthorizerResultTtlInSeconds, JwtConfiguration {Issuer, Audience}, JwksUri,
// JwksCaFile.
// Errors name the member and the rule.
[[nodiscard]] base::Result<AuthorizerConfig> parse_authorizer(const nlohmann::json& body);
[[nodiscard]] nlohmann::json to_json(const AuthorizerConfig& config);

// The values of the identity sources for a request, in configured order;
// nullopt when any is missing or empty (API Gateway answers 401 then).
[[nodiscard]] std::optional<std::vector<std::string>> identity_values(const AuthorizerConfig& config,
                                                                      const IncomingRequest& request,
                                                                      const EventContext& context);

// arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path without its leading '/'}
[[nodiscard]] std::string route_arn(std::string_view region, const EventContext& context,
                                    std::string_view method, std::string_view raw_path);

// The event a Lambda authorizer receives (2.0 or 1.0 REQUEST shape).
[[nodiscard]] nlohmann::json build_authorizer_event(const AuthorizerConfig& config, const IncomingRequest& request,
                                                    const EventContext& context,
                                                    const std::vector<std::string>& identity, std::string_view arn);

// What an authorizer's reply means for one route.
struct AuthorizerDecision {
  bool allowed = false;
  nlohmann::json context;    // the reply's context (object) or null
  std::string principal_id;  // IAM replies only
};

// Interprets a Lambda authorizer's (parsed) reply for the request to `arn`:
// a simple response when the authorizer has EnableSimpleResponses, else an
// IAM policy (an explicit Deny wins, no matching Allow denies). An error
// means the reply is unusable (API Gateway answers 500).
[[nodiscard]] base::Result<AuthorizerDecision> evaluate_reply(const AuthorizerConfig& config,
                                                              const nlohmann::json& reply, std::string_view arn);

// IAM-style match of a Resource pattern ('*' any run, '?' one character).
[[nodiscard]] bool resource_matches(std::string_view pattern, std::string_view arn);

// Cached authorizer replies by identity, each with its own expiry. Bounded:
// when full, expired entries go first, then the oldest.
class AuthorizerCache {
 public:
  explicit AuthorizerCache(std::size_t capacity = 10000) : capacity_(capacity) {}
  [[nodiscard]] std::optional<nlohmann::json> get(const std::string& key, std::int64_t now_ms);
  void put(const std::string& key, nlohmann::json reply, std::int64_t expires_ms);
  [[nodiscard]] std::size_t size();

 private:
  struct Entry {
    nlohmann::json reply;
    std::int64_t expires_ms = 0;
  };
  std::size_t capacity_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

// The current key set of a JWT authorizer; swapped whole on refresh.
class JwksKeys {
 public:
  [[nodiscard]] std::shared_ptr<const KeySet> keys() const;
  void set(std::shared_ptr<const KeySet> keys);
  // True (and records the attempt) when no refresh was claimed in the last
  // `interval_ms`: a token with an unknown kid refreshes at once, a stream
  // of them at most once per interval.
  [[nodiscard]] bool claim_refresh(std::int64_t now_ms, std::int64_t interval_ms);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> keys_;  // GUARDED_BY(mu_)
  std::int64_t last_attempt_ms_ = -1;   // GUARDED_BY(mu_)
};

// Reads a JWKS (or any small document) from a file path, file:// URL,
// http:// URL or https:// URL (2 s timeout, 150 000 bytes at most, as API
// Gateway limits). https verifies the server's certificate and name against
// the system's CAs and those in `ca_file` (when not empty).
[[nodiscard]] base::Result<std::string> fetch_document(const std::string& uri,
                                                       const std::string& ca_file = {});
// The key set of a JWT authorizer: its JwksUri, or the jwks_uri named by
// the issuer's OpenID configuration.
[[nodiscard]] base::Result<KeySet> load_key_set(const AuthorizerConfig& config);

}  // namespace nimbus::gateway
