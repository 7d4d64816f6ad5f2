#include "invoker/invoker.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/check.h"
#include "base/crypto.h"
#include "invoker/detail/instance.h"
#include "invoker/metrics.h"
#include "invoker/policy.h"
#include "registry/runtimes.h"

namespace nimbus::invoker {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;
using detail::InstanceState;
using detail::kUseTuple;
using detail::pool_key;
using detail::SteadyClock;

namespace {
// Instance uids, leased host-wide through UidPool.
constexpr std::size_t kLogTailBytes = 4096;
// The longest an invocation waits in line for an instance; then it starts
// one of its own whatever the bound (a waiter is never stranded).
constexpr std::chrono::seconds kMaxWaitInLine{10};

double ms_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}

std::string error_body(std::string_view type, std::string_view message) {
  return json{{"errorType", type}, {"errorMessage", message}}.dump();
}

void log_spawn_failure(const std::string& what) { spdlog::warn("invoker: {}", what); }
}  // namespace

unsigned cpu_millicores_for(int memory_mb) {
  constexpr unsigned kMbPerCpu = 1769;
  constexpr unsigned kMaxMillicores = 6000;  // Lambda's most: 6 vCPUs at 10 240 MB
  const unsigned mb = static_cast<unsigned>(std::max(memory_mb, 1));
  return std::clamp<unsigned>(mb * 1000 / kMbPerCpu, 10, kMaxMillicores);
}

Invoker::Invoker(asio::any_io_executor executor, registry::Registry& registry, sandbox::Launcher& launcher,
                 runtime_api::RuntimeApi& runtime_api, telemetry::Registry& metrics, telemetry::LogStore& logs,
                 const base::Clock& clock, InvokerConfig config)
    : executor_(std::move(executor)),
      registry_(registry),
      launcher_(launcher),
      runtime_api_(runtime_api),
      metrics_(metrics),
      logs_(logs),
      clock_(clock),
      config_(std::move(config)),
      uids_(config_.uid_lock_dir, sandbox::kInstanceUidBase, sandbox::kInstanceUidCount) {
  max_parallel_starts_ = config_.max_parallel_starts > 0
                             ? config_.max_parallel_starts
                             : 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Invoker::~Invoker() { stop(); }

void Invoker::start() {
  const int fd = ::dup(launcher_.exit_event_fd());
  exit_events_ = std::make_unique<asio::posix::stream_descriptor>(executor_, fd);
  asio::co_spawn(executor_, read_exit_events(), [](std::exception_ptr e) {
    if (e) spdlog::error("invoker: exit event reader ended with an exception");
  });
  reaper_ = std::make_unique<asio::steady_timer>(executor_);
  asio::co_spawn(executor_, reap_idle(), [](std::exception_ptr e) {
    if (e) spdlog::error("invoker: reaper ended with an exception");
  });
  provisioner_ = std::make_unique<asio::steady_timer>(executor_);
  asio::co_spawn(executor_, keep_provisioned(), [](std::exception_ptr e) {
    if (e) spdlog::error("invoker: provisioner ended with an exception");
  });
}

void Invoker::stop() {
  std::vector<std::shared_ptr<Instance>> all;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [name, pool] : pools_) {
      for (auto& inst : pool->instances) all.push_back(inst);
    }
  }
  for (auto& inst : all) destroy(inst);
  {
    // Waiting invocations go on (and fail: instances are refused from now on).
    std::lock_guard lock(mu_);
    for (auto& waiter : waiters_) {
      waiter->may_start = true;
      ++starting_;
      wake_locked(waiter);
    }
    waiters_.clear();
  }
  if (reaper_) reaper_->cancel();
  if (provisioner_) provisioner_->cancel();
  if (exit_events_) {
    boost::system::error_code ignored;
    exit_events_->cancel(ignored);
  }
}

Invoker::PoolCounts Invoker::counts(const std::string& function, const std::string& version) {
  std::lock_guard lock(mu_);
  PoolCounts c;
  const auto it = pools_.find(pool_key(function, version));
  if (it == pools_.end()) return c;
  for (const auto& inst : it->second->instances) {
    if (inst->state == InstanceState::kStarting) ++c.starting;
    if (inst->state == InstanceState::kIdle) ++c.idle;
    if (inst->state == InstanceState::kBusy || inst->state == InstanceState::kDraining) ++c.busy;
  }
  return c;
}

void Invoker::retire(const std::string& function, const std::string& version) {
  std::vector<std::shared_ptr<Instance>> idle;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, pool] : pools_) {
      if (pool->function != function || (!version.empty() && key != pool_key(function, version))) continue;
      for (auto& inst : pool->instances) {
        if (inst->state == InstanceState::kIdle) idle.push_back(inst);
        else if (inst->state == InstanceState::kBusy || inst->state == InstanceState::kStarting) inst->state = InstanceState::kDraining;
      }
    }
  }
  for (auto& inst : idle) destroy(inst);
}

Invoker::Pool& Invoker::pool_for(const registry::FunctionConfig& config) {
  auto& pool = pools_[pool_key(config.name, config.version)];
  if (!pool) {
    auto& fn = functions_[config.name];
    if (!fn) fn = std::make_unique<FunctionState>(metrics_, config.name);
    pool = std::make_unique<Pool>();
    pool->function = config.name;
    pool->state = fn.get();
  }
  return *pool;
}

std::shared_ptr<Invoker::Instance> Invoker::new_instance(Pool& pool, const registry::FunctionConfig& config) {
  auto inst = std::make_shared<Instance>();
  const std::uint64_t n = next_instance_++;
  std::string slug;
  for (char c : config.name) {
    slug.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-');
  }
  // Unique on the host (cgroups are shared between daemons).
  inst->id = fmt::format("{}-{}-{}", slug.substr(0, 40), ::getpid(), n);
  inst->function = config.name;
  inst->pool = pool_key(config.name, config.version);
  inst->revision = config.revision_id;
  inst->metrics = &pool.state->metrics;
  pool.instances.push_back(inst);
  pool.state->metrics.instances.set(++pool.state->instances);
  return inst;
}

void Invoker::destroy(const std::shared_ptr<Instance>& inst) {
  std::vector<std::string> unused_templates;
  {
    std::lock_guard lock(mu_);
    if (inst->state == InstanceState::kDead) return;
    inst->state = InstanceState::kDead;
    const auto it = pools_.find(inst->pool);
    if (it != pools_.end()) {
      auto& v = it->second->instances;
      const auto before = v.size();
      v.erase(std::remove(v.begin(), v.end(), inst), v.end());
      if (v.size() != before) it->second->state->metrics.instances.set(--it->second->state->instances);
      // No instance left that a fork template's end could take along.
      if (v.empty()) unused_templates = std::exchange(it->second->fork_keys, {});
    }
  }
  if (inst->pid > 0) (void)launcher_.kill(inst->pid);
  if (inst->session_id != 0) runtime_api_.close(inst->session_id);
  for (const auto& key : unused_templates) launcher_.drop_fork_template(key);
}

Invoker::ForkChoice Invoker::fork_choice(const Instance& inst, const registry::FunctionConfig& config,
                                         bool private_network) {
  const auto* runtime = registry::find_runtime(config.runtime);
  const auto tag = config.tags.find("nimbus:fork");
  const std::string setting = tag != config.tags.end() ? tag->second : std::string();
  ForkChoice choice;
  // Python only: a Node process cannot be forked (V8's threads do not
  // survive it), and a custom runtime does not speak the template protocol.
  choice.possible = launcher_.isolation().fork && !private_network && runtime != nullptr &&
                    runtime->family == registry::RuntimeFamily::kPython && setting != "off" &&
                    (setting == "on" || config_.fork_init_threshold.has_value());
  if (!choice.possible) return choice;
  std::lock_guard lock(mu_);
  const auto pool = pools_.find(inst.pool);
  if (pool == pools_.end()) return choice;
  if (setting == "on") pool->second->fork_revision = config.revision_id;
  if (pool->second->fork_revision == config.revision_id) choice.key = fork_key_locked(*pool->second, inst, config);
  return choice;
}

std::string Invoker::adopt_fork_template(const Instance& inst, const registry::FunctionConfig& config) {
  std::lock_guard lock(mu_);
  const auto pool = pools_.find(inst.pool);
  if (pool == pools_.end()) return {};
  pool->second->fork_revision = config.revision_id;
  return fork_key_locked(*pool->second, inst, config);
}

std::string Invoker::fork_key_locked(Pool& pool, const Instance& inst, const registry::FunctionConfig& config) {
  // The pool and the revision: the code and every setting the init saw.
  std::string key = fmt::format("{}@{}", inst.pool, config.revision_id);
  if (std::find(pool.fork_keys.begin(), pool.fork_keys.end(), key) == pool.fork_keys.end()) {
    pool.fork_keys.push_back(key);
  }
  return key;
}

asio::awaitable<void> Invoker::read_exit_events() {
  for (;;) {
    auto [ec] = co_await exit_events_->async_wait(asio::posix::stream_descriptor::wait_read, kUseTuple);
    if (ec) co_return;
    while (auto event = launcher_.read_exit_event()) {
      std::shared_ptr<Instance> inst;
      {
        std::lock_guard lock(mu_);
        const auto it = by_pid_.find(event->pid);
        if (it == by_pid_.end()) {
          // The instance may have died before spawn() returned to its caller;
          // start_instance() picks the event up from here.
          early_exits_[event->pid] = *event;
          continue;
        }
        inst = it->second;
        by_pid_.erase(it);
        inst->exit = *event;
      }
      if (inst->uid != 0) uids_.release(inst->uid);
      if (event->oom_killed) inst->metrics->oom_kills.add();
      inst->session->fail();  // wakes a waiting invoke(), which reads inst->exit
      bool was_idle;
      {
        std::lock_guard lock(mu_);
        was_idle = inst->state == InstanceState::kIdle;
      }
      if (was_idle) destroy(inst);  // died between invocations
    }
    if (!launcher_.launcher_alive()) {
      spdlog::error("invoker: the sandbox launcher is gone; no instance can start");
      co_return;
    }
  }
}

asio::awaitable<void> Invoker::reap_idle() {
  // Fine enough for the shortest window the policy may choose (and pre-warm at).
  const auto shortest = config_.adaptive_keep_alive ? std::min(config_.keep_alive, config_.keep_alive_min)
                                                    : config_.keep_alive;
  const auto period = std::clamp<std::chrono::milliseconds>(shortest / 10, std::chrono::milliseconds(50),
                                                            std::chrono::milliseconds(1000));
  for (;;) {
    reaper_->expires_after(period);
    auto [ec] = co_await reaper_->async_wait(kUseTuple);
    if (ec) co_return;
    std::vector<std::shared_ptr<Instance>> expired;
    std::vector<std::pair<std::shared_ptr<Instance>, registry::FunctionConfig>> prewarm;
    {
      std::lock_guard lock(mu_);
      if (stopping_) co_return;
      const auto now = SteadyClock::now();
      for (auto& [name, pool] : pools_) {
        const FunctionState& function = *pool->state;
        const KeepAliveWindows& w = function.windows;
        // Inside a predicted idle stretch, before its pre-warm point, idle
        // instances are released at once.
        const bool in_gap = w.prewarm.count() > 0 && function.idle_start && !function.prewarmed &&
                            now - *function.idle_start < w.prewarm;
        const auto keep_alive = w.adaptive ? w.keep_alive : config_.keep_alive;
        for (auto& inst : pool->instances) {
          if (inst->state == InstanceState::kIdle && !inst->provisioned &&
              (in_gap || should_evict(inst->idle_since, now, keep_alive))) {
            expired.push_back(inst);
          }
        }
      }
      for (auto& entry : functions_) {
        FunctionState& function = *entry.second;
        const KeepAliveWindows& w = function.windows;
        if (w.prewarm.count() == 0 || !function.idle_start || function.prewarmed || !function.last_config ||
            now - *function.idle_start < w.prewarm) {
          continue;
        }
        function.prewarmed = true;
        const registry::FunctionConfig& config = *function.last_config;
        Pool& pool = pool_for(config);
        const bool warm = std::any_of(pool.instances.begin(), pool.instances.end(), [&config](const auto& i) {
          return (i->state == InstanceState::kIdle || i->state == InstanceState::kStarting) &&
                 i->revision == config.revision_id;
        });
        if (warm) continue;
        function.metrics.prewarms.add();
        prewarm.emplace_back(new_instance(pool, config), config);
      }
    }
    for (auto& inst : expired) destroy(inst);
    for (auto& [inst, config] : prewarm) {
      asio::co_spawn(executor_, start_provisioned(std::move(inst), std::move(config)), [](std::exception_ptr e) {
        if (e) spdlog::error("invoker: a pre-warm start ended with an exception");
      });
    }
  }
}

namespace {
// The launcher calls of a cold start, run on the invoker's launcher thread.
struct Spawned {
  base::Result<sandbox::SpawnedInstance> result;
  SteadyClock::time_point started;  // when the launcher took it up: Init Duration counts from here
};
asio::awaitable<std::optional<Spawned>> spawn_instance(sandbox::Launcher& launcher, sandbox::InstanceSpec spec) {
  const auto started = SteadyClock::now();
  co_return Spawned{launcher.spawn(spec), started};
}
asio::awaitable<std::optional<sandbox::PrimedClaim>> claim_primed(sandbox::Launcher& launcher,
                                                                  sandbox::RuntimeTemplate runtime) {
  co_return launcher.claim_primed(runtime);
}

asio::awaitable<void> prepare_fork_template(sandbox::Launcher& launcher, sandbox::InstanceSpec spec) {
  launcher.prepare_fork_template(spec);
  co_return;
}

struct StartOutcome {
  bool ok = false;
  double init_ms = 0;
  std::string error_type;
  std::string error_body;
};
}  // namespace

asio::awaitable<base::Result<double>> Invoker::start_instance(std::shared_ptr<Instance> inst,
                                                              const registry::FunctionConfig& config,
                                                              std::string request_id) {
  auto fail_with = [&request_id](std::string_view type, std::string_view message) {
    return make_error(ErrorCode::kService,
                      error_body(type, fmt::format("RequestId: {} Error: {}", request_id, message)));
  };
  auto code = registry_.lease_code(config);
  if (!code.ok()) co_return fail_with("Runtime.Unknown", code.error().message);
  inst->code = std::move(*code);
  const std::filesystem::path& code_dir = inst->code.path();
  auto command = command_for(config, code_dir);
  if (!command.ok()) {
    const bool entrypoint = command.error().code == ErrorCode::kInvalidParameterValue;
    co_return fail_with(entrypoint ? "Runtime.InvalidEntrypoint" : "Runtime.Unknown", command.error().message);
  }

  // Tagged nimbus:network=none: a network namespace of its own, with the
  // instance's Runtime API socket on its private loopback.
  const auto network_tag = config.tags.find("nimbus:network");
  const bool private_network = network_tag != config.tags.end() && network_tag->second == "none";
  // A primed runtime, if one is ready: its uid is the launcher's lease. A
  // claim that no spawn() gets to is handed back.
  struct ClaimHolder {
    sandbox::Launcher& launcher;
    std::optional<sandbox::PrimedClaim> claim;
    ~ClaimHolder() {
      if (claim) launcher.release_primed(*claim);
    }
  } primed{launcher_, std::nullopt};
  // Forked from the version's fork template when it has one; nothing to
  // claim then.
  const ForkChoice forking = fork_choice(*inst, config, private_network);
  if (auto runtime = forking.key.empty() ? primed_runtime(config, *command, private_network) : std::nullopt) {
    primed.claim = co_await asio::co_spawn(launcher_calls_, claim_primed(launcher_, std::move(*runtime)),
                                           asio::use_awaitable);
  }

  const bool private_uids = launcher_.isolation().uid_switch;
  if (private_uids && primed.claim) {
    inst->uid = primed.claim->uid;
  } else if (private_uids) {
    auto uid = uids_.acquire();
    if (!uid.ok()) co_return fail_with("Runtime.Unknown", uid.error().message);
    inst->uid = *uid;
  }
  if (private_network && !launcher_.isolation().network_namespace) {
    if (inst->uid != 0) uids_.release(inst->uid);
    co_return fail_with("Runtime.Unknown", "this host cannot give a function a network of its own (nimbus:network=none)");
  }
  std::string runtime_api_address = sandbox::kPrivateRuntimeApiAddress;
  if (!private_network) {
    auto opened = runtime_api_.open(private_uids ? std::optional<unsigned>(inst->uid) : std::nullopt);
    if (!opened.ok()) {
      if (inst->uid != 0) uids_.release(inst->uid);
      co_return fail_with("Runtime.Unknown", opened.error().message);
    }
    inst->session_id = opened->id;
    inst->session = opened->session;
    runtime_api_address = fmt::format("{}:{}", runtime_api_.host(), opened->port);
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) co_return fail_with("Runtime.Unknown", "pipe for instance output failed");
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  inst->output = std::make_unique<asio::posix::stream_descriptor>(executor_, fds[0]);

  sandbox::InstanceSpec spec;
  spec.instance_id = inst->id;
  spec.argv = std::move(*command);
  bool provisioned;
  {
    std::lock_guard lock(mu_);
    provisioned = inst->provisioned;
  }
  spec.env = environment(config, runtime_api_address, paths_for(code_dir),
                         provisioned ? InitType::kProvisioned : InitType::kOnDemand);
  if (private_network) spec.network = sandbox::NetworkMode::kNone;
  spec.code_dir = code_dir;
  spec.runtime_dir = config_.runtimes_dir;
  spec.memory_bytes = static_cast<std::uint64_t>(config.memory_size) << 20;
  if (config_.cpu_cap == CpuCap::kProportionalToMemory) spec.cpu_limit_millicores = cpu_millicores_for(config.memory_size);
  spec.tmp_bytes = static_cast<std::uint64_t>(config.ephemeral_storage) << 20;
  spec.uid = private_uids ? inst->uid : 0;
  spec.gid = private_uids ? inst->uid : 0;
  spec.output_fd = fds[1];
  if (primed.claim) spec.primed_id = primed.claim->id;
  spec.fork_key = forking.key;
  auto call = co_await asio::co_spawn(launcher_calls_, spawn_instance(launcher_, spec), asio::use_awaitable);
  primed.claim.reset();  // spawn() used it, or gave it back itself
  if (!call) co_return fail_with("Runtime.Unknown", "the sandbox launcher call ended without a result");
  auto& spawned = call->result;
  const auto t0 = call->started;
  ::close(fds[1]);
  if (spawned.ok() && spawned->output_fd >= 0) {
    // A primed runtime's output was wired before it had an instance.
    ::fcntl(spawned->output_fd, F_SETFL, O_NONBLOCK);
    inst->output = std::make_unique<asio::posix::stream_descriptor>(executor_, spawned->output_fd);
  }
  if (!spawned.ok()) {
    if (inst->uid != 0) uids_.release(inst->uid);
    co_return fail_with("Runtime.Unknown", spawned.error().message);
  }
  if (private_network) {
    auto adopted = spawned->runtime_listener_fd >= 0
                       ? runtime_api_.adopt(spawned->runtime_listener_fd)
                       : base::Result<runtime_api::OpenedSession>(
                             make_error(ErrorCode::kService, "the launcher opened no Runtime API socket"));
    if (!adopted.ok()) {
      inst->pid = spawned->pid;  // the caller's cleanup kills it; its exit event releases nothing
      (void)launcher_.kill(spawned->pid);
      if (inst->uid != 0) uids_.release(inst->uid);
      inst->uid = 0;
      co_return fail_with("Runtime.Unknown", adopted.error().message);
    }
    inst->session_id = adopted->id;
    inst->session = adopted->session;
  }
  bool exited_already = false;
  {
    std::lock_guard lock(mu_);
    inst->pid = spawned->pid;
    if (const auto early = early_exits_.find(inst->pid); early != early_exits_.end()) {
      inst->exit = early->second;
      early_exits_.erase(early);
      exited_already = true;
      if (inst->uid != 0) uids_.release(inst->uid);
    } else {
      by_pid_[inst->pid] = inst;
    }
  }
  if (exited_already) inst->session->fail();
  asio::co_spawn(executor_, read_output(inst), asio::detached);
  inst->metrics->cold_starts.add();
  if (spawned->pooled) inst->metrics->pooled_starts.add();
  if (spawned->primed) inst->metrics->primed_starts.add();
  if (spawned->forked) inst->metrics->forked_starts.add();

  // Init may take Lambda's 10 s, and then the function's timeout again.
  const auto ready = co_await inst->session->wait_ready(t0 + config_.init_timeout + std::chrono::seconds(config.timeout));
  const double init_ms = ms_since(t0);
  inst->metrics->init_duration.observe(init_ms);
  switch (ready.status) {
    case runtime_api::InitStatus::kReady:
      if (forking.possible && forking.key.empty() && config_.fork_init_threshold &&
          init_ms >= static_cast<double>(config_.fork_init_threshold->count())) {
        // A slow init: the version's next instances are forked. The
        // template starts behind this invocation, not before it.
        spec.output_fd = -1;
        spec.primed_id = 0;
        spec.fork_key = adopt_fork_template(*inst, config);
        asio::co_spawn(launcher_calls_, prepare_fork_template(launcher_, std::move(spec)), asio::detached);
      }
      co_return init_ms;
    case runtime_api::InitStatus::kInitError:
      co_return make_error(ErrorCode::kService, ready.body);
    case runtime_api::InitStatus::kTimeout:
      // Lambda retries a slow init inside the invoke, under the function's
      // timeout; what the caller finally sees is the task timeout.
      inst->metrics->timeouts.add();
      co_return fail_with("Sandbox.Timedout", timeout_message(config.timeout));
    case runtime_api::InitStatus::kExited: {
      std::optional<sandbox::ExitEvent> exit;
      {
        std::lock_guard lock(mu_);
        exit = inst->exit;
      }
      const std::string reason = exit ? exit_reason(exit->wait_status) : "unknown";
      const bool oom = exit && exit->oom_killed;
      inst->metrics->runtime_exits.add();
      co_return fail_with(oom ? "Runtime.OutOfMemory" : "Runtime.ExitError", "Runtime exited with error: " + reason);
    }
  }
  co_return make_error(ErrorCode::kService, "unreachable");
}

asio::awaitable<InvokeResult> Invoker::invoke(InvokeRequest request) {
  // An alias may split traffic between two versions: one uniform draw decides.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  auto config = registry_.select_version(request.function, request.qualifier, draw);
  if (!config.ok()) {
    InvokeResult r;
    r.status = InvokeStatus::kFailed;
    r.error = std::move(config).error();
    co_return r;
  }
  co_return co_await run(std::move(request), std::move(*config));
}

asio::awaitable<InvokeResult> Invoker::run(InvokeRequest request, registry::FunctionConfig config) {
  InvokeResult result;
  result.request_id = base::uuid4();
  result.executed_version = config.version;
  const std::string& fn = config.name;
  const bool reserved = config.reserved_concurrency.has_value();
  const asio::any_io_executor caller = co_await asio::this_coro::executor;
  const asio::execution_context* here = &asio::query(caller, asio::execution::context);

  // Place the invocation.
  FunctionMetrics* m = nullptr;
  Pool* placed_in = nullptr;
  std::shared_ptr<Instance> inst;
  bool cold = false;
  std::shared_ptr<Waiter> waiter;  // set: in line for an instance
  std::vector<std::shared_ptr<Instance>> stale;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      result.status = InvokeStatus::kFailed;
      result.error = make_error(ErrorCode::kService, "nimbus is shutting down");
      co_return result;
    }
    Pool& pool = pool_for(config);
    FunctionState& function = *pool.state;
    placed_in = &pool;
    m = &function.metrics;
    int idle = 0;
    for (auto& i : pool.instances) {
      if (i->revision != config.revision_id) {
        if (i->state == InstanceState::kIdle) stale.push_back(i);
        else if (i->state != InstanceState::kDead) i->state = InstanceState::kDraining;
      } else if (i->state == InstanceState::kIdle) {
        ++idle;
      }
    }
    ConcurrencySnapshot snap;
    snap.idle = idle;
    snap.in_flight = function.in_flight;
    snap.reserved = config.reserved_concurrency;
    snap.unreserved_in_flight = unreserved_in_flight_;
    snap.account_limit = config_.account_concurrency;
    snap.reserved_total = static_cast<int>(registry_.reserved_total());
    const Placement placement = place(snap);
    if (placement == Placement::kThrottleReserved || placement == Placement::kThrottleAccount) {
      result.status = InvokeStatus::kThrottled;
      result.throttle_reason = placement == Placement::kThrottleReserved
                                   ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                                   : "ConcurrentInvocationLimitExceeded";
      result.error = make_error(ErrorCode::kTooManyRequests, "Rate Exceeded.");
      m->throttles.add();
    } else {
      if (function.in_flight == 0 && config_.adaptive_keep_alive) {
        KeepAlivePolicy policy;
        policy.fixed = config_.keep_alive;
        policy.floor = policy.prewarm_from = config_.keep_alive_min;
        function.note_arrival(config, policy);
      }
      ++function.in_flight;
      if (!reserved) ++unreserved_in_flight_;
      if (placement == Placement::kUseIdle) {
        const auto picked = pick_idle(
            pool.instances.rbegin(), pool.instances.rend(),
            [&config](const auto& i) { return i->state == InstanceState::kIdle && i->revision == config.revision_id; },
            [](const auto& i) { return i->session->home(); }, here);
        NIMBUS_CHECK(picked != pool.instances.rend());  // place() saw an idle one under the same lock
        inst = *picked;
        inst->state = InstanceState::kBusy;
      } else if (starting_ < max_parallel_starts_) {
        cold = true;
        ++starting_;
        inst = new_instance(pool, config);
      } else {
        waiter = std::make_shared<Waiter>(caller);
        waiter->pool = &pool;
        waiter->revision = config.revision_id;
        waiter->abandoned = request.abandoned;
        waiters_.push_back(waiter);
        m->waited_in_line.add();
      }
      m->concurrent.set(function.in_flight);
    }
  }
  for (auto& s : stale) destroy(s);
  if (result.status == InvokeStatus::kThrottled) co_return result;

  if (waiter) {
    // In line: an instance of this version that becomes free, or leave to
    // start one. The timer is only cancelled on this executor, after this
    // coroutine checked `woken` or while it waits.
    bool woken;
    {
      std::lock_guard lock(mu_);
      woken = waiter->woken;
    }
    if (!woken) {
      waiter->timer.expires_after(kMaxWaitInLine);
      co_await waiter->timer.async_wait(kUseTuple);
    }
    std::lock_guard lock(mu_);
    if (!waiter->woken) {
      std::erase(waiters_, waiter);
      waiter->woken = true;
      waiter->may_start = true;
      ++starting_;
    }
    if (waiter->instance) {
      inst = std::move(waiter->instance);
    } else if (waiter->may_start) {
      cold = true;
      inst = new_instance(*placed_in, config);
    } else {
      // The caller gave up while in line: nothing ran, its concurrency is free.
      leave_locked(*placed_in->state, reserved);
      result.status = InvokeStatus::kFailed;
      result.error = make_error(ErrorCode::kService, "the caller stopped waiting before an instance was free");
      co_return result;
    }
  }

  // Pools and function states live as long as the invoker.
  auto release = [this, placed_in, reserved](const std::shared_ptr<Instance>& i, bool keep) {
    bool kill = !keep;
    {
      std::lock_guard lock(mu_);
      leave_locked(*placed_in->state, reserved);
      if (i->state == InstanceState::kDraining || stopping_) kill = true;
      if (!kill && i->state != InstanceState::kDead && !hand_off_locked(*placed_in, i)) {
        i->state = InstanceState::kIdle;
        i->idle_since = SteadyClock::now();
      }
    }
    if (kill) destroy(i);
  };

  const std::int64_t start_ms = clock_.now_ms();
  std::string log;
  auto log_line = [&log](const std::string& line) {
    log += line;
    log += '\n';
  };

  const auto t_start = SteadyClock::now();
  if (cold) {
    auto started = co_await start_instance(inst, config, result.request_id);
    {
      std::lock_guard lock(mu_);
      --starting_;
      grant_starts_locked();
    }
    if (!started.ok()) {
      // The invocation fails as Lambda reports init failures: 200 with the
      // error payload and X-Amz-Function-Error.
      std::string body = started.error().message;
      auto parsed = json::parse(body, nullptr, false);
      if (!parsed.is_object()) body = error_body("Runtime.Unknown", body);
      const std::string type = parsed.is_object() ? parsed.value("errorType", "Runtime.Unknown") : "Runtime.Unknown";
      log_spawn_failure(fmt::format("{}: instance failed to start: {}", fn, body));
      std::string output = inst->output ? drain_output(*inst) : std::string();
      log_line(fmt::format("START RequestId: {} Version: {}", result.request_id, config.version));
      if (!output.empty()) log += output.back() == '\n' ? output : output + "\n";
      log_line(fmt::format("END RequestId: {}", result.request_id));
      std::optional<sandbox::ExitEvent> exit;
      {
        std::lock_guard lock(mu_);
        exit = inst->exit;
      }
      const int peak_mb = exit ? static_cast<int>((exit->peak_memory_bytes + (1u << 20) - 1) >> 20) : 0;
      const bool timed_out = type == "Sandbox.Timedout";
      log_line(report_line({result.request_id, ms_since(t_start), config.memory_size, peak_mb, std::nullopt,
                            timed_out ? "timeout" : "error", timed_out ? std::string() : type}));
      logs_.append(fn, start_ms, log);
      m->invocations.add();
      m->errors.add();
      release(inst, false);
      result.status = InvokeStatus::kFunctionError;
      result.payload = std::move(body);
      result.log = std::move(log);
      co_return result;
    }
    inst->init_ms = *started;
    // What the runtime printed while initialising comes before START, as on Lambda.
    const std::string init_output = drain_output(*inst);
    if (!init_output.empty()) log += init_output.back() == '\n' ? init_output : init_output + "\n";
  }

  log_line(fmt::format("START RequestId: {} Version: {}", result.request_id, config.version));
  runtime_api::Event event;
  event.request_id = result.request_id;
  event.payload = std::move(request.payload);
  const auto t0 = SteadyClock::now();
  event.deadline_ms = clock_.now_ms() + config.timeout * 1000LL;
  event.invoked_arn = request.invoked_arn;
  event.trace_id = fmt::format("Root=1-{:08x}-{};Parent={};Sampled=0", static_cast<std::uint32_t>(start_ms / 1000),
                               base::to_hex(base::random_bytes(12)), base::to_hex(base::random_bytes(8)));
  event.client_context = std::move(request.client_context);
  const auto outcome = co_await inst->session->invoke(std::move(event), t0 + std::chrono::seconds(config.timeout));
  const double duration = ms_since(t0);
  const std::string output = drain_output(*inst);
  if (!output.empty()) log += output.back() == '\n' ? output : output + "\n";

  ReportFields report{result.request_id, duration, config.memory_size, 0, std::nullopt, {}, {}};
  bool keep = true;
  switch (outcome.status) {
    case runtime_api::InvokeStatus::kResponse:
      result.status = InvokeStatus::kSuccess;
      result.payload = outcome.body;
      if (!outcome.content_type.empty()) result.content_type = outcome.content_type;
      break;
    case runtime_api::InvokeStatus::kFunctionError:
      result.status = InvokeStatus::kFunctionError;
      result.payload = outcome.body;
      break;
    case runtime_api::InvokeStatus::kResponseTooLarge:
      result.status = InvokeStatus::kFunctionError;
      result.payload = error_body("Function.ResponseSizeTooLarge",
                                  "Response payload size exceeded maximum allowed payload size (6291556 bytes).");
      report.status = "error";
      report.error_type = "Function.ResponseSizeTooLarge";
      break;
    case runtime_api::InvokeStatus::kTimeout: {
      const std::string message = timeout_message(config.timeout);
      log_line(fmt::format("{} {} {}", base::format_lambda_time(clock_.now_ms()).substr(0, 23) + "Z", result.request_id, message));
      result.status = InvokeStatus::kFunctionError;
      result.payload = error_body("Sandbox.Timedout", fmt::format("RequestId: {} Error: {}", result.request_id, message));
      report.status = "timeout";
      keep = false;
      m->timeouts.add();
      break;
    }
    case runtime_api::InvokeStatus::kExited: {
      std::optional<sandbox::ExitEvent> exit;
      {
        std::lock_guard lock(mu_);
        exit = inst->exit;
      }
      const bool oom = exit && exit->oom_killed;
      const std::string reason = exit ? exit_reason(exit->wait_status) : "unknown";
      const std::string type = oom ? "Runtime.OutOfMemory" : "Runtime.ExitError";
      result.status = InvokeStatus::kFunctionError;
      result.payload = error_body(type, fmt::format("RequestId: {} Error: Runtime exited with error: {}", result.request_id, reason));
      report.status = "error";
      report.error_type = type;
      keep = false;
      m->runtime_exits.add();
      break;
    }
  }
  std::uint64_t peak = launcher_.peak_memory(inst->id);
  {
    std::lock_guard lock(mu_);
    if (inst->exit) peak = std::max(peak, inst->exit->peak_memory_bytes);  // its cgroup is gone
  }
  report.max_memory_used_mb = static_cast<int>((peak + (1u << 20) - 1) >> 20);
  if (inst->init_ms) {
    report.init_duration_ms = inst->init_ms;
    inst->init_ms.reset();
  }
  log_line(fmt::format("END RequestId: {}", result.request_id));
  log_line(report_line(report));
  logs_.append(fn, start_ms, log);
  result.log = log.size() > kLogTailBytes ? log.substr(log.size() - kLogTailBytes) : std::move(log);

  m->invocations.add();
  if (result.status != InvokeStatus::kSuccess) m->errors.add();
  m->duration.observe(duration);
  release(inst, keep);
  co_return result;
}

}  // namespace nimbus::invoker
