#include "events/invoke_config.h"

#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

RetryLimits EventInvokeConfig::limits() const {
  RetryLimits l;
  if (maximum_retry_attempts) l.maximum_retry_attempts = *maximum_retry_attempts;
  if (maximum_event_age_s) l.maximum_event_age_s = *maximum_event_age_s;
  return l;
}

namespace {
const std::regex& destination_pattern() {
  // botocore's DestinationArn pattern.
  static const std::regex kPattern(
      R"(arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*))");
  return kPattern;
}

std::vector<std::string> split_colons(std::string_view arn) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto colon = arn.find(':', start);
    parts.emplace_back(arn.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return parts;
}
}  // namespace

base::Result<Destination> parse_destination(std::string_view arn) {
  if (arn.size() > 350 || !std::regex_match(arn.begin(), arn.end(), destination_pattern())) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'destinationConfig.onFailure.destination' "
                                  "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                                  "^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}})?:"
                                  "(\\d{{12}})?:(.*)",
                                  arn));
  }
  const auto parts = split_colons(arn);
  Destination d;
  d.arn = std::string(arn);
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
  if (parts[2] == "lambda" && parts.size() >= 7 && parts.size() <= 8 && parts[5] == "function" &&
      !parts[6].empty()) {
    d.kind = Destination::Kind::kFunction;
    d.function = parts[6];
    if (parts.size() == 8) d.qualifier = parts[7];
    return d;
  }
  // arn:aws:sqs:REGION:ACCOUNT:NAME
  if (parts[2] == "sqs" && parts.size() == 6 && !parts[5].empty()) {
    d.kind = Destination::Kind::kQueue;
    return d;
  }
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("The destination ARN {} is not supported: nimbus delivers to Lambda functions "
                                "(arn:aws:lambda:REGION:ACCOUNT:function:NAME) and SQS queues "
                                "(arn:aws:sqs:REGION:ACCOUNT:NAME)",
                                arn));
}

base::Status check_dead_letter_target(std::string_view arn) {
  if (arn.empty()) return base::Ok{};
  static const std::regex kResourceArn(R"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)");
  if (!std::regex_match(arn.begin(), arn.end(), kResourceArn)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'deadLetterConfig.targetArn' failed to "
                                  "satisfy constraint: Member must satisfy regular expression pattern: "
                                  "(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()",
                                  arn));
  }
  const auto parts = split_colons(arn);
  if (parts.size() != 6 || parts[2] != "sqs" || parts[5].empty()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("The dead-letter target {} is not supported: nimbus takes an SQS queue ARN "
                                  "(arn:aws:sqs:REGION:ACCOUNT:NAME)",
                                  arn));
  }
  return base::Ok{};
}

std::string to_document(const EventInvokeConfig& c) {
  json d = {{"function", c.function},
            {"qualifier", c.qualifier},
            {"on_success", c.on_success},
            {"on_failure", c.on_failure},
            {"last_modified_ms", c.last_modified_ms}};
  if (c.maximum_retry_attempts) d["maximum_retry_attempts"] = *c.maximum_retry_attempts;
  if (c.maximum_event_age_s) d["maximum_event_age_s"] = *c.maximum_event_age_s;
  return d.dump();
}

EventInvokeConfig event_invoke_config_from_document(const std::string& document) {
  const json d = json::parse(document, nullptr, false);
  EventInvokeConfig c;
  if (!d.is_object()) return c;
  c.function = d.value("function", "");
  c.qualifier = d.value("qualifier", "$LATEST");
  c.on_success = d.value("on_success", "");
  c.on_failure = d.value("on_failure", "");
  c.last_modified_ms = d.value("last_modified_ms", std::int64_t{0});
  if (d.contains("maximum_retry_attempts")) c.maximum_retry_attempts = d["maximum_retry_attempts"].get<int>();
  if (d.contains("maximum_event_age_s")) c.maximum_event_age_s = d["maximum_event_age_s"].get<std::int64_t>();
  return c;
}

EventInvokeConfigs::EventInvokeConfigs(store::Store& store, registry::Registry& registry, const base::Clock& clock)
    : store_(store), registry_(registry), clock_(clock) {}

std::string EventInvokeConfigs::cache_key(const std::string& function, const std::string& qualifier) const {
  return function + ":" + (qualifier.empty() ? std::string(registry::kLatest) : qualifier);
}

base::Status EventInvokeConfigs::check_exists(const std::string& function, const std::string& qualifier) {
  if (auto target = registry_.get_qualified(function, qualifier); !target.ok()) {
    return make_error(ErrorCode::kResourceNotFound, "The function doesn't exist.");
  }
  return base::Ok{};
}

base::Result<EventInvokeConfig> EventInvokeConfigs::put(const std::string& function, const std::string& qualifier_in,
                                                        const EventInvokeConfigSpec& spec, ConfigWrite mode) {
  const std::string qualifier = qualifier_in.empty() ? std::string(registry::kLatest) : qualifier_in;
  NIMBUS_TRY(check_exists(function, qualifier));
  if (spec.maximum_retry_attempts && (*spec.maximum_retry_attempts < 0 || *spec.maximum_retry_attempts > 2)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'maximumRetryAttempts' failed to satisfy "
                                  "constraint: Member must have value {} 2",
                                  *spec.maximum_retry_attempts,
                                  *spec.maximum_retry_attempts < 0 ? "greater than or equal to 0, and less than or equal to"
                                                                   : "less than or equal to"));
  }
  if (spec.maximum_event_age_s && (*spec.maximum_event_age_s < 60 || *spec.maximum_event_age_s > 21600)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'maximumEventAgeInSeconds' failed to "
                                  "satisfy constraint: Member must have value {}",
                                  *spec.maximum_event_age_s,
                                  *spec.maximum_event_age_s < 60 ? "greater than or equal to 60"
                                                                 : "less than or equal to 21600"));
  }
  for (const auto* target : {&spec.on_success, &spec.on_failure}) {
    if (!*target || (*target)->empty()) continue;
    auto d = parse_destination(**target);
    if (!d.ok()) {
      base::Error e = std::move(d).error();
      if (target == &spec.on_success) {
        const auto at = e.message.find("destinationConfig.onFailure");
        if (at != std::string::npos) e.message.replace(at, 27, "destinationConfig.onSuccess");
      }
      return e;
    }
    if (d->kind == Destination::Kind::kFunction && d->function == function) {
      return make_error(ErrorCode::kInvalidParameterValue, "You can't specify the function as a destination for itself.");
    }
  }
  EventInvokeConfig config;
  if (mode == ConfigWrite::kMerge) {
    auto current = get(function, qualifier);
    if (current.ok()) config = *current;
  }
  config.function = function;
  config.qualifier = qualifier;
  if (mode == ConfigWrite::kReplace || spec.maximum_retry_attempts) config.maximum_retry_attempts = spec.maximum_retry_attempts;
  if (mode == ConfigWrite::kReplace || spec.maximum_event_age_s) config.maximum_event_age_s = spec.maximum_event_age_s;
  if (mode == ConfigWrite::kReplace || spec.on_success) config.on_success = spec.on_success.value_or("");
  if (mode == ConfigWrite::kReplace || spec.on_failure) config.on_failure = spec.on_failure.value_or("");
  if (!config.maximum_retry_attempts && !config.maximum_event_age_s && config.on_success.empty() &&
      config.on_failure.empty() && !spec.on_success && !spec.on_failure) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "You must specify at least one of error handling or destination setting.");
  }
  config.last_modified_ms = clock_.now_ms();
  NIMBUS_TRY(store_.put_resource(
      store::ResourceRow{function, store::ResourceKind::kEventInvokeConfig, qualifier, to_document(config), ""}));
  std::lock_guard lock(mu_);
  cache_[cache_key(function, qualifier)] = config;
  return config;
}

base::Result<EventInvokeConfig> EventInvokeConfigs::get(const std::string& function, const std::string& qualifier_in) {
  const std::string qualifier = qualifier_in.empty() ? std::string(registry::kLatest) : qualifier_in;
  NIMBUS_TRY(check_exists(function, qualifier));
  auto row = store_.get_resource(store::ResourceKind::kEventInvokeConfig, function, qualifier);
  if (!row.ok()) {
    if (row.error().code != ErrorCode::kResourceNotFound) return std::move(row).error();
    return make_error(ErrorCode::kResourceNotFound,
                      fmt::format("The function {} doesn't have an EventInvokeConfig",
                                  registry_.function_arn(function, qualifier)));
  }
  return event_invoke_config_from_document(row->document);
}

base::Status EventInvokeConfigs::remove(const std::string& function, const std::string& qualifier_in) {
  const std::string qualifier = qualifier_in.empty() ? std::string(registry::kLatest) : qualifier_in;
  NIMBUS_TRY(check_exists(function, qualifier));
  if (auto s = store_.delete_resource(store::ResourceKind::kEventInvokeConfig, function, qualifier); !s.ok()) {
    if (s.error().code != ErrorCode::kResourceNotFound) return s;
    return make_error(ErrorCode::kResourceNotFound,
                      fmt::format("The function {} doesn't have an EventInvokeConfig",
                                  registry_.function_arn(function, qualifier)));
  }
  std::lock_guard lock(mu_);
  cache_[cache_key(function, qualifier)] = std::nullopt;
  return base::Ok{};
}

base::Result<std::vector<EventInvokeConfig>> EventInvokeConfigs::list(const std::string& function) {
  NIMBUS_TRY(check_exists(function, std::string(registry::kLatest)));
  auto rows = store_.list_resources(store::ResourceKind::kEventInvokeConfig, function, "", 1000);
  if (!rows.ok()) return std::move(rows).error();
  std::vector<EventInvokeConfig> out;
  for (const auto& row : *rows) out.push_back(event_invoke_config_from_document(row.document));
  return out;
}

EventInvokeConfig EventInvokeConfigs::effective(const std::string& function, const std::string& qualifier) {
  const std::string key = cache_key(function, qualifier);
  {
    std::lock_guard lock(mu_);
    if (const auto it = cache_.find(key); it != cache_.end()) {
      if (it->second) return *it->second;
      EventInvokeConfig defaults;
      defaults.function = function;
      return defaults;
    }
  }
  std::optional<EventInvokeConfig> found;
  auto row = store_.get_resource(store::ResourceKind::kEventInvokeConfig, function,
                                 qualifier.empty() ? std::string(registry::kLatest) : qualifier);
  if (row.ok()) found = event_invoke_config_from_document(row->document);
  std::lock_guard lock(mu_);
  cache_[key] = found;
  if (found) return *found;
  EventInvokeConfig defaults;
  defaults.function = function;
  return defaults;
}

void EventInvokeConfigs::forget_function(const std::string& function) {
  std::lock_guard lock(mu_);
  const std::string prefix = function + ":";
  for (auto it = cache_.lower_bound(prefix); it != cache_.end() && it->first.starts_with(prefix);) {
    it = cache_.erase(it);
  }
}

}  // namespace nimbus::events
