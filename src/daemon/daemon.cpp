#include "daemon/daemon.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "base/files.h"

namespace nimbus::daemon {

using base::ErrorCode;
using base::make_error;

std::filesystem::path default_data_dir() {
  if (::geteuid() == 0) return "/var/lib/nimbus";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "nimbus";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "/tmp") / ".local/share/nimbus";
}

namespace {
constexpr const char* kCredentialsFile = "credentials";

// Reads `key = value` from an AWS shared-credentials style file.
std::string ini_value(const std::string& text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = text.find('\n', pos);
    std::string_view line(text.data() + pos, (end == std::string::npos ? text.size() : end) - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    auto trim = [](std::string_view s) {
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
      return s;
    };
    if (trim(line.substr(0, eq)) == key) return std::string(trim(line.substr(eq + 1)));
  }
  return {};
}
// The descriptors the daemon asks for at start (as root it may raise its hard
// limit to this): the gateway's and the API's connection caps plus
// kDescriptorReserve for instances (pipes, Runtime API connections and
// listeners), the store and the logs.
constexpr rlim_t kWantedDescriptors = 65536;
constexpr std::size_t kDescriptorReserve = 4096;

// Raises the soft limit on open descriptors to the hard one (as root, the
// hard one to kWantedDescriptors first) and returns the limit in force.
rlim_t raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kWantedDescriptors) {
    rlimit wanted{kWantedDescriptors, kWantedDescriptors};
    if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) return kWantedDescriptors;
  }
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? kWantedDescriptors : limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return before;
  return limit.rlim_cur;
}

// Shrinks the listeners' connection caps, in proportion, to what `limit`
// descriptors leave after kDescriptorReserve; says so when it does.
void fit_connection_caps(rlim_t limit, std::size_t& gateway, std::size_t& api, std::size_t& api_guests) {
  const std::size_t room = limit > kDescriptorReserve * 2 ? static_cast<std::size_t>(limit) - kDescriptorReserve
                                                          : static_cast<std::size_t>(limit) / 2;
  const std::size_t wanted = gateway + api + api_guests;
  if (wanted <= room) return;
  for (std::size_t* cap : {&gateway, &api, &api_guests}) *cap = std::max<std::size_t>(1, *cap * room / wanted);
  spdlog::info("nimbus: {} file descriptors allow at most {} gateway, {} API and {} API connections from "
               "instances (raise the hard limit, `ulimit -Hn`, for more)",
               limit, gateway, api, api_guests);
}

// Counts a listener's refused connections by reason.
std::function<void(http::Refusal)> count_refusals(telemetry::Registry& metrics, const std::string& listener) {
  const std::string name = "nimbus_" + listener + "_connections_refused_total";
  const std::string help = "Connections to the " + listener + " closed at once: over a connection limit or out of "
                           "file descriptors";
  auto* server_full = &metrics.labelled_counter(name, help, "reason", std::string(to_string(http::Refusal::kServerFull)));
  auto* client_full = &metrics.labelled_counter(name, help, "reason", std::string(to_string(http::Refusal::kClientFull)));
  auto* no_fds = &metrics.labelled_counter(name, help, "reason", std::string(to_string(http::Refusal::kNoDescriptors)));
  return [=](http::Refusal why) {
    switch (why) {
      case http::Refusal::kServerFull: server_full->add(); break;
      case http::Refusal::kClientFull: client_full->add(); break;
      case http::Refusal::kNoDescriptors: no_fds->add(); break;
    }
  };
}
}  // namespace

base::Result<api::Credentials> read_credentials(const std::filesystem::path& data_dir) {
  auto text = base::read_file(data_dir / kCredentialsFile);
  if (!text.ok()) return std::move(text).error();
  api::Credentials c{ini_value(*text, "aws_access_key_id"), ini_value(*text, "aws_secret_access_key")};
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return make_error(ErrorCode::kService,
                      fmt::format("{}: missing aws_access_key_id or aws_secret_access_key",
                                  (data_dir / kCredentialsFile).string()));
  }
  return c;
}

base::Result<LoadedCredentials> load_or_create_credentials(const std::filesystem::path& data_dir) {
  const auto path = data_dir / kCredentialsFile;
  if (std::filesystem::exists(path)) {
    auto c = read_credentials(data_dir);
    if (!c.ok()) return std::move(c).error();
    return LoadedCredentials{std::move(*c), false};
  }
  // AKIA-style id: 20 upper-case characters; secret: 40 base64 characters.
  static constexpr char kUpper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string id = "NIMB";
  for (unsigned char b : base::random_bytes(16)) id.push_back(kUpper[b % 32]);
  std::string secret = base::base64_encode(base::random_bytes(30));
  const std::string text = fmt::format(
      "# nimbus credentials: use with AWS_SHARED_CREDENTIALS_FILE={} or the AWS_* variables\n"
      "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
      path.string(), id, secret);
  NIMBUS_TRY(base::write_file_atomic(path, text, 0600));
  return LoadedCredentials{api::Credentials{id, secret}, true};
}

Daemon::Daemon(DaemonConfig config) : config_(std::move(config)) {
  if (config_.data_dir.empty()) config_.data_dir = default_data_dir();
  if (config_.threads == 0) config_.threads = 1;
  io_threads_ = std::make_unique<http::IoThreads>(io_, config_.threads);
}

Daemon::~Daemon() { shutdown(); }

base::Status Daemon::start() {
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kService,
                      fmt::format("create data directory {}: {}", config_.data_dir.string(), ec.message()));
  }
  ::chmod(config_.data_dir.c_str(), 0700);
  const rlim_t descriptors = raise_descriptor_limit();
  fit_connection_caps(descriptors, config_.gateway.max_connections, config_.api_max_connections,
                      config_.api_max_guest_connections);
  spdlog::info("nimbus: {} file descriptors; at most {} gateway connections ({} per client), {} API connections "
               "and {} more from instances ({} per client)",
               descriptors, config_.gateway.max_connections, config_.gateway.max_connections_per_client,
               config_.api_max_connections, config_.api_max_guest_connections,
               config_.api_max_connections_per_client);

  // First: the launcher must be forked while this process has one thread.
  sandbox::LauncherConfig launcher_config;
  launcher_config.mode = config_.isolation;
  launcher_config.pool_size = config_.sandbox_pool;
  launcher_config.primed_per_runtime = config_.primed_runtimes;
  // A parent group per daemon: one daemon stopping (and removing its empty
  // parent) must never pull the groups from under another on the same host.
  launcher_config.cgroup_name = fmt::format("nimbus-{}", ::getpid());
  // Every uid an instance may run as: the host-wide leases and the launcher's own pool.
  const unsigned first_uid = std::min(launcher_config.lease_uid_base, launcher_config.uid_base);
  const http::ServerConfig::UidRange guest_uids{
      first_uid, std::max(launcher_config.lease_uid_base + launcher_config.lease_uid_count,
                          launcher_config.uid_base + launcher_config.uid_count) - first_uid};
  auto launcher = sandbox::Launcher::start(launcher_config);
  if (!launcher.ok()) return std::move(launcher).error();
  launcher_ = std::move(*launcher);
  for (const auto& lost : launcher_->isolation().lost) {
    spdlog::warn("nimbus: REDUCED ISOLATION: {}", lost);
  }

  auto creds = load_or_create_credentials(config_.data_dir);
  if (!creds.ok()) return std::move(creds).error();

  store_ = std::make_unique<store::SqliteStore>(config_.data_dir / "nimbus.db");
  NIMBUS_TRY(store_->open());
  blobs_ = std::make_unique<store::BlobStore>(config_.data_dir);
  NIMBUS_TRY(blobs_->open());
  registry_ = std::make_unique<registry::Registry>(*store_, *blobs_, clock_, config_.registry);

  auto runtimes = invoker::install_runtime_files(config_.data_dir / "runtimes");
  if (!runtimes.ok()) return std::move(runtimes).error();
  metrics_ = std::make_unique<telemetry::Registry>();
  telemetry::LogStoreConfig log_config;
  log_config.dir = config_.data_dir / "logs";
  logs_ = std::make_unique<telemetry::LogStore>(log_config);
  logs_->start();
  runtime_api::RuntimeApiConfig runtime_api_config;
  runtime_api_config.connection_executor = io_threads_->placer();
  runtime_api_ = std::make_unique<runtime_api::RuntimeApi>(io_.get_executor(), std::move(runtime_api_config));
  invoker::InvokerConfig invoker_config;
  invoker_config.runtimes_dir = *runtimes;
  invoker_config.keep_alive = config_.keep_alive;
  invoker_config.primed_runtimes = config_.primed_runtimes > 0;
  invoker_config.fork_init_threshold = config_.fork_init_ms < 0
                                           ? std::nullopt
                                           : std::optional(std::chrono::milliseconds(config_.fork_init_ms));
  invoker_config.keep_alive_min = config_.keep_alive_min;
  invoker_config.adaptive_keep_alive = config_.adaptive_keep_alive;
  invoker_config.account_concurrency = static_cast<int>(config_.registry.account_concurrency);
  invoker_config.region = config_.registry.region;
  invoker_config.cpu_cap = config_.cpu_cap;
  invoker_config.max_parallel_starts = config_.max_parallel_starts;
  invoker_ = std::make_unique<invoker::Invoker>(io_.get_executor(), *registry_, *launcher_, *runtime_api_, *metrics_,
                                                *logs_, clock_, invoker_config);
  invoker_->start();

  // Queues (SQS-compatible) on the control port: their own database file, so
  // queue traffic never waits on the registry's. They are the message sink of
  // async invokes' queue destinations and dead-letter queues.
  queue_store_ = std::make_unique<events::SqliteQueueStore>(config_.data_dir / "queues.db");
  NIMBUS_TRY(queue_store_->open());
  events::QueueServiceConfig queue_config;
  queue_config.region = config_.registry.region;
  queue_config.account_id = config_.registry.account_id;
  queues_ = std::make_unique<events::QueueService>(*queue_store_, clock_, queue_config);
  NIMBUS_TRY(queues_->start());
  queue_sink_ = std::make_unique<events::QueueMessageSink>(*queues_);
  // Event source mappings: pollers that feed queues to functions in batches.
  events::EventSourceMappingsConfig mappings_config;
  mappings_config.region = config_.registry.region;
  mappings_config.account_id = config_.registry.account_id;
  event_source_mappings_ = std::make_unique<events::EventSourceMappings>(
      io_.get_executor(), *queues_, *invoker_, *registry_, *metrics_, clock_, mappings_config);
  NIMBUS_TRY(event_source_mappings_->start());

  // Asynchronous invocations: the durable queue (group commit), the configs,
  // the dispatcher, which sends queue destinations through the queues.
  events_metrics_ = std::make_unique<events::EventsMetrics>(*metrics_);
  async_queue_ = std::make_unique<events::AsyncQueue>(*store_, clock_, events_metrics_.get());
  event_configs_ = std::make_unique<events::EventInvokeConfigs>(*store_, *registry_, clock_);
  dispatcher_ = std::make_unique<events::Dispatcher>(io_.get_executor(), *async_queue_, *store_, *invoker_, *registry_,
                                                     *event_configs_, queue_sink_.get(), *events_metrics_, clock_,
                                                     config_.events);
  async_queue_->on_inserted([d = dispatcher_.get()] { d->wake(); });
  async_queue_->start();
  NIMBUS_TRY(dispatcher_->start());
  if (config_.events.time_scale > 1.0) {
    spdlog::warn("nimbus: TEST ONLY: retry delays, event ages and schedules run {}x faster than real time",
                 config_.events.time_scale);
  }
  events_control_ = std::make_unique<events::EventsControl>(*store_, *async_queue_, dispatcher_.get(),
                                                            *events_metrics_, clock_);

  api::ApiConfig api_config;
  api_config.auth = config_.auth;
  api_config.credentials = creds->credentials;
  api_ = std::make_unique<api::LambdaApi>(api::ApiParts{*registry_, invoker_.get(), metrics_.get(), logs_.get(),
                                                        async_queue_.get(), event_configs_.get(),
                                                        event_source_mappings_.get()},
                                          clock_, api_config);
  api_->add_extension("/nimbus/v1/events",
                      [c = events_control_.get()](http::Verb method, std::string_view path, const http::Params& query,
                                                  const std::string& body) -> base::Result<api::ExtensionReply> {
                        auto reply = c->control(method, path, query, body);
                        if (!reply.ok()) return std::move(reply).error();
                        return api::ExtensionReply{reply->status, std::move(reply->body)};
                      });

  // The SQS-compatible API shares the control port.
  sqs_api_ = std::make_unique<api::SqsApi>(*queues_);
  api_->add_service(api::ServiceHandler{
      "sqs", &api::SqsApi::claims,
      [sqs = sqs_api_.get()](http::Request r) { return sqs->handle(std::move(r)); },
      [sqs = sqs_api_.get()](const base::Error& e, const http::Request& r) { return sqs->render_error(e, r); }});

  // STS (GetCallerIdentity): signed for "sts", the account root's identity.
  sts_api_ = std::make_unique<api::StsApi>(config_.registry.account_id);
  api_->add_service(api::ServiceHandler{
      "sts", [](const http::Request&) { return false; },  // reached by its credential scope only
      [sts = sts_api_.get()](http::Request r) { return sts->handle(std::move(r)); },
      [sts = sts_api_.get()](const base::Error& e, const http::Request& r) { return sts->render_error(e, r); }});

  // Schedules. Each fire is committed as an asynchronous invocation, so it
  // gets Lambda's retries and destinations like any Event invoke.
  events_clock_ = std::make_unique<base::ScaledClock>(clock_, config_.events.time_scale);
  events::SchedulerConfig scheduler_config;
  scheduler_config.region = config_.registry.region;
  scheduler_config.account_id = config_.registry.account_id;
  scheduler_config.time_scale = config_.events.time_scale;
  auto fire = [queue = async_queue_.get()](const std::string& function, const std::string& qualifier,
                                           std::string payload) -> base::Status {
    store::AsyncWriteBatch batch;
    batch.inserts.push_back(queue->make_row(events::AsyncRequest{function, qualifier, std::move(payload)}));
    return queue->write_blocking(std::move(batch));
  };
  scheduler_ = std::make_unique<events::Scheduler>(io_.get_executor(), *store_, registry_.get(), *metrics_,
                                                   *events_clock_, fire, scheduler_config);
  api_->add_extension("/nimbus/v1/schedules",
                      [s = scheduler_.get()](http::Verb method, std::string_view path, const http::Params&,
                                             const std::string& body) -> base::Result<api::ExtensionReply> {
                        auto reply = s->control(method, path, body);
                        if (!reply.ok()) return std::move(reply).error();
                        return api::ExtensionReply{reply->status, std::move(reply->body)};
                      });
  scheduler_->start();

  // The gateway: user HTTP on its own listener, its routes managed through the control API.
  gateway::GatewayConfig gateway_config = config_.gateway;
  gateway_config.access_log = config_.data_dir / "logs" / "gateway-access.log";
  gateway_ = std::make_unique<gateway::Gateway>(*store_, *registry_, invoker_.get(), *metrics_, clock_, gateway_config);
  gateway_->set_signature_check([api = api_.get()](const http::Request& r) { return api->check_signature(r); });
  NIMBUS_TRY(gateway_->start());
  const auto gateway_control = [gw = gateway_.get()](http::Verb method, std::string_view path,
                                                      const http::Params& query,
                                                      const std::string& body) -> base::Result<api::ExtensionReply> {
    auto reply = gw->control(method, path, query, body);
    if (!reply.ok()) return std::move(reply).error();
    return api::ExtensionReply{reply->status, std::move(reply->body)};
  };
  api_->add_extension("/nimbus/v1/routes", gateway_control);
  // Function URLs: the Lambda API's operations, served by the gateway's configs.
  api_->add_extension("/2021-10-31/functions/",
                      [urls = &gateway_->function_urls()](http::Verb method, std::string_view path,
                                                         const http::Params& query,
                                                         const std::string& body) -> base::Result<api::ExtensionReply> {
                        auto reply = urls->control(method, path, query, body);
                        if (!reply.ok()) return std::move(reply).error();
                        return api::ExtensionReply{reply->status, std::move(reply->body)};
                      });
  api_->on_removed([urls = &gateway_->function_urls()](std::string_view function,
                                                       std::optional<std::string_view> alias) {
    urls->forget(function, alias);
  });
  api_->add_extension("/nimbus/v1/gateway/", gateway_control);
  http::ServerConfig gateway_server_config;
  gateway_server_config.host = gateway_config.host;
  gateway_server_config.port = gateway_config.port;
  gateway_server_config.body_limit = gateway_config.body_limit;
  gateway_server_config.header_limit = gateway_config.header_limit;
  gateway_server_config.idle_timeout = gateway_config.idle_timeout;
  gateway_server_config.body_timeout = std::chrono::seconds(60);
  gateway_server_config.name = "gateway";
  gateway_server_config.connection_executor = io_threads_->placer();
  gateway_server_config.tls = gateway_config.tls;
  gateway_server_config.on_tls_handshake_failure = [gw = gateway_.get()] {
    gw->count_tls_handshake_failure();
  };
  gateway_server_config.max_connections = gateway_config.max_connections;
  gateway_server_config.max_connections_per_client = gateway_config.max_connections_per_client;
  gateway_server_config.on_connection_refused = count_refusals(*metrics_, "gateway");
  gateway_server_config.max_body_bytes_in_flight = gateway_config.max_body_bytes_in_flight;
  gateway_server_ = std::make_unique<http::Server>(
      io_.get_executor(), gateway_server_config,
      [gw = gateway_.get()](http::Request r, http::RequestContext c) { return gw->handle(std::move(r), c); },
      [gw = gateway_.get()](const base::Error& e, unsigned v) { return gw->render_error(e, v); });
  auto gateway_endpoint = gateway_server_->listen();
  if (!gateway_endpoint.ok()) return std::move(gateway_endpoint).error();
  gateway_port_ = gateway_endpoint->port();
  gateway_->set_listen_port(gateway_port_);
  gateway_server_->start();

  http::ServerConfig server_config;
  server_config.host = config_.api_host;
  server_config.port = config_.api_port;
  server_config.body_limit = api::ApiConfig::kMaxRequestBytes;
  server_config.name = "api";
  // Every instance has a uid of its own: one function's connections never
  // count against another's (or the operator's) share.
  server_config.max_connections = config_.api_max_connections;
  server_config.max_connections_per_client = config_.api_max_connections_per_client;
  server_config.client_key = http::ClientKey::kAddressAndLocalUid;
  server_config.guest_uids = guest_uids;
  server_config.max_guest_connections = config_.api_max_guest_connections;
  server_config.on_connection_refused = count_refusals(*metrics_, "api");
  server_config.max_body_bytes_in_flight = config_.api_max_body_bytes_in_flight;
  server_config.connection_executor = io_threads_->placer();
  api_server_ = std::make_unique<http::Server>(
      io_.get_executor(), server_config,
      [api = api_.get()](http::Request r, http::RequestContext) { return api->handle(std::move(r)); },
      [api = api_.get()](const base::Error& e, unsigned v) { return api->render_error(e, v); });
  auto endpoint = api_server_->listen();
  if (!endpoint.ok()) return std::move(endpoint).error();
  api_port_ = endpoint->port();
  api_server_->start();

  const std::string api_url = fmt::format("http://{}:{}", config_.api_host, api_port_);
  // A wildcard bind is reached through loopback.
  const std::string gateway_host = gateway_config.host == "0.0.0.0" ? "127.0.0.1"
                                   : gateway_config.host == "::"    ? "[::1]"
                                   : gateway_config.host.find(':') != std::string::npos
                                       ? "[" + gateway_config.host + "]"
                                       : gateway_config.host;
  const std::string gateway_url =
      fmt::format("{}://{}:{}", gateway_config.tls ? "https" : "http", gateway_host, gateway_port_);
  gateway_->function_urls().set_base_url(gateway_url);
  const nlohmann::json endpoints = {{"api", api_url}, {"gateway", gateway_url}, {"pid", ::getpid()}};
  NIMBUS_TRY(base::write_file_atomic(config_.data_dir / "endpoints.json", endpoints.dump() + "\n", 0644));

  spdlog::info("nimbus: data directory {}", config_.data_dir.string());
  spdlog::info("nimbus: Lambda API listening on {}", api_url);
  spdlog::info("nimbus: HTTP gateway listening on {}:{} ({})", gateway_config.host, gateway_port_, gateway_url);
  if (config_.auth == api::AuthMode::kNone) {
    spdlog::warn("nimbus: request signing is OFF (--insecure-no-auth): anyone who can reach {} can "
                 "manage functions",
                 api_url);
  }
  if (creds->created) {
    // Printed once, when the keys are made; they stay in the credentials file.
    fmt::print(stderr,
               "nimbus: created credentials in {}\n"
               "  AWS_ACCESS_KEY_ID={}\n  AWS_SECRET_ACCESS_KEY={}\n",
               (config_.data_dir / kCredentialsFile).string(), creds->credentials.access_key_id,
               creds->credentials.secret_access_key);
  }
  return base::Ok{};
}

void Daemon::run() {
  auto guard = boost::asio::make_work_guard(io_);
  io_threads_->start();
  http::run_io(io_);
  if (stopper_.joinable()) stopper_.join();
  // Let the connections that stop() cancelled unwind while the servers live
  // (the further io threads run theirs meanwhile).
  io_.restart();
  io_.run_for(std::chrono::milliseconds(200));
  io_threads_->stop();
  shutdown();
}

void Daemon::run_until_signal() {
  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("nimbus: signal {} received, shutting down", sig);
    request_stop();
  });
  // With TLS, SIGHUP reloads the gateway's certificate and key (renewals
  // without a restart); without it SIGHUP keeps its default meaning.
  std::optional<boost::asio::signal_set> hangup;
  if (config_.gateway.tls) {
    hangup.emplace(io_, SIGHUP);
    reload_on_hangup(*hangup);
  }
  run();
}

void Daemon::reload_on_hangup(boost::asio::signal_set& hangup) {
  hangup.async_wait([this, &hangup](const boost::system::error_code& ec, int) {
    if (ec || stop_requested_) return;
    if (auto reloaded = gateway_server_->reload_tls(); reloaded.ok()) {
      spdlog::info("nimbus: SIGHUP: gateway TLS certificate reloaded from {}",
                   config_.gateway.tls->cert_file);
    } else {
      spdlog::error("nimbus: SIGHUP: gateway TLS certificate not reloaded, the current one stays: {}",
                    reloaded.error().message);
    }
    reload_on_hangup(hangup);
  });
}

void Daemon::request_stop() {
  // Runs the shutdown sequence on a helper thread so the io threads keep
  // serving requests that are still in flight while we wait for them.
  if (stop_requested_.exchange(true)) return;
  stopper_ = std::thread([this] {
    if (gateway_server_) {
      gateway_server_->stop();
      if (!gateway_server_->drain(config_.drain_timeout)) {
        spdlog::warn("nimbus: gateway requests still in flight after {} ms; stopping anyway",
                     config_.drain_timeout.count());
      }
    }
    if (event_source_mappings_) event_source_mappings_->stop();
    if (queues_) queues_->release_waiters();  // long polls answer now, not in 20 s
    if (api_server_) {
      api_server_->stop();
      if (!api_server_->drain(config_.drain_timeout)) {
        spdlog::warn("nimbus: requests still in flight after {} ms; stopping anyway",
                     config_.drain_timeout.count());
      }
    }
    if (dispatcher_) dispatcher_->stop();
    if (scheduler_) scheduler_->stop();
    if (invoker_) invoker_->stop();
    if (runtime_api_) runtime_api_->stop();
    if (async_queue_) async_queue_->stop();
    io_.stop();
  });
}

void Daemon::shutdown() {
  if (api_server_ == nullptr && gateway_server_ == nullptr && store_ == nullptr && launcher_ == nullptr &&
      queues_ == nullptr) {
    return;
  }
  gateway_server_.reset();
  api_server_.reset();
  api_.reset();
  sqs_api_.reset();
  sts_api_.reset();
  gateway_.reset();
  events_control_.reset();
  if (event_source_mappings_) event_source_mappings_->stop();
  if (dispatcher_) dispatcher_->stop();
  scheduler_.reset();
  if (invoker_) invoker_->stop();
  if (async_queue_) async_queue_->stop();
  dispatcher_.reset();
  event_source_mappings_.reset();
  queue_sink_.reset();
  if (queues_) queues_->stop();  // commits what is pending
  queues_.reset();
  if (queue_store_) queue_store_->close();
  queue_store_.reset();
  event_configs_.reset();
  async_queue_.reset();
  events_metrics_.reset();
  invoker_.reset();
  runtime_api_.reset();
  if (logs_) logs_->stop();
  logs_.reset();
  metrics_.reset();
  launcher_.reset();  // kills what is left and removes the cgroups
  registry_.reset();
  blobs_.reset();
  if (store_) store_->close();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove(config_.data_dir / "endpoints.json", ec);
  spdlog::info("nimbus: stopped");
}

}  // namespace nimbus::daemon
