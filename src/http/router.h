#pragma once
// Router<H>: matches a method and a path against route patterns such as
// "/2015-03-31/functions/{name}/configuration" and returns the handler with
// the decoded path parameters. "{name+}" matches the rest of the path.
// Literal segments win over parameters, parameters over greedy ones. A
// trailing slash is ignored (clients differ on it). Built once at start-up,
// then read-only: safe to use from any thread.

#include <algorithm>
#include <optional>
#include <variant>
#include <string>
#include <string_view>
#include <vector>

#include "http/types.h"

namespace nimbus::http {

namespace detail {
struct Segment {
  enum class Kind { kLiteral, kParam, kGreedy } kind;
  std::string text;  // literal text or parameter name
};
std::vector<Segment> parse_pattern(std::string_view pattern);
std::vector<std::string_view> split_path(std::string_view path);
// Matches raw (still percent-encoded) path segments; decodes parameters.
bool match_segments(const std::vector<Segment>& pattern, const std::vector<std::string_view>& path,
                    Params& params);
int specificity(const std::vector<Segment>& pattern);
}  // namespace detail

enum class RouteMiss { kNoPath, kNoMethod };

template <typename H>
class Router {
 public:
  struct Match {
    const H* handler;
    Params params;
  };

  void add(Verb method, std::string_view pattern, H handler) {
    Route r{method, detail::parse_pattern(pattern), std::move(handler), 0};
    r.score = detail::specificity(r.segments);
    routes_.push_back(std::move(r));
    std::stable_sort(routes_.begin(), routes_.end(),
                     [](const Route& a, const Route& b) { return a.score > b.score; });
  }

  // The handler for `method` and raw `path`, or why there is none.
  [[nodiscard]] std::variant<Match, RouteMiss> find(Verb method, std::string_view path) const {
    const auto segments = detail::split_path(path);
    bool path_seen = false;
    for (const Route& r : routes_) {
      Params params;
      if (!detail::match_segments(r.segments, segments, params)) continue;
      path_seen = true;
      if (r.method == method) return Match{&r.handler, std::move(params)};
    }
    return path_seen ? RouteMiss::kNoMethod : RouteMiss::kNoPath;
  }

 private:
  struct Route {
    Verb method;
    std::vector<detail::Segment> segments;
    H handler;
    int score;
  };
  std::vector<Route> routes_;
};

}  // namespace nimbus::http
