#include "gateway/response.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace nimbus::gateway {

using base::ErrorCode;
using nlohmann::json;

namespace {

base::Error unusable(std::string_view why) {
  return base::make_error(ErrorCode::kService, fmt::format("unusable function output: {}", why));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool has_header(const GatewayResponse& r, std::string_view name) {
  return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

// A header value as text: strings as they are, other scalars in JSON form
// (true → "true"); null, objects and arrays are not header values.
base::Result<std::string> scalar_text(const json& v, std::string_view name) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean() || v.is_number()) return v.dump();
  return unusable(fmt::format("header '{}' is not a string", name));
}

// statusCode as a number or a numeric string, 100-599.
base::Result<unsigned> status_of(const json& v) {
  long long code = -1;
  if (v.is_number_integer()) {
    code = v.get<long long>();
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (!s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      code = std::stoll(s);
    }
  }
  if (code < 100 || code > 599) return unusable("statusCode is not an HTTP status");
  return static_cast<unsigned>(code);
}

// body + isBase64Encoded → the bytes to send.
base::Result<std::string> body_of(const json& out) {
  const auto body = out.find("body");
  if (body == out.end() || body->is_null()) return std::string();
  if (!body->is_string()) return unusable("body is not a string");
  const auto b64 = out.find("isBase64Encoded");
  if (b64 != out.end() && !b64->is_null() && !b64->is_boolean()) return unusable("isBase64Encoded is not a boolean");
  if (b64 != out.end() && b64->is_boolean() && b64->get<bool>()) {
    auto decoded = base::base64_decode(body->get_ref<const std::string&>());
    if (!decoded) return unusable("body is not valid base64");
    return std::move(*decoded);
  }
  return body->get<std::string>();
}

}  // namespace

GatewayResponse message_response(unsigned status, std::string_view message) {
  GatewayResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = json{{"message", message}}.dump();
  return r;
}

base::Result<GatewayResponse> map_response_v2(std::string_view output) {
  const json out = json::parse(output, nullptr, false);
  if (out.is_discarded()) return unusable("not JSON");
  GatewayResponse r;
  if (!out.is_object() || !out.contains("statusCode")) {
    // Inferred: the whole output is the JSON body.
    r.headers.emplace_back("content-type", "application/json");
    r.body = std::string(output);
    return r;
  }
  auto status = status_of(out["statusCode"]);
  if (!status.ok()) return std::move(status).error();
  r.status = *status;
  if (const auto h = out.find("headers"); h != out.end() && !h->is_null()) {
    if (!h->is_object()) return unusable("headers is not an object");
    for (const auto& [name, value] : h->items()) {
      auto text = scalar_text(value, name);
      if (!text.ok()) return std::move(text).error();
      r.headers.emplace_back(name, std::move(*text));
    }
  }
  if (const auto c = out.find("cookies"); c != out.end() && !c->is_null()) {
    if (!c->is_array()) return unusable("cookies is not an array");
    for (const auto& cookie : *c) {
      if (!cookie.is_string()) return unusable("a cookie is not a string");
      r.headers.emplace_back("set-cookie", cookie.get<std::string>());
    }
  }
  auto body = body_of(out);
  if (!body.ok()) return std::move(body).error();
  r.body = std::move(*body);
  return r;
}

base::Result<GatewayResponse> map_response_v1(std::string_view output) {
  const json out = json::parse(output, nullptr, false);
  if (out.is_discarded()) return unusable("not JSON");
  if (!out.is_object()) return unusable("not a JSON object");
  static constexpr std::string_view kKnown[] = {"statusCode", "headers", "multiValueHeaders", "body",
                                                "isBase64Encoded"};
  if (out.empty()) return unusable("empty object");
  for (const auto& [key, value] : out.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return unusable(fmt::format("unknown key '{}'", key));
    }
  }
  GatewayResponse r;
  if (const auto s = out.find("statusCode"); s != out.end()) {
    auto status = status_of(*s);
    if (!status.ok()) return std::move(status).error();
    r.status = *status;
  }
  std::vector<std::pair<std::string, std::string>> single;
  if (const auto h = out.find("headers"); h != out.end() && !h->is_null()) {
    if (!h->is_object()) return unusable("headers is not an object");
    for (const auto& [name, value] : h->items()) {
      auto text = scalar_text(value, name);
      if (!text.ok()) return std::move(text).error();
      single.emplace_back(name, std::move(*text));
    }
  }
  if (const auto m = out.find("multiValueHeaders"); m != out.end() && !m->is_null()) {
    if (!m->is_object()) return unusable("multiValueHeaders is not an object");
    for (const auto& [name, values] : m->items()) {
      if (!values.is_array()) return unusable(fmt::format("multiValueHeaders '{}' is not an array", name));
      std::vector<std::string> texts;
      for (const auto& v : values) {
        auto text = scalar_text(v, name);
        if (!text.ok()) return std::move(text).error();
        texts.push_back(std::move(*text));
      }
      const std::string& multi_name = name;  // a structured binding cannot be captured before C++20's fix (Clang 14)
      const auto solo =
          std::find_if(single.begin(), single.end(), [&](const auto& h) { return iequals(h.first, multi_name); });
      if (solo != single.end()) {
        // One header, the multi values first, named as in multiValueHeaders.
        texts.push_back(solo->second);
        single.erase(solo);
        std::string joined;
        for (const auto& t : texts) joined += (joined.empty() ? "" : ", ") + t;
        r.headers.emplace_back(name, std::move(joined));
      } else {
        for (auto& t : texts) r.headers.emplace_back(name, std::move(t));
      }
    }
  }
  for (auto& h : single) r.headers.push_back(std::move(h));
  auto body = body_of(out);
  if (!body.ok()) return std::move(body).error();
  r.body = std::move(*body);
  if (!has_header(r, "content-type")) r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

}  // namespace nimbus::gateway
