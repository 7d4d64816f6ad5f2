#include "events/schedule_timezone.h"

#include <gtest/gtest.h>

namespace nimbus::events {
namespace {

std::int64_t utc_s(int y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0) {
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

TEST(TimeZone, UtcByDefault) {
  const TimeZone utc;
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.offset_at(utc_s(2026, 7, 1)), 0);
  EXPECT_EQ(utc.resolve(1000), std::vector<std::int64_t>{1000});
  auto loaded = TimeZone::load("UTC");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->offset_at(utc_s(2026, 7, 1)), 0);
}

TEST(TimeZone, OffsetsFromTheDatabase) {
  auto paris = TimeZone::load("Europe/Paris");
  ASSERT_TRUE(paris.ok());
  EXPECT_EQ(paris->offset_at(utc_s(2026, 1, 15)), 3600);
  EXPECT_EQ(paris->offset_at(utc_s(2026, 7, 15)), 7200);
  // The transition instants: 2026-03-29 01:00 UTC and 2026-10-25 01:00 UTC.
  EXPECT_EQ(paris->offset_at(utc_s(2026, 3, 29, 1) - 1), 3600);
  EXPECT_EQ(paris->offset_at(utc_s(2026, 3, 29, 1)), 7200);
  EXPECT_EQ(paris->offset_at(utc_s(2026, 10, 25, 1) - 1), 7200);
  EXPECT_EQ(paris->offset_at(utc_s(2026, 10, 25, 1)), 3600);
  auto ny = TimeZone::load("America/New_York");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(ny->offset_at(utc_s(2026, 1, 15)), -5 * 3600);
  EXPECT_EQ(ny->offset_at(utc_s(2026, 7, 15)), -4 * 3600);
  EXPECT_EQ(ny->offset_at(utc_s(2190, 7, 15)), -4 * 3600);  // footer rule
}

TEST(TimeZone, ResolveGapAndOverlap) {
  auto paris = TimeZone::load("Europe/Paris");
  ASSERT_TRUE(paris.ok());
  const std::int64_t local_0230_spring = utc_s(2026, 3, 29, 2, 30);
  EXPECT_TRUE(paris->resolve(local_0230_spring).empty());
  const std::int64_t local_0230_autumn = utc_s(2026, 10, 25, 2, 30);
  EXPECT_EQ(paris->resolve(local_0230_autumn),
            (std::vector<std::int64_t>{utc_s(2026, 10, 25, 0, 30), utc_s(2026, 10, 25, 1, 30)}));
  EXPECT_EQ(paris->resolve(utc_s(2026, 7, 1, 12)), std::vector<std::int64_t>{utc_s(2026, 7, 1, 10)});
}

TEST(TimeZone, UnknownNamesAreRejected) {
  for (const char* name : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "", "Europe/Paris ",
                           "Europe", "zone.tab"}) {
    auto z = TimeZone::load(name);
    ASSERT_FALSE(z.ok()) << name;
    EXPECT_EQ(z.error().code, base::ErrorCode::kValidation);
    EXPECT_EQ(z.error().message, "Unknown time zone '" + std::string(name) +
                                     "': expected an IANA name such as UTC or Europe/Paris");
  }
}

TEST(PosixTz, Rules) {
  auto ny = parse_posix_tz("EST5EDT,M3.2.0,M11.1.0");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(ny->std_offset, -5 * 3600);
  EXPECT_TRUE(ny->has_dst);
  EXPECT_EQ(ny->dst_offset, -4 * 3600);
  EXPECT_EQ(ny->start.month, 3);
  EXPECT_EQ(ny->start.week, 2);
  EXPECT_EQ(ny->end.month, 11);
  EXPECT_EQ(ny->end.time, 7200);
  auto tehran = parse_posix_tz("<+0330>-3:30");
  ASSERT_TRUE(tehran.ok());
  EXPECT_EQ(tehran->std_offset, 3 * 3600 + 1800);
  EXPECT_FALSE(tehran->has_dst);
  auto paris = parse_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(paris.ok());
  EXPECT_EQ(paris->end.time, 3 * 3600);
  auto julian = parse_posix_tz("XXX3YYY,J60/-1,300/25");
  ASSERT_TRUE(julian.ok());
  EXPECT_EQ(julian->start.kind, TimeZone::Rule::Kind::kJulian1);
  EXPECT_EQ(julian->start.time, -3600);
  EXPECT_EQ(julian->end.kind, TimeZone::Rule::Kind::kJulian0);
  EXPECT_EQ(julian->end.time, 25 * 3600);
  for (const char* bad : {"", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0", "EST5EDT,M3.2.0,M11.1.0x"}) {
    EXPECT_FALSE(parse_posix_tz(bad).ok()) << bad;
  }
}

TEST(CivilTime, RoundTrip) {
  for (const std::int64_t s : {std::int64_t{0}, utc_s(2000, 2, 29, 23, 59), utc_s(2199, 12, 31, 23, 59),
                               utc_s(1969, 12, 31, 12)}) {
    const CivilTime t = civil_from_seconds(s);
    EXPECT_EQ(days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.minute * 60 + t.second, s);
    EXPECT_EQ(t.weekday, weekday_of(t.year, t.month, t.day));
  }
  EXPECT_EQ(civil_from_seconds(0).weekday, 4u);  // Thursday
  EXPECT_EQ(weekday_of(2026, 11, 23), 1u);       // Monday
  EXPECT_EQ(days_in_month(2100, 2), 28u);
  EXPECT_EQ(days_in_month(2000, 2), 29u);
}

}  // namespace
}  // namespace nimbus::events
