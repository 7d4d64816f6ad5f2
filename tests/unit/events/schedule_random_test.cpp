// Randomised checks of the schedule code against simple references: random
// text never crashes the parser, and the next-fire search agrees with a
// minute-by-minute scan that applies the cron rules directly.

#include <gtest/gtest.h>

#include <random>

#include "events/schedule_expression.h"

namespace nimbus::events {
namespace {

std::string pick(std::mt19937& rng, const std::vector<std::string>& options) {
  return options[std::uniform_int_distribution<std::size_t>(0, options.size() - 1)(rng)];
}

TEST(ScheduleRandom, GarbageNeverCrashesTheParser) {
  std::mt19937 rng(20261123);
  const std::string alphabet = "0123456789 ,-*/?LW#()aAcCrRtTeEnNoOmMiIuUsSdDyYhH:JFMAPSOND\t\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string text = pick(rng, {"cron(", "rate(", "at(", ""});
    const int n = std::uniform_int_distribution<int>(0, 24)(rng);
    for (int k = 0; k < n; ++k) {
      text.push_back(alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)]);
    }
    if (std::uniform_int_distribution<int>(0, 1)(rng) == 1) text.push_back(')');
    auto e = parse_schedule_expression(text);
    if (e.ok()) {
      (void)next_fire_ms(*e, TimeZone(), 1'800'000'000'000, 1'800'000'000'000);
    } else {
      EXPECT_EQ(e.error().code, base::ErrorCode::kValidation);
      EXPECT_FALSE(e.error().message.empty());
    }
  }
}

// The cron rules, stated directly over one UTC minute.
bool reference_matches(const CronSpec& c, std::int64_t seconds) {
  const CivilTime t = civil_from_seconds(seconds);
  if (t.year < 1970 || t.year > 2199) return false;
  if (!c.minutes.values.test(t.minute) || !c.hours.values.test(t.hour) || !c.month.values.test(t.month - 1) ||
      !c.year.values.test(static_cast<std::size_t>(t.year - 1970))) {
    return false;
  }
  const unsigned dim = days_in_month(t.year, t.month);
  const auto is_weekday = [&](unsigned day) {
    const unsigned wd = weekday_of(t.year, t.month, day);
    return wd >= 1 && wd <= 5;
  };
  if (!c.day_of_month.any) {
    const CronField& f = c.day_of_month;
    if (f.values.test(t.day - 1) || (f.last && t.day == dim)) return true;
    if (f.last_weekday) {
      unsigned last = dim;
      while (!is_weekday(last)) --last;
      if (t.day == last) return true;
    }
    for (unsigned n = 1; n <= 31; ++n) {
      if (!f.nearest_weekday.test(n - 1) || n > dim) continue;
      // The weekday closest to n within the month (ties cannot happen).
      unsigned best = 0;
      for (unsigned d = 1; d <= dim; ++d) {
        if (!is_weekday(d)) continue;
        const auto dist = [&](unsigned x) { return x > n ? x - n : n - x; };
        if (best == 0 || dist(d) < dist(best)) best = d;
      }
      if (t.day == best) return true;
    }
    return false;
  }
  const CronField& f = c.day_of_week;
  if (f.values.test(t.weekday)) return true;
  if (f.last_of.test(t.weekday)) {
    bool later_same_weekday = false;
    for (unsigned d = t.day + 1; d <= dim; ++d) later_same_weekday |= weekday_of(t.year, t.month, d) == t.weekday;
    if (!later_same_weekday) return true;
  }
  if (f.nth != 0 && static_cast<unsigned>(f.nth_day - 1) == t.weekday) {
    int seen = 0;
    for (unsigned d = 1; d <= t.day; ++d) seen += weekday_of(t.year, t.month, d) == t.weekday ? 1 : 0;
    if (seen == f.nth) return true;
  }
  return false;
}

std::string random_field(std::mt19937& rng, int lo, int hi) {
  const auto num = [&] { return std::to_string(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
    case 0:
      return "*";
    case 1:
      return num();
    case 2:
      return num() + "," + num();
    case 3:
      return num() + "-" + num();
    case 4:
      return num() + "/" + std::to_string(std::uniform_int_distribution<int>(1, (hi - lo) / 2 + 1)(rng));
    default:
      return "*/" + std::to_string(std::uniform_int_distribution<int>(1, (hi - lo) / 3 + 1)(rng));
  }
}

TEST(ScheduleRandom, NextFireAgreesWithAMinuteByMinuteScan) {
  std::mt19937 rng(7);
  constexpr std::int64_t kWindowMinutes = 3 * 366 * 24 * 60 / 4;  // about nine months
  for (int i = 0; i < 60; ++i) {
    std::string dom = "?", dow = "?";
    if (std::uniform_int_distribution<int>(0, 1)(rng) == 0) {
      dom = pick(rng, {random_field(rng, 1, 31), "L", "LW", std::to_string(std::uniform_int_distribution<int>(1, 31)(rng)) + "W",
                       "1W,L", "15"});
    } else {
      dow = pick(rng, {random_field(rng, 1, 7), std::to_string(std::uniform_int_distribution<int>(1, 7)(rng)) + "L",
                       std::to_string(std::uniform_int_distribution<int>(1, 7)(rng)) + "#" +
                           std::to_string(std::uniform_int_distribution<int>(1, 5)(rng)),
                       "MON-FRI", "FRI-MON"});
    }
    const std::string text = "cron(" + random_field(rng, 0, 59) + " " + random_field(rng, 0, 23) + " " + dom + " " +
                             random_field(rng, 1, 12) + " " + dow + " " + pick(rng, {"*", "2026-2027", "2027/3"}) + ")";
    auto e = parse_schedule_expression(text);
    ASSERT_TRUE(e.ok()) << text << ": " << e.error().message;
    const std::int64_t from_s = (days_from_civil(2026, 1, 1) + std::uniform_int_distribution<int>(0, 700)(rng)) * 86400 +
                                std::uniform_int_distribution<int>(0, 86399)(rng);
    const auto got = next_fire_ms(*e, TimeZone(), from_s * 1000, 0);
    std::optional<std::int64_t> want;
    const std::int64_t first_minute = (from_s + 59) / 60 * 60;
    for (std::int64_t m = 0; m < kWindowMinutes; ++m) {
      if (reference_matches(e->cron, first_minute + m * 60)) {
        want = (first_minute + m * 60) * 1000;
        break;
      }
    }
    if (want) {
      EXPECT_EQ(got, want) << text << " from " << format_event_time(from_s * 1000);
    } else if (got) {
      EXPECT_GE(*got, (first_minute + kWindowMinutes * 60) * 1000) << text;
      EXPECT_TRUE(reference_matches(e->cron, *got / 1000)) << text;
    }
  }
}

}  // namespace
}  // namespace nimbus::events
