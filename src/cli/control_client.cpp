#include "cli/control_client.h"

#include <cstdlib>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/files.h"
#include "base/json.h"
#include "daemon/daemon.h"

namespace nimbus::cli {

using base::ErrorCode;
using base::make_error;

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
}  // namespace

base::Result<ControlClient> ControlClient::connect(const ClientOptions& options) {
  ControlClient c;
  c.region_ = options.region;
  const auto data_dir = options.data_dir.empty() ? daemon::default_data_dir() : options.data_dir;
  std::string url = options.endpoint;
  if (url.empty()) url = env("NIMBUS_ENDPOINT");
  if (url.empty()) {
    if (auto text = base::read_file(data_dir / "endpoints.json"); text.ok()) {
      auto doc = nlohmann::json::parse(*text, nullptr, false);
      if (doc.is_object() && doc.contains("api") && doc["api"].is_string()) url = doc["api"].get<std::string>();
    }
  }
  if (url.empty()) url = "http://127.0.0.1:9000";
  auto ep = http::parse_endpoint(url);
  if (!ep.ok()) return std::move(ep).error();
  c.endpoint_ = *ep;
  c.endpoint_url_ = url;

  const std::string akid = env("AWS_ACCESS_KEY_ID");
  const std::string secret = env("AWS_SECRET_ACCESS_KEY");
  if (!akid.empty() && !secret.empty()) {
    c.credentials_ = api::Credentials{akid, secret};
  } else if (auto creds = daemon::read_credentials(data_dir); creds.ok()) {
    c.credentials_ = std::move(*creds);
  }
  return c;
}

base::Result<ApiReply> ControlClient::call(http::Verb method, const std::string& target,
                                           const std::optional<nlohmann::json>& body) {
  if (!body) return call_raw(method, target, {}, {});
  return call_raw(method, target, base::dump_json(*body), {{"Content-Type", "application/json"}});
}

base::Result<ApiReply> ControlClient::call_raw(http::Verb method, const std::string& target, std::string body,
                                               const std::map<std::string, std::string>& headers) {
  http::Request req{method, target, 11};
  req.set(http::Field::host, fmt::format("{}:{}", endpoint_.host, endpoint_.port));
  req.set(http::Field::user_agent, "nimbus-cli");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::move(body);
  req.prepare_payload();
  if (credentials_) {
    base::SystemClock clock;
    api::sign_sigv4(req, *credentials_, region_, "lambda", clock.now_ms());
  }
  auto res = http::send(endpoint_, std::move(req));
  if (!res.ok()) {
    return make_error(ErrorCode::kService,
                      res.error().message + " (is `nimbus serve` running? set --endpoint or NIMBUS_ENDPOINT)");
  }
  ApiReply reply;
  reply.status = res->result_int();
  reply.raw = res->body();
  for (const auto& field : *res) reply.headers[std::string(field.name_string())] = std::string(field.value());
  if (!reply.raw.empty()) {
    reply.body = nlohmann::json::parse(reply.raw, nullptr, false);
    if (reply.body.is_discarded()) reply.body = nullptr;
  }
  if (reply.status >= 200 && reply.status < 300) return reply;
  std::string type = std::string((*res)["x-amzn-ErrorType"]);
  std::string message;
  if (reply.body.is_object()) {
    if (reply.body.contains("message")) message = reply.body["message"].get<std::string>();
    else if (reply.body.contains("Message")) message = reply.body["Message"].get<std::string>();
  }
  if (type.empty()) type = fmt::format("HTTP {}", reply.status);
  if (message.empty()) message = reply.raw;
  ErrorCode code = ErrorCode::kService;
  if (reply.status == 404) code = ErrorCode::kResourceNotFound;
  else if (reply.status == 409) code = ErrorCode::kResourceConflict;
  else if (reply.status < 500) code = ErrorCode::kInvalidParameterValue;
  return make_error(code, fmt::format("{}: {}", type, message));
}

}  // namespace nimbus::cli
