#include "gateway/route_table.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {
namespace {

Route route(std::string_view key, std::string fn = "f") {
  auto parsed = parse_route_key(key);
  EXPECT_TRUE(parsed.ok()) << key;
  return Route{*parsed, RouteTarget{std::move(fn), "", PayloadFormat::kV2, std::nullopt}, {}, {}, nullptr};
}

// The matched route's key, or "404".
std::string matched(const RouteTable& t, std::string_view method, std::string_view path,
                    http::Params* params = nullptr) {
  auto m = t.match(method, path);
  if (!m) return "404";
  if (params) *params = m->path_parameters;
  return m->route->key.text();
}

TEST(RouteKey, ParsesMethodsVariablesGreedyAndDefault) {
  auto k = parse_route_key("GET /pets/{id}/toys");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->method, "GET");
  ASSERT_EQ(k->segments.size(), 3u);
  EXPECT_EQ(k->segments[1].kind, RouteKey::SegmentKind::kVariable);
  EXPECT_EQ(k->segments[1].text, "id");
  EXPECT_EQ(k->text(), "GET /pets/{id}/toys");
  EXPECT_TRUE(k->has_variables());

  auto g = parse_route_key("ANY /{proxy+}");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->has_greedy());
  EXPECT_EQ(g->path(), "/{proxy+}");

  auto d = parse_route_key("$default");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->is_default);
  EXPECT_EQ(d->text(), "$default");

  auto root = parse_route_key("GET /");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->segments.empty());
  EXPECT_EQ(root->text(), "GET /");
}

TEST(RouteKey, RejectsMalformedKeys) {
  for (const char* bad : {"", "GET", "get /x", "FETCH /x", "GET x", "GET /x/", "GET /x//y", "GET /{proxy+}/x",
                          "GET /{}", "GET /{a b}", "GET /{id}/{id}", "GET /a{id}", "GET /../x", "GET /./x",
                          "$default ", "GET  /x", "GET /%zz"}) {
    auto k = parse_route_key(bad);
    EXPECT_FALSE(k.ok()) << "accepted: '" << bad << "'";
    if (!k.ok()) {
      EXPECT_EQ(k.error().code, base::ErrorCode::kValidation);
      EXPECT_NE(k.error().message.find("Invalid route key"), std::string::npos);
    }
  }
}

TEST(RouteTable, LiteralBeatsVariable) {
  RouteTable t({route("GET /pets/dog/{id}"), route("GET /pets/dog/1"), route("GET /pets/{kind}/{id}")});
  EXPECT_EQ(matched(t, "GET", "/pets/dog/1"), "GET /pets/dog/1");
  EXPECT_EQ(matched(t, "GET", "/pets/dog/2"), "GET /pets/dog/{id}");
  http::Params p;
  EXPECT_EQ(matched(t, "GET", "/pets/cat/2", &p), "GET /pets/{kind}/{id}");
  EXPECT_EQ(p, (http::Params{{"kind", "cat"}, {"id", "2"}}));
}

TEST(RouteTable, SpecificMethodBeatsAny) {
  RouteTable t({route("ANY /items"), route("GET /items")});
  EXPECT_EQ(matched(t, "GET", "/items"), "GET /items");
  EXPECT_EQ(matched(t, "POST", "/items"), "ANY /items");
  EXPECT_EQ(matched(t, "DELETE", "/items"), "ANY /items");
}

TEST(RouteTable, MethodMismatchIsNotFound) {
  RouteTable t({route("GET /items")});
  EXPECT_EQ(matched(t, "POST", "/items"), "404");
  EXPECT_EQ(matched(t, "HEAD", "/items"), "404");  // HEAD is its own method
}

TEST(RouteTable, GreedyAfterFullMatchesLongerPrefixFirst) {
  RouteTable t({route("ANY /{proxy+}"), route("GET /pets/{proxy+}"), route("GET /pets/{id}"), route("$default")});
  http::Params p;
  EXPECT_EQ(matched(t, "GET", "/pets/7", &p), "GET /pets/{id}");
  EXPECT_EQ(matched(t, "GET", "/pets/cat/1", &p), "GET /pets/{proxy+}");  // AWS's own example
  EXPECT_EQ(p, (http::Params{{"proxy", "cat/1"}}));
  EXPECT_EQ(matched(t, "POST", "/pets/cat/1", &p), "ANY /{proxy+}");
  EXPECT_EQ(p, (http::Params{{"proxy", "pets/cat/1"}}));
  EXPECT_EQ(matched(t, "GET", "/", &p), "$default");  // a greedy variable needs a segment
}

TEST(RouteTable, GreedyDoesNotMatchItsOwnPrefix) {
  RouteTable t({route("GET /pets/{proxy+}")});
  EXPECT_EQ(matched(t, "GET", "/pets"), "404");
  EXPECT_EQ(matched(t, "GET", "/pets/"), "404");
  http::Params p;
  EXPECT_EQ(matched(t, "GET", "/pets/a//b/", &p), "GET /pets/{proxy+}");
  EXPECT_EQ(p, (http::Params{{"proxy", "a//b/"}}));  // kept as received
}

TEST(RouteTable, DefaultCatchesEverythingElse) {
  RouteTable t({route("$default"), route("GET /a")});
  EXPECT_EQ(matched(t, "GET", "/a"), "GET /a");
  EXPECT_EQ(matched(t, "PUT", "/a"), "$default");
  EXPECT_EQ(matched(t, "GET", "/zzz/y"), "$default");
}

TEST(RouteTable, VariablesAreDecodedAndNonEmpty) {
  RouteTable t({route("GET /files/{name}"), route("GET /caf%C3%A9")});
  http::Params p;
  EXPECT_EQ(matched(t, "GET", "/files/a%20b%2Bc", &p), "GET /files/{name}");
  EXPECT_EQ(p, (http::Params{{"name", "a b+c"}}));
  EXPECT_EQ(matched(t, "GET", "/files/"), "404");
  EXPECT_EQ(matched(t, "GET", "/files//"), "404");
  EXPECT_EQ(matched(t, "GET", "/caf%c3%a9"), "GET /caf%C3%A9");
}

TEST(RouteTable, TrailingSlashMatchesTheSameRoute) {
  RouteTable t({route("GET /products"), route("GET /products/{id}")});
  EXPECT_EQ(matched(t, "GET", "/products/"), "GET /products");
  EXPECT_EQ(matched(t, "GET", "/products/9/"), "GET /products/{id}");
  EXPECT_EQ(matched(t, "GET", "/products//"), "404");
}

TEST(RouteTable, RootRoute) {
  RouteTable t({route("GET /"), route("GET /x")});
  EXPECT_EQ(matched(t, "GET", "/"), "GET /");
  EXPECT_EQ(matched(t, "GET", "/x"), "GET /x");
}

TEST(RouteTable, PriorityOrderIsStable) {
  RouteTable t({route("$default"), route("ANY /{proxy+}"), route("ANY /a/{x}"), route("GET /a/{x}"),
                route("GET /a/b"), route("GET /a/{proxy+}")});
  std::vector<std::string> order;
  for (const auto& r : t.routes()) order.push_back(r.key.text());
  EXPECT_EQ(order, (std::vector<std::string>{"GET /a/b", "GET /a/{x}", "ANY /a/{x}", "GET /a/{proxy+}",
                                             "ANY /{proxy+}", "$default"}));
  ASSERT_NE(t.find("GET /a/b"), nullptr);
  EXPECT_EQ(t.find("GET /a/c"), nullptr);
}

TEST(CheckPath, RefusesTraversalInEveryEncoding) {
  EXPECT_EQ(check_path("/a/b"), PathProblem::kNone);
  EXPECT_EQ(check_path("/a/..b/c.d/..."), PathProblem::kNone);
  EXPECT_EQ(check_path("/"), PathProblem::kNone);
  for (const char* bad : {"/..", "/a/../b", "/a/./b", "/a/%2e%2e/b", "/a/%2E%2E", "/a/.%2e/b", "/a%2f..%2fb",
                          "/a/..%2Fb", "/%2e", "/a/.."}) {
    EXPECT_EQ(check_path(bad), PathProblem::kDotSegment) << bad;
  }
  EXPECT_EQ(check_path("/a%zz"), PathProblem::kMalformedEscape);
  EXPECT_EQ(check_path("/a%2"), PathProblem::kMalformedEscape);
  EXPECT_EQ(check_path("/a%00b"), PathProblem::kNulByte);
  EXPECT_EQ(check_path("a/b"), PathProblem::kNotAbsolute);
  EXPECT_EQ(check_path("*"), PathProblem::kNotAbsolute);
}

TEST(PayloadFormat, ParsesTheTwoVersions) {
  EXPECT_EQ(*parse_payload_format("2.0"), PayloadFormat::kV2);
  EXPECT_EQ(*parse_payload_format("1.0"), PayloadFormat::kV1);
  EXPECT_FALSE(parse_payload_format("3.0").ok());
  EXPECT_EQ(to_string(PayloadFormat::kV1), "1.0");
}

}  // namespace
}  // namespace nimbus::gateway
