#pragma once
// `nimbus events ls|show|redrive`: asynchronous invocations through the
// daemon's /nimbus/v1/events extension. `nimbus mapping add|ls|rm|enable|
// disable`: event source mappings through the Lambda API. `nimbus schedule
// add|ls|rm|enable|disable`: schedules through /nimbus/v1/schedules.

#include <string>
#include <string_view>

#include "cli/control_client.h"

namespace nimbus::cli {

struct EventsListOptions {
  std::string function;
  std::string state;
  int limit = 50;
};

int events_list(ControlClient& client, const EventsListOptions& options);
int events_show(ControlClient& client, const std::string& id);
int events_redrive(ControlClient& client, const std::string& id);

struct MappingOptions {
  std::string id;              // UUID (rm, enable, disable)
  std::string queue;           // name or ARN
  std::string function;        // NAME or NAME:QUALIFIER
  int batch_size = 0;          // 0: Lambda's default (10)
  int window_s = -1;           // -1: default (0)
  bool report_failures = false;
  int max_concurrency = 0;     // 0: unbounded (by the function's limits)
  bool disabled = false;
};

int mapping_add(ControlClient& client, const MappingOptions& options);
int mapping_list(ControlClient& client, const std::string& function);
int mapping_remove(ControlClient& client, const std::string& id);
int mapping_set_enabled(ControlClient& client, const std::string& id, bool enabled);

struct ScheduleOptions {
  std::string name;
  std::string function;  // NAME or NAME:QUALIFIER
  std::string expression;
  std::string timezone;
  std::string input;
  bool disabled = false;
};

int schedule_add(ControlClient& client, const ScheduleOptions& options);
int schedule_list(ControlClient& client);
int schedule_remove(ControlClient& client, const std::string& name);
// `action` is "enable" or "disable".
int schedule_set_state(ControlClient& client, const std::string& name, std::string_view action);

}  // namespace nimbus::cli
