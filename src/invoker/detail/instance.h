#pragma once
// The invoker's bookkeeping types (internal to the invoker part): an
// instance, a version's pool, a function's shared state. Every member marked
// GUARDED_BY(Invoker::mu_) is read and written under the invoker's mutex.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "invoker/invoker.h"
#include "invoker/keep_alive.h"
#include "invoker/metrics.h"

namespace nimbus::invoker {
namespace detail {

using SteadyClock = std::chrono::steady_clock;
inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

enum class InstanceState { kStarting, kIdle, kBusy, kDraining, kDead };

// Pools are keyed "name" for $LATEST and "name:N" for version N.
inline std::string pool_key(const std::string& function, const std::string& version) {
  return version == registry::kLatest || version.empty() ? function : function + ":" + version;
}

}  // namespace detail

using detail::InstanceState;
using detail::SteadyClock;

struct Invoker::Instance {
  std::string id;
  std::string function;
  std::string pool;                    // key of its pool in pools_
  FunctionMetrics* metrics = nullptr;  // its function's; they live as long as the invoker
  bool provisioned = false;            // GUARDED_BY(Invoker::mu_) kept initialised, never reaped
  std::string revision;  // the configuration it was started with
  InstanceState state = InstanceState::kStarting;  // GUARDED_BY(Invoker::mu_)
  int pid = 0;
  unsigned uid = 0;
  std::uint64_t session_id = 0;
  std::shared_ptr<runtime_api::RuntimeSession> session;
  SteadyClock::time_point idle_since;               // GUARDED_BY(Invoker::mu_)
  std::optional<double> init_ms;                    // shown once, in the first REPORT
  std::optional<sandbox::ExitEvent> exit;           // GUARDED_BY(Invoker::mu_)
  std::unique_ptr<asio::posix::stream_descriptor> output;  // read end of stdout+stderr
  store::CodeLease code;  // its /var/task stays on disk while it lives (a deleted function's too)
  std::mutex output_mu;
  std::string output_buffer;        // GUARDED_BY(output_mu)
  std::uint64_t output_dropped = 0;  // GUARDED_BY(output_mu): bytes trimmed off its front
};

// Per function: what spans its versions (reserved concurrency counts every
// version's invocations) and its metric series.
struct Invoker::FunctionState {
  FunctionState(telemetry::Registry& registry, const std::string& function) : metrics(registry, function) {}
  int in_flight = 0;
  int instances = 0;
  FunctionMetrics metrics;
  // The adaptive keep-alive (keep_alive.h): idle times between the end of
  // the function's last invocation and the next arrival, and what they
  // decide. `last_config` is what a pre-warm starts.
  IdleHistogram idle_times;
  std::optional<SteadyClock::time_point> idle_start;  // nothing in flight since
  KeepAliveWindows windows;
  std::optional<registry::FunctionConfig> last_config;
  bool prewarmed = false;  // in this idle stretch

  // An invocation arrives while nothing of the function runs: the idle time
  // it ends is recorded and the windows decided again (under Invoker::mu_).
  void note_arrival(const registry::FunctionConfig& config, const KeepAlivePolicy& policy) {
    if (idle_start) {
      idle_times.record(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - *idle_start));
      windows = decide_keep_alive(idle_times, policy);
      metrics.keep_alive_ms.set(windows.keep_alive.count());
      idle_start.reset();
    }
    if (!last_config || last_config->revision_id != config.revision_id || last_config->version != config.version) {
      last_config = config;
    }
  }
};

// An invocation waiting in line for an instance (InvokerConfig::
// max_parallel_starts): woken, through its timer, with an instance handed to
// it or with leave to start one. The timer lives on the waiting coroutine's
// executor and is only cancelled there (a post); `woken` says it happened.
struct Invoker::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  const Pool* pool = nullptr;
  std::string revision;
  bool woken = false;                  // GUARDED_BY(Invoker::mu_)
  std::shared_ptr<Instance> instance;  // GUARDED_BY(Invoker::mu_): handed over, already kBusy
  bool may_start = false;              // GUARDED_BY(Invoker::mu_): counted in starting_
  std::shared_ptr<std::atomic<bool>> abandoned;  // the caller's InvokeRequest::abandoned
  [[nodiscard]] bool given_up() const { return abandoned && abandoned->load(); }
};

// The instances of one version.
struct Invoker::Pool {
  std::string function;
  FunctionState* state = nullptr;
  std::vector<std::shared_ptr<Instance>> instances;
  int provisioned_target = 0;          // from the registry's provisioned configs
  std::string provisioned_failure;     // why the last provisioned start failed
  SteadyClock::time_point failed_at;   // and when (retries back off)
  // Fork of an initialised instance: the revision whose instances are
  // forked (from its first slow init on, or always with nimbus:fork=on),
  // and the keys whose fork templates the launcher may hold; they are
  // dropped when the pool has no instance left (a template's instances
  // end with it).
  std::string fork_revision;
  std::vector<std::string> fork_keys;
};

}  // namespace nimbus::invoker
