#pragma once
// Schedule expressions as EventBridge and EventBridge Scheduler write them
// (shared/reference/events.md §5.2–5.4): rate(value unit),
// cron(Minutes Hours Day-of-month Month Day-of-week Year) and
// at(yyyy-mm-ddThh:mm:ss), parsed with errors that name the bad field, and the
// pure computation of the next fire time in a time zone.
//
// Everything here is a pure function of its arguments: no clock, no I/O.

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "events/schedule_timezone.h"

namespace nimbus::events {

// One cron field: the values it selects (bit = value - the field's lowest
// value) plus the day fields' special forms.
struct CronField {
  std::bitset<230> values;    // years span 1970-2199, the widest field
  bool any = false;           // '?'
  bool last = false;          // 'L' in Day-of-month: the month's last day
  bool last_weekday = false;  // 'LW': the month's last weekday (Mon-Fri)
  std::bitset<31> nearest_weekday;  // 'nW': bit n-1 = the weekday nearest day n
  std::bitset<7> last_of;     // 'nL' in Day-of-week: bit d-1 = the month's last day d
  int nth_day = 0;            // 'd#n' in Day-of-week: d (1 = SUN) ...
  int nth = 0;                // ... and n (1-5); 0: none
};

struct CronSpec {
  CronField minutes, hours, day_of_month, month, day_of_week, year;
};

enum class ScheduleKind { kRate, kCron, kAt };

struct ScheduleExpression {
  ScheduleKind kind = ScheduleKind::kRate;
  std::string text;                 // as written
  std::int64_t rate_ms = 0;         // kRate: the period
  CronSpec cron;                    // kCron
  std::int64_t at_local_seconds = 0;  // kAt: wall-clock time in the schedule's zone
};

// kValidation with a message naming what is wrong (without repeating the
// expression), e.g. "Minutes field value 61 is out of range 0-59".
[[nodiscard]] base::Result<ScheduleExpression> parse_schedule_expression(std::string_view text);

// The first fire time at or after `from_ms` (Unix ms, UTC), or nullopt when
// the expression never fires again.
//  - rate: anchor_ms + k * period for the least k >= 0 that is not before from_ms.
//  - cron: the first whole minute of `zone`'s wall clock that matches every
//    field. A wall-clock time that does not exist (DST gap) is skipped; one
//    that occurs twice (DST overlap) fires once, at its first occurrence.
//  - at: the given wall-clock time in `zone` if not before from_ms (in a DST
//    gap: the instant the clock jumps to; in an overlap: the first occurrence).
// Searches end at the year 2199, so expressions that never fire (Feb 30)
// return nullopt quickly.
[[nodiscard]] std::optional<std::int64_t> next_fire_ms(const ScheduleExpression& expression, const TimeZone& zone,
                                                       std::int64_t from_ms, std::int64_t anchor_ms);

// "2019-03-01T01:23:45Z" (the Scheduled Event's time).
[[nodiscard]] std::string format_event_time(std::int64_t epoch_ms);

}  // namespace nimbus::events
