#pragma once
// RuntimeSession: the hand-off between the invoker and the runtime inside one
// instance. The invoker calls wait_ready() once and then invoke() for each
// event; the runtime's Runtime API calls (next, response, error, init error)
// arrive through RuntimeApi and meet the invoker here.
//
// Threads: every member may be called from any thread; the state is guarded
// by one mutex that is never held across a suspension. Each side runs on its
// own executor (the invoker's caller, the runtime's connection) and is woken
// there, so an invocation costs two hand-offs between them: the event in, the
// outcome out. Lifetime: shared by RuntimeApi (while its listener is open)
// and the invoker's instance record.

#include <boost/asio/any_completion_handler.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
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
  // Invoker side.
  [[nodiscard]] http::asio::awaitable<InitOutcome> wait_ready(Deadline deadline);
  [[nodiscard]] http::asio::awaitable<InvokeOutcome> invoke(Event event, Deadline deadline);
  // The instance is gone: wakes every waiter. Idempotent, any thread.
  void fail();

  // Runtime side (called by RuntimeApi's handlers). Only /next waits; the
  // answers are taken at once.
  [[nodiscard]] http::asio::awaitable<http::Response> next(unsigned version);
  [[nodiscard]] http::Response post_response(const std::string& request_id, http::Request request);
  [[nodiscard]] http::Response post_error(const std::string& request_id, http::Request request);
  [[nodiscard]] http::Response post_init_error(http::Request request);

  // The execution context (io thread) the runtime's last /next came in on,
  // nullptr before the first: the invoker prefers an instance on its own
  // thread, whose hand-offs then wake no other thread. Any thread.
  [[nodiscard]] const http::asio::execution_context* home() const { return home_.load(std::memory_order_relaxed); }

 private:
  enum class Phase { kInit, kIdle, kQueued, kRunning };
  enum class Answer { kResponse, kError };

  // A coroutine suspended on this session: the invoker waiting for init or an
  // outcome, or the runtime's /next waiting for an event. Waking it posts its
  // completion to its own executor, so a hand-off costs one post.
  struct Waiter {
    http::asio::any_io_executor executor;
    // Boxed: Boost 1.81's any_completion_handler cannot be move-assigned.
    std::unique_ptr<http::asio::any_completion_handler<void()>> resume;
    std::uint64_t ticket = 0;  // tells a stale deadline timer from the current waiter
  };
  // Suspends the calling coroutine in `slot` until it is woken or `deadline`
  // passes. `ready` is checked under mu_ as the coroutine parks, so a wake
  // that comes between the caller's own check and the park is not lost.
  // Wakes may be spurious: callers re-check their condition in a loop.
  template <typename Ready>
  http::asio::awaitable<void> park(Waiter& slot, Ready ready, Deadline deadline);
  // Takes the waiter out of `slot` (under mu_); wake() it after unlocking.
  [[nodiscard]] static Waiter take(Waiter& slot);
  static void wake(Waiter waiter);

  // The parts of the coroutines above that run under mu_: each returns what
  // to answer, or nullopt to go on waiting.
  std::optional<InitOutcome> init_outcome(Deadline deadline);
  std::optional<InvokeOutcome> invoke_outcome(Deadline deadline);
  std::optional<http::Response> begin_next(unsigned version);
  std::optional<http::Response> next_event(unsigned version);
  http::Response post_answer(const std::string& request_id, http::Request request, Answer answer);

  std::mutex mu_;
  Waiter invoker_;                 // GUARDED_BY(mu_)
  Waiter next_;                    // GUARDED_BY(mu_)
  std::uint64_t tickets_ = 0;      // GUARDED_BY(mu_)
  Phase phase_ = Phase::kInit;     // GUARDED_BY(mu_)
  bool dead_ = false;              // GUARDED_BY(mu_)
  bool next_parked_ = false;       // GUARDED_BY(mu_)
  std::optional<Event> queued_;    // GUARDED_BY(mu_)
  std::string current_id_;         // GUARDED_BY(mu_)
  std::optional<InitOutcome> init_;        // GUARDED_BY(mu_)
  std::optional<InvokeOutcome> outcome_;   // GUARDED_BY(mu_)
  std::atomic<const http::asio::execution_context*> home_{nullptr};
};

}  // namespace nimbus::runtime_api
