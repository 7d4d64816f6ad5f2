#pragma once
// Event invoke configs (Put/Get/Update/Delete/ListFunctionEventInvokeConfig):
// per function qualifier, the retry limits and the OnSuccess / OnFailure
// destinations of asynchronous invocations. Stored as
// store::ResourceKind::kEventInvokeConfig rows keyed by qualifier, so they go
// with their function; validated with Lambda's messages
// (shared/reference/lambda-api.md §2.6). Destinations: a Lambda function ARN
// or an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME).
//
// Threads: every method may be called from any thread. Reads are served from
// a cache filled on first use, so the dispatcher does not wait on the store;
// the api part calls forget_function() when a function is deleted.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "events/policy.h"
#include "registry/registry.h"
#include "store/store.h"

namespace nimbus::events {

struct EventInvokeConfig {
  std::string function;
  std::string qualifier = "$LATEST";
  std::optional<int> maximum_retry_attempts;
  std::optional<std::int64_t> maximum_event_age_s;
  std::string on_success;  // destination ARN or empty
  std::string on_failure;
  std::int64_t last_modified_ms = 0;

  [[nodiscard]] RetryLimits limits() const;
};

// The members a Put or Update request gave (already type-checked JSON).
struct EventInvokeConfigSpec {
  std::optional<int> maximum_retry_attempts;
  std::optional<std::int64_t> maximum_event_age_s;
  std::optional<std::string> on_success;
  std::optional<std::string> on_failure;
};

enum class ConfigWrite { kReplace /* Put */, kMerge /* Update */ };

// Where a destination ARN delivers.
struct Destination {
  enum class Kind { kFunction, kQueue } kind = Kind::kFunction;
  std::string function;   // kFunction
  std::string qualifier;  // kFunction, may be empty
  std::string arn;        // as configured
};
// Parses a destination or dead-letter ARN; kInvalidParameterValue for kinds
// nimbus cannot deliver to (SNS, EventBridge, S3).
[[nodiscard]] base::Result<Destination> parse_destination(std::string_view arn);
// Checks a function's DeadLetterConfig.TargetArn (an SQS queue ARN; SNS topics
// are not offered). Empty is allowed (no DLQ).
[[nodiscard]] base::Status check_dead_letter_target(std::string_view arn);

class EventInvokeConfigs {
 public:
  EventInvokeConfigs(store::Store& store, registry::Registry& registry, const base::Clock& clock);

  // Put (replace) or Update (merge). kResourceNotFound when the function or
  // qualifier does not exist; validation errors in Lambda's words.
  [[nodiscard]] base::Result<EventInvokeConfig> put(const std::string& function, const std::string& qualifier,
                                                    const EventInvokeConfigSpec& spec, ConfigWrite mode);
  [[nodiscard]] base::Result<EventInvokeConfig> get(const std::string& function, const std::string& qualifier);
  [[nodiscard]] base::Status remove(const std::string& function, const std::string& qualifier);
  [[nodiscard]] base::Result<std::vector<EventInvokeConfig>> list(const std::string& function);
  // The config that applies to an invocation of function:qualifier, or the
  // defaults (served from the cache).
  [[nodiscard]] EventInvokeConfig effective(const std::string& function, const std::string& qualifier);
  void forget_function(const std::string& function);

 private:
  base::Status check_exists(const std::string& function, const std::string& qualifier);
  std::string cache_key(const std::string& function, const std::string& qualifier) const;

  store::Store& store_;
  registry::Registry& registry_;
  const base::Clock& clock_;
  std::mutex mu_;
  // "function:qualifier" -> config, or nullopt when known to have none.
  std::map<std::string, std::optional<EventInvokeConfig>> cache_;  // GUARDED_BY(mu_)
};

[[nodiscard]] std::string to_document(const EventInvokeConfig& config);
[[nodiscard]] EventInvokeConfig event_invoke_config_from_document(const std::string& document);

}  // namespace nimbus::events
