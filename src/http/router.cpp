#include "http/router.h"

namespace nimbus::http::detail {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const auto next = path.find('/', i);
    const auto end = next == std::string_view::npos ? path.size() : next;
    out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

std::vector<Segment> parse_pattern(std::string_view pattern) {
  std::vector<Segment> out;
  for (std::string_view s : split_path(pattern)) {
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
      std::string_view name = s.substr(1, s.size() - 2);
      if (!name.empty() && name.back() == '+') {
        out.push_back({Segment::Kind::kGreedy, std::string(name.substr(0, name.size() - 1))});
      } else {
        out.push_back({Segment::Kind::kParam, std::string(name)});
      }
    } else {
      out.push_back({Segment::Kind::kLiteral, std::string(s)});
    }
  }
  return out;
}

bool match_segments(const std::vector<Segment>& pattern, const std::vector<std::string_view>& path,
                    Params& params) {
  std::size_t i = 0;
  for (const Segment& seg : pattern) {
    if (seg.kind == Segment::Kind::kGreedy) {
      if (i >= path.size()) return false;
      std::string joined;
      for (std::size_t j = i; j < path.size(); ++j) {
        if (j > i) joined.push_back('/');
        joined.append(path[j]);
      }
      std::string decoded;
      if (!percent_decode(joined, decoded)) return false;
      params.emplace_back(seg.text, std::move(decoded));
      return true;
    }
    if (i >= path.size()) return false;
    if (seg.kind == Segment::Kind::kLiteral) {
      if (path[i] != seg.text) return false;
    } else {
      std::string decoded;
      if (!percent_decode(path[i], decoded)) return false;
      params.emplace_back(seg.text, std::move(decoded));
    }
    ++i;
  }
  return i == path.size();
}

int specificity(const std::vector<Segment>& pattern) {
  // Longer patterns first; within a length, literals beat parameters.
  int score = 0;
  for (const Segment& seg : pattern) {
    score += 100;
    if (seg.kind == Segment::Kind::kLiteral) score += 2;
    if (seg.kind == Segment::Kind::kParam) score += 1;
    if (seg.kind == Segment::Kind::kGreedy) score -= 100;
  }
  return score;
}

}  // namespace nimbus::http::detail
