#pragma once
// The retry policy of asynchronous invocations, as pure functions over what
// happened so far (shared/reference/events.md §8): a function error is tried
// again MaximumRetryAttempts times (default 2), about 1 and 2 minutes later;
// a throttle or a platform error goes back to the queue with exponential
// backoff (1 s doubling to at most 5 min) until the event is older than
// MaximumEventAgeInSeconds (default 6 h). The dispatcher only applies these.
//
// All durations here are in event time. A test-only time scale (`nimbus
// serve --events-time-scale N`) makes N ms of event time pass per real ms;
// to_real_ms / to_event_ms convert.

#include <cstdint>
#include <string_view>

namespace nimbus::events {

inline constexpr int kDefaultMaximumRetryAttempts = 2;
inline constexpr std::int64_t kDefaultMaximumEventAgeSeconds = 21600;
inline constexpr std::int64_t kMinBackoffMs = 1000;
inline constexpr std::int64_t kMaxBackoffMs = 5 * 60 * 1000;

// How one attempt ended.
enum class AttemptOutcome {
  kSuccess,        // the function returned a result
  kFunctionError,  // handler error, timeout, crash (X-Amz-Function-Error)
  kThrottled,      // 429: concurrency limits
  kPlatformError,  // nimbus could not run it (instance failed to start, ...)
  kFunctionGone,   // the function or qualifier no longer exists: no retries
};

// Why an invocation ended (the destination record's requestContext.condition).
enum class Condition { kSuccess, kRetriesExhausted, kEventAgeExceeded };
[[nodiscard]] std::string_view condition_name(Condition condition);

struct RetryLimits {
  int maximum_retry_attempts = kDefaultMaximumRetryAttempts;         // 0..2
  std::int64_t maximum_event_age_s = kDefaultMaximumEventAgeSeconds;  // 60..21600
};

// What to do after an attempt.
struct Decision {
  enum class Kind { kRetry, kFinish } kind = Kind::kFinish;
  std::int64_t delay_ms = 0;            // kRetry: event time until the next attempt
  Condition condition = Condition::kSuccess;  // kFinish
};

// `function_errors` counts function errors so far including this attempt;
// `attempts` counts every attempt including this one; `age_ms` is the event's
// age now (event time).
[[nodiscard]] Decision decide(AttemptOutcome outcome, int attempts, int function_errors, std::int64_t age_ms,
                              const RetryLimits& limits);
// Delay before the attempt after the n-th function error (n >= 1): 1 min, 2 min.
[[nodiscard]] std::int64_t function_error_delay_ms(int function_errors);
// Backoff after the n-th throttled or failed attempt (n >= 1): 1 s doubling, at most 5 min.
[[nodiscard]] std::int64_t backoff_delay_ms(int retries);
// Whether an event of age `age_ms` (event time) may still be attempted.
[[nodiscard]] bool expired(std::int64_t age_ms, const RetryLimits& limits);

// Event time <-> real time under a time scale (>= 1; 1 in production).
[[nodiscard]] std::int64_t to_real_ms(std::int64_t event_ms, double scale);
[[nodiscard]] std::int64_t to_event_ms(std::int64_t real_ms, double scale);

}  // namespace nimbus::events
