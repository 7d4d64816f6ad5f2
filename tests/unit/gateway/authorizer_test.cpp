#include "gateway/authorizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

AuthorizerConfig parsed(const json& body) {
  auto config = parse_authorizer(body);
  EXPECT_TRUE(config.ok()) << config.error().message;
  return config.ok() ? *config : AuthorizerConfig{};
}

std::string error_of(const json& body) {
  auto config = parse_authorizer(body);
  return config.ok() ? std::string("accepted") : config.error().message;
}

const json kLambda = {{"Name", "auth"},
                      {"AuthorizerType", "REQUEST"},
                      {"FunctionName", "checker"},
                      {"AuthorizerPayloadFormatVersion", "2.0"},
                      {"EnableSimpleResponses", true},
                      {"IdentitySource", {"$request.header.Authorization", "$request.querystring.tenant"}},
                      {"AuthorizerResultTtlInSeconds", 300}};

IncomingRequest request_with(std::vector<std::pair<std::string, std::string>> headers, std::string query = {}) {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/orders/7";
  r.raw_query = std::move(query);
  r.headers = std::move(headers);
  r.source_ip = "127.0.0.1";
  return r;
}

EventContext orders_context() {
  EventContext c;
  c.route_key = "GET /orders/{id}";
  c.account_id = "000000000000";
  c.api_id = "nimbus";
  c.request_id = "req-1";
  c.time_ms = 1'700'000'000'000;
  c.has_path_parameters = true;
  c.path_parameters = {{"id", "7"}};
  c.resource_path = "/orders/{id}";
  return c;
}

TEST(Authorizer, ParsesAndRoundTripsBothKinds) {
  const AuthorizerConfig lambda = parsed(kLambda);
  EXPECT_EQ(lambda.type, AuthorizerType::kRequest);
  EXPECT_EQ(lambda.ttl_seconds, 300);
  EXPECT_TRUE(lambda.simple_responses);
  EXPECT_EQ(parsed(to_json(lambda)), lambda);

  const json jwt_doc = {{"Name", "users"},
                        {"AuthorizerType", "JWT"},
                        {"JwtConfiguration", {{"Issuer", "https://id.example"}, {"Audience", {"api"}}}},
                        {"JwksUri", "/etc/keys.json"}};
  const AuthorizerConfig jwt = parsed(jwt_doc);
  EXPECT_EQ(jwt.identity_sources, std::vector<std::string>{"$request.header.Authorization"});
  EXPECT_EQ(jwt.jwt.audience, std::vector<std::string>{"api"});
  EXPECT_EQ(parsed(to_json(jwt)), jwt);
}

TEST(Authorizer, RefusesBadConfigurationsNamingTheMember) {
  const auto with = [](const char* name, json value) {
    json c = kLambda;
    if (value.is_null()) {
      c.erase(name);
    } else {
      c[name] = std::move(value);
    }
    return c;
  };
  EXPECT_NE(error_of(with("Name", "has space")).find("Name"), std::string::npos);
  EXPECT_NE(error_of(with("AuthorizerType", "TOKEN")).find("REQUEST or JWT"), std::string::npos);
  EXPECT_NE(error_of(with("FunctionName", nullptr)).find("FunctionName"), std::string::npos);
  EXPECT_NE(error_of(with("AuthorizerPayloadFormatVersion", "3.0")).find("3.0"), std::string::npos);
  EXPECT_NE(error_of(with("AuthorizerResultTtlInSeconds", 3601)).find("0 to 3600"), std::string::npos);
  EXPECT_NE(error_of(with("IdentitySource", json::array({"Authorization"}))).find("Identity source 'Authorization'"),
            std::string::npos);
  EXPECT_NE(error_of(with("IdentitySource", json::array())).find("at least one IdentitySource"), std::string::npos);
  json v1_simple = with("AuthorizerPayloadFormatVersion", "1.0");
  EXPECT_NE(error_of(v1_simple).find("EnableSimpleResponses needs"), std::string::npos);
  EXPECT_NE(error_of(with("Colour", "red")).find("'Colour'"), std::string::npos);
  EXPECT_NE(error_of(with("JwksUri", "/k")).find("JWT"), std::string::npos);

  json jwt = {{"Name", "j"}, {"AuthorizerType", "JWT"}, {"JwtConfiguration", {{"Issuer", "i"}}}};
  EXPECT_NE(error_of(jwt).find("Audience"), std::string::npos);
  jwt["JwtConfiguration"]["Audience"] = {"a"};
  EXPECT_EQ(error_of(jwt), "accepted");
  jwt["IdentitySource"] = {"$context.routeKey"};
  EXPECT_NE(error_of(jwt).find("exactly one identity source"), std::string::npos);
}

TEST(Authorizer, IdentityValuesNeedEverySource) {
  const AuthorizerConfig config = parsed(kLambda);
  const auto both = identity_values(config, request_with({{"AUTHORIZATION", "secret"}}, "tenant=acme"), orders_context());
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(*both, (std::vector<std::string>{"secret", "acme"}));
  EXPECT_FALSE(identity_values(config, request_with({{"Authorization", "secret"}}), orders_context()).has_value());
  EXPECT_FALSE(identity_values(config, request_with({{"Authorization", ""}}, "tenant=acme"), orders_context()).has_value());
  // Query string names are case-sensitive, header names are not.
  EXPECT_FALSE(identity_values(config, request_with({{"authorization", "s"}}, "Tenant=acme"), orders_context()).has_value());

  json by_route = kLambda;
  by_route["IdentitySource"] = {"$context.routeKey", "$request.header.x-key"};
  const auto values = identity_values(parsed(by_route), request_with({{"X-Key", "k"}}), orders_context());
  ASSERT_TRUE(values.has_value());
  EXPECT_EQ(*values, (std::vector<std::string>{"GET /orders/{id}", "k"}));
}

TEST(Authorizer, EventsCarryTheReferenceFields) {
  const AuthorizerConfig v2 = parsed(kLambda);
  const IncomingRequest req = request_with({{"Authorization", "secret"}}, "tenant=acme");
  const std::string arn = route_arn("us-east-1", orders_context(), "GET", req.raw_path);
  EXPECT_EQ(arn, "arn:aws:execute-api:us-east-1:000000000000:nimbus/$default/GET/orders/7");
  const json e2 = build_authorizer_event(v2, req, orders_context(), {"secret", "acme"}, arn);
  EXPECT_EQ(e2["version"], "2.0");
  EXPECT_EQ(e2["type"], "REQUEST");
  EXPECT_EQ(e2["routeArn"], arn);
  EXPECT_EQ(e2["identitySource"], json({"secret", "acme"}));
  EXPECT_EQ(e2["routeKey"], "GET /orders/{id}");
  EXPECT_EQ(e2["pathParameters"], json({{"id", "7"}}));
  EXPECT_EQ(e2["headers"]["authorization"], "secret");
  EXPECT_FALSE(e2.contains("body"));

  json v1_doc = kLambda;
  v1_doc["AuthorizerPayloadFormatVersion"] = "1.0";
  v1_doc.erase("EnableSimpleResponses");
  const json e1 = build_authorizer_event(parsed(v1_doc), req, orders_context(), {"secret", "acme"}, arn);
  EXPECT_EQ(e1["version"], "1.0");
  EXPECT_EQ(e1["type"], "REQUEST");
  EXPECT_EQ(e1["methodArn"], arn);
  EXPECT_EQ(e1["identitySource"], "secret,acme");
  EXPECT_EQ(e1["authorizationToken"], "secret,acme");
  EXPECT_EQ(e1["resource"], "/orders/{id}");
  EXPECT_EQ(e1["httpMethod"], "GET");
  EXPECT_FALSE(e1["requestContext"].contains("authorizer"));
}

TEST(Authorizer, SimpleRepliesAndTheirGarbage) {
  const AuthorizerConfig config = parsed(kLambda);
  auto yes = evaluate_reply(config, {{"isAuthorized", true}, {"context", {{"user", "ada"}, {"n", 3}}}}, "arn");
  ASSERT_TRUE(yes.ok());
  EXPECT_TRUE(yes->allowed);
  EXPECT_EQ(yes->context["n"], 3);
  auto no = evaluate_reply(config, {{"isAuthorized", false}}, "arn");
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->allowed);
  EXPECT_FALSE(evaluate_reply(config, {{"isAuthorized", "yes"}}, "arn").ok());
  EXPECT_FALSE(evaluate_reply(config, json::array(), "arn").ok());
  EXPECT_FALSE(evaluate_reply(config, {{"isAuthorized", true}, {"context", "x"}}, "arn").ok());
}

TEST(Authorizer, PoliciesAllowOnlyMatchingRoutesAndDenyWins) {
  json doc = kLambda;
  doc["EnableSimpleResponses"] = false;
  const AuthorizerConfig config = parsed(doc);
  const std::string base = "arn:aws:execute-api:us-east-1:000000000000:nimbus/$default/";
  const auto policy = [](json statements) {
    return json{{"principalId", "ada"},
                {"policyDocument", {{"Version", "2012-10-17"}, {"Statement", std::move(statements)}}},
                {"context", {{"tier", "gold"}}}};
  };
  const json allow_get = policy({{{"Action", "execute-api:Invoke"}, {"Effect", "Allow"}, {"Resource", base + "GET/*"}}});
  auto got = evaluate_reply(config, allow_get, base + "GET/orders/7");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->allowed);
  EXPECT_EQ(got->principal_id, "ada");
  EXPECT_EQ(got->context["tier"], "gold");
  EXPECT_FALSE(evaluate_reply(config, allow_get, base + "DELETE/orders/7")->allowed);

  const json deny_wins = policy(
      {{{"Action", "*"}, {"Effect", "Allow"}, {"Resource", "*"}},
       {{"Action", {"execute-api:Invoke"}}, {"Effect", "Deny"}, {"Resource", {base + "DELETE/*"}}}});
  EXPECT_TRUE(evaluate_reply(config, deny_wins, base + "GET/orders")->allowed);
  EXPECT_FALSE(evaluate_reply(config, deny_wins, base + "DELETE/orders/7")->allowed);
  // Another action grants nothing.
  const json other = policy({{{"Action", "s3:GetObject"}, {"Effect", "Allow"}, {"Resource", "*"}}});
  EXPECT_FALSE(evaluate_reply(config, other, base + "GET/x")->allowed);
  EXPECT_FALSE(evaluate_reply(config, {{"principalId", "x"}}, "arn").ok());
  EXPECT_FALSE(evaluate_reply(config, policy({{{"Effect", "Maybe"}, {"Resource", "*"}}}), "arn").ok());
}

TEST(Authorizer, ResourcePatterns) {
  EXPECT_TRUE(resource_matches("*", "anything"));
  EXPECT_TRUE(resource_matches("a*c", "abbbc"));
  EXPECT_TRUE(resource_matches("a?c", "abc"));
  EXPECT_FALSE(resource_matches("a?c", "abbc"));
  EXPECT_TRUE(resource_matches("arn:*/GET/*", "arn:x/$default/GET/a/b"));
  EXPECT_FALSE(resource_matches("arn:*/GET/*", "arn:x/$default/POST/a"));
  EXPECT_FALSE(resource_matches("abc", "abcd"));
  EXPECT_TRUE(resource_matches("**", ""));
}

TEST(Authorizer, CacheExpiresAndStaysBounded) {
  AuthorizerCache cache(2);
  cache.put("a", json{{"v", 1}}, 1000);
  EXPECT_EQ(cache.get("a", 999), json({{"v", 1}}));
  EXPECT_FALSE(cache.get("a", 1000).has_value());
  cache.put("a", 1, 5000);
  cache.put("b", 2, 3000);
  cache.put("c", 3, 4000);  // full: "b" ends first and goes
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.get("b", 0).has_value());
  EXPECT_TRUE(cache.get("a", 0).has_value());
  EXPECT_TRUE(cache.get("c", 0).has_value());
}

TEST(Authorizer, KeysComeFromAFileAndRefreshesAreRateLimited) {
  const auto path = std::filesystem::temp_directory_path() / ("nimbus-jwks-" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(path);
    out << R"({"keys": [{"kty": "EC", "kid": "k", "crv": "P-256",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";
  }
  AuthorizerConfig config;
  config.type = AuthorizerType::kJwt;
  config.jwks_uri = path.string();
  auto keys = load_key_set(config);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_NE(keys->find("k"), nullptr);
  config.jwks_uri = "file://" + path.string();
  EXPECT_TRUE(load_key_set(config).ok());
  std::filesystem::remove(path);
  auto missing = load_key_set(config);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(path.string()), std::string::npos);
  config.jwks_uri = "ftp://keys";
  EXPECT_FALSE(load_key_set(config).ok());

  JwksKeys state;
  EXPECT_TRUE(state.claim_refresh(0, 10000));
  EXPECT_FALSE(state.claim_refresh(9999, 10000));
  EXPECT_TRUE(state.claim_refresh(10000, 10000));
}

}  // namespace
}  // namespace nimbus::gateway
