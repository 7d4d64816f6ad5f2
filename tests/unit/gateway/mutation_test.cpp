// Seeded mutations of valid inputs through every gateway parser: none may
// crash, hang or trip the sanitizers, whatever a client or function sends.
// (A stand-in for fuzz targets until the build has libFuzzer wiring.)
#include <gtest/gtest.h>

#include <random>

#include "gateway/cors.h"
#include "gateway/event.h"
#include "gateway/gateway.h"
#include "gateway/response.h"
#include "gateway/route_table.h"

namespace nimbus::gateway {
namespace {

std::string mutate(std::string s, std::mt19937& rng) {
  static constexpr char kBytes[] = "{}[]\":,/%.+ \\0aZ9\x80\xff\n";
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    const char c = kBytes[rng() % (sizeof(kBytes) - 1)];
    switch (rng() % 4) {
      case 0: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
      case 1: if (at < s.size()) s[at] = c; break;
      case 2: if (at < s.size()) s.erase(at, 1 + rng() % 3); break;
      default: s.resize(at); break;
    }
  }
  return s;
}

template <typename F>
void for_mutations(const std::vector<std::string>& corpus, F&& check) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 3000; ++i) check(mutate(corpus[static_cast<std::size_t>(i) % corpus.size()], rng));
}

TEST(Mutation, RouteKeysAndPaths) {
  RouteTable table;
  std::vector<Route> routes;
  for_mutations({"GET /pets/{id}", "ANY /{proxy+}", "$default", "POST /a/b%20c/{x}/{rest+}"}, [&](const std::string& k) {
    auto key = parse_route_key(k);
    if (key.ok()) {
      EXPECT_TRUE(parse_route_key(key->text()).ok()) << k;  // what is accepted prints back to a valid key
      routes.push_back(Route{*key, RouteTarget{"f", "", PayloadFormat::kV2, std::nullopt}, {}, {}, nullptr});
    }
  });
  table = RouteTable(std::move(routes));
  for_mutations({"/pets/7", "/a/b%20c/x/y/z", "/", "/x/../y", "/%2e%2e/a"}, [&](const std::string& p) {
    if (check_path(p) == PathProblem::kNone) (void)table.match("GET", p);
  });
}

TEST(Mutation, FunctionOutputs) {
  for_mutations({R"({"statusCode":200,"headers":{"a":"b"},"cookies":["c=1"],"body":"x","isBase64Encoded":false})",
                 R"({"statusCode":"201","multiValueHeaders":{"A":["1","2"]},"headers":{"a":"3"},"body":"aGk=",)"
                 R"("isBase64Encoded":true})",
                 R"("text")", "[1,2,3]", "null"},
                [](const std::string& out) {
                  (void)map_response_v2(out);
                  (void)map_response_v1(out);
                });
}

TEST(Mutation, ControlBodies) {
  for_mutations({R"({"AllowOrigins":["https://*.a.test"],"AllowMethods":["GET"],"MaxAge":5,"AllowCredentials":true})",
                 R"({"RouteKey":"GET /x/{y}","FunctionName":"f","ThrottlingRateLimit":1.5,"ThrottlingBurstLimit":2})"},
                [](const std::string& body) {
                  const auto j = nlohmann::json::parse(body, nullptr, false);
                  if (j.is_discarded()) return;
                  (void)parse_cors(j);
                  (void)route_from_json(j);
                });
}

TEST(Mutation, Events) {
  for_mutations({"a=1&b=%20&c", "x=%zz&&=", "%E2%82%AC=%F0%9F%98%80"}, [](const std::string& q) {
    IncomingRequest r;
    r.method = "GET";
    r.raw_path = "/";
    r.raw_query = q;
    r.headers = {{"Cookie", q}, {"Content-Type", "text/plain"}};
    r.body = q;
    EventContext c;
    // Invalid UTF-8 must never make the event unserialisable.
    EXPECT_NO_THROW((void)build_event_v2(r, c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    EXPECT_NO_THROW((void)build_event_v1(r, c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
}

}  // namespace
}  // namespace nimbus::gateway
