#include "events/dispatcher.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace nimbus::events {

using nlohmann::json;

namespace {

constexpr std::size_t kStoredResponseBytes = 4096;
constexpr std::size_t kDlqErrorMessageBytes = 1024;

// 2019-11-14T18:16:05.568Z
std::string iso_time(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

// JSON text as a value, or the text as a JSON string when it is not JSON.
json as_json(const std::string& text) {
  if (text.empty()) return nullptr;
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

AttemptOutcome classify(const invoker::InvokeResult& r) {
  switch (r.status) {
    case invoker::InvokeStatus::kSuccess:
      return AttemptOutcome::kSuccess;
    case invoker::InvokeStatus::kFunctionError:
      return AttemptOutcome::kFunctionError;
    case invoker::InvokeStatus::kThrottled:
      return AttemptOutcome::kThrottled;
    case invoker::InvokeStatus::kFailed:
      return r.error.code == base::ErrorCode::kResourceNotFound ? AttemptOutcome::kFunctionGone
                                                                : AttemptOutcome::kPlatformError;
  }
  return AttemptOutcome::kPlatformError;
}

// A one-line reason for `nimbus events ls`.
std::string describe_failure(const invoker::InvokeResult& r) {
  switch (r.status) {
    case invoker::InvokeStatus::kSuccess:
      return {};
    case invoker::InvokeStatus::kFunctionError: {
      const json body = json::parse(r.payload, nullptr, false);
      if (body.is_object()) {
        return fmt::format("{}: {}", body.value("errorType", "Unhandled"), body.value("errorMessage", ""));
      }
      return "Unhandled: " + r.payload.substr(0, 200);
    }
    case invoker::InvokeStatus::kThrottled:
      return fmt::format("TooManyRequestsException: {} ({})", r.error.message, r.throttle_reason);
    case invoker::InvokeStatus::kFailed:
      return fmt::format("{}: {}", base::shape_of(r.error.code).type, r.error.message);
  }
  return {};
}

AttemptResponse response_of(const invoker::InvokeResult& r) {
  AttemptResponse out;
  out.executed_version = r.executed_version;
  switch (r.status) {
    case invoker::InvokeStatus::kSuccess:
    case invoker::InvokeStatus::kFunctionError:
      out.status_code = 200;
      out.function_error = r.status == invoker::InvokeStatus::kFunctionError;
      out.payload = r.payload;
      break;
    case invoker::InvokeStatus::kThrottled:
    case invoker::InvokeStatus::kFailed: {
      const auto& shape = base::shape_of(r.status == invoker::InvokeStatus::kThrottled
                                             ? base::ErrorCode::kTooManyRequests
                                             : r.error.code);
      out.status_code = static_cast<int>(shape.http_status);
      out.payload = json{{"errorType", shape.type}, {"errorMessage", r.error.message}}.dump();
      break;
    }
  }
  return out;
}

json response_to_json(const AttemptResponse& r) {
  return {{"status_code", r.status_code},
          {"executed_version", r.executed_version},
          {"function_error", r.function_error},
          {"payload", r.payload.size() > kStoredResponseBytes ? r.payload.substr(0, kStoredResponseBytes) : r.payload}};
}

AttemptResponse response_from_json(const json& j) {
  AttemptResponse r;
  if (!j.is_object()) return r;
  r.status_code = j.value("status_code", 0);
  r.executed_version = j.value("executed_version", "");
  r.function_error = j.value("function_error", false);
  r.payload = j.value("payload", "");
  return r;
}

}  // namespace

json invocation_record(const std::string& request_id, const std::string& function_arn, Condition condition,
                       std::int64_t attempts, const std::string& request_payload, const AttemptResponse& response,
                       std::int64_t now_ms) {
  json record = {
      {"version", "1.0"},
      {"timestamp", iso_time(now_ms)},
      {"requestContext",
       {{"requestId", request_id},
        {"functionArn", function_arn},
        {"condition", condition_name(condition)},
        {"approximateInvokeCount", attempts}}},
      {"requestPayload", as_json(request_payload)},
  };
  if (response.status_code != 0) {
    json context = {{"statusCode", response.status_code}, {"executedVersion", response.executed_version}};
    if (response.function_error) context["functionError"] = "Unhandled";
    record["responseContext"] = std::move(context);
    record["responsePayload"] = as_json(response.payload);
  }
  return record;
}

Dispatcher::Dispatcher(asio::any_io_executor executor, AsyncQueue& queue, store::Store& store,
                       invoker::Invoker& invoker, registry::Registry& registry, EventInvokeConfigs& configs,
                       MessageSink* sink, EventsMetrics& metrics, const base::Clock& clock, DispatcherConfig config)
    : executor_(executor),
      strand_(asio::make_strand(executor)),
      queue_(queue),
      store_(store),
      invoker_(invoker),
      registry_(registry),
      configs_(configs),
      sink_(sink),
      metrics_(metrics),
      clock_(clock),
      config_(config) {
  if (config_.time_scale < 1.0) config_.time_scale = 1.0;
  if (config_.max_in_flight < 1) config_.max_in_flight = 1;
}

base::Status Dispatcher::start() {
  auto requeued = store_.requeue_running_async();
  if (!requeued.ok()) return std::move(requeued).error();
  if (*requeued > 0) {
    spdlog::info("events: {} asynchronous invocation(s) interrupted by a stop are pending again", *requeued);
  }
  auto counts = store_.count_async();
  if (!counts.ok()) return std::move(counts).error();
  std::int64_t depth = 0;
  for (const auto& [state, n] : *counts) {
    if (state == "pending" || state == "running") depth += n;
  }
  metrics_.queue_depth.set(depth);
  stopping_ = false;
  timer_ = std::make_unique<asio::steady_timer>(strand_);
  asio::co_spawn(strand_, claim_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("events: the dispatcher's claim loop ended: {}", ex.what());
    }
  });
  return base::Ok{};
}

void Dispatcher::stop() {
  if (stopping_.exchange(true)) return;
  wake();
}

void Dispatcher::wake() {
  woken_ = true;
  asio::post(strand_, [this] {
    if (timer_) timer_->cancel();
  });
}

asio::awaitable<void> Dispatcher::claim_loop() {
  constexpr int kClaimBatch = 64;
  while (!stopping_) {
    woken_ = false;
    if (clock_.now_ms() >= next_prune_ms_) co_await prune_ended();
    const int limit = std::min(kClaimBatch, config_.max_in_flight - in_flight_.load());
    if (limit > 0) {
      WriteOutcome claimed = co_await queue_.claim(clock_.now_ms(), static_cast<std::size_t>(limit));
      if (!claimed.status.ok()) {
        metrics_.store_errors.add();
        spdlog::error("events: claiming due invocations failed: {}", claimed.status.error().message);
      }
      const bool more_due = claimed.rows.size() == static_cast<std::size_t>(limit);
      for (auto& row : claimed.rows) {
        in_flight_.fetch_add(1);
        metrics_.running.add(1);
        asio::co_spawn(executor_, attempt(std::move(row)), [this](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              spdlog::error("events: an asynchronous attempt ended with an exception: {}", ex.what());
            }
          }
          metrics_.running.add(-1);
          // Capacity freed: a full loop may claim again.
          if (in_flight_.fetch_sub(1) == config_.max_in_flight) wake();
        });
      }
      if (more_due) continue;
    }
    if (stopping_) break;
    if (woken_) continue;  // new work arrived while claiming
    // Sleep until the poll interval passes or a scheduled retry falls due,
    // whichever is first (a retry can be due in 1 ms under a time scale).
    auto wait = config_.poll_interval;
    const std::int64_t now = clock_.now_ms();
    const std::int64_t due = next_due_ms_.load();
    if (due - now < wait.count()) {
      next_due_ms_.store(kNoDue);
      wait = std::chrono::milliseconds(std::max<std::int64_t>(0, due - now));
    }
    timer_->expires_after(wait);
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> Dispatcher::prune_ended() {
  constexpr std::size_t kPruneBatch = 5000;  // one short transaction at a time
  const std::int64_t now = clock_.now_ms();
  const auto keep_ms = [this](std::chrono::seconds keep) {
    return to_real_ms(std::chrono::duration_cast<std::chrono::milliseconds>(keep).count(), config_.time_scale);
  };
  WriteOutcome out =
      co_await queue_.prune(now - keep_ms(config_.keep_succeeded), now - keep_ms(config_.keep_failed), kPruneBatch);
  if (!out.status.ok()) {
    metrics_.store_errors.add();
    spdlog::warn("events: deleting ended asynchronous invocations failed: {}", out.status.error().message);
  }
  metrics_.pruned.add(static_cast<std::uint64_t>(out.pruned));
  // A full batch: more are waiting, so look again on the next round.
  const bool more = out.pruned == static_cast<std::int64_t>(kPruneBatch);
  next_prune_ms_ = more ? now : now + keep_ms(config_.prune_interval);
}

asio::awaitable<void> Dispatcher::attempt(store::AsyncInvocationRow row) {
  json doc = json::parse(row.document, nullptr, false);
  if (!doc.is_object()) doc = json::object();
  const std::int64_t age_base = doc.value("age_base_ms", row.created_ms);
  const EventInvokeConfig config = configs_.effective(row.function, row.qualifier);
  const RetryLimits limits = config.limits();
  int function_errors = doc.value("function_errors", 0);
  AttemptResponse response = response_from_json(doc.value("last_response", json()));

  Decision decision;
  std::int64_t now = clock_.now_ms();
  if (expired(to_event_ms(now - age_base, config_.time_scale), limits)) {
    decision = Decision{Decision::Kind::kFinish, 0, Condition::kEventAgeExceeded};
  } else {
    invoker::InvokeRequest request;
    request.function = row.function;
    request.qualifier = row.qualifier;
    request.payload = row.payload;
    request.invoked_arn = registry_.function_arn(row.function, row.qualifier);
    metrics_.attempts.add();
    invoker::InvokeResult result = co_await invoker_.invoke(std::move(request));
    now = clock_.now_ms();
    ++row.attempts;
    const AttemptOutcome outcome = classify(result);
    if (outcome == AttemptOutcome::kFunctionError) ++function_errors;
    decision = decide(outcome, static_cast<int>(row.attempts), function_errors,
                      to_event_ms(now - age_base, config_.time_scale), limits);
    response = response_of(result);
    row.last_error = describe_failure(result);
    doc["function_errors"] = function_errors;
    doc["last_response"] = response_to_json(response);
    if (!result.request_id.empty()) doc["last_request_id"] = result.request_id;
  }

  store::AsyncWriteBatch batch;
  if (decision.kind == Decision::Kind::kRetry) {
    row.state = "pending";
    row.next_attempt_ms = now + to_real_ms(decision.delay_ms, config_.time_scale);
  } else {
    row.state = decision.condition == Condition::kSuccess ? "succeeded" : "failed";
    doc["condition"] = condition_name(decision.condition);
    if (decision.condition == Condition::kEventAgeExceeded) {
      row.last_error = fmt::format("EventAgeExceeded: older than MaximumEventAgeInSeconds ({} s){}",
                                   limits.maximum_event_age_s, row.last_error.empty() ? "" : "; last: " + row.last_error);
    }
    // The record carries the full response; the row keeps a prefix of it.
    doc["deliveries"] = deliver(row, decision.condition, response, config, batch);
  }
  row.updated_ms = now;
  row.document = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  batch.updates.push_back(row);
  const std::size_t new_rows = batch.inserts.size();
  // The outcome must be recorded: on a store error (disk full, ...) try again
  // every second until it is, or until the daemon stops (then the row, still
  // running in the store, is attempted again after the restart).
  for (;;) {
    base::Status written = co_await queue_.write(batch);
    if (written.ok()) break;
    metrics_.store_errors.add();
    spdlog::error("events: recording the outcome of {} failed (retrying in 1 s): {}", row.id,
                  written.error().message);
    if (stopping_) co_return;
    asio::steady_timer pause(executor_, std::chrono::seconds(1));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_) co_return;
  }
  metrics_.queue_depth.add(static_cast<std::int64_t>(new_rows));
  if (decision.kind == Decision::Kind::kRetry) {
    metrics_.retries.add();
    // Remember the earliest retry, so the claim loop wakes for it.
    std::int64_t due = next_due_ms_.load();
    while (row.next_attempt_ms < due && !next_due_ms_.compare_exchange_weak(due, row.next_attempt_ms)) {
    }
    co_return;
  }
  metrics_.queue_depth.add(-1);
  (decision.condition == Condition::kSuccess ? metrics_.succeeded : metrics_.failed).add();
  if (new_rows > 0) wake();
}

json Dispatcher::send_to_queue(std::string_view type, const std::string& arn, const std::string& body,
                               const MessageAttributes& attributes) {
  json entry = {{"type", type}, {"target", arn}};
  if (sink_ == nullptr) {
    metrics_.destination_failures.add();
    entry["state"] = "failed";
    entry["reason"] = kQueueDestinationsPending;
    return entry;
  }
  if (auto sent = sink_->send(arn, body, attributes); !sent.ok()) {
    metrics_.destination_failures.add();
    entry["state"] = "failed";
    entry["reason"] = sent.error().message;
    return entry;
  }
  entry["state"] = "delivered";
  return entry;
}

json Dispatcher::deliver(const store::AsyncInvocationRow& row, Condition condition, const AttemptResponse& response,
                         const EventInvokeConfig& config, store::AsyncWriteBatch& batch) {
  json deliveries = json::array();
  const bool success = condition == Condition::kSuccess;
  const std::string& target = success ? config.on_success : config.on_failure;
  const std::string type = success ? "OnSuccess" : "OnFailure";
  if (!target.empty()) {
    const std::string qualifier = row.qualifier.empty() ? std::string(registry::kLatest) : row.qualifier;
    const std::string record =
        invocation_record(row.id, registry_.function_arn(row.function, qualifier), condition, row.attempts,
                          row.payload, response, clock_.now_ms())
            .dump(-1, ' ', false, json::error_handler_t::replace);
    auto destination = parse_destination(target);
    if (!destination.ok()) {
      metrics_.destination_failures.add();
      deliveries.push_back({{"type", type}, {"target", target}, {"state", "failed"},
                            {"reason", destination.error().message}});
    } else if (destination->kind == Destination::Kind::kFunction) {
      AsyncRequest request{destination->function, destination->qualifier, record, AsyncKind::kDestination, row.id};
      store::AsyncInvocationRow next = queue_.make_row(request);
      deliveries.push_back({{"type", type}, {"target", target}, {"state", "queued"}, {"id", next.id}});
      batch.inserts.push_back(std::move(next));
    } else {
      deliveries.push_back(send_to_queue(type, target, record, {}));
    }
  }
  if (!success) {
    // The dead-letter queue of the version that was invoked gets the event itself.
    auto function = registry_.get_qualified(row.function, row.qualifier);
    if (function.ok() && !function->dead_letter_target.empty()) {
      MessageAttributes attributes = {
          {"RequestID", {"String", row.id}},
          {"ErrorCode", {"Number", std::to_string(response.status_code == 0 ? 200 : response.status_code)}},
          {"ErrorMessage", {"String", row.last_error.substr(0, kDlqErrorMessageBytes)}},
      };
      deliveries.push_back(send_to_queue("DeadLetter", function->dead_letter_target, row.payload, attributes));
    }
  }
  return deliveries;
}

}  // namespace nimbus::events
