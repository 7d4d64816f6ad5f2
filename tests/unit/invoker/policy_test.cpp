#include "invoker/policy.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <vector>

namespace nimbus::invoker {
namespace {

TEST(Placement, UsesIdleThenStartsNew) {
  ConcurrencySnapshot s;
  s.idle = 1;
  EXPECT_EQ(place(s), Placement::kUseIdle);
  s.idle = 0;
  EXPECT_EQ(place(s), Placement::kStartNew);
}

// An instance as pick_idle sees it: free or not, and the io thread (0 or 1)
// its runtime connection lives on.
struct FakeInstance {
  bool idle;
  int thread;
};

// The first idle instance in preference order that lives on the caller's io
// thread, else the first idle one, else none.
TEST(Placement, PicksAnIdleInstanceOnTheCallersThreadFirst) {
  const int threads[2] = {0, 1};  // only their addresses matter
  std::vector<FakeInstance> v{{false, 0}, {true, 1}, {true, 0}, {true, 0}};
  const auto pick = [&](int here) {
    return pick_idle(
               v.begin(), v.end(), [](const FakeInstance& i) { return i.idle; },
               [&](const FakeInstance& i) { return &threads[i.thread]; }, &threads[here]) -
           v.begin();
  };
  EXPECT_EQ(pick(0), 2);  // not 0: it is busy
  EXPECT_EQ(pick(1), 1);
  v[1].idle = false;
  EXPECT_EQ(pick(1), 2);  // nothing free on thread 1: the first free one
  v[2].idle = v[3].idle = false;
  EXPECT_EQ(pick(0), 4);  // none free: end
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
