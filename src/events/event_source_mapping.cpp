#include "events/event_source_mapping.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/crypto.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

base::Error out_of_range(std::string_view member, std::int64_t value, std::string_view rule) {
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: "
                                "Member must have value {}",
                                value, member, rule));
}

base::Status check_range(std::string_view member, std::int64_t value, std::int64_t lo, std::int64_t hi) {
  if (value < lo) return out_of_range(member, value, fmt::format("greater than or equal to {}", lo));
  if (value > hi) return out_of_range(member, value, fmt::format("less than or equal to {}", hi));
  return base::Ok{};
}

}  // namespace

base::Status apply_spec(const MappingSpec& spec, bool fifo_queue, EventSourceMapping& m) {
  if (spec.function) m.function = *spec.function;
  if (spec.qualifier) m.qualifier = *spec.qualifier;
  if (spec.event_source_arn) m.event_source_arn = *spec.event_source_arn;
  if (spec.batch_size) {
    NIMBUS_TRY(check_range("batchSize", *spec.batch_size, 1, kMaxBatchSize));
    m.batch_size = *spec.batch_size;
  }
  if (spec.batching_window_s) {
    NIMBUS_TRY(check_range("maximumBatchingWindowInSeconds", *spec.batching_window_s, 0, kMaxBatchingWindowSeconds));
    m.batching_window_s = *spec.batching_window_s;
  }
  if (spec.function_response_types) {
    bool report = false;
    for (const auto& type : *spec.function_response_types) {
      if (type != kReportBatchItemFailures) {
        return make_error(ErrorCode::kValidation,
                          fmt::format("1 validation error detected: Value '[{}]' at 'functionResponseTypes' failed "
                                      "to satisfy constraint: Member must satisfy constraint: [Member must satisfy "
                                      "enum value set: [ReportBatchItemFailures]]",
                                      type));
      }
      report = true;
    }
    m.report_batch_item_failures = report;
  }
  if (spec.maximum_concurrency) {
    if (*spec.maximum_concurrency) {
      NIMBUS_TRY(check_range("scalingConfig.maximumConcurrency", **spec.maximum_concurrency, kMinMaximumConcurrency,
                             kMaxMaximumConcurrency));
    }
    m.maximum_concurrency = *spec.maximum_concurrency;
  }
  if (spec.filters) {
    if (spec.filters->size() > kMaxFilters) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("FilterCriteria holds {} filters; at most {} are allowed", spec.filters->size(),
                                    kMaxFilters));
    }
    for (const auto& pattern : *spec.filters) {
      if (auto parsed = EventFilter::parse(pattern); !parsed.ok()) return std::move(parsed).error();
    }
    m.filters = *spec.filters;
  }
  if (spec.enabled) m.enabled = *spec.enabled;

  if (fifo_queue) {
    if (m.batch_size > kMaxFifoBatchSize) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("BatchSize {} is not supported for FIFO queues: it must be between 1 and {}",
                                    m.batch_size, kMaxFifoBatchSize));
    }
    if (m.batching_window_s > 0) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        "Batching window is not supported for FIFO queues: MaximumBatchingWindowInSeconds must be 0");
    }
  }
  if (m.batch_size > kMaxUnwindowedBatchSize && m.batching_window_s == 0) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10");
  }
  return base::Ok{};
}

std::string to_document(const EventSourceMapping& m) {
  json doc = {{"uuid", m.uuid},
              {"event_source_arn", m.event_source_arn},
              {"queue", m.queue},
              {"function", m.function},
              {"qualifier", m.qualifier},
              {"batch_size", m.batch_size},
              {"batching_window_s", m.batching_window_s},
              {"report_batch_item_failures", m.report_batch_item_failures},
              {"enabled", m.enabled},
              {"last_modified_ms", m.last_modified_ms}};
  if (m.maximum_concurrency) doc["maximum_concurrency"] = *m.maximum_concurrency;
  if (!m.filters.empty()) doc["filters"] = m.filters;
  return doc.dump();
}

base::Result<EventSourceMapping> mapping_from_document(std::string_view document) {
  const json doc = json::parse(document, nullptr, false);
  if (!doc.is_object() || !doc.contains("uuid") || !doc.contains("queue") || !doc.contains("function")) {
    return make_error(ErrorCode::kService, "event source mapping: unreadable stored document");
  }
  try {
    EventSourceMapping m;
    m.uuid = doc.at("uuid").get<std::string>();
    m.event_source_arn = doc.value("event_source_arn", "");
    m.queue = doc.at("queue").get<std::string>();
    m.function = doc.at("function").get<std::string>();
    m.qualifier = doc.value("qualifier", "");
    m.batch_size = doc.value("batch_size", kDefaultBatchSize);
    m.batching_window_s = doc.value("batching_window_s", 0);
    m.report_batch_item_failures = doc.value("report_batch_item_failures", false);
    if (doc.contains("maximum_concurrency")) m.maximum_concurrency = doc.at("maximum_concurrency").get<int>();
    if (doc.contains("filters")) m.filters = doc.at("filters").get<std::vector<std::string>>();
    m.enabled = doc.value("enabled", true);
    m.last_modified_ms = doc.value("last_modified_ms", std::int64_t{0});
    return m;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kService, fmt::format("event source mapping: stored document: {}", e.what()));
  }
}

std::int64_t batch_visibility_s(std::int64_t queue_visibility_s, int batching_window_s, int function_timeout_s) {
  const std::int64_t needed = std::int64_t{batching_window_s} + function_timeout_s;
  if (needed <= queue_visibility_s) return queue_visibility_s;
  return std::min(needed + 30, kMaxVisibilitySeconds);
}

json sqs_event(std::span<const ReceivedMessage> messages, std::string_view queue_arn, std::string_view region) {
  json records = json::array();
  for (const auto& m : messages) {
    json attributes = json::object();
    for (const auto& [name, value] : m.system_attributes) attributes[name] = value;
    json message_attributes = json::object();
    for (const auto& [name, a] : m.attributes) {
      json attr = {{"stringListValues", json::array()}, {"binaryListValues", json::array()}, {"dataType", a.data_type}};
      if (a.binary()) {
        attr["binaryValue"] = base::base64_encode(a.value);
      } else {
        attr["stringValue"] = a.value;
      }
      message_attributes[name] = std::move(attr);
    }
    json record = {{"messageId", m.message_id},
                   {"receiptHandle", m.receipt_handle},
                   {"body", m.body},
                   {"attributes", std::move(attributes)},
                   {"messageAttributes", std::move(message_attributes)},
                   {"md5OfBody", m.md5_of_body}};
    if (!m.attributes.empty()) record["md5OfMessageAttributes"] = md5_of_attributes(m.attributes);
    record["eventSource"] = "aws:sqs";
    record["eventSourceARN"] = queue_arn;
    record["awsRegion"] = region;
    records.push_back(std::move(record));
  }
  return json{{"Records", std::move(records)}};
}

BatchOutcome read_batch_response(std::string_view payload, const std::set<std::string>& batch_ids) {
  BatchOutcome out;
  const auto whole = [&out](std::string reason) {
    out.whole_batch_failed = true;
    out.failed_ids.clear();
    out.reason = std::move(reason);
    return out;
  };
  // Empty or null answers, and {} or a null / empty list, mean success.
  const auto first = payload.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return out;
  const json doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded()) return whole("the response is not JSON");
  if (doc.is_null()) return out;
  if (!doc.is_object()) return whole("the response is not a JSON object");
  if (doc.empty()) return out;
  const auto it = doc.find("batchItemFailures");
  if (it == doc.end()) return whole("the response has no batchItemFailures member");
  if (it->is_null()) return out;
  if (!it->is_array()) return whole("batchItemFailures is not a list");
  for (const auto& item : *it) {
    if (!item.is_object()) return whole("a batchItemFailures entry is not an object");
    const auto id = item.find("itemIdentifier");
    if (id == item.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
      return whole("a batchItemFailures entry has no itemIdentifier");
    }
    const auto& text = id->get_ref<const std::string&>();
    if (!batch_ids.contains(text)) return whole(fmt::format("itemIdentifier '{}' is not a message of the batch", text));
    out.failed_ids.insert(text);
  }
  return out;
}

}  // namespace nimbus::events
