#include "gateway/response.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

GatewayResponse ok_v2(std::string_view out) {
  auto r = map_response_v2(out);
  EXPECT_TRUE(r.ok()) << out << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : GatewayResponse{};
}

GatewayResponse ok_v1(std::string_view out) {
  auto r = map_response_v1(out);
  EXPECT_TRUE(r.ok()) << out << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : GatewayResponse{};
}

TEST(ResponseV2, Structured) {
  auto r = ok_v2(R"({"statusCode":201,"headers":{"content-type":"text/plain","x-n":5,"x-b":true},)"
                 R"("cookies":["a=1; Path=/","b=2"],"body":"made","isBase64Encoded":false})");
  EXPECT_EQ(r.status, 201u);
  EXPECT_EQ(r.headers, (Headers{{"content-type", "text/plain"},
                                {"x-b", "true"},
                                {"x-n", "5"},
                                {"set-cookie", "a=1; Path=/"},
                                {"set-cookie", "b=2"}}));
  EXPECT_EQ(r.body, "made");
}

TEST(ResponseV2, Base64BodyIsDecoded) {
  auto r = ok_v2(R"({"statusCode":200,"body":"iVBORw0KGgoAAQ==","isBase64Encoded":true})");
  EXPECT_EQ(r.body, std::string("\x89PNG\r\n\x1a\n\0\x01", 10));
  EXPECT_FALSE(map_response_v2(R"({"statusCode":200,"body":"!!!","isBase64Encoded":true})").ok());
}

TEST(ResponseV2, StructuredWithoutBodyOrHeaders) {
  auto r = ok_v2(R"({"statusCode":204})");
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(r.body, "");
}

TEST(ResponseV2, InferredFromAnyOtherJson) {
  auto r = ok_v2(R"({"hello":"world"})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers, (Headers{{"content-type", "application/json"}}));
  EXPECT_EQ(r.body, R"({"hello":"world"})");

  r = ok_v2(R"("Hello, world!")");  // a string keeps its quotes
  EXPECT_EQ(r.body, R"("Hello, world!")");
  EXPECT_EQ(r.body.size(), 15u);
  EXPECT_EQ(ok_v2("null").body, "null");
  EXPECT_EQ(ok_v2("[1,2]").body, "[1,2]");
  EXPECT_EQ(ok_v2("42").status, 200u);
}

TEST(ResponseV2, UnusableOutputs) {
  for (const char* bad : {"not json", R"({"statusCode":"abc"})", R"({"statusCode":99})", R"({"statusCode":600})",
                          R"({"statusCode":200,"body":{"a":1}})", R"({"statusCode":200,"headers":[1]})",
                          R"({"statusCode":200,"headers":{"x":{"y":1}}})", R"({"statusCode":200,"cookies":"a=1"})",
                          R"({"statusCode":200,"cookies":[1]})", R"({"statusCode":200,"isBase64Encoded":"yes","body":"x"})",
                          R"({"statusCode":null})"}) {
    auto r = map_response_v2(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(ok_v2(R"({"statusCode":"404"})").status, 404u);
}

TEST(ResponseV1, StatusOnly) {
  auto r = ok_v1(R"({"statusCode":200})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headers, (Headers{{"Content-Type", "application/json"}}));
}

TEST(ResponseV1, NumericStringStatusAndKnownKeyWithoutStatus) {
  EXPECT_EQ(ok_v1(R"({"statusCode":"201"})").status, 201u);
  EXPECT_EQ(ok_v1(R"({"headers":{"x":"y"}})").status, 200u);
  EXPECT_EQ(ok_v1(R"({"body":"hi"})").body, "hi");
}

TEST(ResponseV1, InvalidShapes) {
  for (const char* bad : {R"({})", R"("justAString")", R"({"statusCode":"test"})", R"({"statusCode":200,"x":1})",
                          R"({"statusCode":200,"multiValueHeaders":{"a":"b"}})", R"({"statusCode":200,"body":{"a":1}})",
                          R"([1])", "nope", R"({"statusCode":200,"cookies":["a=1"]})"}) {
    EXPECT_FALSE(map_response_v1(bad).ok()) << bad;
  }
}

TEST(ResponseV1, HeaderScalarsAndNullHeaders) {
  auto r = ok_v1(R"({"statusCode":200,"headers":{"X-Flag":true,"X-N":3},"body":"b"})");
  EXPECT_EQ(r.headers, (Headers{{"X-Flag", "true"}, {"X-N", "3"}, {"Content-Type", "application/json"}}));
  r = ok_v1(R"({"statusCode":200,"headers":null,"multiValueHeaders":null,"body":null})");
  EXPECT_EQ(r.body, "");
}

TEST(ResponseV1, MultiValueHeaders) {
  auto r = ok_v1(R"({"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},)"
                 R"("headers":{"content-type":"text/html"},"body":"<p>"})");
  EXPECT_EQ(r.headers, (Headers{{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"content-type", "text/html"}}));
}

TEST(ResponseV1, SameNameInBothMapsIsOneHeaderMultiFirst) {
  auto r = ok_v1(R"({"statusCode":200,"headers":{"x-test":"value-solo"},)"
                 R"("multiValueHeaders":{"X-Test":["value-multi"]}})");
  EXPECT_EQ(r.headers, (Headers{{"X-Test", "value-multi, value-solo"}, {"Content-Type", "application/json"}}));
}

TEST(ResponseV1, Base64Body) {
  EXPECT_EQ(ok_v1(R"({"statusCode":200,"body":"aGk=","isBase64Encoded":true})").body, "hi");
  EXPECT_EQ(ok_v1(R"({"statusCode":200,"body":"aGk=","isBase64Encoded":false})").body, "aGk=");
}

TEST(MessageResponse, ApiGatewayShape) {
  auto r = message_response(404, "Not Found");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, R"({"message":"Not Found"})");
  EXPECT_EQ(r.headers, (Headers{{"content-type", "application/json"}}));
}

}  // namespace
}  // namespace nimbus::gateway
