// The adaptive keep-alive policy as a pure function: bins, quantiles, aging,
// and the decisions it makes for steady, bursty, long-gap and unknown traffic.

#include <gtest/gtest.h>

#include "invoker/keep_alive.h"

namespace nimbus::invoker {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(KeepAliveTest, BinsAreLogSpacedAndCoverTheRange) {
  EXPECT_EQ(IdleHistogram::bin_of(milliseconds(0)), 0);
  EXPECT_EQ(IdleHistogram::bin_of(milliseconds(99)), 0);
  EXPECT_EQ(IdleHistogram::bin_of(IdleHistogram::kLastEdge), IdleHistogram::kBins);
  EXPECT_EQ(IdleHistogram::bin_of(IdleHistogram::kLastEdge - milliseconds(1)), IdleHistogram::kBins - 1);
  for (int b = 0; b < IdleHistogram::kBins; ++b) {
    EXPECT_LT(IdleHistogram::lower_edge(b), IdleHistogram::upper_edge(b));
    if (b > 0) {
      EXPECT_EQ(IdleHistogram::lower_edge(b), IdleHistogram::upper_edge(b - 1));
    }
    // A value inside a bin lands in it.
    const milliseconds mid = (IdleHistogram::lower_edge(b) + IdleHistogram::upper_edge(b)) / 2;
    EXPECT_EQ(IdleHistogram::bin_of(mid), b) << mid.count();
  }
  EXPECT_EQ(sizeof(IdleHistogram), 88u);  // the state per function
}

TEST(KeepAliveTest, TooLittleHistoryKeepsTheFixedWindow) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.fixed = minutes(10);
  for (int i = 0; i < 7; ++i) h.record(seconds(2));
  KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_FALSE(w.adaptive);
  EXPECT_EQ(w.keep_alive, minutes(10));
  EXPECT_EQ(w.prewarm, milliseconds(0));
  h.record(seconds(2));
  EXPECT_TRUE(decide_keep_alive(h, p).adaptive);
}

TEST(KeepAliveTest, SteadyTrafficKeepsInstancesJustPastTheLongestGap) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.floor = milliseconds(500);
  for (int i = 0; i < 100; ++i) h.record(milliseconds(1500 + 10 * (i % 50)));  // 1.5-2 s gaps
  const KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_TRUE(w.adaptive);
  EXPECT_GE(w.keep_alive, milliseconds(1990));           // covers every gap seen
  EXPECT_LE(w.keep_alive, milliseconds(2 * 1990 + 100));  // and not ten minutes
  EXPECT_EQ(w.prewarm, milliseconds(0));                  // gaps too short to pre-warm across
}

TEST(KeepAliveTest, ShortGapsStillGetTheFloor) {
  IdleHistogram h;
  KeepAlivePolicy p;
  EXPECT_EQ(p.floor, std::chrono::minutes(1));
  for (int i = 0; i < 50; ++i) h.record(milliseconds(20));
  EXPECT_EQ(decide_keep_alive(h, p).keep_alive, p.floor);
  p.fixed = seconds(1);  // a configured keep-alive below the floor wins
  EXPECT_EQ(decide_keep_alive(h, p).keep_alive, seconds(1));
}

TEST(KeepAliveTest, NeverLongerThanTheConfiguredKeepAlive) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.fixed = seconds(30);
  for (int i = 0; i < 50; ++i) h.record(minutes(5));
  const KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_TRUE(w.adaptive);
  EXPECT_EQ(w.keep_alive, seconds(30));
  EXPECT_EQ(w.prewarm, milliseconds(0));  // a pre-warmed instance would not outlive its start
}

TEST(KeepAliveTest, LongPredictableGapsArePrewarmed) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.fixed = minutes(30);
  for (int i = 0; i < 60; ++i) h.record(minutes(10) + seconds(i % 20));  // a cron-like job every ~10 minutes
  const KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_TRUE(w.adaptive);
  // Started before the next arrival, kept until after it.
  EXPECT_GT(w.prewarm, minutes(5));
  EXPECT_LT(w.prewarm, minutes(10));
  EXPECT_GT(w.keep_alive, minutes(10) + seconds(20));
  EXPECT_LE(w.keep_alive, minutes(30));
}

TEST(KeepAliveTest, BurstsWithOccasionalLongGapsDoNotPrewarm) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.floor = milliseconds(100);
  for (int i = 0; i < 95; ++i) h.record(milliseconds(300));
  for (int i = 0; i < 5; ++i) h.record(minutes(3));
  const KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_EQ(w.prewarm, milliseconds(0));     // the 5th percentile gap is short
  EXPECT_GE(w.keep_alive, milliseconds(300));
}

TEST(KeepAliveTest, PatternsLongerThanTheHistogramFallBackToFixed) {
  IdleHistogram h;
  KeepAlivePolicy p;
  for (int i = 0; i < 20; ++i) h.record(std::chrono::hours(6));
  EXPECT_EQ(h.beyond(), 20u);
  EXPECT_FALSE(decide_keep_alive(h, p).adaptive);
}

TEST(KeepAliveTest, OldBehaviourFadesAsCountsAreHalved) {
  IdleHistogram h;
  KeepAlivePolicy p;
  p.floor = milliseconds(100);
  for (std::uint32_t i = 0; i < IdleHistogram::kHalveAt - 1; ++i) h.record(minutes(20));
  EXPECT_EQ(h.samples(), IdleHistogram::kHalveAt - 1);
  h.record(minutes(20));
  EXPECT_EQ(h.samples(), IdleHistogram::kHalveAt / 2);
  // The traffic changes to short gaps; after enough of them the decision follows.
  for (int i = 0; i < 20000; ++i) h.record(seconds(1));
  const KeepAliveWindows w = decide_keep_alive(h, p);
  EXPECT_TRUE(w.adaptive);
  EXPECT_LT(w.keep_alive, seconds(5));
}

}  // namespace
}  // namespace nimbus::invoker
