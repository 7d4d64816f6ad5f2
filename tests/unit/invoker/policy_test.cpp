#include "invoker/policy.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace nimbus::invoker {
namespace {

TEST(Placement, UsesIdleThenStartsNew) {
  ConcurrencySnapshot s;
  s.idle = 1;
  EXPECT_EQ(place(s), Placement::kUseIdle);
  s.idle = 0;
  EXPECT_EQ(place(s), Placement::kStartNew);
}

TEST(Placement, ReservedConcurrencyCaps) {
  ConcurrencySnapshot s;
  s.reserved = 2;
  s.in_flight = 1;
  EXPECT_EQ(place(s), Placement::kStartNew);
  s.in_flight = 2;
  s.idle = 3;  // idle instances do not lift the cap
  EXPECT_EQ(place(s), Placement::kThrottleReserved);
  s.reserved = 0;
  s.in_flight = 0;
  EXPECT_EQ(place(s), Placement::kThrottleReserved);
}

TEST(Placement, UnreservedPoolIsAccountMinusReservations) {
  ConcurrencySnapshot s;
  s.account_limit = 10;
  s.reserved_total = 4;
  s.unreserved_in_flight = 5;
  EXPECT_EQ(place(s), Placement::kStartNew);
  s.unreserved_in_flight = 6;
  EXPECT_EQ(place(s), Placement::kThrottleAccount);
  // A function with a reservation is not limited by the unreserved pool.
  s.reserved = 4;
  s.in_flight = 3;
  EXPECT_EQ(place(s), Placement::kStartNew);
}

TEST(Eviction, AfterKeepAlive) {
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_FALSE(should_evict(t0, t0 + std::chrono::seconds(599), std::chrono::minutes(10)));
  EXPECT_TRUE(should_evict(t0, t0 + std::chrono::seconds(600), std::chrono::minutes(10)));
}

TEST(Report, LambdaFormat) {
  EXPECT_EQ(billed_ms(5.56), 6);
  EXPECT_EQ(billed_ms(0.01), 1);
  EXPECT_EQ(billed_ms(7.0), 7);
  ReportFields f{"abc", 5.561, 512, 58, 144.1, {}, {}};
  EXPECT_EQ(report_line(f),
            "REPORT RequestId: abc\tDuration: 5.56 ms\tBilled Duration: 6 ms\tMemory Size: 512 MB\t"
            "Max Memory Used: 58 MB\tInit Duration: 144.10 ms\t");
  ReportFields t{"x", 3000.2, 128, 20, std::nullopt, "timeout", {}};
  EXPECT_NE(report_line(t).find("Status: timeout"), std::string::npos);
  ReportFields e{"x", 1, 128, 20, std::nullopt, "error", "Runtime.ExitError"};
  EXPECT_NE(report_line(e).find("Status: error\tError Type: Runtime.ExitError"), std::string::npos);
}

TEST(Messages, TimeoutAndExit) {
  EXPECT_EQ(timeout_message(3), "Task timed out after 3.00 seconds");
  int status = 0;
  // Build wait statuses the way the kernel does.
  status = 1 << 8;  // exited with 1
  EXPECT_EQ(exit_reason(status), "exit status 1");
  status = SIGKILL;
  EXPECT_EQ(exit_reason(status), "signal: killed");
}

}  // namespace
}  // namespace nimbus::invoker
