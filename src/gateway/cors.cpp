#include "gateway/cors.h"

#include <algorithm>

#include <fmt/format.h>

#include "gateway/detail/text.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

base::Result<std::vector<std::string>> cors_list(const json& body, const char* member) {
  std::vector<std::string> out;
  const auto it = body.find(member);
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error(ErrorCode::kValidation, fmt::format("{} must be a list of strings", member));
  for (const auto& v : *it) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return make_error(ErrorCode::kValidation, fmt::format("{} must be a list of non-empty strings", member));
    }
    out.push_back(v.get<std::string>());
  }
  if (out.size() > 100) return make_error(ErrorCode::kValidation, fmt::format("{} has more than 100 items", member));
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  const auto star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == text;
  const std::string_view prefix = pattern.substr(0, star);
  const std::string_view suffix = pattern.substr(star + 1);
  return text.size() >= prefix.size() + suffix.size() && text.starts_with(prefix) && text.ends_with(suffix);
}

bool is_cors_header(std::string_view name) { return detail::ascii_lower(name).starts_with("access-control-"); }

bool allowed_by_star(const CorsConfig& c) {
  return std::find(c.allow_origins.begin(), c.allow_origins.end(), "*") != c.allow_origins.end();
}

}  // namespace

base::Result<CorsConfig> parse_cors(const json& body) {
  if (!body.is_object()) return make_error(ErrorCode::kValidation, "CORS configuration must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    static constexpr std::string_view kKnown[] = {"AllowOrigins", "AllowMethods", "AllowHeaders",
                                                  "ExposeHeaders", "MaxAge", "AllowCredentials"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return make_error(ErrorCode::kValidation, fmt::format("Unknown CORS member '{}'", key));
    }
  }
  CorsConfig c;
  auto origins = cors_list(body, "AllowOrigins");
  if (!origins.ok()) return std::move(origins).error();
  c.allow_origins = std::move(*origins);
  auto methods = cors_list(body, "AllowMethods");
  if (!methods.ok()) return std::move(methods).error();
  c.allow_methods = std::move(*methods);
  for (auto& m : c.allow_methods) {
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char ch) { return std::toupper(ch); });
  }
  auto headers = cors_list(body, "AllowHeaders");
  if (!headers.ok()) return std::move(headers).error();
  c.allow_headers = std::move(*headers);
  auto expose = cors_list(body, "ExposeHeaders");
  if (!expose.ok()) return std::move(expose).error();
  c.expose_headers = std::move(*expose);
  if (const auto it = body.find("MaxAge"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<long long>() < -1 || it->get<long long>() > 86400) {
      return make_error(ErrorCode::kValidation, "MaxAge must be an integer from -1 to 86400");
    }
    c.max_age = it->get<int>();
  }
  if (const auto it = body.find("AllowCredentials"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return make_error(ErrorCode::kValidation, "AllowCredentials must be true or false");
    c.allow_credentials = it->get<bool>();
  }
  if (c.allow_credentials && allowed_by_star(c)) {
    return make_error(ErrorCode::kValidation,
                      "AllowCredentials cannot be true when AllowOrigins contains '*': name the origins");
  }
  return c;
}

json to_json(const CorsConfig& c) {
  json out = {{"AllowOrigins", c.allow_origins},
              {"AllowMethods", c.allow_methods},
              {"AllowHeaders", c.allow_headers},
              {"ExposeHeaders", c.expose_headers},
              {"AllowCredentials", c.allow_credentials}};
  if (c.max_age) out["MaxAge"] = *c.max_age;
  return out;
}

bool origin_allowed(const CorsConfig& c, std::string_view origin) {
  if (origin.empty()) return false;
  const std::string o = detail::ascii_lower(origin);
  return std::any_of(c.allow_origins.begin(), c.allow_origins.end(),
                     [&](const std::string& pattern) { return glob_match(detail::ascii_lower(pattern), o); });
}

bool is_preflight(std::string_view method, std::string_view origin, std::string_view request_method) {
  return method == "OPTIONS" && !origin.empty() && !request_method.empty();
}

namespace {
std::string allow_origin_value(const CorsConfig& c, std::string_view origin) {
  return allowed_by_star(c) ? std::string("*") : std::string(origin);
}
}  // namespace

HeaderList preflight_headers(const CorsConfig& c, std::string_view origin, std::string_view request_method) {
  HeaderList out;
  if (!origin_allowed(c, origin)) return out;
  std::string method(request_method);
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char ch) { return std::toupper(ch); });
  const bool method_ok = std::any_of(c.allow_methods.begin(), c.allow_methods.end(),
                                     [&](const std::string& m) { return m == "*" || m == method; });
  if (!method_ok) return out;
  out.emplace_back("access-control-allow-origin", allow_origin_value(c, origin));
  out.emplace_back("access-control-allow-methods", join(c.allow_methods));
  if (!c.allow_headers.empty()) out.emplace_back("access-control-allow-headers", join(c.allow_headers));
  if (!c.expose_headers.empty()) out.emplace_back("access-control-expose-headers", join(c.expose_headers));
  if (c.max_age) out.emplace_back("access-control-max-age", std::to_string(*c.max_age));
  if (c.allow_credentials) out.emplace_back("access-control-allow-credentials", "true");
  if (!allowed_by_star(c)) out.emplace_back("vary", "Origin");
  return out;
}

void apply_cors(const CorsConfig& c, std::string_view origin, HeaderList& headers) {
  headers.erase(std::remove_if(headers.begin(), headers.end(), [](const auto& h) { return is_cors_header(h.first); }),
                headers.end());
  if (!origin_allowed(c, origin)) return;
  headers.emplace_back("access-control-allow-origin", allow_origin_value(c, origin));
  if (!c.expose_headers.empty()) headers.emplace_back("access-control-expose-headers", join(c.expose_headers));
  if (c.allow_credentials) headers.emplace_back("access-control-allow-credentials", "true");
  if (!allowed_by_star(c)) headers.emplace_back("vary", "Origin");
}

}  // namespace nimbus::gateway
