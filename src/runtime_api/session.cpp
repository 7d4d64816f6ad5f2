#include "runtime_api/session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

namespace nimbus::runtime_api {

namespace asio = http::asio;
using http::Response;
using http::Status;

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

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

RuntimeSession::RuntimeSession(asio::any_io_executor executor)
    : strand_(asio::make_strand(executor)),
      next_signal_(strand_, std::chrono::steady_clock::time_point::max()),
      invoker_signal_(strand_, std::chrono::steady_clock::time_point::max()) {}

void RuntimeSession::wake_invoker() { invoker_signal_.cancel(); }

// Each public coroutine runs its body as a child coroutine on the strand (a
// coroutine's executor is fixed when it is spawned, so hopping with dispatch
// would not keep it there); `self` keeps the session alive meanwhile.
asio::awaitable<InitOutcome> RuntimeSession::wait_ready(Deadline deadline) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(strand_, wait_ready_on_strand(deadline), asio::use_awaitable);
}

asio::awaitable<InvokeOutcome> RuntimeSession::invoke(Event event, Deadline deadline) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(strand_, invoke_on_strand(std::move(event), deadline), asio::use_awaitable);
}

asio::awaitable<Response> RuntimeSession::next(unsigned version) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(strand_, next_on_strand(version), asio::use_awaitable);
}

asio::awaitable<Response> RuntimeSession::post_response(std::string request_id, http::Request request) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(
      strand_, post_answer_on_strand(std::move(request_id), std::move(request), Answer::kResponse), asio::use_awaitable);
}

asio::awaitable<Response> RuntimeSession::post_error(std::string request_id, http::Request request) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(
      strand_, post_answer_on_strand(std::move(request_id), std::move(request), Answer::kError), asio::use_awaitable);
}

asio::awaitable<Response> RuntimeSession::post_init_error(http::Request request) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(strand_, post_init_error_on_strand(std::move(request)), asio::use_awaitable);
}

void RuntimeSession::fail() {
  asio::post(strand_, [self = shared_from_this()] {
    self->dead_ = true;
    self->next_signal_.cancel();
    self->wake_invoker();
  });
}

asio::awaitable<InitOutcome> RuntimeSession::wait_ready_on_strand(Deadline deadline) {
  for (;;) {
    if (init_) co_return *init_;
    if (phase_ != Phase::kInit) co_return InitOutcome{InitStatus::kReady, {}, {}};
    if (dead_) co_return InitOutcome{InitStatus::kExited, {}, {}};
    if (std::chrono::steady_clock::now() >= deadline) co_return InitOutcome{InitStatus::kTimeout, {}, {}};
    invoker_signal_.expires_at(deadline);
    co_await invoker_signal_.async_wait(kUseTuple);
  }
}

asio::awaitable<InvokeOutcome> RuntimeSession::invoke_on_strand(Event event, Deadline deadline) {
  if (dead_) co_return InvokeOutcome{InvokeStatus::kExited, {}, {}, {}};
  outcome_.reset();
  current_id_ = event.request_id;
  queued_ = std::move(event);
  phase_ = Phase::kQueued;
  next_signal_.cancel();
  for (;;) {
    if (outcome_) {
      InvokeOutcome out = std::move(*outcome_);
      outcome_.reset();
      co_return out;
    }
    if (dead_) co_return InvokeOutcome{InvokeStatus::kExited, {}, {}, {}};
    if (std::chrono::steady_clock::now() >= deadline) {
      // The instance will be killed; make sure a late answer is refused.
      phase_ = Phase::kIdle;
      current_id_.clear();
      queued_.reset();
      co_return InvokeOutcome{InvokeStatus::kTimeout, {}, {}, {}};
    }
    invoker_signal_.expires_at(deadline);
    co_await invoker_signal_.async_wait(kUseTuple);
  }
}

asio::awaitable<Response> RuntimeSession::next_on_strand(unsigned version) {
  if (next_parked_) {
    co_return runtime_error(Status::forbidden, "InvalidStateTransition",
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
    wake_invoker();
  }
  if (phase_ == Phase::kInit) {
    phase_ = Phase::kIdle;  // init is done when the runtime first asks for work
    wake_invoker();
  }
  next_parked_ = true;
  while (!dead_ && !queued_) {
    next_signal_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await next_signal_.async_wait(kUseTuple);
  }
  next_parked_ = false;
  if (dead_) {
    co_return runtime_error(Status::internal_server_error, "InternalServerError", "the instance is stopping", version);
  }
  Event event = std::move(*queued_);
  queued_.reset();
  phase_ = Phase::kRunning;
  Response res{Status::ok, version};
  res.set("Lambda-Runtime-Aws-Request-Id", event.request_id);
  res.set("Lambda-Runtime-Deadline-Ms", std::to_string(event.deadline_ms));
  res.set("Lambda-Runtime-Invoked-Function-Arn", event.invoked_arn);
  if (!event.trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", event.trace_id);
  if (!event.client_context.empty()) res.set("Lambda-Runtime-Client-Context", event.client_context);
  if (!event.cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", event.cognito_identity);
  res.set(http::Field::content_type, "application/json");
  res.body() = event.payload.empty() ? std::string("{}") : std::move(event.payload);
  co_return res;
}

asio::awaitable<Response> RuntimeSession::post_answer_on_strand(std::string request_id, http::Request request,
                                                                Answer answer) {
  const unsigned version = request.version();
  if (phase_ != Phase::kRunning || request_id != current_id_) {
    co_return runtime_error(Status::bad_request, "InvalidRequestID",
                            "request " + request_id + " is not the invocation in progress", version);
  }
  phase_ = Phase::kIdle;
  current_id_.clear();
  if (answer == Answer::kResponse) {
    if (request.body().size() > kMaxResponseBytes) {
      outcome_ = InvokeOutcome{InvokeStatus::kResponseTooLarge, {}, {}, {}};
      wake_invoker();
      co_return runtime_error(Status::payload_too_large, "RequestEntityTooLarge",
                              "response payload exceeds " + std::to_string(kMaxResponseBytes) + " bytes", version);
    }
    outcome_ = InvokeOutcome{InvokeStatus::kResponse, std::move(request.body()),
                             std::string(request[http::Field::content_type]), {}};
    wake_invoker();
    co_return accepted(version);
  }
  std::string type = error_type_of(request, "Unhandled");
  std::string body = std::move(request.body());
  if (body.size() > kMaxResponseBytes || nlohmann::json::parse(body, nullptr, false).is_discarded()) {
    body = nlohmann::json{{"errorType", type}, {"errorMessage", "the runtime reported an unreadable error"}}.dump();
  }
  outcome_ = InvokeOutcome{InvokeStatus::kFunctionError, std::move(body), {}, std::move(type)};
  wake_invoker();
  co_return accepted(version);
}

asio::awaitable<Response> RuntimeSession::post_init_error_on_strand(http::Request request) {
  const unsigned version = request.version();
  if (phase_ != Phase::kInit || init_) {
    co_return runtime_error(Status::forbidden, "InvalidStateTransition",
                            "/runtime/init/error is only allowed during init", version);
  }
  std::string type = error_type_of(request, "Runtime.Unknown");
  std::string body = std::move(request.body());
  if (body.size() > kMaxResponseBytes || nlohmann::json::parse(body, nullptr, false).is_discarded()) {
    body = nlohmann::json{{"errorType", type}, {"errorMessage", "the runtime failed to initialise"}}.dump();
  }
  init_ = InitOutcome{InitStatus::kInitError, std::move(type), std::move(body)};
  wake_invoker();
  co_return accepted(version);
}

}  // namespace nimbus::runtime_api
