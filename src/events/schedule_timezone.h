#pragma once
// TimeZone: an IANA time zone read from the system's tz database
// (/usr/share/zoneinfo, TZif files, RFC 8536) so schedules can be evaluated on
// a zone's wall clock. Transitions come from the file; times after the last
// one follow the file's POSIX TZ footer rule (e.g. "CET-1CEST,M3.5.0,M10.5.0/3").
// GCC 12's libstdc++ has no std::chrono::tzdb, hence this small reader.
//
// Immutable after load(): safe to share between threads.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace nimbus::events {

class TimeZone {
 public:
  // UTC (no transitions).
  TimeZone() = default;
  // Loads `name` ("Europe/Paris", "UTC") from `zoneinfo`; kValidation naming
  // the zone when it is not a well-formed name or no such TZif file exists.
  [[nodiscard]] static base::Result<TimeZone> load(std::string_view name,
                                                   const std::filesystem::path& zoneinfo = "/usr/share/zoneinfo");

  [[nodiscard]] const std::string& name() const { return name_; }
  // Seconds east of UTC in effect at `utc_seconds`.
  [[nodiscard]] std::int32_t offset_at(std::int64_t utc_seconds) const;
  // The UTC instants whose wall-clock time is `local_seconds` (seconds since
  // 1970-01-01T00:00 on the zone's wall clock), earliest first: one normally,
  // none in a DST gap (spring forward), two in an overlap (fall back).
  [[nodiscard]] std::vector<std::int64_t> resolve(std::int64_t local_seconds) const;

  // A POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0") as in a TZif footer.
  struct Rule {
    enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
    Kind kind = Kind::kMonthWeekDay;
    int day = 0, week = 0, month = 0;  // Jn / n: day; Mm.w.d: month, week, day (0 = Sunday)
    std::int32_t time = 7200;          // seconds after local midnight
  };
  struct PosixTz {
    std::int32_t std_offset = 0;  // seconds east of UTC
    bool has_dst = false;
    std::int32_t dst_offset = 0;
    Rule start, end;
  };

 private:
  [[nodiscard]] std::int32_t footer_offset(std::int64_t utc_seconds) const;

  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;     // UTC seconds, ascending
  std::vector<std::int32_t> offsets_after_;   // offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;           // before the first transition
  bool has_footer_ = false;
  PosixTz footer_;
};

// Parses a POSIX TZ string (the TZif footer). Exposed for tests.
[[nodiscard]] base::Result<TimeZone::PosixTz> parse_posix_tz(std::string_view text);

// Civil-date helpers shared by the schedule code (proleptic Gregorian, UTC).
[[nodiscard]] std::int64_t days_from_civil(int year, unsigned month, unsigned day);
struct CivilTime {
  int year;
  unsigned month, day, hour, minute, second;
  unsigned weekday;  // 0 = Sunday
};
[[nodiscard]] CivilTime civil_from_seconds(std::int64_t seconds);
[[nodiscard]] unsigned days_in_month(int year, unsigned month);
[[nodiscard]] unsigned weekday_of(int year, unsigned month, unsigned day);  // 0 = Sunday

}  // namespace nimbus::events
