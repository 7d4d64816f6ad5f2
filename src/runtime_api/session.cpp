#include "runtime_api/session.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/json.h"

namespace nimbus::runtime_api {

namespace asio = http::asio;
using http::Response;
using http::Status;

namespace {
using Handler = asio::any_completion_handler<void()>;

Response runtime_error(Status status, std::string_view type, std::string_view message, unsigned version) {
  Response res{status, version};
  res.set(http::Field::content_type, "application/json");
  res.body() = nlohmann::json{{"errorMessage", message}, {"errorType", type}}.dump();
  return res;
}

Response accepted(unsigned version) {
  Response res{Status::accepted, version};
  res.set(http::Field::content_type, "application/json");
  res.body() = R"({"status":"OK"})";
  return res;
}

// The error type a runtime reported: the JSON body's errorType first (every
// official client puts it there), then the header, then a generic one.
std::string error_type_of(const http::Request& request, std::string_view fallback) {
  const auto body = nlohmann::json::parse(request.body(), nullptr, false);
  if (body.is_object()) {
    const auto it = body.find("errorType");
    if (it != body.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  const auto header = request["Lambda-Runtime-Function-Error-Type"];
  if (!header.empty()) return std::string(header);
  return std::string(fallback);
}
}  // namespace

RuntimeSession::Waiter RuntimeSession::take(Waiter& slot) { return std::exchange(slot, Waiter{}); }

void RuntimeSession::wake(Waiter waiter) {
  if (!waiter.resume) return;
  asio::post(waiter.executor, [resume = std::move(waiter.resume)] { std::move(*resume)(); });
}

template <typename Ready>
asio::awaitable<void> RuntimeSession::park(Waiter& slot, Ready ready, Deadline deadline) {
  // The deadline is a timer on the waiter's executor. It wakes the waiter if
  // it is still parked under the same ticket; one woken first (and perhaps
  // parked again) is left alone.
  auto executor = co_await asio::this_coro::executor;
  std::optional<asio::steady_timer> timer;  // none for a wait without a deadline (/next)
  auto initiate = [this, &slot, &ready, &timer, &executor, deadline](auto resume) {
    Waiter waiter{executor, std::make_unique<Handler>(std::move(resume)), 0};
    std::unique_lock lock(mu_);
    if (ready()) {
      lock.unlock();
      wake(std::move(waiter));
      return;
    }
    waiter.ticket = ++tickets_;
    if (deadline != Deadline::max()) {
      timer.emplace(executor, deadline);
      timer->async_wait([self = shared_from_this(), &slot, ticket = waiter.ticket](const boost::system::error_code& ec) {
        if (ec) return;
        Waiter late;
        {
          std::lock_guard guard(self->mu_);
          if (slot.ticket == ticket) late = take(slot);
        }
        wake(std::move(late));
      });
    }
    // Last: once parked, another thread may resume this coroutine, which
    // ends this frame (and the timer) while this function still runs.
    slot = std::move(waiter);
  };
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(std::move(initiate), asio::use_awaitable);
  if (timer) timer->cancel();
}

void RuntimeSession::fail() {
  Waiter invoker;
  Waiter runtime;
  {
    std::lock_guard lock(mu_);
    dead_ = true;
    invoker = take(invoker_);
    runtime = take(next_);
  }
  wake(std::move(invoker));
  wake(std::move(runtime));
}

asio::awaitable<InitOutcome> RuntimeSession::wait_ready(Deadline deadline) {
  auto self = shared_from_this();
  for (;;) {
    if (auto outcome = init_outcome(deadline)) co_return std::move(*outcome);
    co_await park(invoker_, [this] { return init_ || phase_ != Phase::kInit || dead_; }, deadline);
  }
}

std::optional<InitOutcome> RuntimeSession::init_outcome(Deadline deadline) {
  std::lock_guard lock(mu_);
  if (init_) return *init_;
  if (phase_ != Phase::kInit) return InitOutcome{InitStatus::kReady, {}, {}};
  if (dead_) return InitOutcome{InitStatus::kExited, {}, {}};
  if (std::chrono::steady_clock::now() >= deadline) return InitOutcome{InitStatus::kTimeout, {}, {}};
  return std::nullopt;
}

asio::awaitable<InvokeOutcome> RuntimeSession::invoke(Event event, Deadline deadline) {
  auto self = shared_from_this();
  Waiter runtime;
  {
    std::lock_guard lock(mu_);
    if (dead_) co_return InvokeOutcome{InvokeStatus::kExited, {}, {}, {}};
    outcome_.reset();
    current_id_ = event.request_id;
    queued_ = std::move(event);
    phase_ = Phase::kQueued;
    runtime = take(next_);
  }
  wake(std::move(runtime));
  for (;;) {
    if (auto outcome = invoke_outcome(deadline)) co_return std::move(*outcome);
    co_await park(invoker_, [this] { return outcome_.has_value() || dead_; }, deadline);
  }
}

std::optional<InvokeOutcome> RuntimeSession::invoke_outcome(Deadline deadline) {
  std::lock_guard lock(mu_);
  if (outcome_) return std::exchange(outcome_, std::nullopt);
  if (dead_) return InvokeOutcome{InvokeStatus::kExited, {}, {}, {}};
  if (std::chrono::steady_clock::now() >= deadline) {
    // The instance will be killed; make sure a late answer is refused.
    phase_ = Phase::kIdle;
    current_id_.clear();
    queued_.reset();
    return InvokeOutcome{InvokeStatus::kTimeout, {}, {}, {}};
  }
  return std::nullopt;
}

asio::awaitable<Response> RuntimeSession::next(unsigned version) {
  auto self = shared_from_this();
  home_.store(&asio::query(co_await asio::this_coro::executor, asio::execution::context),
              std::memory_order_relaxed);
  if (auto refused = begin_next(version)) co_return std::move(*refused);
  for (;;) {
    if (auto res = next_event(version)) co_return std::move(*res);
    co_await park(next_, [this] { return dead_ || queued_.has_value(); }, Deadline::max());
  }
}

std::optional<Response> RuntimeSession::begin_next(unsigned version) {
  Waiter invoker;
  {
    std::lock_guard lock(mu_);
    if (next_parked_) {
      return runtime_error(Status::forbidden, "InvalidStateTransition",
                           "another /next is already waiting for this runtime", version);
    }
    if (phase_ == Phase::kRunning) {
      // Asked for the next event without answering the current one.
      outcome_ = InvokeOutcome{InvokeStatus::kFunctionError,
                               nlohmann::json{{"errorType", "Runtime.InvalidStateTransition"},
                                              {"errorMessage", "the runtime asked for the next event without "
                                                               "answering request " + current_id_}}
                                   .dump(),
                               {},
                               "Runtime.InvalidStateTransition"};
      phase_ = Phase::kIdle;
      current_id_.clear();
      invoker = take(invoker_);
    }
    if (phase_ == Phase::kInit) {
      phase_ = Phase::kIdle;  // init is done when the runtime first asks for work
      invoker = take(invoker_);
    }
    next_parked_ = true;
  }
  wake(std::move(invoker));
  return std::nullopt;
}

std::optional<Response> RuntimeSession::next_event(unsigned version) {
  Event event;
  {
    std::lock_guard lock(mu_);
    if (!dead_ && !queued_) return std::nullopt;
    next_parked_ = false;
    if (dead_) {
      return runtime_error(Status::internal_server_error, "InternalServerError", "the instance is stopping", version);
    }
    event = std::move(*queued_);
    queued_.reset();
    phase_ = Phase::kRunning;
  }
  Response res{Status::ok, version};
  res.set("Lambda-Runtime-Aws-Request-Id", event.request_id);
  res.set("Lambda-Runtime-Deadline-Ms", std::to_string(event.deadline_ms));
  res.set("Lambda-Runtime-Invoked-Function-Arn", event.invoked_arn);
  if (!event.trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", event.trace_id);
  if (!event.client_context.empty()) res.set("Lambda-Runtime-Client-Context", event.client_context);
  if (!event.cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", event.cognito_identity);
  res.set(http::Field::content_type, "application/json");
  res.body() = event.payload.empty() ? std::string("{}") : std::move(event.payload);
  return res;
}

Response RuntimeSession::post_response(const std::string& request_id, http::Request request) {
  return post_answer(request_id, std::move(request), Answer::kResponse);
}

Response RuntimeSession::post_error(const std::string& request_id, http::Request request) {
  return post_answer(request_id, std::move(request), Answer::kError);
}

Response RuntimeSession::post_answer(const std::string& request_id, http::Request request, Answer answer) {
  const unsigned version = request.version();
  // The outcome is built before the lock is taken; it is dropped if the id is wrong.
  InvokeOutcome outcome;
  Response reply = accepted(version);
  if (answer == Answer::kResponse && request.body().size() > kMaxResponseBytes) {
    outcome = InvokeOutcome{InvokeStatus::kResponseTooLarge, {}, {}, {}};
    reply = runtime_error(Status::payload_too_large, "RequestEntityTooLarge",
                          "response payload exceeds " + std::to_string(kMaxResponseBytes) + " bytes", version);
  } else if (answer == Answer::kResponse) {
    outcome = InvokeOutcome{InvokeStatus::kResponse, std::move(request.body()),
                            std::string(request[http::Field::content_type]), {}};
  } else {
    std::string type = error_type_of(request, "Unhandled");
    std::string body = std::move(request.body());
    if (body.size() > kMaxResponseBytes || !base::is_json(body)) {
      body = nlohmann::json{{"errorType", type}, {"errorMessage", "the runtime reported an unreadable error"}}.dump();
    }
    outcome = InvokeOutcome{InvokeStatus::kFunctionError, std::move(body), {}, std::move(type)};
  }
  Waiter invoker;
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kRunning || request_id != current_id_) {
      return runtime_error(Status::bad_request, "InvalidRequestID",
                           "request " + request_id + " is not the invocation in progress", version);
    }
    phase_ = Phase::kIdle;
    current_id_.clear();
    outcome_ = std::move(outcome);
    invoker = take(invoker_);
  }
  wake(std::move(invoker));
  return reply;
}

Response RuntimeSession::post_init_error(http::Request request) {
  const unsigned version = request.version();
  std::string type = error_type_of(request, "Runtime.Unknown");
  std::string body = std::move(request.body());
  if (body.size() > kMaxResponseBytes || !base::is_json(body)) {
    body = nlohmann::json{{"errorType", type}, {"errorMessage", "the runtime failed to initialise"}}.dump();
  }
  Waiter invoker;
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kInit || init_) {
      return runtime_error(Status::forbidden, "InvalidStateTransition",
                           "/runtime/init/error is only allowed during init", version);
    }
    init_ = InitOutcome{InitStatus::kInitError, std::move(type), std::move(body)};
    invoker = take(invoker_);
  }
  wake(std::move(invoker));
  return accepted(version);
}

}  // namespace nimbus::runtime_api
