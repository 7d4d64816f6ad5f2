#include "gateway/token_bucket.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {
namespace {

TEST(TokenBucket, StartsFullAndRefusesPastTheBurst) {
  base::ManualClock clock(1'000'000);
  TokenBucket b(10, 3, clock);
  EXPECT_TRUE(b.try_take());
  EXPECT_TRUE(b.try_take());
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
}

TEST(TokenBucket, RefillsAtTheRate) {
  base::ManualClock clock(0);
  TokenBucket b(10, 5, clock);  // one token per 100 ms
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
  clock.advance_ms(99);
  EXPECT_FALSE(b.try_take());
  clock.advance_ms(1);
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
  clock.advance_ms(250);  // 2.5 tokens
  EXPECT_TRUE(b.try_take());
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
  EXPECT_NEAR(b.available(), 0.5, 1e-9);
}

TEST(TokenBucket, NeverHoldsMoreThanTheBurst) {
  base::ManualClock clock(0);
  TokenBucket b(1000, 2, clock);
  clock.advance_ms(60'000);
  EXPECT_DOUBLE_EQ(b.available(), 2.0);
  EXPECT_TRUE(b.try_take());
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
}

TEST(TokenBucket, FractionalRatesAndClockSteppingBack) {
  base::ManualClock clock(10'000);
  TokenBucket b(0.5, 1, clock);  // one request every two seconds
  EXPECT_TRUE(b.try_take());
  clock.advance_ms(1999);
  EXPECT_FALSE(b.try_take());
  clock.advance_ms(-5000);  // the wall clock moved back: no tokens appear
  EXPECT_FALSE(b.try_take());
  clock.advance_ms(5000 + 1);
  EXPECT_TRUE(b.try_take());
}

TEST(TokenBucket, ZeroBurstMeansOne) {
  base::ManualClock clock(0);
  TokenBucket b(1, 0, clock);
  EXPECT_EQ(b.burst(), 1);
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
}

}  // namespace
}  // namespace nimbus::gateway
