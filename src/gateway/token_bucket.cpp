#include "gateway/token_bucket.h"

#include <algorithm>

namespace nimbus::gateway {

TokenBucket::TokenBucket(double rate, std::int64_t burst, const base::Clock& clock)
    : rate_(rate > 0 ? rate : 0),
      burst_(std::max<std::int64_t>(burst, 1)),
      clock_(clock),
      tokens_(static_cast<double>(burst_)),
      last_ms_(clock.now_ms()) {}

void TokenBucket::refill() {
  const std::int64_t now = clock_.now_ms();
  if (now <= last_ms_) return;  // a wall clock stepping back adds nothing
  tokens_ = std::min(static_cast<double>(burst_), tokens_ + static_cast<double>(now - last_ms_) * rate_ / 1000.0);
  last_ms_ = now;
}

bool TokenBucket::try_take() {
  refill();
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

double TokenBucket::available() {
  refill();
  return tokens_;
}

}  // namespace nimbus::gateway
