#pragma once
// Every metric the invoker reports, declared in one place. A function's
// series are looked up once, when its pool is created, so the invoke path
// only touches atomics.

#include <string>

#include "telemetry/metrics.h"

namespace nimbus::invoker {

struct FunctionMetrics {
  FunctionMetrics(telemetry::Registry& r, const std::string& fn)
      : invocations(r.counter("nimbus_invocations_total", "Invocations", fn)),
        errors(r.counter("nimbus_invocation_errors_total", "Invocations that failed", fn)),
        throttles(r.counter("nimbus_throttles_total", "Invocations refused for concurrency", fn)),
        timeouts(r.counter("nimbus_timeouts_total", "Invocations that timed out", fn)),
        runtime_exits(r.counter("nimbus_runtime_exits_total", "Instances that exited during an invocation", fn)),
        oom_kills(r.counter("nimbus_oom_kills_total", "Instances killed for exceeding their memory", fn)),
        cold_starts(r.counter("nimbus_cold_starts_total", "Instances started", fn)),
        pooled_starts(r.counter("nimbus_cold_starts_pooled_total",
                                "Instances started in a sandbox made ahead of time (the rest built theirs)", fn)),
        primed_starts(r.counter("nimbus_cold_starts_primed_total",
                                "Instances started from a primed runtime (interpreter already loaded)", fn)),
        forked_starts(r.counter("nimbus_cold_starts_forked_total",
                                "Instances forked from their function's initialised fork template", fn)),
        waited_in_line(r.counter("nimbus_invocations_waited_total",
                                 "Invocations that found no idle instance while --max-parallel-starts cold starts "
                                 "were in flight, and waited in line",
                                 fn)),
        handed_over(r.counter("nimbus_invocations_handed_over_total",
                              "Invocations in line that took an instance another invocation freed", fn)),
        log_bytes_dropped(r.counter("nimbus_log_bytes_dropped_total",
                                    "Output an instance printed beyond the per-invocation log cap (not kept)", fn)),
        prewarms(r.counter("nimbus_prewarms_total",
                           "Instances started ahead of an expected arrival (adaptive keep-alive)", fn)),
        duration(r.histogram("nimbus_invocation_duration_ms", "Invocation duration", fn)),
        init_duration(r.histogram("nimbus_init_duration_ms", "Instance init duration (spawn to first /next)", fn)),
        concurrent(r.gauge("nimbus_concurrent_executions", "Invocations in flight", fn)),
        instances(r.gauge("nimbus_instances", "Live instances per function", fn)),
        keep_alive_ms(r.gauge("nimbus_keep_alive_ms", "Keep-alive window the adaptive policy chose", fn)) {}

  telemetry::Counter& invocations;
  telemetry::Counter& errors;
  telemetry::Counter& throttles;
  telemetry::Counter& timeouts;
  telemetry::Counter& runtime_exits;
  telemetry::Counter& oom_kills;
  telemetry::Counter& cold_starts;
  telemetry::Counter& pooled_starts;
  telemetry::Counter& primed_starts;
  telemetry::Counter& forked_starts;
  telemetry::Counter& waited_in_line;
  telemetry::Counter& handed_over;
  telemetry::Counter& log_bytes_dropped;
  telemetry::Counter& prewarms;
  telemetry::Histogram& duration;
  telemetry::Histogram& init_duration;
  telemetry::Gauge& concurrent;
  telemetry::Gauge& instances;
  telemetry::Gauge& keep_alive_ms;
};

}  // namespace nimbus::invoker
