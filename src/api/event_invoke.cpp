// Asynchronous invocation on the Lambda API: Invoke with InvocationType
// Event, and the event invoke config operations (lambda-api.md §2.3, §2.6).
#include <fmt/format.h>

#include "api/codec.h"
#include "api/detail/responses.h"
#include "api/lambda_api.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

using detail::empty_response;
using detail::json_response;
using detail::query_value;
using detail::validation_error;

namespace {

base::Error events_not_configured() {
  return make_error(ErrorCode::kService, "this nimbus runs without the events part (asynchronous invocation)");
}


base::Status read_destination(const json& config, const char* member, const char* path,
                              std::optional<std::string>& out) {
  const auto it = config.find(member);
  if (it == config.end() || it->is_null()) return base::Ok{};
  if (!it->is_object()) return validation_error(path, *it, "Member must be a structure");
  NIMBUS_TRY(reject_unknown(*it, {"Destination"}, member));
  const auto d = it->find("Destination");
  if (d == it->end() || d->is_null()) {
    out = std::string();
    return base::Ok{};
  }
  if (!d->is_string()) return validation_error(fmt::format("{}.destination", path), *d, "Member must be a string");
  out = d->get<std::string>();
  return base::Ok{};
}

base::Result<events::EventInvokeConfigSpec> parse_event_invoke_config(const json& body) {
  NIMBUS_TRY(reject_unknown(body, {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"},
                            "PutFunctionEventInvokeConfig"));
  events::EventInvokeConfigSpec spec;
  if (const auto it = body.find("MaximumRetryAttempts"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return validation_error("maximumRetryAttempts", *it, "Member must be an integer");
    spec.maximum_retry_attempts = static_cast<int>(std::clamp<std::int64_t>(it->get<std::int64_t>(), -1, 1000));
  }
  if (const auto it = body.find("MaximumEventAgeInSeconds"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return validation_error("maximumEventAgeInSeconds", *it, "Member must be an integer");
    spec.maximum_event_age_s = it->get<std::int64_t>();
  }
  if (const auto it = body.find("DestinationConfig"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return validation_error("destinationConfig", *it, "Member must be a structure");
    NIMBUS_TRY(reject_unknown(*it, {"OnSuccess", "OnFailure"}, "DestinationConfig"));
    NIMBUS_TRY(read_destination(*it, "OnSuccess", "destinationConfig.onSuccess", spec.on_success));
    NIMBUS_TRY(read_destination(*it, "OnFailure", "destinationConfig.onFailure", spec.on_failure));
  }
  return spec;
}

json destination_view(const std::string& arn) {
  return arn.empty() ? json::object() : json{{"Destination", arn}};
}

}  // namespace

namespace {
json render_event_invoke_config(const events::EventInvokeConfig& c, const std::string& arn) {
  json out = {{"LastModified", static_cast<double>(c.last_modified_ms) / 1000.0},
              {"FunctionArn", arn},
              {"DestinationConfig",
               {{"OnSuccess", destination_view(c.on_success)}, {"OnFailure", destination_view(c.on_failure)}}}};
  if (c.maximum_retry_attempts) out["MaximumRetryAttempts"] = *c.maximum_retry_attempts;
  if (c.maximum_event_age_s) out["MaximumEventAgeInSeconds"] = *c.maximum_event_age_s;
  return out;
}
}  // namespace

http::Response LambdaApi::write_event_invoke_config(const http::Request& req, const http::Params& path,
                                                    const http::Params& query, events::ConfigWrite mode) {
  if (event_configs_ == nullptr) return render_error(events_not_configured(), req.version());
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  NIMBUS_API_TRY(parse_event_invoke_config(*body), spec);
  NIMBUS_API_TRY(event_configs_->put(ref->name, ref->qualifier, *spec, mode), config);
  return json_response(http::Status::ok,
                       render_event_invoke_config(*config, registry_.function_arn(ref->name, config->qualifier)),
                       req.version());
}

http::Response LambdaApi::put_event_invoke_config(const http::Request& req, const http::Params& path,
                                                  const http::Params& query) {
  return write_event_invoke_config(req, path, query, events::ConfigWrite::kReplace);
}

http::Response LambdaApi::update_event_invoke_config(const http::Request& req, const http::Params& path,
                                                     const http::Params& query) {
  return write_event_invoke_config(req, path, query, events::ConfigWrite::kMerge);
}

http::Response LambdaApi::get_event_invoke_config(const http::Request& req, const http::Params& path,
                                                  const http::Params& query) {
  if (event_configs_ == nullptr) return render_error(events_not_configured(), req.version());
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(event_configs_->get(ref->name, ref->qualifier), config);
  return json_response(http::Status::ok,
                       render_event_invoke_config(*config, registry_.function_arn(ref->name, config->qualifier)),
                       req.version());
}

http::Response LambdaApi::delete_event_invoke_config(const http::Request& req, const http::Params& path,
                                                     const http::Params& query) {
  if (event_configs_ == nullptr) return render_error(events_not_configured(), req.version());
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  if (auto s = event_configs_->remove(ref->name, ref->qualifier); !s.ok()) return render_error(s.error(), req.version());
  return empty_response(http::Status::no_content, req.version());
}

http::Response LambdaApi::list_event_invoke_configs(const http::Request& req, const http::Params& path,
                                                    const http::Params& query) {
  if (event_configs_ == nullptr) return render_error(events_not_configured(), req.version());
  if (const std::string* m = http::find_param(query, "MaxItems"); m != nullptr) {
    char* end = nullptr;
    const long v = std::strtol(m->c_str(), &end, 10);
    if (m->empty() || *end != '\0' || v < 1 || v > 50) {
      return render_error(validation_error("maxItems", *m, "Member must have value between 1 and 50"), req.version());
    }
  }
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(event_configs_->list(*name), configs);
  json items = json::array();
  for (const auto& c : *configs) {
    items.push_back(render_event_invoke_config(c, registry_.function_arn(c.function, c.qualifier)));
  }
  return json_response(http::Status::ok, {{"FunctionEventInvokeConfigs", std::move(items)}}, req.version());
}

http::asio::awaitable<http::Response> LambdaApi::invoke_event(std::string name, std::string qualifier,
                                                              std::string payload, unsigned version) {
  if (async_queue_ == nullptr) co_return render_error(events_not_configured(), version);
  events::AsyncRequest request;
  request.function = std::move(name);
  request.qualifier = std::move(qualifier);
  request.payload = std::move(payload);
  // Answered only once the row is committed; a store error answers 500 and keeps nothing.
  auto id = co_await async_queue_->enqueue(std::move(request));
  if (!id.ok()) co_return render_error(id.error(), version);
  http::Response res{http::Status::accepted, version};
  res.set("x-amzn-RequestId", *id);
  co_return res;
}

}  // namespace nimbus::api
