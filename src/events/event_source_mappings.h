#pragma once
// EventSourceMappings: SQS-compatible queues feeding functions in batches
// (Create/Get/List/Update/DeleteEventSourceMapping; semantics in
// shared/reference/events.md §3 and §9). Each enabled mapping has pollers:
// coroutines that long-poll its queue, gather a batch (BatchSize, the
// batching window, the 6 MB payload cap), invoke the function synchronously
// with Lambda's SQS event, and delete what succeeded. A failed batch is left
// alone: its messages reappear after the visibility timeout and follow the
// queue's redrive policy. With ReportBatchItemFailures only the reported
// messages stay.
//
// Scaling: a mapping starts with one poller; a poller that gathers a full
// batch starts another (up to ScalingConfig.MaximumConcurrency, else the
// function's reserved concurrency, else kDefaultMaxPollers); a poller that
// finds the queue empty, or whose batch was throttled, ends unless it is the
// last one.
//
// Mappings are stored with the queues (QueueService::put_mapping), outlive
// their function and their queue (then they report the problem in
// LastProcessingResult), and resume after a restart.
//
// Threads: every method may be called from any thread; pollers run on the io
// executor. Owned by the daemon: construct after the queues and the invoker,
// stop() before them.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "events/event_source_mapping.h"
#include "events/queue_service.h"
#include "invoker/invoker.h"
#include "registry/registry.h"
#include "telemetry/metrics.h"

namespace nimbus::events {

struct EventSourceMappingsConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  // How long a poller waits after a problem (queue or function gone, store
  // error) before it polls again.
  std::chrono::milliseconds problem_backoff{1000};
};

// Pollers per mapping when neither MaximumConcurrency nor the function's
// reserved concurrency bounds them.
inline constexpr int kDefaultMaxPollers = 100;
inline constexpr std::size_t kMaxMappingsPage = 100;

// A mapping as the API shows it.
struct MappingView {
  EventSourceMapping mapping;
  std::string state;                   // Enabled | Disabled
  std::string last_processing_result;  // No records processed | OK | PROBLEM: ...
  int pollers = 0;
};

struct MappingPage {
  std::vector<MappingView> mappings;
  std::string next_marker;  // empty: last page
};

class EventSourceMappings {
 public:
  EventSourceMappings(asio::any_io_executor executor, QueueService& queues, invoker::Invoker& invoker,
                      registry::Registry& registry, telemetry::Registry& metrics, const base::Clock& clock,
                      EventSourceMappingsConfig config);
  ~EventSourceMappings();
  EventSourceMappings(const EventSourceMappings&) = delete;
  EventSourceMappings& operator=(const EventSourceMappings&) = delete;

  // Loads the stored mappings and starts the pollers of the enabled ones.
  [[nodiscard]] base::Status start();
  // Pollers finish the batch in hand and end; no new ones start.
  void stop();

  // spec.function and spec.event_source_arn are required. Errors in
  // Lambda's words: an unknown function or queue, a duplicate (conflict),
  // ranges. Durable before it answers.
  asio::awaitable<base::Result<MappingView>> create(MappingSpec spec);
  [[nodiscard]] base::Result<MappingView> get(std::string_view uuid) const;
  asio::awaitable<base::Result<MappingView>> update(std::string uuid, MappingSpec spec);
  // Returns the mapping as it was.
  asio::awaitable<base::Result<MappingView>> remove(std::string uuid);
  // Filters are optional; `qualifier` only applies with `function`. Pages of
  // at most `max_items` (capped at 100) after `marker` (a UUID).
  [[nodiscard]] MappingPage list(std::string_view event_source_arn, std::string_view function,
                                 std::string_view qualifier, std::string_view marker, std::size_t max_items) const;

  // arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID
  [[nodiscard]] std::string mapping_arn(std::string_view uuid) const;
  [[nodiscard]] const EventSourceMappingsConfig& config() const { return config_; }

 private:
  struct Runner;
  struct Batch;
  struct Metrics;
  struct Entry {
    EventSourceMapping mapping;
    std::shared_ptr<Runner> runner;  // null while disabled
  };

  // Checks the function and the queue a mapping names; the queue's FIFO-ness.
  base::Result<bool> check_targets(const EventSourceMapping& mapping) const;
  base::Status check_duplicate(const EventSourceMapping& mapping) const;  // under mu_
  MappingView view_of(const Entry& entry) const;                           // under mu_
  // Retires the entry's runner and starts a new one if it is enabled (under mu_).
  void restart(Entry& entry);
  void spawn_poller(std::shared_ptr<Runner> runner);
  asio::awaitable<void> poll(std::shared_ptr<Runner> runner);
  asio::awaitable<base::Result<Batch>> gather(Runner& runner);
  // Invokes the function with a batch; true when it was throttled.
  asio::awaitable<bool> deliver(Runner& runner, Batch batch);
  int max_pollers(const Runner& runner) const;

  asio::any_io_executor executor_;
  QueueService& queues_;
  invoker::Invoker& invoker_;
  registry::Registry& registry_;
  const base::Clock& clock_;
  EventSourceMappingsConfig config_;
  std::unique_ptr<Metrics> metrics_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // by UUID; guarded by mu_
};

}  // namespace nimbus::events
