#include "events/event_source_mappings.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/crypto.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

// A poller's long poll: short, so a retired poller ends within a second;
// a receive answers as soon as a message arrives, so this costs no latency.
constexpr std::int64_t kPollWaitSeconds = 1;
// What a record adds to the event beyond its body and attributes.
constexpr std::size_t kRecordOverheadBytes = 1024;

constexpr std::string_view kNoRecords = "No records processed";
constexpr std::string_view kOk = "OK";

std::size_t record_size(const ReceivedMessage& m) {
  return m.body.size() + attributes_size(m.attributes) + kRecordOverheadBytes;
}

std::int64_t attribute_number(const AttributeMap& attributes, const std::string& name, std::int64_t fallback) {
  const auto it = attributes.find(name);
  if (it == attributes.end()) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  return end != it->second.c_str() && *end == '\0' ? v : fallback;
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("events: an event source mapping poller ended with an exception: {}", ex.what());
  }
}

}  // namespace

// What the pollers of one version of a mapping share. A new version
// (update, disable) retires the old one: its pollers finish the batch in
// hand and end.
struct EventSourceMappings::Runner {
  explicit Runner(EventSourceMapping m) : mapping(std::move(m)) {
    for (const auto& pattern : mapping.filters) {
      // Checked when the mapping was written.
      if (auto f = EventFilter::parse(pattern); f.ok()) filters.push_back(std::move(*f));
    }
  }
  const EventSourceMapping mapping;
  std::vector<EventFilter> filters;
  std::atomic<bool> retired{false};
  std::atomic<int> pollers{0};

  void set_result(std::string_view result) {
    std::lock_guard lock(mu);
    last_result = std::string(result);
  }
  [[nodiscard]] std::string result() const {
    std::lock_guard lock(mu);
    return last_result;
  }
  mutable std::mutex mu;
  std::string last_result{kNoRecords};  // guarded by mu
};

struct EventSourceMappings::Batch {
  std::vector<ReceivedMessage> messages;
  bool full = false;  // BatchSize or the payload cap reached
};

// Every metric the pollers report, by function.
struct EventSourceMappings::Metrics {
  explicit Metrics(telemetry::Registry& r) : registry(r) {}
  telemetry::Counter& batches(const std::string& function) {
    return registry.counter("nimbus_esm_batches_total", "Batches event source mappings handed to functions", function);
  }
  telemetry::Counter& messages(const std::string& function) {
    return registry.counter("nimbus_esm_messages_total", "Queue messages delivered in batches", function);
  }
  telemetry::Counter& deleted(const std::string& function) {
    return registry.counter("nimbus_esm_messages_deleted_total",
                            "Queue messages deleted after their batch succeeded", function);
  }
  telemetry::Counter& failed_batches(const std::string& function) {
    return registry.counter("nimbus_esm_failed_batches_total",
                            "Batches left on the queue whole (function error, throttle, invalid partial response)",
                            function);
  }
  telemetry::Counter& item_failures(const std::string& function) {
    return registry.counter("nimbus_esm_item_failures_total",
                            "Messages a function reported in batchItemFailures", function);
  }
  telemetry::Counter& filtered(const std::string& function) {
    return registry.counter("nimbus_esm_filtered_total",
                            "Queue messages no FilterCriteria pattern matched (deleted, never delivered)", function);
  }
  telemetry::Gauge& pollers(const std::string& function) {
    return registry.gauge("nimbus_esm_pollers", "Event source mapping pollers running", function);
  }
  telemetry::Registry& registry;
};

EventSourceMappings::EventSourceMappings(asio::any_io_executor executor, QueueService& queues,
                                         invoker::Invoker& invoker, registry::Registry& registry,
                                         telemetry::Registry& metrics, const base::Clock& clock,
                                         EventSourceMappingsConfig config)
    : executor_(std::move(executor)),
      queues_(queues),
      invoker_(invoker),
      registry_(registry),
      clock_(clock),
      config_(std::move(config)),
      metrics_(std::make_unique<Metrics>(metrics)) {}

EventSourceMappings::~EventSourceMappings() { stop(); }

base::Status EventSourceMappings::start() {
  std::lock_guard lock(mu_);
  for (const auto& row : queues_.stored_mappings()) {
    auto mapping = mapping_from_document(row.document);
    if (!mapping.ok()) {
      spdlog::error("events: event source mapping {} is unreadable and stays off: {}", row.uuid,
                    mapping.error().message);
      continue;
    }
    Entry& entry = entries_[mapping->uuid];
    entry.mapping = std::move(*mapping);
    restart(entry);
  }
  if (!entries_.empty()) spdlog::info("events: {} event source mapping(s) loaded", entries_.size());
  return base::Ok{};
}

void EventSourceMappings::stop() {
  stopping_ = true;
  std::lock_guard lock(mu_);
  for (auto& [uuid, entry] : entries_) {
    if (entry.runner) entry.runner->retired = true;
  }
}

std::string EventSourceMappings::mapping_arn(std::string_view uuid) const {
  return fmt::format("arn:aws:lambda:{}:{}:event-source-mapping:{}", config_.region, config_.account_id, uuid);
}

base::Result<bool> EventSourceMappings::check_targets(const EventSourceMapping& m) const {
  if (!registry_.get_qualified(m.function, m.qualifier).ok()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Function does not exist: {}", registry_.function_arn(m.function, m.qualifier)));
  }
  if (!m.event_source_arn.starts_with("arn:aws:sqs:")) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("nimbus supports SQS queues as event sources; '{}' is not an SQS queue ARN",
                                  m.event_source_arn));
  }
  auto name = queues_.name_from_arn(m.event_source_arn);
  if (!name.ok() || !queues_.queue_exists(*name).ok()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Error occurred while ReceiveMessage. SQS Error Code: "
                                  "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue "
                                  "does not exist: {}",
                                  m.event_source_arn));
  }
  return name->ends_with(".fifo");
}

base::Status EventSourceMappings::check_duplicate(const EventSourceMapping& m) const {
  for (const auto& [uuid, entry] : entries_) {
    if (uuid != m.uuid && entry.mapping.event_source_arn == m.event_source_arn &&
        entry.mapping.function == m.function && entry.mapping.qualifier == m.qualifier) {
      return make_error(ErrorCode::kResourceConflict,
                        fmt::format("An event source mapping with SQS arn (\" {} \") and function (\" {} \") already "
                                    "exists. Please update or delete the existing mapping with UUID {}",
                                    m.event_source_arn, m.qualifier.empty() ? m.function : m.function + ":" + m.qualifier,
                                    uuid));
    }
  }
  return base::Ok{};
}

MappingView EventSourceMappings::view_of(const Entry& entry) const {
  MappingView view;
  view.mapping = entry.mapping;
  view.state = entry.mapping.enabled ? "Enabled" : "Disabled";
  view.last_processing_result = entry.runner ? entry.runner->result() : std::string(kNoRecords);
  view.pollers = entry.runner ? entry.runner->pollers.load() : 0;
  return view;
}

void EventSourceMappings::restart(Entry& entry) {
  std::string last_result(kNoRecords);
  if (entry.runner) {
    entry.runner->retired = true;
    last_result = entry.runner->result();
    entry.runner.reset();
  }
  if (!entry.mapping.enabled || stopping_) return;
  entry.runner = std::make_shared<Runner>(entry.mapping);
  entry.runner->set_result(last_result);
  spawn_poller(entry.runner);
}

asio::awaitable<base::Result<MappingView>> EventSourceMappings::create(MappingSpec spec) {
  if (!spec.function || spec.function->empty()) {
    co_return make_error(ErrorCode::kInvalidParameterValue, "FunctionName is required");
  }
  if (!spec.event_source_arn || spec.event_source_arn->empty()) {
    co_return make_error(ErrorCode::kInvalidParameterValue,
                         "EventSourceArn is required: the ARN of the SQS queue that feeds the function");
  }
  EventSourceMapping mapping;
  mapping.function = *spec.function;
  mapping.qualifier = spec.qualifier.value_or("");
  mapping.event_source_arn = *spec.event_source_arn;
  auto fifo = check_targets(mapping);
  if (!fifo.ok()) co_return std::move(fifo).error();
  if (auto s = apply_spec(spec, *fifo, mapping); !s.ok()) co_return s.error();
  mapping.queue = *queues_.name_from_arn(mapping.event_source_arn);
  mapping.uuid = base::uuid4();
  mapping.last_modified_ms = clock_.now_ms();
  {
    // Reserve the pair before the write so two racing creates cannot both win.
    std::lock_guard lock(mu_);
    if (auto s = check_duplicate(mapping); !s.ok()) co_return s.error();
    entries_[mapping.uuid].mapping = mapping;
    entries_[mapping.uuid].mapping.enabled = false;
  }
  // A named row: a braced temporary inside co_await trips GCC 12.
  MappingRow row{mapping.uuid, to_document(mapping)};
  base::Status written = co_await queues_.put_mapping(std::move(row));
  std::lock_guard lock(mu_);
  const auto it = entries_.find(mapping.uuid);
  if (!written.ok()) {
    if (it != entries_.end()) entries_.erase(it);
    co_return written.error();
  }
  if (it == entries_.end()) co_return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
  it->second.mapping = mapping;
  restart(it->second);
  spdlog::info("events: event source mapping {}: {} -> {}", mapping.uuid, mapping.queue,
               registry_.function_arn(mapping.function, mapping.qualifier));
  co_return view_of(it->second);
}

base::Result<MappingView> EventSourceMappings::get(std::string_view uuid) const {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(uuid);
  if (it == entries_.end()) return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
  return view_of(it->second);
}

asio::awaitable<base::Result<MappingView>> EventSourceMappings::update(std::string uuid, MappingSpec spec) {
  if (spec.event_source_arn) {
    co_return make_error(ErrorCode::kInvalidParameterValue, "EventSourceArn cannot be changed; create a new mapping");
  }
  EventSourceMapping mapping;
  {
    std::lock_guard lock(mu_);
    const auto it = entries_.find(uuid);
    if (it == entries_.end()) {
      co_return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
    }
    mapping = it->second.mapping;
  }
  if (spec.function) {
    mapping.function = *spec.function;
    mapping.qualifier = spec.qualifier.value_or("");
  }
  auto fifo = check_targets(mapping);
  // The queue may be gone; its mapping can still be changed (or disabled).
  const bool is_fifo = fifo.ok() ? *fifo : mapping.queue.ends_with(".fifo");
  if (!fifo.ok() && spec.function) co_return std::move(fifo).error();
  if (auto s = apply_spec(spec, is_fifo, mapping); !s.ok()) co_return s.error();
  mapping.last_modified_ms = clock_.now_ms();
  {
    std::lock_guard lock(mu_);
    if (auto s = check_duplicate(mapping); !s.ok()) co_return s.error();
  }
  MappingRow row{mapping.uuid, to_document(mapping)};
  base::Status written = co_await queues_.put_mapping(std::move(row));
  if (!written.ok()) co_return written.error();
  std::lock_guard lock(mu_);
  const auto it = entries_.find(uuid);
  if (it == entries_.end()) co_return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
  it->second.mapping = mapping;
  restart(it->second);
  co_return view_of(it->second);
}

asio::awaitable<base::Result<MappingView>> EventSourceMappings::remove(std::string uuid) {
  MappingView before;
  {
    std::lock_guard lock(mu_);
    const auto it = entries_.find(uuid);
    if (it == entries_.end()) {
      co_return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
    }
    before = view_of(it->second);
  }
  base::Status written = co_await queues_.drop_mapping(uuid);
  if (!written.ok()) co_return written.error();
  std::lock_guard lock(mu_);
  if (const auto it = entries_.find(uuid); it != entries_.end()) {
    if (it->second.runner) it->second.runner->retired = true;
    entries_.erase(it);
  }
  co_return before;
}

MappingPage EventSourceMappings::list(std::string_view event_source_arn, std::string_view function,
                                      std::string_view qualifier, std::string_view marker,
                                      std::size_t max_items) const {
  max_items = std::clamp<std::size_t>(max_items, 1, kMaxMappingsPage);
  MappingPage page;
  std::lock_guard lock(mu_);
  for (auto it = marker.empty() ? entries_.begin() : entries_.upper_bound(marker); it != entries_.end(); ++it) {
    const EventSourceMapping& m = it->second.mapping;
    if (!event_source_arn.empty() && m.event_source_arn != event_source_arn) continue;
    if (!function.empty() && (m.function != function || (!qualifier.empty() && m.qualifier != qualifier))) continue;
    if (page.mappings.size() == max_items) {
      page.next_marker = page.mappings.back().mapping.uuid;
      break;
    }
    page.mappings.push_back(view_of(it->second));
  }
  return page;
}

// --- pollers ---------------------------------------------------------------

int EventSourceMappings::max_pollers(const Runner& runner) const {
  if (runner.mapping.maximum_concurrency) return *runner.mapping.maximum_concurrency;
  if (auto function = registry_.get_qualified(runner.mapping.function, runner.mapping.qualifier); function.ok()) {
    if (function->reserved_concurrency) return std::max(1, *function->reserved_concurrency);
  }
  return kDefaultMaxPollers;
}

void EventSourceMappings::spawn_poller(std::shared_ptr<Runner> runner) {
  runner->pollers.fetch_add(1);
  metrics_->pollers(runner->mapping.function).add(1);
  asio::co_spawn(executor_, poll(std::move(runner)), log_exception);
}

asio::awaitable<void> EventSourceMappings::poll(std::shared_ptr<Runner> runner) {
  Runner& r = *runner;
  // Ends this poller unless it is the mapping's last one.
  const auto leave = [&r] {
    int n = r.pollers.load();
    while (n > 1 && !r.pollers.compare_exchange_weak(n, n - 1)) {
    }
    return n > 1;
  };
  bool left = false;
  while (!r.retired && !stopping_) {
    auto batch = co_await gather(r);
    if (!batch.ok()) {
      r.set_result(fmt::format("PROBLEM: {}", batch.error().message));
      asio::steady_timer timer(executor_);
      timer.expires_after(config_.problem_backoff);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (batch->messages.empty()) {
      if ((left = leave())) break;
      continue;
    }
    if (r.retired) {
      // The mapping changed (or went) while this poll was open: hand the
      // messages back at once for its new version rather than deliver them
      // with the old settings.
      std::vector<VisibilityChange> back;
      for (const auto& message : batch->messages) back.push_back(VisibilityChange{message.receipt_handle, 0});
      (void)co_await queues_.change_visibility(r.mapping.queue, std::move(back));
      break;
    }
    if (batch->full && r.pollers.load() < max_pollers(r)) {
      // More is waiting: one more poller, as Lambda scales with the backlog.
      auto backlog = queues_.get_attributes(r.mapping.queue, {"ApproximateNumberOfMessages"});
      if (backlog.ok() && attribute_number(*backlog, "ApproximateNumberOfMessages", 0) > 0) spawn_poller(runner);
    }
    const bool throttled = co_await deliver(r, std::move(*batch));
    if (throttled && (left = leave())) break;
  }
  if (!left) r.pollers.fetch_sub(1);
  metrics_->pollers(r.mapping.function).add(-1);
}

asio::awaitable<base::Result<EventSourceMappings::Batch>> EventSourceMappings::gather(Runner& r) {
  const EventSourceMapping& m = r.mapping;
  auto function = registry_.get_qualified(m.function, m.qualifier);
  if (!function.ok()) {
    co_return make_error(ErrorCode::kResourceNotFound,
                         fmt::format("Function not found: {}", registry_.function_arn(m.function, m.qualifier)));
  }
  auto attributes = queues_.get_attributes(m.queue, {"VisibilityTimeout"});
  if (!attributes.ok()) co_return std::move(attributes).error();
  const std::int64_t visibility =
      batch_visibility_s(attribute_number(*attributes, "VisibilityTimeout", 30), m.batching_window_s, function->timeout);

  Batch batch;
  std::size_t bytes = 0;
  std::int64_t deadline = 0;
  while (!r.retired && !stopping_) {
    ReceiveRequest request;
    request.max_messages = std::min(kMaxReceiveMessages, m.batch_size - static_cast<int>(batch.messages.size()));
    request.visibility_s = visibility;
    request.wait_s = kPollWaitSeconds;
    request.await_commit = false;  // the delete after the batch is what must be durable
    request.take_uncommitted = true;  // a send reaches the function without waiting for its fsync
    if (!batch.messages.empty()) {
      const std::int64_t remaining = deadline - clock_.now_ms();
      if (remaining <= 0) break;
      request.wait_s = std::min<std::int64_t>(kMaxWaitSeconds, (remaining + 999) / 1000);
    }
    auto received = co_await queues_.receive(m.queue, request);
    if (!received.ok()) {
      if (batch.messages.empty()) co_return std::move(received).error();
      break;  // deliver what is in hand
    }
    if (received->empty()) {
      if (batch.messages.empty()) break;
      continue;
    }
    if (batch.messages.empty()) deadline = clock_.now_ms() + 1000LL * m.batching_window_s;
    std::vector<VisibilityChange> over_cap;
    for (auto& message : *received) {
      const std::size_t size = record_size(message);
      if (!batch.messages.empty() && bytes + size > kMaxBatchPayloadBytes) {
        over_cap.push_back(VisibilityChange{message.receipt_handle, 0});
        continue;
      }
      bytes += size;
      batch.messages.push_back(std::move(message));
    }
    if (!over_cap.empty()) {
      // The next batch takes them at once.
      (void)co_await queues_.change_visibility(m.queue, std::move(over_cap));
      batch.full = true;
      break;
    }
    if (static_cast<int>(batch.messages.size()) >= m.batch_size) {
      batch.full = true;
      break;
    }
    if (m.batching_window_s == 0) break;
  }
  co_return batch;
}

asio::awaitable<bool> EventSourceMappings::deliver(Runner& r, Batch batch) {
  const EventSourceMapping& m = r.mapping;
  json event = sqs_event(batch.messages, m.event_source_arn, config_.region);
  if (!r.filters.empty()) {
    // Messages no filter matches never reach the function; SQS mappings
    // delete them, as Lambda does.
    std::vector<std::string> dropped;
    json kept = json::array();
    std::vector<ReceivedMessage> kept_messages;
    for (std::size_t i = 0; i < batch.messages.size(); ++i) {
      json& record = event["Records"][i];
      const json view = filterable_sqs_record(record);
      if (std::any_of(r.filters.begin(), r.filters.end(), [&](const EventFilter& f) { return f.matches(view); })) {
        kept.push_back(std::move(record));
        kept_messages.push_back(std::move(batch.messages[i]));
      } else {
        dropped.push_back(batch.messages[i].receipt_handle);
      }
    }
    if (!dropped.empty()) {
      metrics_->filtered(m.function).add(dropped.size());
      (void)co_await queues_.delete_messages(m.queue, std::move(dropped));
    }
    batch.messages = std::move(kept_messages);
    event["Records"] = std::move(kept);
    if (batch.messages.empty()) {
      r.set_result(kOk);
      co_return false;
    }
  }
  std::set<std::string> ids;
  for (const auto& message : batch.messages) ids.insert(message.message_id);
  invoker::InvokeRequest request;
  request.function = m.function;
  request.qualifier = m.qualifier;
  request.payload = event.dump(-1, ' ', false, json::error_handler_t::replace);
  request.invoked_arn = registry_.function_arn(m.function, m.qualifier);
  metrics_->batches(m.function).add();
  metrics_->messages(m.function).add(batch.messages.size());
  const invoker::InvokeResult result = co_await invoker_.invoke(std::move(request));

  std::string problem;
  std::set<std::string> keep;
  switch (result.status) {
    case invoker::InvokeStatus::kSuccess:
      if (m.report_batch_item_failures) {
        BatchOutcome outcome = read_batch_response(result.payload, ids);
        if (outcome.whole_batch_failed) {
          problem = fmt::format("PROBLEM: Function response is not a valid partial batch response ({})", outcome.reason);
        } else {
          metrics_->item_failures(m.function).add(outcome.failed_ids.size());
          keep = std::move(outcome.failed_ids);
        }
      }
      break;
    case invoker::InvokeStatus::kFunctionError:
      problem = "PROBLEM: Function call failed";
      break;
    case invoker::InvokeStatus::kThrottled:
      problem = "PROBLEM: Function call throttled";
      break;
    case invoker::InvokeStatus::kFailed:
      problem = fmt::format("PROBLEM: {}", result.error.message);
      break;
  }
  if (!problem.empty()) {
    // Nothing is deleted: the batch reappears after the visibility timeout.
    metrics_->failed_batches(m.function).add();
    spdlog::debug("events: mapping {}: batch of {} left on {}: {}", m.uuid, batch.messages.size(), m.queue, problem);
    r.set_result(problem);
    co_return result.status == invoker::InvokeStatus::kThrottled;
  }
  std::vector<std::string> handles;
  for (const auto& message : batch.messages) {
    if (!keep.contains(message.message_id)) handles.push_back(message.receipt_handle);
  }
  const std::size_t count = handles.size();
  if (!handles.empty()) {
    auto deleted = co_await queues_.delete_messages(m.queue, std::move(handles));
    if (!deleted.ok()) {
      r.set_result(fmt::format("PROBLEM: deleting the processed messages failed: {}", deleted.error().message));
      co_return false;
    }
    metrics_->deleted(m.function).add(count);
  }
  r.set_result(kOk);
  co_return false;
}

}  // namespace nimbus::events
