#pragma once
// The vocabulary of SQS event source mappings (a queue feeding a function in
// batches, shared/reference/events.md §3 and §9, lambda-api.md §2.7): the
// mapping itself, its checks with Lambda's messages, its stored form, the
// SQS event a batch becomes, and the reading of a partial batch response
// (ReportBatchItemFailures). Pure functions, callable from any thread; the
// service that polls lives in event_source_mappings.h.

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "events/event_filter.h"
#include "events/queue_service.h"

namespace nimbus::events {

inline constexpr int kDefaultBatchSize = 10;
inline constexpr int kMaxBatchSize = 10000;
inline constexpr int kMaxFifoBatchSize = 10;
// A larger batch needs a batching window of at least a second.
inline constexpr int kMaxUnwindowedBatchSize = 10;
inline constexpr int kMaxBatchingWindowSeconds = 300;
inline constexpr int kMinMaximumConcurrency = 2;
inline constexpr int kMaxMaximumConcurrency = 1000;
// Lambda's synchronous payload limit caps what one batch may carry.
inline constexpr std::size_t kMaxBatchPayloadBytes = 6 * 1024 * 1024;
inline constexpr std::string_view kReportBatchItemFailures = "ReportBatchItemFailures";
inline constexpr std::size_t kMaxFilters = 5;

struct EventSourceMapping {
  std::string uuid;
  std::string event_source_arn;      // arn:aws:sqs:REGION:ACCOUNT:NAME
  std::string queue;                 // NAME
  std::string function;              // unqualified function name
  std::string qualifier;             // "" (unqualified), a version or an alias
  int batch_size = kDefaultBatchSize;
  int batching_window_s = 0;
  bool report_batch_item_failures = false;
  std::optional<int> maximum_concurrency;  // ScalingConfig.MaximumConcurrency
  std::vector<std::string> filters;        // FilterCriteria patterns (event_filter.h); any may match
  bool enabled = true;
  std::int64_t last_modified_ms = 0;
};

// What a Create or Update request gave (already type-checked by the api
// part); absent members keep their current (or default) value.
struct MappingSpec {
  std::optional<std::string> function;
  std::optional<std::string> qualifier;
  std::optional<std::string> event_source_arn;
  std::optional<int> batch_size;
  std::optional<int> batching_window_s;
  std::optional<std::vector<std::string>> function_response_types;
  // ScalingConfig: outer absent = unchanged; inner absent = no maximum.
  std::optional<std::optional<int>> maximum_concurrency;
  std::optional<std::vector<std::string>> filters;  // FilterCriteria.Filters[].Pattern; empty clears
  std::optional<bool> enabled;
};

// Applies `spec` to `mapping` and checks the result with Lambda's messages
// (ranges, the batching window a batch over 10 needs, FIFO limits).
[[nodiscard]] base::Status apply_spec(const MappingSpec& spec, bool fifo_queue, EventSourceMapping& mapping);

[[nodiscard]] std::string to_document(const EventSourceMapping& mapping);
[[nodiscard]] base::Result<EventSourceMapping> mapping_from_document(std::string_view document);

// The visibility timeout a batch is received with: the queue's, unless the
// batching window plus the function timeout exceed it; then window +
// timeout + 30 s, as Lambda does.
[[nodiscard]] std::int64_t batch_visibility_s(std::int64_t queue_visibility_s, int batching_window_s,
                                              int function_timeout_s);

// Lambda's SQS event for a batch: {"Records": [...]} with every attribute a
// string, message attributes in the event's camelCase shape.
[[nodiscard]] nlohmann::json sqs_event(std::span<const ReceivedMessage> messages, std::string_view queue_arn,
                                       std::string_view region);

// What a function's answer to a batch means when ReportBatchItemFailures is
// on: the message ids to leave on the queue, or the whole batch (invalid
// JSON, a wrong shape, an empty or unknown itemIdentifier).
struct BatchOutcome {
  bool whole_batch_failed = false;
  std::set<std::string> failed_ids;
  std::string reason;  // why the whole batch failed
};
[[nodiscard]] BatchOutcome read_batch_response(std::string_view payload, const std::set<std::string>& batch_ids);

}  // namespace nimbus::events
