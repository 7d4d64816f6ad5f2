#pragma once
// EventsControl: the nimbus extension of the control API that shows and
// redrives asynchronous invocations (`nimbus events ls|show|redrive`):
//   GET  /nimbus/v1/events?function=F&state=S&limit=N&before=SEQ
//   GET  /nimbus/v1/events/ID
//   POST /nimbus/v1/events/ID/redrive     (failed -> pending, age restarts)
// The api part mounts it behind SigV4 and renders errors in Lambda's shape.
//
// Threads: control() may be called from any io thread; reads go to the
// store, the redrive write through the AsyncQueue's writer (blocking).

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "events/async_queue.h"
#include "events/dispatcher.h"
#include "events/metrics.h"
#include "http/types.h"
#include "store/store.h"

namespace nimbus::events {

struct ControlReply {
  unsigned status = 200;
  nlohmann::json body;
};

class EventsControl {
 public:
  EventsControl(store::Store& store, AsyncQueue& queue, Dispatcher* dispatcher, EventsMetrics& metrics,
                const base::Clock& clock);

  [[nodiscard]] base::Result<ControlReply> control(http::Verb method, std::string_view path,
                                                   const http::Params& query, const std::string& body);

 private:
  base::Result<ControlReply> list(const http::Params& query);
  base::Result<ControlReply> redrive(const std::string& id);

  store::Store& store_;
  AsyncQueue& queue_;
  Dispatcher* dispatcher_;
  EventsMetrics& metrics_;
  const base::Clock& clock_;
};

// One invocation as the extension shows it; `full` adds payload and document.
[[nodiscard]] nlohmann::json render_invocation(const store::AsyncInvocationRow& row, bool full);

}  // namespace nimbus::events
