#pragma once
// RuntimeSession: the hand-off between the invoker and the runtime inside one
// instance. The invoker calls wait_ready() once and then invoke() for each
// event; the runtime's Runtime API calls (next, response, error, init error)
// arrive through RuntimeApi and meet the invoker here.
//
// Threads: all state lives on the session's strand; every public coroutine
// runs its body there, so callers may come from any io thread. fail() may be
// called from any thread. Lifetime: shared by RuntimeApi (while its listener
// is open) and the invoker's instance record.

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "http/types.h"

namespace nimbus::runtime_api {

using Deadline = std::chrono::steady_clock::time_point;

// One invocation as the runtime receives it from /next.
struct Event {
  std::string request_id;
  std::string payload;          // JSON text ("{}" when the caller sent nothing)
  std::int64_t deadline_ms = 0; // Unix epoch ms (Lambda-Runtime-Deadline-Ms)
  std::string invoked_arn;
  std::string trace_id;
  std::string client_context;   // JSON text, empty if none
  std::string cognito_identity; // JSON text, empty if none
};

enum class InitStatus { kReady, kInitError, kExited, kTimeout };
struct InitOutcome {
  InitStatus status = InitStatus::kReady;
  std::string error_type;  // kInitError
  std::string body;        // kInitError: the runtime's error JSON
};

enum class InvokeStatus { kResponse, kFunctionError, kResponseTooLarge, kExited, kTimeout };
struct InvokeOutcome {
  InvokeStatus status = InvokeStatus::kResponse;
  std::string body;          // response or error JSON
  std::string content_type;  // kResponse
  std::string error_type;    // kFunctionError
};

// Largest buffered response a runtime may post (Lambda: 6 MB + 100 B).
inline constexpr std::size_t kMaxResponseBytes = 6291556;

class RuntimeSession : public std::enable_shared_from_this<RuntimeSession> {
 public:
  explicit RuntimeSession(http::asio::any_io_executor executor);

  // Invoker side.
  [[nodiscard]] http::asio::awaitable<InitOutcome> wait_ready(Deadline deadline);
  [[nodiscard]] http::asio::awaitable<InvokeOutcome> invoke(Event event, Deadline deadline);
  // The instance is gone: wakes every waiter. Idempotent, any thread.
  void fail();

  // Runtime side (called by RuntimeApi's handlers).
  [[nodiscard]] http::asio::awaitable<http::Response> next(unsigned version);
  [[nodiscard]] http::asio::awaitable<http::Response> post_response(std::string request_id, http::Request request);
  [[nodiscard]] http::asio::awaitable<http::Response> post_error(std::string request_id, http::Request request);
  [[nodiscard]] http::asio::awaitable<http::Response> post_init_error(http::Request request);

 private:
  enum class Phase { kInit, kIdle, kQueued, kRunning };
  void wake_invoker();
  http::asio::awaitable<InitOutcome> wait_ready_on_strand(Deadline deadline);
  http::asio::awaitable<InvokeOutcome> invoke_on_strand(Event event, Deadline deadline);
  http::asio::awaitable<http::Response> next_on_strand(unsigned version);
  enum class Answer { kResponse, kError };
  http::asio::awaitable<http::Response> post_answer_on_strand(std::string request_id, http::Request request,
                                                              Answer answer);
  http::asio::awaitable<http::Response> post_init_error_on_strand(http::Request request);

  http::asio::strand<http::asio::any_io_executor> strand_;
  http::asio::steady_timer next_signal_;    // wakes the parked /next
  http::asio::steady_timer invoker_signal_; // wakes wait_ready()/invoke()
  Phase phase_ = Phase::kInit;
  bool dead_ = false;
  bool next_parked_ = false;
  std::optional<Event> queued_;
  std::string current_id_;
  std::optional<InitOutcome> init_;
  std::optional<InvokeOutcome> outcome_;
};

}  // namespace nimbus::runtime_api
