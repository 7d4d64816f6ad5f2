#pragma once
// `nimbus events ls|show|redrive`: asynchronous invocations through the
// daemon's /nimbus/v1/events extension.

#include <string>

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

}  // namespace nimbus::cli
