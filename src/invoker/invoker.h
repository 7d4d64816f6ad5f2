#pragma once
// Invoker: turns an invocation into a result. Keeps a pool of instances per
// function version ($LATEST or a published number), takes an idle warm one or
// starts a new one (scale from zero) when the concurrency limits allow, hands
// the event over through the instance's RuntimeSession, enforces the timeout,
// reports crashes and OOM kills, writes START/END/REPORT with the function's
// output to the LogStore, and stops instances idle for longer than the
// keep-alive. Versions with provisioned concurrency keep that many instances
// initialised at all times (a reconciler polls the registry's configs).
//
// Threads: invoke() is a coroutine callable from any io thread; pool state is
// guarded by one mutex, never held across co_await. Exit events from the
// launcher are read on the executor. Owned by the daemon; stop() before
// destruction kills every instance.

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "registry/registry.h"
#include "runtime_api/runtime_api.h"
#include "sandbox/launcher.h"
#include "sandbox/uid_pool.h"
#include "telemetry/logs.h"
#include "telemetry/metrics.h"

namespace nimbus::invoker {

namespace asio = boost::asio;

// How much CPU an instance may use.
enum class CpuCap {
  kProportionalToMemory,  // as Lambda allocates: one CPU at 1 769 MB (128 MB: 7.2 %), at most 6
  kNone,                  // no cap; instances only weigh against each other by memory (cpu.shares)
};

// Lambda's allocation: thousandths of a CPU for a memory size in MB.
[[nodiscard]] unsigned cpu_millicores_for(int memory_mb);

struct InvokerConfig {
  std::filesystem::path runtimes_dir;            // installed runtime clients (/var/runtime)
  std::filesystem::path uid_lock_dir = sandbox::kUidLockDir;  // host-wide instance uid leases
  // Python and Node instances start from primed runtimes (the launcher's,
  // see sandbox::RuntimeTemplate) where the function allows it.
  bool primed_runtimes = true;
  // Fork of an initialised instance (docs/isolation.md): a Python function
  // version whose init took at least this long gets a fork template, and
  // its further instances are forked from it. nullopt: never. Per function,
  // the tag nimbus:fork=off opts out and nimbus:fork=on forks whatever the
  // init takes.
  std::optional<std::chrono::milliseconds> fork_init_threshold{std::chrono::milliseconds(100)};
  // Idle instances stay warm at most this long; the adaptive policy
  // (keep_alive.h) chooses per function between keep_alive_min and it, and
  // pre-warms across predictable gaps of at least keep_alive_min.
  std::chrono::milliseconds keep_alive{10 * 60 * 1000};
  std::chrono::milliseconds keep_alive_min{60 * 1000};
  bool adaptive_keep_alive = true;
  std::chrono::milliseconds init_timeout{10000};  // Lambda's on-demand init limit
  std::chrono::milliseconds provisioning_period{200};  // how often provisioned pools are topped up
  int account_concurrency = 1000;
  std::string region = "us-east-1";
  CpuCap cpu_cap = CpuCap::kProportionalToMemory;
  // On-demand cold starts in flight at once (over all functions); an
  // invocation that finds no idle instance beyond that waits in line and
  // takes the first instance of its version that becomes free, while the
  // newest waiters are let start instances as earlier starts finish. 0: four
  // per CPU.
  int max_parallel_starts = 0;
};

struct InvokeRequest {
  std::string function;          // name (already resolved)
  std::string qualifier;         // "", "$LATEST", a version number or an alias
  std::string payload;           // JSON text
  std::string client_context;    // decoded JSON text or empty
  std::string invoked_arn;       // as the caller named it
  // Set by a caller that stopped waiting (the gateway's integration
  // timeout), then Invoker::abandon_waiting(): an invocation still in line
  // for an instance leaves it at once and never runs. Null: the caller waits.
  std::shared_ptr<std::atomic<bool>> abandoned;
};

enum class InvokeStatus {
  kSuccess,        // payload is the function's result
  kFunctionError,  // payload is the error JSON (X-Amz-Function-Error: Unhandled)
  kThrottled,      // error holds TooManyRequests and reason
  kFailed,         // error holds the platform failure
};

struct InvokeResult {
  InvokeStatus status = InvokeStatus::kSuccess;
  std::string request_id;
  std::string executed_version = "$LATEST";  // what an alias chose (X-Amz-Executed-Version)
  std::string payload;
  std::string content_type = "application/json";
  std::string log;                 // this invocation's log lines (for X-Amz-Log-Result)
  std::string throttle_reason;     // kThrottled
  base::Error error;               // kThrottled / kFailed
};

class Invoker {
 public:
  Invoker(asio::any_io_executor executor, registry::Registry& registry, sandbox::Launcher& launcher,
          runtime_api::RuntimeApi& runtime_api, telemetry::Registry& metrics, telemetry::LogStore& logs,
          const base::Clock& clock, InvokerConfig config);
  ~Invoker();

  void start();
  void stop();

  [[nodiscard]] asio::awaitable<InvokeResult> invoke(InvokeRequest request);
  // Lets every invocation in line whose caller set InvokeRequest::abandoned
  // leave at once (it answers kFailed, runs nothing, frees its concurrency).
  // Any thread.
  void abandon_waiting();

  // Instances per state of one version's pool, for `nimbus ps`-like views.
  struct PoolCounts {
    int starting = 0, idle = 0, busy = 0;
  };
  [[nodiscard]] PoolCounts counts(const std::string& function, const std::string& version);
  // Provisioned instances of `config`'s version that are initialised, and why
  // the last one that failed to start did (empty when none failed).
  struct ProvisionedState {
    int ready = 0;
    std::string failure;
  };
  [[nodiscard]] ProvisionedState provisioned_state(const registry::FunctionConfig& config);
  // Stops the instances of one version (after an update of $LATEST or a
  // version's deletion), or of every version when `version` is empty.
  void retire(const std::string& function, const std::string& version = {});

 private:
  struct Instance;
  struct Pool;
  struct FunctionState;
  struct Waiter;

  asio::awaitable<void> read_exit_events();
  asio::awaitable<void> reap_idle();
  asio::awaitable<void> read_output(std::shared_ptr<Instance> instance);
  asio::awaitable<void> keep_provisioned();
  // Tops up provisioned pools to their targets and lets surplus ones age out.
  void reconcile_provisioned();
  asio::awaitable<void> start_provisioned(std::shared_ptr<Instance> instance, registry::FunctionConfig config);
  // The pool of `config`'s version, created on first use; the caller holds mu_.
  Pool& pool_for(const registry::FunctionConfig& config);
  std::shared_ptr<Instance> new_instance(Pool& pool, const registry::FunctionConfig& config);
  asio::awaitable<InvokeResult> run(InvokeRequest request, registry::FunctionConfig config);
  // Spawns an instance and waits for its runtime to ask for work.
  // On failure the error's message is the Lambda error JSON for the caller.
  asio::awaitable<base::Result<double>> start_instance(std::shared_ptr<Instance> instance,
                                                       const registry::FunctionConfig& config,
                                                       std::string request_id);
  // Where the code and the runtime clients are, as the instance sees them.
  struct Paths {
    std::string task;
    std::string runtime;
  };
  Paths paths_for(const std::filesystem::path& code_dir) const;
  base::Result<std::vector<std::string>> command_for(const registry::FunctionConfig& config,
                                                     const std::filesystem::path& code_dir) const;
  // The primed runtime a function's instances can start from: nullopt for
  // provided runtimes, private networks, and environments that set what an
  // interpreter reads as it starts (PYTHON*, NODE_*, LD_*, LANG, TZ, ...).
  // Fork of an initialised instance for `inst`: possible for its function
  // at all, and the fork key when its version forks now (else empty).
  struct ForkChoice {
    bool possible = false;
    std::string key;
  };
  ForkChoice fork_choice(const Instance& inst, const registry::FunctionConfig& config, bool private_network);
  // From now on the version of `inst` forks; its fork key.
  std::string adopt_fork_template(const Instance& inst, const registry::FunctionConfig& config);
  std::string fork_key_locked(Pool& pool, const Instance& inst, const registry::FunctionConfig& config);
  std::optional<sandbox::RuntimeTemplate> primed_runtime(const registry::FunctionConfig& config,
                                                         const std::vector<std::string>& command,
                                                         bool private_network) const;
  enum class InitType { kOnDemand, kProvisioned };
  std::vector<std::string> environment(const registry::FunctionConfig& config, const std::string& runtime_api,
                                       const Paths& paths, InitType init) const;
  void destroy(const std::shared_ptr<Instance>& instance);
  // Gives `inst` (just freed, of `pool`) to the oldest invocation waiting for
  // an instance of its version; true if one took it. Caller holds mu_.
  bool hand_off_locked(const Pool& pool, const std::shared_ptr<Instance>& inst);
  // Lets the newest waiting invocations start instances of their own while
  // fewer than the bound are starting. Caller holds mu_.
  void grant_starts_locked();
  // Wakes `waiter`: with an instance, with leave to start one, or (neither)
  // to leave the line. Caller holds mu_ and has taken it out of waiters_.
  static void wake_locked(const std::shared_ptr<Waiter>& waiter);
  // Wakes, out of line, every waiter whose caller gave up. Caller holds mu_.
  void abandon_waiting_locked();
  // An invocation of `function` is over (ran or not): its concurrency is free. Caller holds mu_.
  void leave_locked(FunctionState& function, bool reserved);
  std::string drain_output(Instance& instance);

  asio::any_io_executor executor_;
  registry::Registry& registry_;
  sandbox::Launcher& launcher_;
  runtime_api::RuntimeApi& runtime_api_;
  telemetry::Registry& metrics_;
  telemetry::LogStore& logs_;
  const base::Clock& clock_;
  InvokerConfig config_;
  sandbox::UidPool uids_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;          // GUARDED_BY(mu_) by "name" or "name:N"
  std::map<std::string, std::unique_ptr<FunctionState>> functions_;  // GUARDED_BY(mu_)
  std::map<int, std::shared_ptr<Instance>> by_pid_;             // GUARDED_BY(mu_)
  std::map<int, sandbox::ExitEvent> early_exits_;               // GUARDED_BY(mu_)
  int unreserved_in_flight_ = 0;                                // GUARDED_BY(mu_)
  std::uint64_t next_instance_ = 1;                             // GUARDED_BY(mu_)
  bool stopping_ = false;                                       // GUARDED_BY(mu_)
  int starting_ = 0;                                            // GUARDED_BY(mu_): on-demand cold starts in flight
  int max_parallel_starts_ = 8;                                 // config_.max_parallel_starts, resolved
  std::deque<std::shared_ptr<Waiter>> waiters_;                 // GUARDED_BY(mu_): oldest first

  // Launcher::spawn() and claim_primed() block for a round trip to the
  // launcher process (milliseconds, and one at a time): they run here, so
  // that the I/O threads keep serving the Runtime API meanwhile. Its
  // destructor waits for the call in flight.
  asio::thread_pool launcher_calls_{1};
  std::unique_ptr<asio::posix::stream_descriptor> exit_events_;
  std::unique_ptr<asio::steady_timer> reaper_;
  std::unique_ptr<asio::steady_timer> provisioner_;
};

}  // namespace nimbus::invoker
