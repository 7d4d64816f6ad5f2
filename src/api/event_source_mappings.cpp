// Event source mappings on the Lambda API: Create/Get/List/Update/Delete
// EventSourceMapping for SQS-compatible queues (lambda-api.md §2.7). The
// semantics live in events::EventSourceMappings; this file turns requests
// into MappingSpecs and mappings into Lambda's JSON.
#include <fmt/format.h>

#include "api/codec.h"
#include "api/detail/responses.h"
#include "api/lambda_api.h"
#include "events/event_source_mappings.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

using detail::json_response;
using detail::query_value;

namespace {

base::Error mappings_not_configured() {
  return make_error(ErrorCode::kService, "this nimbus runs without event source mappings");
}

base::Error type_error(std::string_view member, const json& value, std::string_view type) {
  return detail::validation_error(member, value, fmt::format("Member must be {}", type));
}

// Members of the operations that only streams, Kafka, MQ or DocumentDB take.
constexpr std::string_view kNotForQueues[] = {
    "StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "DestinationConfig",
    "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
    "Topics", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig",
    "AmazonManagedKafkaEventSourceConfig", "DocumentDBEventSourceConfig", "ProvisionedPollerConfig"};

enum class MappingOperation { kCreate, kUpdate };

base::Result<std::optional<int>> read_int(const json& body, const char* member, const char* path) {
  const auto it = body.find(member);
  if (it == body.end() || it->is_null()) return std::optional<int>();
  if (!it->is_number_integer()) return type_error(path, *it, "an integer");
  return std::optional<int>(static_cast<int>(std::clamp<std::int64_t>(it->get<std::int64_t>(), -1, 1000000)));
}

// The body of Create or Update as a spec; FunctionName is resolved by the caller.
base::Result<events::MappingSpec> parse_mapping(const json& body, MappingOperation operation) {
  for (const auto member : kNotForQueues) {
    if (body.contains(member)) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("{} is not supported for SQS event sources", member));
    }
  }
  if (operation == MappingOperation::kCreate) {
    NIMBUS_TRY(reject_unknown(body,
                              {"FunctionName", "EventSourceArn", "Enabled", "BatchSize",
                               "MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "ScalingConfig",
                               "FilterCriteria", "Tags"},
                              "CreateEventSourceMapping"));
  } else {
    NIMBUS_TRY(reject_unknown(body,
                              {"FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
                               "FunctionResponseTypes", "ScalingConfig", "FilterCriteria"},
                              "UpdateEventSourceMapping"));
  }
  events::MappingSpec spec;
  if (const auto it = body.find("EventSourceArn"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return type_error("eventSourceArn", *it, "a string");
    spec.event_source_arn = it->get<std::string>();
  }
  if (const auto it = body.find("Enabled"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return type_error("enabled", *it, "a boolean");
    spec.enabled = it->get<bool>();
  }
  NIMBUS_TRY_ASSIGN(spec.batch_size, read_int(body, "BatchSize", "batchSize"));
  NIMBUS_TRY_ASSIGN(spec.batching_window_s,
                    read_int(body, "MaximumBatchingWindowInSeconds", "maximumBatchingWindowInSeconds"));
  if (const auto it = body.find("FunctionResponseTypes"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return type_error("functionResponseTypes", *it, "a list");
    std::vector<std::string> types;
    for (const auto& t : *it) {
      if (!t.is_string()) return type_error("functionResponseTypes", t, "a list of strings");
      types.push_back(t.get<std::string>());
    }
    spec.function_response_types = std::move(types);
  }
  if (const auto it = body.find("ScalingConfig"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return type_error("scalingConfig", *it, "a structure");
    NIMBUS_TRY(reject_unknown(*it, {"MaximumConcurrency"}, "ScalingConfig"));
    NIMBUS_TRY_ASSIGN(spec.maximum_concurrency, read_int(*it, "MaximumConcurrency", "scalingConfig.maximumConcurrency"));
  }
  if (const auto it = body.find("FilterCriteria"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return type_error("filterCriteria", *it, "a structure");
    NIMBUS_TRY(reject_unknown(*it, {"Filters"}, "FilterCriteria"));
    std::vector<std::string> patterns;
    if (const auto filters = it->find("Filters"); filters != it->end() && !filters->is_null()) {
      if (!filters->is_array()) return type_error("filterCriteria.filters", *filters, "a list");
      for (const auto& f : *filters) {
        if (!f.is_object()) return type_error("filterCriteria.filters", f, "a list of structures");
        NIMBUS_TRY(reject_unknown(f, {"Pattern"}, "Filter"));
        const auto pattern = f.find("Pattern");
        if (pattern == f.end() || !pattern->is_string()) {
          return type_error("filterCriteria.filters.member.pattern", pattern == f.end() ? json() : *pattern,
                            "a string");
        }
        patterns.push_back(pattern->get<std::string>());
      }
    }
    spec.filters = std::move(patterns);
  }
  return spec;
}

}  // namespace

json LambdaApi::render_mapping(const events::MappingView& view, std::string_view state) const {
  const events::EventSourceMapping& m = view.mapping;
  json types = json::array();
  if (m.report_batch_item_failures) types.push_back(events::kReportBatchItemFailures);
  json out = {{"UUID", m.uuid},
              {"EventSourceArn", m.event_source_arn},
              {"FunctionArn", registry_.function_arn(m.function, m.qualifier)},
              {"BatchSize", m.batch_size},
              {"MaximumBatchingWindowInSeconds", m.batching_window_s},
              {"FunctionResponseTypes", std::move(types)},
              {"LastModified", static_cast<double>(m.last_modified_ms) / 1000.0},
              {"State", state.empty() ? view.state : std::string(state)},
              {"StateTransitionReason", "USER_INITIATED"},
              {"LastProcessingResult", view.last_processing_result},
              {"EventSourceMappingArn", event_source_mappings_->mapping_arn(m.uuid)}};
  if (m.maximum_concurrency) out["ScalingConfig"] = {{"MaximumConcurrency", *m.maximum_concurrency}};
  if (!m.filters.empty()) {
    json filters = json::array();
    for (const auto& pattern : m.filters) filters.push_back({{"Pattern", pattern}});
    out["FilterCriteria"] = {{"Filters", std::move(filters)}};
  }
  return out;
}

http::asio::awaitable<http::Response> LambdaApi::create_event_source_mapping(const http::Request& req,
                                                                             const http::Params&,
                                                                             const http::Params&) {
  if (event_source_mappings_ == nullptr) co_return render_error(mappings_not_configured(), req.version());
  auto body = parse_body(req.body());
  if (!body.ok()) co_return render_error(body.error(), req.version());
  auto spec = parse_mapping(*body, MappingOperation::kCreate);
  if (!spec.ok()) co_return render_error(spec.error(), req.version());
  const auto name = body->find("FunctionName");
  if (name == body->end() || !name->is_string()) {
    co_return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                      "FunctionName is required: the function the queue feeds"),
                           req.version());
  }
  auto ref = registry_.resolve(name->get<std::string>());
  if (!ref.ok()) co_return render_error(ref.error(), req.version());
  spec->function = ref->name;
  spec->qualifier = ref->qualifier;
  auto created = co_await event_source_mappings_->create(std::move(*spec));
  if (!created.ok()) co_return render_error(created.error(), req.version());
  co_return json_response(http::Status::accepted, render_mapping(*created, "Creating"), req.version());
}

http::Response LambdaApi::get_event_source_mapping(const http::Request& req, const http::Params& path,
                                                   const http::Params&) {
  if (event_source_mappings_ == nullptr) return render_error(mappings_not_configured(), req.version());
  NIMBUS_API_TRY(event_source_mappings_->get(*http::find_param(path, "uuid")), view);
  return json_response(http::Status::ok, render_mapping(*view), req.version());
}

http::asio::awaitable<http::Response> LambdaApi::update_event_source_mapping(const http::Request& req,
                                                                             const http::Params& path,
                                                                             const http::Params&) {
  if (event_source_mappings_ == nullptr) co_return render_error(mappings_not_configured(), req.version());
  auto body = parse_body(req.body());
  if (!body.ok()) co_return render_error(body.error(), req.version());
  auto spec = parse_mapping(*body, MappingOperation::kUpdate);
  if (!spec.ok()) co_return render_error(spec.error(), req.version());
  if (const auto name = body->find("FunctionName"); name != body->end() && !name->is_null()) {
    if (!name->is_string()) co_return render_error(type_error("functionName", *name, "a string"), req.version());
    auto ref = registry_.resolve(name->get<std::string>());
    if (!ref.ok()) co_return render_error(ref.error(), req.version());
    spec->function = ref->name;
    spec->qualifier = ref->qualifier;
  }
  const std::string_view state = !spec->enabled ? "Updating" : *spec->enabled ? "Enabling" : "Disabling";
  auto updated = co_await event_source_mappings_->update(*http::find_param(path, "uuid"), std::move(*spec));
  if (!updated.ok()) co_return render_error(updated.error(), req.version());
  co_return json_response(http::Status::accepted, render_mapping(*updated, state), req.version());
}

http::asio::awaitable<http::Response> LambdaApi::delete_event_source_mapping(const http::Request& req,
                                                                             const http::Params& path,
                                                                             const http::Params&) {
  if (event_source_mappings_ == nullptr) co_return render_error(mappings_not_configured(), req.version());
  auto removed = co_await event_source_mappings_->remove(*http::find_param(path, "uuid"));
  if (!removed.ok()) co_return render_error(removed.error(), req.version());
  co_return json_response(http::Status::accepted, render_mapping(*removed, "Deleting"), req.version());
}

http::Response LambdaApi::list_event_source_mappings(const http::Request& req, const http::Params&,
                                                     const http::Params& query) {
  if (event_source_mappings_ == nullptr) return render_error(mappings_not_configured(), req.version());
  NIMBUS_API_TRY(detail::max_items(query), max);
  std::string function;
  std::string qualifier;
  if (const std::string name = query_value(query, "FunctionName"); !name.empty()) {
    NIMBUS_API_TRY(registry_.resolve(name), ref);
    function = ref->name;
    qualifier = ref->qualifier;
  }
  const events::MappingPage page = event_source_mappings_->list(
      query_value(query, "EventSourceArn"), function, qualifier, query_value(query, "Marker"),
      http::find_param(query, "MaxItems") ? std::min(*max, events::kMaxMappingsPage) : events::kMaxMappingsPage);
  json items = json::array();
  for (const auto& view : page.mappings) items.push_back(render_mapping(view));
  json out = {{"EventSourceMappings", std::move(items)}};
  if (!page.next_marker.empty()) out["NextMarker"] = page.next_marker;
  return json_response(http::Status::ok, out, req.version());
}

}  // namespace nimbus::api
