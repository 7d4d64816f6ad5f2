#pragma once
// Every metric the events part reports, declared in one place and looked up
// once at construction.

#include "telemetry/metrics.h"

namespace nimbus::events {

struct EventsMetrics {
  explicit EventsMetrics(telemetry::Registry& r)
      : enqueued(r.counter("nimbus_async_enqueued_total", "Asynchronous invocations accepted (committed, 202)")),
        enqueue_errors(r.counter("nimbus_async_enqueue_errors_total",
                                 "Asynchronous invocations refused because the store could not commit them")),
        attempts(r.counter("nimbus_async_attempts_total", "Attempts made to run asynchronous invocations")),
        retries(r.counter("nimbus_async_retries_total", "Asynchronous invocations scheduled for another attempt")),
        succeeded(r.counter("nimbus_async_succeeded_total", "Asynchronous invocations that succeeded")),
        failed(r.counter("nimbus_async_failed_total",
                         "Asynchronous invocations that failed for good (retries exhausted or event too old)")),
        destination_failures(r.counter("nimbus_async_destination_failures_total",
                                       "Destination or dead-letter deliveries that could not be made")),
        store_errors(r.counter("nimbus_async_store_errors_total", "Dispatcher writes the store refused")),
        pruned(r.counter("nimbus_async_pruned_total",
                         "Ended asynchronous invocations deleted after their keep time")),
        queue_depth(r.gauge("nimbus_async_queue_depth", "Asynchronous invocations pending or running")),
        running(r.gauge("nimbus_async_running", "Asynchronous invocations being attempted now")) {}

  telemetry::Counter& enqueued;
  telemetry::Counter& enqueue_errors;
  telemetry::Counter& attempts;
  telemetry::Counter& retries;
  telemetry::Counter& succeeded;
  telemetry::Counter& failed;
  telemetry::Counter& destination_failures;
  telemetry::Counter& store_errors;
  telemetry::Counter& pruned;
  telemetry::Gauge& queue_depth;
  telemetry::Gauge& running;
};

}  // namespace nimbus::events
