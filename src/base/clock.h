#pragma once
// Clock: the injected source of wall time, so tests can set it. SystemClock is
// the real one. Both are safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <string>

namespace nimbus::base {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time in milliseconds since the Unix epoch.
  [[nodiscard]] virtual std::int64_t now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] std::int64_t now_ms() const override;
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms) : now_(start_ms) {}
  [[nodiscard]] std::int64_t now_ms() const override { return now_; }
  void advance_ms(std::int64_t ms) { now_ += ms; }

 private:
  std::int64_t now_;
};

// A clock that runs `scale` times as fast as `base` from the moment it is
// made: N seconds pass on it per second of `base` (the test-only
// --events-time-scale). `base` must outlive it.
class ScaledClock final : public Clock {
 public:
  ScaledClock(const Clock& base, double scale) : base_(base), scale_(scale), origin_(base.now_ms()) {}
  [[nodiscard]] std::int64_t now_ms() const override {
    return origin_ + static_cast<std::int64_t>(static_cast<double>(base_.now_ms() - origin_) * scale_);
  }
  [[nodiscard]] double scale() const { return scale_; }

 private:
  const Clock& base_;
  double scale_;
  std::int64_t origin_;
};

// Lambda's FunctionConfiguration.LastModified form: 2020-04-10T19:06:32.563+0000
[[nodiscard]] std::string format_lambda_time(std::int64_t epoch_ms);
// SigV4's X-Amz-Date form: 20230101T000000Z
[[nodiscard]] std::string format_amz_date(std::int64_t epoch_ms);
// Parses 20230101T000000Z; returns epoch ms or -1.
[[nodiscard]] std::int64_t parse_amz_date(const std::string& text);

}  // namespace nimbus::base
