#include "gateway/event.h"

#include <gtest/gtest.h>

#include <regex>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

IncomingRequest sample() {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/pets/7%2B1";
  r.raw_query = "a=1&a=2&b=x%20y&c=a+b";
  r.headers = {{"Host", "api.local:8080"},  {"User-Agent", "curl/8.0"}, {"X-Multi", "v1"},
               {"x-multi", "v2"},           {"Cookie", "s=abc; t=1"},  {"cookie", "u=2"},
               {"Accept", "*/*"}};
  r.source_ip = "192.0.2.9";
  return r;
}

EventContext context() {
  EventContext c;
  c.route_key = "GET /pets/{id}";
  c.resource_path = "/pets/{id}";
  c.path_parameters = {{"id", "7+1"}};
  c.has_path_parameters = true;
  c.request_id = "LV7fzho-PHcEJPw=";
  c.time_ms = 1587481701067;
  c.account_id = "123456789012";
  c.api_id = "nimbus";
  c.domain_name = "api.local";
  c.domain_prefix = "api";
  return c;
}

TEST(EventV2, EveryTopLevelField) {
  const json e = build_event_v2(sample(), context());
  EXPECT_EQ(e["version"], "2.0");
  EXPECT_EQ(e["routeKey"], "GET /pets/{id}");
  EXPECT_EQ(e["rawPath"], "/pets/7%2B1");  // not decoded
  EXPECT_EQ(e["rawQueryString"], "a=1&a=2&b=x%20y&c=a+b");
  EXPECT_EQ(e["cookies"], json({"s=abc", "t=1", "u=2"}));
  EXPECT_EQ(e["headers"], json({{"host", "api.local:8080"},
                                {"user-agent", "curl/8.0"},
                                {"x-multi", "v1,v2"},
                                {"accept", "*/*"}}));  // lower-cased, joined, no cookie
  EXPECT_EQ(e["queryStringParameters"], json({{"a", "1,2"}, {"b", "x y"}, {"c", "a b"}}));
  EXPECT_EQ(e["pathParameters"], json({{"id", "7+1"}}));
  EXPECT_FALSE(e.contains("stageVariables"));
  EXPECT_FALSE(e.contains("body"));
  EXPECT_EQ(e["isBase64Encoded"], false);
}

TEST(EventV2, RequestContext) {
  const json c = build_event_v2(sample(), context())["requestContext"];
  EXPECT_EQ(c["accountId"], "123456789012");
  EXPECT_EQ(c["apiId"], "nimbus");
  EXPECT_EQ(c["domainName"], "api.local");
  EXPECT_EQ(c["domainPrefix"], "api");
  EXPECT_EQ(c["http"], json({{"method", "GET"},
                             {"path", "/pets/7%2B1"},
                             {"protocol", "HTTP/1.1"},
                             {"sourceIp", "192.0.2.9"},
                             {"userAgent", "curl/8.0"}}));
  EXPECT_EQ(c["requestId"], "LV7fzho-PHcEJPw=");
  EXPECT_EQ(c["routeKey"], "GET /pets/{id}");
  EXPECT_EQ(c["stage"], "$default");
  EXPECT_EQ(c["time"], "21/Apr/2020:15:08:21 +0000");
  EXPECT_EQ(c["timeEpoch"], 1587481701067);
  EXPECT_TRUE(c["timeEpoch"].is_number_integer());
  EXPECT_FALSE(c.contains("authorizer"));
  EXPECT_FALSE(c.contains("authentication"));
}

TEST(EventV2, AbsentKeysWhenNothingToSay) {
  IncomingRequest r;
  r.method = "POST";
  r.raw_path = "/";
  r.source_ip = "127.0.0.1";
  EventContext c = context();
  c.route_key = "$default";
  c.has_path_parameters = false;
  c.path_parameters.clear();
  const json e = build_event_v2(r, c);
  EXPECT_EQ(e["rawQueryString"], "");  // present, empty
  EXPECT_FALSE(e.contains("cookies"));
  EXPECT_FALSE(e.contains("queryStringParameters"));
  EXPECT_FALSE(e.contains("pathParameters"));
  EXPECT_FALSE(e.contains("body"));
  EXPECT_EQ(e["headers"], json::object());  // always present
  EXPECT_EQ(e["requestContext"]["http"]["userAgent"], "");
}

TEST(EventV2, TextAndBinaryBodies) {
  IncomingRequest r = sample();
  r.method = "POST";
  r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  r.body = R"({"name":"Ada"})";
  json e = build_event_v2(r, context());
  EXPECT_EQ(e["body"], R"({"name":"Ada"})");
  EXPECT_EQ(e["isBase64Encoded"], false);

  r.headers.back().second = "image/png";
  r.body = std::string("\x89PNG\r\n\x1a\n\0\x01", 10);
  e = build_event_v2(r, context());
  EXPECT_EQ(e["body"], "iVBORw0KGgoAAQ==");
  EXPECT_EQ(e["isBase64Encoded"], true);

  r.headers.back().second = "text/plain";
  r.body = "caf\xc3";  // declared text, but not UTF-8
  e = build_event_v2(r, context());
  EXPECT_EQ(e["isBase64Encoded"], true);
}

TEST(EventV2, QueryWithoutValuesAndBadEscapes) {
  IncomingRequest r = sample();
  r.raw_query = "flag&x=%zz&=v";
  const json e = build_event_v2(r, context());
  EXPECT_EQ(e["queryStringParameters"], json({{"flag", ""}, {"x", "%zz"}, {"", "v"}}));
}

TEST(EventV1, EveryField) {
  IncomingRequest r = sample();
  r.method = "POST";
  r.headers.emplace_back("Content-Type", "text/plain");
  r.body = "hello";
  EventContext c = context();
  c.route_key = "POST /pets/{proxy+}";
  c.resource_path = "/pets/{proxy+}";
  c.path_parameters = {{"proxy", "hello/world/"}};
  const json e = build_event_v1(r, c);
  EXPECT_EQ(e["version"], "1.0");
  EXPECT_EQ(e["resource"], "/pets/{proxy+}");
  EXPECT_EQ(e["path"], "/pets/7%2B1");
  EXPECT_EQ(e["httpMethod"], "POST");
  EXPECT_EQ(e["headers"]["x-multi"], "v2");  // the last value
  EXPECT_EQ(e["headers"]["cookie"], "u=2");  // 1.0 keeps cookies in the headers
  EXPECT_EQ(e["multiValueHeaders"]["x-multi"], json({"v1", "v2"}));
  EXPECT_EQ(e["multiValueHeaders"]["cookie"], json({"s=abc; t=1", "u=2"}));
  EXPECT_EQ(e["queryStringParameters"], json({{"a", "2"}, {"b", "x y"}, {"c", "a b"}}));  // last wins
  EXPECT_EQ(e["multiValueQueryStringParameters"], json({{"a", {"1", "2"}}, {"b", {"x y"}}, {"c", {"a b"}}}));
  EXPECT_EQ(e["pathParameters"], json({{"proxy", "hello/world"}}));  // trailing '/' dropped
  EXPECT_TRUE(e["stageVariables"].is_null());
  EXPECT_EQ(e["body"], "hello");
  EXPECT_EQ(e["isBase64Encoded"], false);

  const json& rc = e["requestContext"];
  EXPECT_EQ(rc["accountId"], "123456789012");
  EXPECT_EQ(rc["apiId"], "nimbus");
  EXPECT_EQ(rc["httpMethod"], "POST");
  EXPECT_EQ(rc["path"], "/pets/7%2B1");
  EXPECT_EQ(rc["protocol"], "HTTP/1.1");
  EXPECT_EQ(rc["requestId"], "LV7fzho-PHcEJPw=");
  EXPECT_EQ(rc["requestTime"], "21/Apr/2020:15:08:21 +0000");
  EXPECT_EQ(rc["requestTimeEpoch"], 1587481701067);
  EXPECT_EQ(rc["resourcePath"], "/pets/{proxy+}");
  EXPECT_EQ(rc["stage"], "$default");
  EXPECT_EQ(rc["domainName"], "api.local");
  EXPECT_EQ(rc["domainPrefix"], "api");
  EXPECT_EQ(rc["authorizer"], json({{"claims", nullptr}, {"scopes", nullptr}}));
  EXPECT_EQ(rc["identity"]["sourceIp"], "192.0.2.9");
  EXPECT_EQ(rc["identity"]["userAgent"], "curl/8.0");
  EXPECT_EQ(rc["identity"].size(), 15u);
  EXPECT_TRUE(rc["identity"]["accessKey"].is_null());
  EXPECT_TRUE(rc["identity"]["userArn"].is_null());
}

TEST(EventV1, ApiKeyInIdentityAndNotIn2) {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/";
  EventContext c = context();
  EXPECT_TRUE(build_event_v1(r, c)["requestContext"]["identity"]["apiKey"].is_null());
  c.api_key = "GoodGoodGoodGoodGood1";
  c.api_key_id = "abcde12345";
  const json identity = build_event_v1(r, c)["requestContext"]["identity"];
  EXPECT_EQ(identity["apiKey"], "GoodGoodGoodGoodGood1");
  EXPECT_EQ(identity["apiKeyId"], "abcde12345");
  EXPECT_EQ(identity.size(), 15u);
  EXPECT_EQ(build_event_v2(r, c).dump().find("GoodGoodGoodGoodGood1"), std::string::npos);
}

TEST(EventV1, AbsentThingsAreNull) {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/";
  EventContext c = context();
  c.has_path_parameters = false;
  const json e = build_event_v1(r, c);
  for (const char* key : {"body", "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
                          "stageVariables"}) {
    ASSERT_TRUE(e.contains(key)) << key;
    EXPECT_TRUE(e[key].is_null()) << key;
  }
}

TEST(Event, ClfTimeAndRequestIds) {
  EXPECT_EQ(format_clf_time(0), "01/Jan/1970:00:00:00 +0000");
  EXPECT_EQ(format_clf_time(1589522469693), "15/May/2020:06:01:09 +0000");
  const std::regex id_re("^[A-Za-z0-9_-]{15}=$");
  const std::string a = make_request_id();
  EXPECT_TRUE(std::regex_match(a, id_re)) << a;
  EXPECT_NE(a, make_request_id());
}

TEST(Event, ForwardingHeaders) {
  IncomingRequest r = sample();
  r.headers.emplace_back("X-Forwarded-For", "10.0.0.1");
  r.headers.emplace_back("X-Forwarded-Proto", "https");  // a client may not claim this
  r.headers.emplace_back("X-Forwarded-Port", "443");
  IncomingRequest tls = r;
  add_forwarding_headers(r, 8080, "http", 1587481701067);
  const json h = build_event_v2(r, context())["headers"];
  EXPECT_EQ(h["x-forwarded-for"], "10.0.0.1, 192.0.2.9");
  EXPECT_EQ(h["x-forwarded-port"], "8080");
  EXPECT_EQ(h["x-forwarded-proto"], "http");
  add_forwarding_headers(tls, 8443, "https", 1587481701067);
  const json t = build_event_v1(tls, context())["multiValueHeaders"];
  EXPECT_EQ(t["x-forwarded-port"], json::array({"8443"}));
  EXPECT_EQ(t["x-forwarded-proto"], json::array({"https"}));
  EXPECT_TRUE(std::regex_match(h["x-amzn-trace-id"].get<std::string>(),
                               std::regex("^Root=1-5e9f0c65-[0-9a-f]{24}$")))
      << h["x-amzn-trace-id"];
}

TEST(Event, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_TRUE(is_text_body("", "x"));
  EXPECT_TRUE(is_text_body("application/vnd.api+json", "{}"));
  EXPECT_TRUE(is_text_body("Text/HTML; charset=utf-8", "<p>"));
  EXPECT_FALSE(is_text_body("application/octet-stream", "abc"));
}

}  // namespace
}  // namespace nimbus::gateway
