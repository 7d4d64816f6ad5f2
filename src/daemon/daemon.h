#pragma once
// Daemon: the composition root of `nimbus serve`. Builds every part from one
// DaemonConfig, passes each the references it needs, owns the threads and the
// listeners, and shuts down cleanly: stop accepting, drain requests in flight,
// close the store.
//
// Threads: construct, start() and run() from the main thread. run() blocks
// until request_stop() (any thread, or SIGINT/SIGTERM via run_until_signal()).

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "api/lambda_api.h"
#include "api/sqs_api.h"
#include "api/sts_api.h"
#include "base/clock.h"
#include "events/queue_service.h"
#include "events/queue_sqlite_store.h"
#include "events/async_queue.h"
#include "events/control.h"
#include "events/dispatcher.h"
#include "events/event_source_mappings.h"
#include "events/invoke_config.h"
#include "events/metrics.h"
#include "events/schedules.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "invoker/invoker.h"
#include "invoker/runtime_files.h"
#include "registry/registry.h"
#include "runtime_api/runtime_api.h"
#include "sandbox/launcher.h"
#include "telemetry/logs.h"
#include "http/io_threads.h"
#include "telemetry/metrics.h"
#include "store/blob_store.h"
#include "store/sqlite_store.h"

namespace nimbus::daemon {

struct DaemonConfig {
  std::filesystem::path data_dir;     // empty: default_data_dir()
  std::string api_host = "127.0.0.1";
  std::uint16_t api_port = 9000;      // 0 picks a free port
  unsigned threads = 2;
  // Connection caps of the API listener (0: none); a client is an address,
  // and on this host also a uid, so each instance has a share of its own,
  // and instances together have a pool of their own beside the operator's.
  std::size_t api_max_connections = 4096;           // from clients that are not instances
  std::size_t api_max_guest_connections = 4096;     // from every instance together
  std::size_t api_max_connections_per_client = 256;
  std::uint64_t api_max_body_bytes_in_flight = 1ull << 30;  // request bodies over 64 KiB being read at once
  api::AuthMode auth = api::AuthMode::kSigV4;
  registry::RegistryConfig registry;
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::milliseconds keep_alive{10 * 60 * 1000};  // idle instances stop after this at the latest
  std::chrono::milliseconds keep_alive_min{60 * 1000};   // the adaptive keep-alive's shortest window
  bool adaptive_keep_alive = true;
  invoker::CpuCap cpu_cap = invoker::CpuCap::kProportionalToMemory;  // --cpu-limit
  int max_parallel_starts = 0;       // --max-parallel-starts (0: four per CPU)
  sandbox::LauncherMode isolation = sandbox::LauncherMode::kAuto;
  unsigned sandbox_pool = 2;         // sandboxes made ahead of time for cold starts (--sandbox-pool)
  int fork_init_ms = 100;            // --fork-init-ms: forking for slower Python inits (-1: never)
  unsigned primed_runtimes = 1;      // primed Python/Node runtimes kept ready per interpreter (--primed-runtimes)
  gateway::GatewayConfig gateway;     // the user-facing HTTP listener (--gateway-listen)
  events::DispatcherConfig events;    // asynchronous invocations; its time_scale (--events-time-scale,
                                      // test-only) also speeds up schedules
};

// ~/.local/share/nimbus (or $XDG_DATA_HOME/nimbus); /var/lib/nimbus as root.
[[nodiscard]] std::filesystem::path default_data_dir();

// The access key pair in <data-dir>/credentials (AWS shared-credentials
// format, mode 0600), created with fresh random keys on first use.
struct LoadedCredentials {
  api::Credentials credentials;
  bool created = false;
};
[[nodiscard]] base::Result<LoadedCredentials> load_or_create_credentials(const std::filesystem::path& data_dir);
// Reads an existing credentials file (the CLI uses this).
[[nodiscard]] base::Result<api::Credentials> read_credentials(const std::filesystem::path& data_dir);

class Daemon {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Forks the sandbox launcher (so call it before any thread exists), opens
  // the store, binds the listeners, writes <data-dir>/endpoints.json.
  [[nodiscard]] base::Status start();
  // Serves until a stop is requested, then shuts down.
  void run();
  // Installs SIGINT/SIGTERM handlers that request a stop (and, when the
  // gateway has TLS, a SIGHUP handler that reloads its certificate), then run().
  void run_until_signal();
  void request_stop();

  [[nodiscard]] const std::filesystem::path& data_dir() const { return config_.data_dir; }
  [[nodiscard]] std::uint16_t api_port() const { return api_port_; }
  [[nodiscard]] std::uint16_t gateway_port() const { return gateway_port_; }

 private:
  void shutdown();
  void reload_on_hangup(boost::asio::signal_set& hangup);

  DaemonConfig config_;
  base::SystemClock clock_;
  std::unique_ptr<base::ScaledClock> events_clock_;  // schedules' time (--events-time-scale)
  boost::asio::io_context io_{1};  // run by one thread: Daemon::run's
  std::unique_ptr<http::IoThreads> io_threads_;  // io_ and the further io threads (--threads)
  std::unique_ptr<sandbox::Launcher> launcher_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<registry::Registry> registry_;
  std::unique_ptr<telemetry::Registry> metrics_;
  std::unique_ptr<telemetry::LogStore> logs_;
  std::unique_ptr<runtime_api::RuntimeApi> runtime_api_;
  std::unique_ptr<invoker::Invoker> invoker_;
  std::unique_ptr<events::SqliteQueueStore> queue_store_;
  std::unique_ptr<events::QueueService> queues_;
  std::unique_ptr<events::QueueMessageSink> queue_sink_;
  std::unique_ptr<events::EventSourceMappings> event_source_mappings_;
  std::unique_ptr<api::SqsApi> sqs_api_;
  std::unique_ptr<api::StsApi> sts_api_;
  std::unique_ptr<events::EventsMetrics> events_metrics_;
  std::unique_ptr<events::AsyncQueue> async_queue_;
  std::unique_ptr<events::EventInvokeConfigs> event_configs_;
  std::unique_ptr<events::Dispatcher> dispatcher_;
  std::unique_ptr<events::EventsControl> events_control_;
  std::unique_ptr<api::LambdaApi> api_;
  std::unique_ptr<http::Server> api_server_;
  std::uint16_t api_port_ = 0;
  std::unique_ptr<events::Scheduler> scheduler_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<http::Server> gateway_server_;
  std::uint16_t gateway_port_ = 0;
  std::atomic<bool> stop_requested_{false};
  std::thread stopper_;  // runs the drain sequence
};

}  // namespace nimbus::daemon
