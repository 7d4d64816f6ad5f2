#include "invoker/policy.h"

#include <sys/wait.h>

#include <cmath>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::invoker {

Placement place(const ConcurrencySnapshot& s) {
  if (s.reserved) {
    // A reservation is both a guarantee and a cap.
    if (s.in_flight >= *s.reserved) return Placement::kThrottleReserved;
  } else if (s.unreserved_in_flight >= s.account_limit - s.reserved_total) {
    return Placement::kThrottleAccount;
  }
  return s.idle > 0 ? Placement::kUseIdle : Placement::kStartNew;
}

bool should_evict(std::chrono::steady_clock::time_point idle_since, std::chrono::steady_clock::time_point now,
                  std::chrono::milliseconds keep_alive) {
  return now - idle_since >= keep_alive;
}

std::int64_t billed_ms(double duration_ms) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(duration_ms)));
}

std::string report_line(const ReportFields& f) {
  std::string out = fmt::format(
      "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
      f.request_id, f.duration_ms, billed_ms(f.duration_ms), f.memory_mb, f.max_memory_used_mb);
  if (f.init_duration_ms) out += fmt::format("Init Duration: {:.2f} ms\t", *f.init_duration_ms);
  if (!f.status.empty()) {
    out += fmt::format("Status: {}", f.status);
    if (!f.error_type.empty()) out += fmt::format("\tError Type: {}", f.error_type);
  }
  return out;
}

std::string timeout_message(int timeout_seconds) {
  return fmt::format("Task timed out after {:.2f} seconds", static_cast<double>(timeout_seconds));
}

std::string exit_reason(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    // Go's wording, which Lambda's messages use: "signal: killed".
    const char* name = sig == SIGKILL ? "killed" : sig == SIGSEGV ? "segmentation fault" : sig == SIGABRT ? "aborted" : nullptr;
    if (name) return fmt::format("signal: {}", name);
    return fmt::format("signal: {}", strsignal(sig));
  }
  return "unknown exit";
}

}  // namespace nimbus::invoker
