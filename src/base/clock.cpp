#include "base/clock.h"

#include <ctime>

#include <fmt/format.h>

namespace nimbus::base {

std::int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
std::tm utc(std::int64_t epoch_ms) {
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string format_lambda_time(std::int64_t epoch_ms) {
  const std::tm tm = utc(epoch_ms);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, epoch_ms % 1000);
}

std::string format_amz_date(std::int64_t epoch_ms) {
  const std::tm tm = utc(epoch_ms);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::int64_t parse_amz_date(const std::string& text) {
  std::tm tm{};
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return -1;
  const char* end = strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace nimbus::base
