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

// Lambda's FunctionConfiguration.LastModified form: 2020-04-10T19:06:32.563+0000
[[nodiscard]] std::string format_lambda_time(std::int64_t epoch_ms);
// SigV4's X-Amz-Date form: 20230101T000000Z
[[nodiscard]] std::string format_amz_date(std::int64_t epoch_ms);
// Parses 20230101T000000Z; returns epoch ms or -1.
[[nodiscard]] std::int64_t parse_amz_date(const std::string& text);

}  // namespace nimbus::base
