#pragma once
// Dispatcher: runs the asynchronous invocations the AsyncQueue holds. One
// coroutine claims due rows (at most max_in_flight at a time), each claimed
// row is attempted through invoker::Invoker (the stored qualifier is resolved
// again per attempt, as Lambda does), and the outcome is applied with the
// pure policy of policy.h: another attempt later, or the end — succeeded or
// failed — with the invocation record sent to the OnSuccess / OnFailure
// destination and, on failure, the event to the function's dead-letter queue.
// The row's final state and a destination function's new row are written in
// one group-committed transaction, so a destination is never lost either.
//
// At start, rows a crash left `running` go back to `pending` (at least once).
//
// Threads: the claim loop runs on a strand of the io executor; attempts run
// on the io executor. Owned by the daemon: start() after the invoker,
// stop() before it.

#include <atomic>
#include <cstdint>
#include <chrono>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "events/async_queue.h"
#include "events/invoke_config.h"
#include "events/message_sink.h"
#include "events/metrics.h"
#include "events/policy.h"
#include "invoker/invoker.h"
#include "registry/registry.h"

namespace nimbus::events {

struct DispatcherConfig {
  // Test-only: event time runs this many times faster than real time, so the
  // retry delays of minutes pass in milliseconds (`--events-time-scale`).
  double time_scale = 1.0;
  int max_in_flight = 32;
  std::chrono::milliseconds poll_interval{50};
  // How long ended invocations stay listable (`nimbus events`) before they
  // are deleted (--events-keep-succeeded, --events-keep-failed); event time.
  std::chrono::seconds keep_succeeded{std::chrono::hours(1)};
  std::chrono::seconds keep_failed{std::chrono::hours(24 * 14)};
  // How often the dispatcher looks for ended rows to delete; event time.
  std::chrono::seconds prune_interval{60};
};

// The last attempt's response, as the invocation record shows it.
struct AttemptResponse {
  int status_code = 0;  // 0: no attempt was made
  std::string executed_version;
  bool function_error = false;
  std::string payload;  // JSON text (or the platform's error JSON)
};

// Lambda's destination invocation record (shared/reference/events.md §8.1).
[[nodiscard]] nlohmann::json invocation_record(const std::string& request_id, const std::string& function_arn,
                                               Condition condition, std::int64_t attempts,
                                               const std::string& request_payload, const AttemptResponse& response,
                                               std::int64_t now_ms);

class Dispatcher {
 public:
  Dispatcher(asio::any_io_executor executor, AsyncQueue& queue, store::Store& store, invoker::Invoker& invoker,
             registry::Registry& registry, EventInvokeConfigs& configs, MessageSink* sink, EventsMetrics& metrics,
             const base::Clock& clock, DispatcherConfig config);

  // Requeues rows left running, counts the queue, starts claiming.
  [[nodiscard]] base::Status start();
  void stop();
  // Claims again now (new rows were committed, or capacity freed).
  void wake();

  [[nodiscard]] const DispatcherConfig& config() const { return config_; }

 private:
  asio::awaitable<void> claim_loop();
  // Deletes ended rows past their keep time, a bounded batch per call.
  asio::awaitable<void> prune_ended();
  asio::awaitable<void> attempt(store::AsyncInvocationRow row);
  // Sends the record / event of a finished invocation where it is configured
  // to go; adds destination rows to `batch`; returns what happened to each.
  nlohmann::json deliver(const store::AsyncInvocationRow& row, Condition condition, const AttemptResponse& response,
                         const EventInvokeConfig& config, store::AsyncWriteBatch& batch);
  nlohmann::json send_to_queue(std::string_view type, const std::string& arn, const std::string& body,
                               const MessageAttributes& attributes);

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  AsyncQueue& queue_;
  store::Store& store_;
  invoker::Invoker& invoker_;
  registry::Registry& registry_;
  EventInvokeConfigs& configs_;
  MessageSink* sink_;
  EventsMetrics& metrics_;
  const base::Clock& clock_;
  DispatcherConfig config_;
  std::unique_ptr<asio::steady_timer> timer_;  // on strand_
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> woken_{false};
  static constexpr std::int64_t kNoDue = INT64_MAX;
  std::atomic<std::int64_t> next_due_ms_{kNoDue};  // earliest scheduled retry
  std::int64_t next_prune_ms_ = 0;                 // on strand_
};

}  // namespace nimbus::events
