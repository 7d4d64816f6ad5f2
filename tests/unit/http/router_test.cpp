#include "http/router.h"

#include <gtest/gtest.h>

namespace nimbus::http {
namespace {

Router<int> make_router() {
  Router<int> r;
  r.add(Verb::get, "/2015-03-31/functions", 1);
  r.add(Verb::get, "/2015-03-31/functions/{name}", 2);
  r.add(Verb::get, "/2015-03-31/functions/{name}/configuration", 3);
  r.add(Verb::get, "/2015-03-31/functions/special", 4);
  r.add(Verb::get, "/files/{path+}", 5);
  return r;
}

int handler_of(const Router<int>& r, Verb v, std::string_view path, Params* params = nullptr) {
  auto found = r.find(v, path);
  if (auto* m = std::get_if<Router<int>::Match>(&found)) {
    if (params) *params = m->params;
    return *m->handler;
  }
  return std::get<RouteMiss>(found) == RouteMiss::kNoMethod ? -405 : -404;
}

TEST(Router, MatchesLiteralsParamsAndTrailingSlash) {
  const auto r = make_router();
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions"), 1);
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/"), 1);
  Params p;
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/hello/configuration", &p), 3);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (std::pair<std::string, std::string>{"name", "hello"}));
}

TEST(Router, LiteralBeatsParameter) {
  const auto r = make_router();
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/special"), 4);
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/other"), 2);
}

TEST(Router, DecodesParameters) {
  const auto r = make_router();
  Params p;
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/f%3Aprod", &p), 2);
  EXPECT_EQ(p[0].second, "f:prod");
  EXPECT_EQ(handler_of(r, Verb::get, "/2015-03-31/functions/bad%zz"), -404);
}

TEST(Router, GreedyTakesTheRest) {
  const auto r = make_router();
  Params p;
  EXPECT_EQ(handler_of(r, Verb::get, "/files/a/b/c.txt", &p), 5);
  EXPECT_EQ(p[0].second, "a/b/c.txt");
  EXPECT_EQ(handler_of(r, Verb::get, "/files"), -404);
}

TEST(Router, TellsWrongMethodFromUnknownPath) {
  const auto r = make_router();
  EXPECT_EQ(handler_of(r, Verb::post, "/2015-03-31/functions/x"), -405);
  EXPECT_EQ(handler_of(r, Verb::get, "/nope"), -404);
}

TEST(Url, QueryParsingAndEncoding) {
  const Params q = parse_query("tagKeys=a&tagKeys=b%20c&Qualifier=%24LATEST&empty");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[1].second, "b c");
  EXPECT_EQ(*find_param(q, "Qualifier"), "$LATEST");
  EXPECT_EQ(*find_param(q, "empty"), "");
  EXPECT_EQ(percent_encode("a b/c:d"), "a%20b%2Fc%3Ad");
  EXPECT_EQ(percent_encode("a/b", true), "a/b");
  std::string out;
  EXPECT_FALSE(percent_decode("%4", out));
  EXPECT_FALSE(percent_decode("%", out));
}

}  // namespace
}  // namespace nimbus::http
