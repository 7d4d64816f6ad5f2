#include "gateway/validation.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "gateway/detail/text.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::string_view kQueryPrefix = "method.request.querystring.";
constexpr std::string_view kHeaderPrefix = "method.request.header.";
constexpr std::string_view kPathPrefix = "method.request.path.";

// The parameter's location prefix and name; the name is empty when the text
// is not one of the three forms.
std::pair<std::string_view, std::string_view> split_parameter(std::string_view text) {
  for (const auto prefix : {kQueryPrefix, kHeaderPrefix, kPathPrefix}) {
    if (text.starts_with(prefix)) return {prefix, text.substr(prefix.size())};
  }
  return {};
}

bool parameter_present(std::string_view parameter, const IncomingRequest& request, const http::Params& query,
                       const http::Params& path_parameters) {
  const auto [prefix, name] = split_parameter(parameter);
  if (prefix == kQueryPrefix) return http::find_param(query, name) != nullptr;
  if (prefix == kPathPrefix) {
    const std::string* value = http::find_param(path_parameters, name);
    return value != nullptr && !value->empty();
  }
  const std::string wanted = detail::ascii_lower(name);
  return std::any_of(request.headers.begin(), request.headers.end(),
                     [&](const auto& header) { return !header.second.empty() && detail::ascii_lower(header.first) == wanted; });
}

}  // namespace

base::Result<RequestValidation> parse_request_validation(const json& doc) {
  if (!doc.is_object()) {
    return make_error(ErrorCode::kValidation,
                      "Request validation must be a JSON object with RequiredParameters and/or BodySchema");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "RequiredParameters" && key != "BodySchema") {
      return make_error(ErrorCode::kValidation, fmt::format("Unknown request validation member '{}' (expected "
                                                            "RequiredParameters or BodySchema)",
                                                            key));
    }
  }
  RequestValidation out;
  if (const auto it = doc.find("RequiredParameters"); it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return make_error(ErrorCode::kValidation, "RequiredParameters must be a list of strings");
    std::vector<std::string> seen;
    for (const auto& item : *it) {
      if (!item.is_string()) return make_error(ErrorCode::kValidation, "RequiredParameters must be a list of strings");
      const auto& text = item.get_ref<const std::string&>();
      const auto [prefix, name] = split_parameter(text);
      if (name.empty()) {
        return make_error(ErrorCode::kValidation,
                          fmt::format("RequiredParameters item '{}' must be method.request.querystring.NAME, "
                                      "method.request.header.NAME or method.request.path.NAME",
                                      text));
      }
      std::string key = prefix == kHeaderPrefix ? detail::ascii_lower(text) : text;
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return make_error(ErrorCode::kValidation, fmt::format("RequiredParameters lists '{}' twice", text));
      }
      seen.push_back(std::move(key));
      out.required_parameters.push_back(text);
    }
  }
  if (const auto it = doc.find("BodySchema"); it != doc.end() && !it->is_null()) {
    json parsed;
    const json* schema = &*it;
    if (it->is_string()) {
      parsed = json::parse(it->get_ref<const std::string&>(), nullptr, false);
      if (parsed.is_discarded()) {
        return make_error(ErrorCode::kInvalidRequestContent, "BodySchema is a string but not valid JSON");
      }
      schema = &parsed;
    }
    auto compiled = JsonSchema::compile(*schema);
    if (!compiled.ok()) return std::move(compiled).error();
    out.body_schema = std::move(*compiled);
  }
  return out;
}

json to_json(const RequestValidation& validation) {
  json out = json::object();
  if (!validation.required_parameters.empty()) out["RequiredParameters"] = validation.required_parameters;
  if (validation.body_schema) out["BodySchema"] = validation.body_schema->document();
  return out;
}

std::optional<std::string> validate_request(const RequestValidation& validation, const IncomingRequest& request,
                                            const http::Params& path_parameters) {
  if (!validation.required_parameters.empty()) {
    const http::Params query = http::parse_query(request.raw_query);
    std::string missing;
    for (const auto& parameter : validation.required_parameters) {
      if (parameter_present(parameter, request, query, path_parameters)) continue;
      missing += fmt::format("{}{}", missing.empty() ? "" : ", ", split_parameter(parameter).second);
    }
    if (!missing.empty()) return fmt::format("Missing required request parameters: [{}]", missing);
  }
  if (!validation.body_schema) return std::nullopt;
  const json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return "Invalid request body: the body is not valid JSON";
  const auto messages = validation.body_schema->validate(body);
  if (messages.empty()) return std::nullopt;
  std::string joined;
  for (const auto& message : messages) joined += (joined.empty() ? "" : "; ") + message;
  return "Invalid request body: " + joined;
}

}  // namespace nimbus::gateway
