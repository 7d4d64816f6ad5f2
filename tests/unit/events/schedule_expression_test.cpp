#include "events/schedule_expression.h"

#include <gtest/gtest.h>

namespace nimbus::events {
namespace {

std::int64_t utc_ms(int y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0, unsigned s = 0) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

ScheduleExpression parse_ok(std::string_view text) {
  auto e = parse_schedule_expression(text);
  EXPECT_TRUE(e.ok()) << text << ": " << (e.ok() ? "" : e.error().message);
  return e.ok() ? *e : ScheduleExpression{};
}

std::string parse_error(std::string_view text) {
  auto e = parse_schedule_expression(text);
  EXPECT_FALSE(e.ok()) << text << " was accepted";
  if (e.ok()) return {};
  EXPECT_EQ(e.error().code, base::ErrorCode::kValidation);
  return e.error().message;
}

// The next fire in UTC, as text, or "never".
std::string next(std::string_view text, std::int64_t from_ms, const TimeZone& zone = TimeZone()) {
  const auto e = parse_ok(text);
  const auto t = next_fire_ms(e, zone, from_ms, 0);
  return t ? format_event_time(*t) : "never";
}

TimeZone zone(std::string_view name) {
  auto z = TimeZone::load(name);
  EXPECT_TRUE(z.ok()) << name;
  return z.ok() ? *z : TimeZone();
}

// --- grammar: accepted ---------------------------------------------------------

TEST(ScheduleGrammar, AcceptsWhatEventBridgeAccepts) {
  for (const char* text : {"cron(0 10 * * ? *)", "cron(0/15 * * * ? *)", "cron(0 18 ? * MON-FRI *)",
                           "cron(5,35 14 * * ? *)", "cron(15 10 ? * 6L 2002-2005)", "cron(0 2 ? * SAT#3 *)",
                           "cron(* * ? * SAT#3 *)", "cron(0/5 5 ? JAN 1-5 2022)", "cron(0 0 L * ? *)",
                           "cron(0 0 LW * ? *)", "cron(0 0 15W * ? *)", "cron(0 0 1W,15 * ? *)",
                           "cron(0 22-2 * * ? *)", "cron(*/20 * * * ? *)", "cron(10-30/10 * * * ? *)",
                           "cron(0 0 ? jan-mar mon *)", "cron(0 0 ? * L *)", "cron(0 0 1 1 ? 1970,2199)",
                           "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(2 hours)", "rate(1 day)",
                           "rate(7 days)", "at(2030-01-31T09:00:00)", "at(2028-02-29T23:59:59)"}) {
    parse_ok(text);
  }
}

TEST(ScheduleGrammar, RateValues) {
  EXPECT_EQ(parse_ok("rate(1 minute)").rate_ms, 60'000);
  EXPECT_EQ(parse_ok("rate(5 minutes)").rate_ms, 300'000);
  EXPECT_EQ(parse_ok("rate(1 hour)").rate_ms, 3'600'000);
  EXPECT_EQ(parse_ok("rate(3 days)").rate_ms, 3 * 86'400'000LL);
  EXPECT_EQ(parse_ok("rate(999999999 days)").rate_ms, 999999999LL * 86'400'000LL);
}

TEST(ScheduleGrammar, FieldValues) {
  const auto e = parse_ok("cron(0 22-2 ? * FRI-MON 2030/50)");
  EXPECT_EQ(e.kind, ScheduleKind::kCron);
  for (unsigned h = 0; h < 24; ++h) EXPECT_EQ(e.cron.hours.values.test(h), h >= 22 || h <= 2) << h;
  // 1 = SUN ... 7 = SAT; FRI-MON wraps: FRI SAT SUN MON.
  EXPECT_EQ(e.cron.day_of_week.values.to_ulong(), 0b1100011UL);
  EXPECT_TRUE(e.cron.day_of_month.any);
  for (int y = 1970; y <= 2199; ++y) {
    EXPECT_EQ(e.cron.year.values.test(static_cast<std::size_t>(y - 1970)), y == 2030 || y == 2080 || y == 2130 || y == 2180) << y;
  }
  const auto steps = parse_ok("cron(10-30/10 */6 1/10 */5 ? *)");
  EXPECT_EQ(steps.cron.minutes.values.to_ullong(), (1ULL << 10) | (1ULL << 20) | (1ULL << 30));
  EXPECT_EQ(steps.cron.hours.values.to_ulong(), (1UL << 0) | (1UL << 6) | (1UL << 12) | (1UL << 18));
  // Days 1, 11, 21, 31 (bit = day - 1); months 1, 6, 11.
  EXPECT_EQ(steps.cron.day_of_month.values.to_ulong(), (1UL << 0) | (1UL << 10) | (1UL << 20) | (1UL << 30));
  EXPECT_EQ(steps.cron.month.values.to_ulong(), (1UL << 0) | (1UL << 5) | (1UL << 10));
  const auto special = parse_ok("cron(0 0 ? * 6L,3#2 *)");
  EXPECT_TRUE(special.cron.day_of_week.last_of.test(5));
  EXPECT_EQ(special.cron.day_of_week.nth_day, 3);
  EXPECT_EQ(special.cron.day_of_week.nth, 2);
}

// --- grammar: rejected, each with its message ------------------------------------

TEST(ScheduleGrammar, CronErrorsNameTheField) {
  EXPECT_EQ(parse_error("cron(61 * * * ? *)"), "Minutes field value 61 is out of range 0-59");
  EXPECT_EQ(parse_error("cron(71 8 1 * ? *)"), "Minutes field value 71 is out of range 0-59");
  EXPECT_EQ(parse_error("cron(0 24 * * ? *)"), "Hours field value 24 is out of range 0-23");
  EXPECT_EQ(parse_error("cron(0 0 32 * ? *)"), "Day-of-month field value 32 is out of range 1-31");
  EXPECT_EQ(parse_error("cron(0 0 0 * ? *)"), "Day-of-month field value 0 is out of range 1-31");
  EXPECT_EQ(parse_error("cron(0 0 1 13 ? *)"), "Month field value 13 is out of range 1-12");
  EXPECT_EQ(parse_error("cron(0 0 ? * 8 *)"), "Day-of-week field value 8 is out of range 1-7");
  EXPECT_EQ(parse_error("cron(0 0 ? * 0 *)"), "Day-of-week field value 0 is out of range 1-7");
  EXPECT_EQ(parse_error("cron(0 0 1 * ? 1969)"), "Year field value 1969 is out of range 1970-2199");
  EXPECT_EQ(parse_error("cron(0 0 1 * ? 2200)"), "Year field value 2200 is out of range 1970-2199");
  EXPECT_EQ(parse_error("cron(7 20 * * NOT *)"),
            "Day-of-week field value NOT is not a number (1-7) or a day name (SUN-SAT)");
  EXPECT_EQ(parse_error("cron(0 0 1 JANUARY ? *)"),
            "Month field value JANUARY is not a number (1-12) or a month name (JAN-DEC)");
  EXPECT_EQ(parse_error("cron(0 dummy ? * MON-FRI *)"), "Hours field value dummy is not a number (0-23)");
  EXPECT_EQ(parse_error("cron(0 0 1 * ? 2030-2020)"), "Year field range 2030-2020 goes backwards");
  EXPECT_EQ(parse_error("cron(0/0 * * * ? *)"), "Minutes field value 0/0: the step after '/' must be a number 1-60");
  EXPECT_EQ(parse_error("cron(0/x * * * ? *)"), "Minutes field value 0/x: the step after '/' must be a number 1-60");
  EXPECT_EQ(parse_error("cron(1,,2 * * * ? *)"), "Minutes field '1,,2' has an empty list item");
  EXPECT_EQ(parse_error("cron(5- * * * ? *)"), "Minutes field has an empty value");
}

TEST(ScheduleGrammar, DayFieldRules) {
  const std::string rule =
      "exactly one of Day-of-month and Day-of-week must be '?' (use '?' in Day-of-month to pick days by weekday, "
      "or in Day-of-week to pick them by date)";
  EXPECT_EQ(parse_error("cron(0 1 * * * *)"), rule);
  EXPECT_EQ(parse_error("cron(0 1 1 * MON *)"), rule);
  EXPECT_EQ(parse_error("cron(0 1 ? * ? *)"), rule);
  EXPECT_EQ(parse_error("cron(? 1 * * ? *)"), "Minutes field: '?' is only allowed in Day-of-month or Day-of-week");
  EXPECT_EQ(parse_error("cron(0 0 1,? * ? *)"), "Day-of-month field '?' cannot be combined with other values");
  EXPECT_EQ(parse_error("cron(0 L * * ? *)"), "Hours field: 'L' is only allowed in Day-of-month or Day-of-week");
  EXPECT_EQ(parse_error("cron(0 0 ? * LW *)"), "Day-of-week field: 'LW' is only allowed in Day-of-month");
  EXPECT_EQ(parse_error("cron(0 0 ? * 2W *)"), "Day-of-week field: 'W' is only allowed in Day-of-month");
  EXPECT_EQ(parse_error("cron(0 0 32W * ? *)"), "Day-of-month field value 32 is out of range 1-31");
  EXPECT_EQ(parse_error("cron(0 0 1#2 * ? *)"), "Day-of-month field: '#' is only allowed in Day-of-week");
  EXPECT_EQ(parse_error("cron(0 0 ? * 3#1,6#3 *)"), "Day-of-week field: only one '#' expression is allowed");
  EXPECT_EQ(parse_error("cron(0 0 ? * 3#6 *)"), "Day-of-week field value 3#6: the occurrence after '#' must be 1-5");
  EXPECT_EQ(parse_error("cron(0 0 ? * 9#2 *)"), "Day-of-week field value 9 is out of range 1-7");
  EXPECT_EQ(parse_error("cron(0 0 ? * 8L *)"), "Day-of-week field value 8 is out of range 1-7");
  EXPECT_EQ(parse_error("cron(0 0 5L * ? *)"), "Day-of-month field value 5L is not a number (1-31)");
}

TEST(ScheduleGrammar, CronShape) {
  const std::string six =
      "expected 6 fields separated by single spaces (Minutes Hours Day-of-month Month Day-of-week Year), e.g. "
      "cron(0 9 * * ? *)";
  for (const char* text : {"cron(INVALID)", "cron()", "cron(0 9 * * ?)", "cron(0 9 * * ? * *)", "cron(0  9 * * ? *)",
                           "cron( 0 9 * * ? *)", "cron(0 9 * * ? * )"}) {
    EXPECT_EQ(parse_error(text), six) << text;
  }
  const std::string none =
      "expected rate(value unit), cron(Minutes Hours Day-of-month Month Day-of-week "
      "Year) or at(yyyy-mm-ddThh:mm:ss)";
  for (const char* text : {"", " rate(10 minutes)", "rate(10 minutes) ", "CRON(0 9 * * ? *)", "cron(0 9 * * ? *",
                           "every day", "0 9 * * *"}) {
    EXPECT_EQ(parse_error(text), none) << text;
  }
}

TEST(ScheduleGrammar, RateErrors) {
  EXPECT_EQ(parse_error("rate(1 hours)"), "the unit must be 'hour' (singular) when the value is 1");
  EXPECT_EQ(parse_error("rate(5 hour)"), "the unit must be 'hours' (plural) when the value is not 1");
  EXPECT_EQ(parse_error("rate(1 minutes)"), "the unit must be 'minute' (singular) when the value is 1");
  EXPECT_EQ(parse_error("rate(2 day)"), "the unit must be 'days' (plural) when the value is not 1");
  EXPECT_EQ(parse_error("rate(10 seconds)"),
            "the unit 'seconds' is not one of minute(s), hour(s) or day(s)");
  EXPECT_EQ(parse_error("rate(10 years)"), "the unit 'years' is not one of minute(s), hour(s) or day(s)");
  EXPECT_EQ(parse_error("rate(10 minutess)"),
            "the unit 'minutess' is not one of minute(s), hour(s) or day(s)");
  EXPECT_EQ(parse_error("rate(10 Minutes)"),
            "the unit 'Minutes' is not one of minute(s), hour(s) or day(s)");
  const std::string shape = "expected rate(value unit), e.g. rate(5 minutes)";
  for (const char* text : {"rate()", "rate(10)", "rate( 10 minutes )", "rate(10  minutes)", "rate(10 minutes )"}) {
    EXPECT_EQ(parse_error(text), shape) << text;
  }
  EXPECT_EQ(parse_error("rate(foo minutes)"), "the value must be a positive whole number, not 'foo'");
  EXPECT_EQ(parse_error("rate(-10 minutes)"), "the value must be a positive whole number, not '-10'");
  EXPECT_EQ(parse_error("rate(0 minutes)"), "the value must be a positive whole number, not '0'");
  EXPECT_EQ(parse_error("rate(1.5 hours)"), "the value must be a positive whole number, not '1.5'");
  EXPECT_EQ(parse_error("rate(+5 minutes)"), "the value must be a positive whole number, not '+5'");
  EXPECT_EQ(parse_error("rate(1000000000 minutes)"), "the value 1000000000 is too large");
}

TEST(ScheduleGrammar, AtErrors) {
  const std::string shape =
      "expected at(yyyy-mm-ddThh:mm:ss), a local time without zone or offset, e.g. at(2030-01-31T09:00:00)";
  for (const char* text : {"at(2021-12-31T00:00:00Z)", "at(2021-12-31)", "at()", "at(2021-12-31 00:00:00)",
                           "at(2021-12-31T00:00)", "at(2021-12-31T00:00:00+01:00)", "at(21-12-31T00:00:00)"}) {
    EXPECT_EQ(parse_error(text), shape) << text;
  }
  EXPECT_EQ(parse_error("at(2021-13-01T00:00:00)"), "month 13 is out of range 1-12");
  EXPECT_EQ(parse_error("at(2021-02-29T00:00:00)"), "day 29 is out of range 1-28");
  EXPECT_EQ(parse_error("at(2021-04-31T00:00:00)"), "day 31 is out of range 1-30");
  EXPECT_EQ(parse_error("at(2021-01-01T24:00:00)"), "hour 24 is out of range 0-23");
  EXPECT_EQ(parse_error("at(2021-01-01T00:60:00)"), "minute 60 is out of range 0-59");
  EXPECT_EQ(parse_error("at(2021-01-01T00:00:60)"), "second 60 is out of range 0-59");
  EXPECT_EQ(parse_error("at(1969-12-31T23:59:59)"), "year 1969 is out of range 1970-2199");
}

// --- next fire, UTC --------------------------------------------------------------

TEST(NextFire, DailyAndSteps) {
  const auto t = utc_ms(2026, 11, 23, 11, 0);  // a Monday
  EXPECT_EQ(next("cron(0 10 * * ? *)", t), "2026-11-24T10:00:00Z");
  EXPECT_EQ(next("cron(0 10 * * ? *)", utc_ms(2026, 11, 23, 9, 59, 59)), "2026-11-23T10:00:00Z");
  // At or after: a time that is exactly a fire time is that fire.
  EXPECT_EQ(next("cron(0 10 * * ? *)", utc_ms(2026, 11, 23, 10, 0)), "2026-11-23T10:00:00Z");
  EXPECT_EQ(next("cron(0 10 * * ? *)", utc_ms(2026, 11, 23, 10, 0) + 1), "2026-11-24T10:00:00Z");
  EXPECT_EQ(next("cron(0/15 * * * ? *)", utc_ms(2026, 11, 23, 10, 7)), "2026-11-23T10:15:00Z");
  EXPECT_EQ(next("cron(0/15 * * * ? *)", utc_ms(2026, 11, 23, 10, 45, 1)), "2026-11-23T11:00:00Z");
  EXPECT_EQ(next("cron(10-30/10 * * * ? *)", utc_ms(2026, 11, 23, 10, 31)), "2026-11-23T11:10:00Z");
  EXPECT_EQ(next("cron(5,35 14 * * ? *)", utc_ms(2026, 11, 23, 14, 6)), "2026-11-23T14:35:00Z");
  EXPECT_EQ(next("cron(* * * * ? *)", utc_ms(2026, 11, 23, 10, 7, 30)), "2026-11-23T10:08:00Z");
  EXPECT_EQ(next("cron(0 22-2 * * ? *)", utc_ms(2026, 11, 23, 2, 1)), "2026-11-23T22:00:00Z");
  EXPECT_EQ(next("cron(0 22-2 * * ? *)", utc_ms(2026, 11, 23, 23, 1)), "2026-11-24T00:00:00Z");
  // Month and year rollover.
  EXPECT_EQ(next("cron(0 0 1 * ? *)", utc_ms(2026, 12, 1, 0, 0, 1)), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 ? JAN-MAR MON *)", utc_ms(2026, 4, 1)), "2027-01-04T00:00:00Z");
}

TEST(NextFire, DayOfWeek) {
  // 1 = SUN: 2026-11-29 is the next Sunday after Monday 2026-11-23.
  EXPECT_EQ(next("cron(0 12 ? * 1 *)", utc_ms(2026, 11, 23)), "2026-11-29T12:00:00Z");
  EXPECT_EQ(next("cron(0 12 ? * SUN *)", utc_ms(2026, 11, 23)), "2026-11-29T12:00:00Z");
  EXPECT_EQ(next("cron(0 12 ? * 7 *)", utc_ms(2026, 11, 23)), "2026-11-28T12:00:00Z");
  EXPECT_EQ(next("cron(0 12 ? * L *)", utc_ms(2026, 11, 23)), "2026-11-28T12:00:00Z");  // L alone = SAT
  EXPECT_EQ(next("cron(0 18 ? * MON-FRI *)", utc_ms(2026, 11, 27, 19)), "2026-11-30T18:00:00Z");
  EXPECT_EQ(next("cron(0 0 ? * FRI-MON *)", utc_ms(2026, 11, 24)), "2026-11-27T00:00:00Z");
  // d#n: the 3rd Saturday of November 2026 is the 21st, of December the 19th.
  EXPECT_EQ(next("cron(0 2 ? * SAT#3 *)", utc_ms(2026, 11, 1)), "2026-11-21T02:00:00Z");
  EXPECT_EQ(next("cron(0 2 ? * 7#3 *)", utc_ms(2026, 11, 22)), "2026-12-19T02:00:00Z");
  // 5th Friday: only months that have one (January 2027 has five Fridays: 1, 8, 15, 22, 29).
  EXPECT_EQ(next("cron(0 0 ? * 6#5 *)", utc_ms(2026, 11, 23)), "2027-01-29T00:00:00Z");
  // nL: last Friday of the month.
  EXPECT_EQ(next("cron(15 10 ? * 6L 2002-2005)", utc_ms(2002, 1, 1)), "2002-01-25T10:15:00Z");
  EXPECT_EQ(next("cron(15 10 ? * 6L 2002-2005)", utc_ms(2005, 12, 30, 10, 16)), "never");
  EXPECT_EQ(next("cron(0 0 ? * 2L *)", utc_ms(2026, 8, 1)), "2026-08-31T00:00:00Z");  // a Monday
}

TEST(NextFire, LastAndNearestWeekday) {
  EXPECT_EQ(next("cron(0 0 L * ? *)", utc_ms(2027, 2, 1)), "2027-02-28T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 L * ? *)", utc_ms(2028, 2, 1)), "2028-02-29T00:00:00Z");  // leap year
  EXPECT_EQ(next("cron(0 0 L * ? *)", utc_ms(2100, 2, 1)), "2100-02-28T00:00:00Z");  // not a leap year
  EXPECT_EQ(next("cron(0 0 L * ? *)", utc_ms(2000, 2, 1)), "2000-02-29T00:00:00Z");  // a leap year
  EXPECT_EQ(next("cron(0 0 L * ? *)", utc_ms(2026, 4, 30, 0, 0, 1)), "2026-05-31T00:00:00Z");
  // LW: the last weekday. 2027-01-31 is a Sunday, 2026-02-28 a Saturday, 2026-08-31 a Monday.
  EXPECT_EQ(next("cron(0 0 LW * ? *)", utc_ms(2027, 1, 1)), "2027-01-29T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 LW * ? *)", utc_ms(2026, 2, 1)), "2026-02-27T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 LW * ? *)", utc_ms(2026, 8, 1)), "2026-08-31T00:00:00Z");
  // nW: 2026-08-15 is a Saturday (-> Friday 14th), 2026-11-15 a Sunday (-> Monday 16th).
  EXPECT_EQ(next("cron(0 0 15W * ? *)", utc_ms(2026, 8, 1)), "2026-08-14T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 15W * ? *)", utc_ms(2026, 11, 1)), "2026-11-16T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 15W * ? *)", utc_ms(2026, 11, 23)), "2026-12-15T00:00:00Z");  // a Tuesday
  // Never across the month: 2027-05-01 is a Saturday (-> Monday 3rd), 2026-05-31 a Sunday (-> Friday 29th).
  EXPECT_EQ(next("cron(0 0 1W * ? *)", utc_ms(2027, 5, 1)), "2027-05-03T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 31W * ? *)", utc_ms(2026, 5, 1)), "2026-05-29T00:00:00Z");
  // 31W in a 30-day month does not fire.
  EXPECT_EQ(next("cron(0 0 31W 4 ? *)", utc_ms(2026, 1, 1)), "never");
}

TEST(NextFire, LeapDaysAndNever) {
  EXPECT_EQ(next("cron(0 0 29 2 ? *)", utc_ms(2026, 1, 1)), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 29 2 ? *)", utc_ms(2096, 3, 1)), "2104-02-29T00:00:00Z");  // 2100 is not a leap year
  EXPECT_EQ(next("cron(0 0 30 2 ? *)", utc_ms(2026, 1, 1)), "never");
  EXPECT_EQ(next("cron(0 0 31 4,6,9,11 ? *)", utc_ms(2026, 1, 1)), "never");
  EXPECT_EQ(next("cron(0/5 5 ? JAN 1-5 2022)", utc_ms(2026, 1, 1)), "never");  // a past year is accepted
  EXPECT_EQ(next("cron(0/5 5 ? JAN 1-5 2022)", utc_ms(2022, 1, 1)), "2022-01-02T05:00:00Z");  // 1st is a SAT: not 1-5
}

TEST(NextFire, YearBounds) {
  EXPECT_EQ(next("cron(0 0 1 1 ? 2199)", utc_ms(2198, 6, 1)), "2199-01-01T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 1 1 ? 2199)", utc_ms(2199, 1, 1, 0, 0, 1)), "never");
  EXPECT_EQ(next("cron(59 23 31 12 ? *)", utc_ms(2199, 12, 31, 23, 59)), "2199-12-31T23:59:00Z");
  EXPECT_EQ(next("cron(* * * * ? *)", utc_ms(2199, 12, 31, 23, 59, 1)), "never");
  EXPECT_EQ(next("cron(0 0 1 1 ? 1970)", utc_ms(1960, 1, 1)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(next("cron(0 0 1 1 ? 2030/50)", utc_ms(2031, 1, 1)), "2080-01-01T00:00:00Z");
}

TEST(NextFire, RateAnchoredAtCreation) {
  const auto e = parse_ok("rate(1 minute)");
  const TimeZone utc;
  EXPECT_EQ(next_fire_ms(e, utc, 0, 1000), 1000);
  EXPECT_EQ(next_fire_ms(e, utc, 1000, 1000), 1000);
  EXPECT_EQ(next_fire_ms(e, utc, 1001, 1000), 61'000);
  EXPECT_EQ(next_fire_ms(e, utc, 3 * 60'000 + 500, 1000), 3 * 60'000 + 1000);
  EXPECT_EQ(next_fire_ms(e, utc, 3 * 60'000 + 1000, 1000), 3 * 60'000 + 1000);
}

TEST(NextFire, AtFiresOnce) {
  const auto e = parse_ok("at(2030-01-31T09:00:00)");
  EXPECT_EQ(next_fire_ms(e, TimeZone(), utc_ms(2026, 1, 1), 0), utc_ms(2030, 1, 31, 9));
  EXPECT_EQ(next_fire_ms(e, TimeZone(), utc_ms(2030, 1, 31, 9), 0), utc_ms(2030, 1, 31, 9));
  EXPECT_EQ(next_fire_ms(e, TimeZone(), utc_ms(2030, 1, 31, 9) + 1, 0), std::nullopt);
  EXPECT_EQ(next_fire_ms(e, zone("Europe/Paris"), 0, 0), utc_ms(2030, 1, 31, 8));
  EXPECT_EQ(next_fire_ms(e, zone("America/New_York"), 0, 0), utc_ms(2030, 1, 31, 14));
}

// --- next fire, time zones --------------------------------------------------------

TEST(NextFireZone, WinterAndSummer) {
  const auto paris = zone("Europe/Paris");
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2026, 1, 10), paris), "2026-01-10T08:00:00Z");  // CET, +1
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2026, 7, 10), paris), "2026-07-10T07:00:00Z");  // CEST, +2
  // Day fields follow the zone's date: 00:30 Paris on a Monday is Sunday 23:30 UTC.
  EXPECT_EQ(next("cron(30 0 ? * MON *)", utc_ms(2026, 11, 23, 12), paris), "2026-11-29T23:30:00Z");
  const auto kolkata = zone("Asia/Kolkata");  // +05:30, no DST
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2026, 1, 10), kolkata), "2026-01-10T03:30:00Z");
  // Far beyond the file's transitions the POSIX footer rule applies.
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2150, 7, 10), paris), "2150-07-10T07:00:00Z");
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2150, 1, 10), paris), "2150-01-10T08:00:00Z");
  const auto sydney = zone("Australia/Sydney");  // southern hemisphere: DST over the new year
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2150, 1, 10), sydney), "2150-01-10T22:00:00Z");  // AEDT +11: 09:00 on the 11th
  EXPECT_EQ(next("cron(0 9 * * ? *)", utc_ms(2150, 7, 10), sydney), "2150-07-10T23:00:00Z");  // AEST +10: 09:00 on the 11th
}

TEST(NextFireZone, SpringForwardGapIsSkipped) {
  // Paris, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC.
  const auto paris = zone("Europe/Paris");
  EXPECT_EQ(next("cron(30 2 * * ? *)", utc_ms(2026, 3, 28, 3), paris), "2026-03-30T00:30:00Z");
  EXPECT_EQ(next("cron(30 2 * * ? *)", utc_ms(2026, 3, 27, 3), paris), "2026-03-28T01:30:00Z");
  // Every minute: 01:59 CET is followed by 03:00 CEST, one UTC minute later.
  EXPECT_EQ(next("cron(* * * * ? *)", utc_ms(2026, 3, 29, 0, 59) + 1, paris), "2026-03-29T01:00:00Z");
  // 03:00 exists.
  EXPECT_EQ(next("cron(0 3 * * ? *)", utc_ms(2026, 3, 28, 3), paris), "2026-03-29T01:00:00Z");
  // New York, 2026-03-08: 02:00 EST -> 03:00 EDT.
  const auto ny = zone("America/New_York");
  EXPECT_EQ(next("cron(15 2 * * ? *)", utc_ms(2026, 3, 7, 8), ny), "2026-03-09T06:15:00Z");
  // at() in the gap fires as far past the jump as it was past the gap's start.
  EXPECT_EQ(next("at(2026-03-29T02:30:00)", 0, paris), "2026-03-29T01:30:00Z");
}

TEST(NextFireZone, FallBackOverlapFiresOnce) {
  // Paris, 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:30 happens twice.
  const auto paris = zone("Europe/Paris");
  EXPECT_EQ(next("cron(30 2 * * ? *)", utc_ms(2026, 10, 24, 12), paris), "2026-10-25T00:30:00Z");
  EXPECT_EQ(next("cron(30 2 * * ? *)", utc_ms(2026, 10, 25, 0, 30) + 1, paris), "2026-10-26T01:30:00Z");
  // Hourly: 01:00 CEST, 02:00 CEST, (02:00 CET is the repeat: skipped), 03:00 CET.
  EXPECT_EQ(next("cron(0 * * * ? *)", utc_ms(2026, 10, 24, 23, 0) + 1, paris), "2026-10-25T00:00:00Z");
  EXPECT_EQ(next("cron(0 * * * ? *)", utc_ms(2026, 10, 25, 0, 0) + 1, paris), "2026-10-25T02:00:00Z");
  EXPECT_EQ(next("at(2026-10-25T02:30:00)", 0, paris), "2026-10-25T00:30:00Z");
  // New York, 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 EDT (05:30 UTC) fires, 01:30 EST does not.
  const auto ny = zone("America/New_York");
  EXPECT_EQ(next("cron(30 1 * * ? *)", utc_ms(2026, 11, 1, 0), ny), "2026-11-01T05:30:00Z");
  EXPECT_EQ(next("cron(30 1 * * ? *)", utc_ms(2026, 11, 1, 5, 30) + 1, ny), "2026-11-02T06:30:00Z");
}

TEST(EventTime, Format) {
  EXPECT_EQ(format_event_time(utc_ms(2019, 3, 1, 1, 23, 45) + 678), "2019-03-01T01:23:45Z");
  EXPECT_EQ(format_event_time(0), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace nimbus::events
