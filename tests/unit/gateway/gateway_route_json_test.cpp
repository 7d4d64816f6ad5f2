#include "gateway/gateway.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

TEST(RouteJson, RoundTripsEveryMember) {
  const json in = {{"RouteKey", "GET /products/{id}"}, {"FunctionName", "products"},
                   {"PayloadFormatVersion", "1.0"},    {"ThrottlingRateLimit", 2.5},
                   {"ThrottlingBurstLimit", 10},       {"Qualifier", "$LATEST"}};
  auto route = route_from_json(in);
  ASSERT_TRUE(route.ok()) << route.error().message;
  EXPECT_EQ(route->key.text(), "GET /products/{id}");
  EXPECT_EQ(route->target.function, "products");
  EXPECT_EQ(route->target.format, PayloadFormat::kV1);
  ASSERT_TRUE(route->target.throttle.has_value());
  EXPECT_DOUBLE_EQ(route->target.throttle->rate, 2.5);
  EXPECT_EQ(route->target.throttle->burst, 10);
  EXPECT_EQ(route_to_json(*route), in);
}

TEST(RouteJson, ApiKeyRequired) {
  auto route = route_from_json({{"RouteKey", "GET /k"}, {"FunctionName", "f"}, {"ApiKeyRequired", true}});
  ASSERT_TRUE(route.ok()) << route.error().message;
  EXPECT_TRUE(route->api_key_required);
  EXPECT_EQ(route_to_json(*route)["ApiKeyRequired"], true);
  route = route_from_json({{"RouteKey", "GET /k"}, {"FunctionName", "f"}, {"ApiKeyRequired", false}});
  ASSERT_TRUE(route.ok());
  EXPECT_FALSE(route_to_json(*route).contains("ApiKeyRequired"));
  auto bad = route_from_json({{"RouteKey", "GET /k"}, {"FunctionName", "f"}, {"ApiKeyRequired", "yes"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "ApiKeyRequired must be true or false");
}

TEST(RouteJson, DefaultsToPayload2AndNoThrottle) {
  auto route = route_from_json({{"RouteKey", "$default"}, {"FunctionName", "f"}});
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->target.format, PayloadFormat::kV2);
  EXPECT_FALSE(route->target.throttle.has_value());
  EXPECT_EQ(route_to_json(*route), json({{"RouteKey", "$default"}, {"FunctionName", "f"},
                                         {"PayloadFormatVersion", "2.0"}}));
}

TEST(RouteJson, RejectsBadMembers) {
  for (const json& bad : {json::array(), json{{"FunctionName", "f"}}, json{{"RouteKey", "GET /x"}},
                          json{{"RouteKey", 5}, {"FunctionName", "f"}},
                          json{{"RouteKey", "GET /x"}, {"FunctionName", "f"}, {"Extra", 1}},
                          json{{"RouteKey", "GET /x"}, {"FunctionName", "f"}, {"PayloadFormatVersion", "3.0"}},
                          json{{"RouteKey", "GET /x"}, {"FunctionName", "f"}, {"ThrottlingRateLimit", 1}},
                          json{{"RouteKey", "GET /x"}, {"FunctionName", "f"}, {"ThrottlingRateLimit", 0},
                               {"ThrottlingBurstLimit", 1}},
                          json{{"RouteKey", "GET /x"}, {"FunctionName", "f"}, {"ThrottlingRateLimit", 1},
                               {"ThrottlingBurstLimit", 0}},
                          json{{"RouteKey", "GET x"}, {"FunctionName", "f"}}}) {
    EXPECT_FALSE(route_from_json(bad).ok()) << bad.dump();
  }
}

}  // namespace
}  // namespace nimbus::gateway
