#pragma once
// Every metric the scheduler reports, declared in one place.

#include <string>

#include "telemetry/metrics.h"

namespace nimbus::events {

struct ScheduleMetrics {
  explicit ScheduleMetrics(telemetry::Registry& r) : registry(r) {}

  // Fires handed to the async invocation path, by schedule.
  telemetry::Counter& fires(const std::string& schedule) {
    return registry.labelled_counter("nimbus_schedule_fires_total", "Schedule fires handed to async invocation",
                                     "schedule", schedule);
  }
  // Fires the async invocation path refused (logged), by schedule.
  telemetry::Counter& fire_errors(const std::string& schedule) {
    return registry.labelled_counter("nimbus_schedule_fire_errors_total",
                                     "Schedule fires that could not be handed to async invocation", "schedule",
                                     schedule);
  }
  // Fires made after the daemon (or the timer) missed their time, by schedule.
  telemetry::Counter& catch_up_fires(const std::string& schedule) {
    return registry.labelled_counter("nimbus_schedule_catch_up_fires_total",
                                     "Schedule fires made late, for one or more missed times", "schedule", schedule);
  }

  telemetry::Registry& registry;
};

}  // namespace nimbus::events
