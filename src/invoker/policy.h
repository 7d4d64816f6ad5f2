#pragma once
// The invoker's decisions as pure functions over snapshots, so they are
// unit-tested without processes: where an invocation goes (an idle instance,
// a new one, or a throttle), which idle instances to evict, and how the
// REPORT line and error bodies read.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace nimbus::invoker {

enum class Placement {
  kUseIdle,                 // a warm instance of the current code is free
  kStartNew,                // none free and the limits allow one more
  kThrottleReserved,        // the function's reserved concurrency is used up
  kThrottleAccount,         // the account's (unreserved) concurrency is used up
};

// What the invoker knows when one invocation arrives.
struct ConcurrencySnapshot {
  int idle = 0;                           // warm instances of the current code
  int in_flight = 0;                      // this function's invocations running or starting
  std::optional<int> reserved;            // the function's reserved concurrency
  int unreserved_in_flight = 0;           // in flight across functions without a reservation
  int account_limit = 1000;
  int reserved_total = 0;                 // sum of all functions' reservations
};

[[nodiscard]] Placement place(const ConcurrencySnapshot& s);

// Which free instance takes an invocation placed kUseIdle, from `first` to
// `last` in order of preference (most recently used first: its caches are
// warmest): the first free one whose runtime connection is on the caller's
// io thread (`home(i) == here`), so the event and its answer wake no other
// thread; else the first free one. `last` if none is free.
template <typename It, typename Free, typename Home, typename Here>
[[nodiscard]] It pick_idle(It first, It last, Free free, Home home, const Here* here) {
  It fallback = last;
  for (It it = first; it != last; ++it) {
    if (!free(*it)) continue;
    if (home(*it) == here) return it;
    if (fallback == last) fallback = it;
  }
  return fallback;
}

// Whether an instance idle since `idle_since` has outlived the keep-alive.
[[nodiscard]] bool should_evict(std::chrono::steady_clock::time_point idle_since,
                                std::chrono::steady_clock::time_point now,
                                std::chrono::milliseconds keep_alive);

// Lambda rounds the billed duration up to the next whole millisecond.
[[nodiscard]] std::int64_t billed_ms(double duration_ms);

struct ReportFields {
  std::string request_id;
  double duration_ms = 0;
  int memory_mb = 0;
  int max_memory_used_mb = 0;
  std::optional<double> init_duration_ms;  // first invocation of an instance
  std::string status;                      // "", "timeout", "error"
  std::string error_type;                  // with status "error"
};
// "REPORT RequestId: …\tDuration: 1.23 ms\tBilled Duration: 2 ms\t…"
[[nodiscard]] std::string report_line(const ReportFields& f);

// "Task timed out after 3.00 seconds"
[[nodiscard]] std::string timeout_message(int timeout_seconds);
// "exit status 1" / "signal: killed" from a wait status.
[[nodiscard]] std::string exit_reason(int wait_status);

}  // namespace nimbus::invoker
