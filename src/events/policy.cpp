#include "events/policy.h"

#include <algorithm>
#include <cmath>

namespace nimbus::events {

std::string_view condition_name(Condition condition) {
  switch (condition) {
    case Condition::kSuccess:
      return "Success";
    case Condition::kRetriesExhausted:
      return "RetriesExhausted";
    case Condition::kEventAgeExceeded:
      return "EventAgeExceeded";
  }
  return "Unknown";
}

std::int64_t function_error_delay_ms(int function_errors) {
  return 60'000 * std::clamp(function_errors, 1, 2);
}

std::int64_t backoff_delay_ms(int retries) {
  const int shift = std::clamp(retries - 1, 0, 20);
  return std::min(kMaxBackoffMs, kMinBackoffMs << shift);
}

bool expired(std::int64_t age_ms, const RetryLimits& limits) { return age_ms > limits.maximum_event_age_s * 1000; }

Decision decide(AttemptOutcome outcome, int attempts, int function_errors, std::int64_t age_ms,
                const RetryLimits& limits) {
  const auto finish = [](Condition c) { return Decision{Decision::Kind::kFinish, 0, c}; };
  const auto retry_or_age_out = [&](std::int64_t delay) {
    // A retry that would start after the maximum age is not made.
    if (expired(age_ms + delay, limits)) return finish(Condition::kEventAgeExceeded);
    return Decision{Decision::Kind::kRetry, delay, Condition::kSuccess};
  };
  switch (outcome) {
    case AttemptOutcome::kSuccess:
      return finish(Condition::kSuccess);
    case AttemptOutcome::kFunctionGone:
      return finish(Condition::kRetriesExhausted);
    case AttemptOutcome::kFunctionError:
      if (function_errors > limits.maximum_retry_attempts) return finish(Condition::kRetriesExhausted);
      return retry_or_age_out(function_error_delay_ms(function_errors));
    case AttemptOutcome::kThrottled:
    case AttemptOutcome::kPlatformError:
      return retry_or_age_out(backoff_delay_ms(std::max(1, attempts - function_errors)));
  }
  return finish(Condition::kRetriesExhausted);
}

std::int64_t to_real_ms(std::int64_t event_ms, double scale) {
  if (scale <= 1.0) return event_ms;
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(event_ms) / scale));
}

std::int64_t to_event_ms(std::int64_t real_ms, double scale) {
  if (scale <= 1.0) return real_ms;
  return static_cast<std::int64_t>(static_cast<double>(real_ms) * scale);
}

}  // namespace nimbus::events
