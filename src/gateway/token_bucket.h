#pragma once
// TokenBucket: the rate limiter of the gateway (one for the whole gateway,
// one per throttled route). Holds up to `burst` tokens, refilled at `rate`
// per second; a request takes one or is refused (429). Time comes from the
// injected base::Clock, so tests drive it with ManualClock.
//
// Threads: not synchronised; the gateway guards each bucket with its own
// mutex. Owned by the gateway's throttle state.

#include <cstdint>

#include "base/clock.h"

namespace nimbus::gateway {

class TokenBucket {
 public:
  // rate: tokens per second (> 0); burst: capacity (>= 1). Starts full.
  TokenBucket(double rate, std::int64_t burst, const base::Clock& clock);

  // Takes a token if one is there; false means throttled.
  [[nodiscard]] bool try_take();
  // Tokens available now (refilled), for tests.
  [[nodiscard]] double available();

  [[nodiscard]] double rate() const { return rate_; }
  [[nodiscard]] std::int64_t burst() const { return burst_; }

 private:
  void refill();

  double rate_;
  std::int64_t burst_;
  const base::Clock& clock_;
  double tokens_;
  std::int64_t last_ms_;
};

}  // namespace nimbus::gateway
