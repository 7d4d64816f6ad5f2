#include "gateway/cors.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

CorsConfig config(const json& body) {
  auto c = parse_cors(body);
  EXPECT_TRUE(c.ok()) << body.dump();
  return c.ok() ? *c : CorsConfig{};
}

TEST(Cors, ParsesAndRoundTrips) {
  const json body = {{"AllowOrigins", {"https://app.example.com"}},
                     {"AllowMethods", {"get", "POST"}},
                     {"AllowHeaders", {"authorization", "content-type"}},
                     {"ExposeHeaders", {"x-request-id"}},
                     {"MaxAge", 300},
                     {"AllowCredentials", true}};
  const CorsConfig c = config(body);
  EXPECT_EQ(c.allow_methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(c.max_age, 300);
  json back = to_json(c);
  EXPECT_EQ(back["AllowOrigins"], body["AllowOrigins"]);
  EXPECT_EQ(back["MaxAge"], 300);
  EXPECT_EQ(back["AllowCredentials"], true);
}

TEST(Cors, RejectsBadConfigurations) {
  for (const json& bad : {json::array(), json{{"AllowOrigins", "x"}}, json{{"AllowOrigins", {1}}},
                          json{{"MaxAge", 86401}}, json{{"MaxAge", -2}}, json{{"MaxAge", "1"}},
                          json{{"AllowCredentials", "yes"}}, json{{"Unknown", 1}},
                          json{{"AllowOrigins", {"*"}}, {"AllowCredentials", true}}}) {
    EXPECT_FALSE(parse_cors(bad).ok()) << bad.dump();
  }
}

TEST(Cors, OriginPatterns) {
  const CorsConfig c = config({{"AllowOrigins", {"https://app.example.com", "http://*", "https://*.corp.test"}}});
  EXPECT_TRUE(origin_allowed(c, "https://app.example.com"));
  EXPECT_TRUE(origin_allowed(c, "HTTPS://APP.EXAMPLE.COM"));
  EXPECT_TRUE(origin_allowed(c, "http://anything:3000"));
  EXPECT_TRUE(origin_allowed(c, "https://a.corp.test"));
  EXPECT_FALSE(origin_allowed(c, "https://corp.test.evil"));
  EXPECT_FALSE(origin_allowed(c, "https://other.example.com"));
  EXPECT_FALSE(origin_allowed(c, ""));
  EXPECT_TRUE(origin_allowed(config({{"AllowOrigins", {"*"}}}), "https://x"));
}

TEST(Cors, Preflight) {
  EXPECT_TRUE(is_preflight("OPTIONS", "https://a", "PUT"));
  EXPECT_FALSE(is_preflight("OPTIONS", "", "PUT"));
  EXPECT_FALSE(is_preflight("OPTIONS", "https://a", ""));
  EXPECT_FALSE(is_preflight("GET", "https://a", "PUT"));

  const CorsConfig c = config({{"AllowOrigins", {"https://a.test"}},
                               {"AllowMethods", {"GET", "PUT"}},
                               {"AllowHeaders", {"content-type", "x-api"}},
                               {"MaxAge", 600},
                               {"AllowCredentials", true}});
  const HeaderList h = preflight_headers(c, "https://a.test", "put");
  EXPECT_EQ(h, (HeaderList{{"access-control-allow-origin", "https://a.test"},
                           {"access-control-allow-methods", "GET,PUT"},
                           {"access-control-allow-headers", "content-type,x-api"},
                           {"access-control-max-age", "600"},
                           {"access-control-allow-credentials", "true"},
                           {"vary", "Origin"}}));
  EXPECT_TRUE(preflight_headers(c, "https://b.test", "PUT").empty());
  EXPECT_TRUE(preflight_headers(c, "https://a.test", "DELETE").empty());
  const CorsConfig star = config({{"AllowOrigins", {"*"}}, {"AllowMethods", {"*"}}});
  EXPECT_EQ(preflight_headers(star, "https://z", "DELETE"),
            (HeaderList{{"access-control-allow-origin", "*"}, {"access-control-allow-methods", "*"}}));
}

TEST(Cors, ResponsesGetConfiguredHeadersOnly) {
  const CorsConfig c = config({{"AllowOrigins", {"https://a.test"}}, {"ExposeHeaders", {"x-id"}}});
  HeaderList h = {{"content-type", "text/plain"}, {"Access-Control-Allow-Origin", "*"}};
  apply_cors(c, "https://a.test", h);
  EXPECT_EQ(h, (HeaderList{{"content-type", "text/plain"},
                           {"access-control-allow-origin", "https://a.test"},
                           {"access-control-expose-headers", "x-id"},
                           {"vary", "Origin"}}));
  HeaderList other = {{"Access-Control-Allow-Origin", "*"}};
  apply_cors(c, "https://evil.test", other);
  EXPECT_TRUE(other.empty());  // the function's own CORS headers are ignored
  HeaderList none = {{"x", "y"}};
  apply_cors(c, "", none);
  EXPECT_EQ(none, (HeaderList{{"x", "y"}}));
}

}  // namespace
}  // namespace nimbus::gateway
