#include "gateway/route_table.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;

namespace {

constexpr std::array<std::string_view, 8> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                                                      "ANY"};

bool valid_variable_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

base::Error bad_key(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kValidation, fmt::format("Invalid route key '{}': {}", text, why));
}

// Raw path segments after the leading '/', empty ones kept; a trailing '/'
// is reported separately and not returned as a segment.
struct SplitPath {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
};

SplitPath split_raw(std::string_view path) {
  SplitPath out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  if (path.back() == '/') {
    out.trailing_slash = true;
    path.remove_suffix(1);
  }
  std::size_t start = 0;
  for (;;) {
    const auto slash = path.find('/', start);
    out.segments.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool is_dot_segment(std::string_view s) { return s == "." || s == ".."; }

int method_rank(const RouteKey& k) { return k.method == "ANY" ? 1 : 0; }

}  // namespace

std::string_view to_string(PayloadFormat format) { return format == PayloadFormat::kV1 ? "1.0" : "2.0"; }

base::Result<PayloadFormat> parse_payload_format(std::string_view text) {
  if (text == "2.0") return PayloadFormat::kV2;
  if (text == "1.0") return PayloadFormat::kV1;
  return make_error(ErrorCode::kValidation,
                    fmt::format("Invalid payload format version '{}': expected 2.0 or 1.0", text));
}

std::string RouteKey::path() const {
  if (is_default) return "$default";
  std::string out;
  for (const auto& s : segments) {
    out += '/';
    switch (s.kind) {
      case SegmentKind::kLiteral: out += s.raw; break;
      case SegmentKind::kVariable: out += "{" + s.text + "}"; break;
      case SegmentKind::kGreedy: out += "{" + s.text + "+}"; break;
    }
  }
  return out.empty() ? "/" : out;
}

std::string RouteKey::text() const { return is_default ? "$default" : method + " " + path(); }

bool RouteKey::has_variables() const {
  return std::any_of(segments.begin(), segments.end(),
                     [](const Segment& s) { return s.kind != SegmentKind::kLiteral; });
}

base::Result<RouteKey> parse_route_key(std::string_view text) {
  RouteKey key;
  if (text == "$default") {
    key.is_default = true;
    return key;
  }
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return bad_key(text, "expected 'METHOD /path' or '$default'");
  const std::string_view method = text.substr(0, space);
  const std::string_view path = text.substr(space + 1);
  if (std::find(kMethods.begin(), kMethods.end(), method) == kMethods.end()) {
    return bad_key(text, "the method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY");
  }
  key.method = std::string(method);
  if (path.empty() || path.front() != '/') return bad_key(text, "the path must start with '/'");
  if (path.size() > 1 && path.back() == '/') return bad_key(text, "the path must not end with '/'");
  if (path == "/") return key;
  std::vector<std::string> names;
  std::size_t start = 1;
  for (;;) {
    const auto slash = path.find('/', start);
    const std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    const bool last = slash == std::string_view::npos;
    if (seg.empty()) return bad_key(text, "empty path segment");
    if (is_dot_segment(seg)) return bad_key(text, "'.' and '..' segments are not allowed");
    if (seg.front() == '{') {
      if (seg.back() != '}' || seg.size() < 3) return bad_key(text, fmt::format("bad variable '{}'", seg));
      std::string_view name = seg.substr(1, seg.size() - 2);
      RouteKey::SegmentKind kind = RouteKey::SegmentKind::kVariable;
      if (name.back() == '+') {
        if (!last) return bad_key(text, "a greedy variable {name+} must be the last segment");
        name.remove_suffix(1);
        kind = RouteKey::SegmentKind::kGreedy;
      }
      if (!valid_variable_name(name)) return bad_key(text, fmt::format("bad variable name '{}'", name));
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return bad_key(text, fmt::format("variable '{}' appears twice", name));
      }
      names.emplace_back(name);
      key.segments.push_back({kind, std::string(name), {}});
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) {
        return bad_key(text, fmt::format("a variable must be a whole segment: '{}'", seg));
      }
      std::string decoded;
      if (!http::percent_decode(seg, decoded) || decoded.find('/') != std::string::npos) {
        return bad_key(text, fmt::format("bad escape in segment '{}'", seg));
      }
      key.segments.push_back({RouteKey::SegmentKind::kLiteral, std::move(decoded), std::string(seg)});
    }
    if (last) break;
    start = slash + 1;
  }
  return key;
}

PathProblem check_path(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/') return PathProblem::kNotAbsolute;
  std::string decoded;
  if (!http::percent_decode(raw_path, decoded)) return PathProblem::kMalformedEscape;
  if (decoded.find('\0') != std::string::npos) return PathProblem::kNulByte;
  // Decoded as a whole, so "%2e%2e", "..%2f" and "a%2F..%2Fb" are all caught.
  std::size_t start = 0;
  for (;;) {
    const auto slash = decoded.find('/', start);
    const std::string_view seg = std::string_view(decoded).substr(
        start, slash == std::string::npos ? std::string_view::npos : slash - start);
    if (is_dot_segment(seg)) return PathProblem::kDotSegment;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return PathProblem::kNone;
}

bool higher_priority(const RouteKey& a, const RouteKey& b) {
  const auto tier = [](const RouteKey& k) { return k.is_default ? 2 : (k.has_greedy() ? 1 : 0); };
  if (tier(a) != tier(b)) return tier(a) < tier(b);
  if (a.is_default) return false;
  if (a.has_greedy() && a.segments.size() != b.segments.size()) return a.segments.size() > b.segments.size();
  const std::size_t n = std::min(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i) {
    const bool la = a.segments[i].kind == RouteKey::SegmentKind::kLiteral;
    const bool lb = b.segments[i].kind == RouteKey::SegmentKind::kLiteral;
    if (la != lb) return la;
  }
  if (method_rank(a) != method_rank(b)) return method_rank(a) < method_rank(b);
  return a.text() < b.text();
}

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const Route& a, const Route& b) { return higher_priority(a.key, b.key); });
}

const Route* RouteTable::find(std::string_view key_text) const {
  for (const auto& r : routes_) {
    if (r.key.text() == key_text) return &r;
  }
  return nullptr;
}

std::optional<RouteMatch> RouteTable::match(std::string_view method, std::string_view raw_path) const {
  const SplitPath split = split_raw(raw_path);
  const auto& segs = split.segments;
  std::vector<std::string> decoded(segs.size());
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (!http::percent_decode(segs[i], decoded[i])) return std::nullopt;
  }
  for (const Route& route : routes_) {
    const RouteKey& key = route.key;
    if (key.is_default) return RouteMatch{&route, {}};
    if (key.method != "ANY" && key.method != method) continue;
    const bool greedy = key.has_greedy();
    const std::size_t fixed = greedy ? key.segments.size() - 1 : key.segments.size();
    if (greedy ? segs.size() <= fixed : segs.size() != fixed) continue;
    RouteMatch m{&route, {}};
    bool ok = true;
    for (std::size_t i = 0; i < fixed && ok; ++i) {
      const auto& s = key.segments[i];
      if (s.kind == RouteKey::SegmentKind::kLiteral) {
        ok = decoded[i] == s.text;
      } else {
        ok = !decoded[i].empty();
        if (ok) m.path_parameters.emplace_back(s.text, decoded[i]);
      }
    }
    if (!ok) continue;
    if (greedy) {
      // The rest of the path, '/'-joined as received (empty segments kept).
      std::string rest;
      for (std::size_t i = fixed; i < segs.size(); ++i) {
        if (i > fixed) rest += '/';
        rest += decoded[i];
      }
      if (split.trailing_slash) rest += '/';
      if (rest.empty() || rest == "/") continue;
      m.path_parameters.emplace_back(key.segments.back().text, std::move(rest));
    }
    return m;
  }
  return std::nullopt;
}

}  // namespace nimbus::gateway
