// What the adaptive keep-alive costs per invocation: recording one idle time
// and deciding the windows again (the invoker does both when a function
// that was idle is invoked). Target: <= 10 us per invocation (issue 7).

#include <benchmark/benchmark.h>

#include <chrono>

#include "invoker/keep_alive.h"

namespace {

using nimbus::invoker::IdleHistogram;
using nimbus::invoker::KeepAlivePolicy;

void BM_RecordAndDecide(benchmark::State& state) {
  IdleHistogram h;
  const KeepAlivePolicy policy;
  std::int64_t gap = 250;
  for (auto _ : state) {
    gap = gap * 1103515245 % 600000 + 1;  // idle times spread over 10 minutes
    h.record(std::chrono::milliseconds(gap));
    benchmark::DoNotOptimize(nimbus::invoker::decide_keep_alive(h, policy));
  }
}
BENCHMARK(BM_RecordAndDecide);

}  // namespace
