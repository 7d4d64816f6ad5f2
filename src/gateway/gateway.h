#pragma once
// Gateway: the user-facing HTTP API gateway of `nimbus serve`. Holds the
// route table and CORS configuration (persisted through store::Store), turns
// each request into a payload 2.0 or 1.0 event, invokes the route's function
// through the invoker, maps the output back to HTTP, enforces the global and
// per-route rate limits, and writes the access log and metrics. Also serves
// function URLs (function_urls.h): only functions with a URL config, with its
// AuthType and CORS.
//
// Threads: handle() is a coroutine run by the gateway listener's connections
// on any io thread; control() is called by the control API's threads. The
// current routes/CORS are an immutable snapshot swapped under a mutex (never
// held across co_await); buckets have their own mutexes. Owned by the
// daemon, which keeps the invoker, store and registry alive longer.

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <variant>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/access_log.h"
#include "gateway/api_keys.h"
#include "gateway/authorizer.h"
#include "gateway/cors.h"
#include "gateway/event.h"
#include "gateway/function_urls.h"
#include "gateway/metrics.h"
#include "gateway/response.h"
#include "gateway/route_table.h"
#include "gateway/token_bucket.h"
#include "http/server.h"
#include "http/types.h"
#include "invoker/invoker.h"
#include "registry/registry.h"
#include "store/store.h"

namespace nimbus::gateway {

struct GatewayConfig {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::uint64_t body_limit = 10 * 1024 * 1024;       // API Gateway's payload limit → 413
  std::uint32_t header_limit = 10240;                // request line + headers → 431
  std::chrono::seconds idle_timeout{30};             // keep-alive idle and header read
  std::chrono::milliseconds integration_timeout{30000};  // → 503
  double rate = 10000;                               // gateway-wide requests per second
  std::int64_t burst = 5000;
  std::string api_id = "nimbus";
  std::filesystem::path access_log;                  // empty: no access log
  std::optional<http::TlsFiles> tls;                 // set: the listener speaks HTTPS only
  std::size_t max_connections = 10000;               // open at once (0: no cap); over it → 503, closed
  std::size_t max_connections_per_client = 1000;     // open at once from one address; over it → 429, closed
  std::uint64_t max_body_bytes_in_flight = 256u << 20;  // request bodies over 64 KiB being read at once → 503
};

// A control-API answer: status and JSON body (null: no body).
struct ControlReply {
  unsigned status = 200;
  nlohmann::json body;
};

class Gateway {
 public:
  Gateway(store::Store& store, registry::Registry& registry, invoker::Invoker* invoker,
          telemetry::Registry& metrics, const base::Clock& clock, GatewayConfig config);
  // Stops the usage flusher and persists the quota counts a last time.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Loads routes, CORS, authorizers, API keys and usage plans from the store,
  // opens the access log and starts the periodic flush of quota counts.
  [[nodiscard]] base::Status start();
  // Persists the API keys' quota counts (when changed since the last flush).
  // Any thread; done every kUsageFlushInterval, after control changes and at
  // destruction, never on the request path.
  void flush_usage();
  // The port the listener is bound to (for x-forwarded-port).
  void set_listen_port(std::uint16_t port) { listen_port_ = port; }
  // Checks the SigV4 signature of a request to an AWS_IAM function URL (the
  // daemon passes the Lambda API's verification). Unset: such URLs refuse
  // every request. Call before start().
  using SignatureCheck = std::function<base::Status(const http::Request&)>;
  void set_signature_check(SignatureCheck check) { signature_check_ = std::move(check); }
  // Function URL configs (the Lambda API's /2021-10-31/functions/ operations).
  [[nodiscard]] FunctionUrls& function_urls() { return urls_; }
  // The listener closed a connection whose TLS handshake failed (any thread).
  void count_tls_handshake_failure() { metrics_.tls_handshake_failures.add(); }
  [[nodiscard]] const GatewayConfig& config() const { return config_; }

  // Serves one user request.
  [[nodiscard]] http::asio::awaitable<http::Response> handle(http::Request request, http::RequestContext context);
  // A failure found before handle() ran (too large, malformed), API Gateway style.
  [[nodiscard]] http::Response render_error(const base::Error& error, unsigned version) const;

  // The nimbus extension paths of the control API:
  //   GET /nimbus/v1/routes, POST /nimbus/v1/routes, DELETE /nimbus/v1/routes?RouteKey=K,
  //   GET|PUT|DELETE /nimbus/v1/gateway/cors,
  //   GET|POST /nimbus/v1/gateway/authorizers, DELETE /nimbus/v1/gateway/authorizers?Name=N,
  //   GET|POST|PUT /nimbus/v1/gateway/apikeys, DELETE /nimbus/v1/gateway/apikeys?Name=N,
  //   GET|POST /nimbus/v1/gateway/usage-plans, DELETE /nimbus/v1/gateway/usage-plans?Name=N,
  //   POST /nimbus/v1/gateway/usage-plans/keys, DELETE ...?UsagePlan=P&ApiKey=K.
  [[nodiscard]] base::Result<ControlReply> control(http::Verb method, std::string_view path,
                                                   const http::Params& query, const std::string& body);

 private:
  struct LimitedBucket {
    std::mutex mu;
    TokenBucket bucket;  // GUARDED_BY(mu)
    LimitedBucket(double rate, std::int64_t burst, const base::Clock& clock) : bucket(rate, burst, clock) {}
    bool try_take() {
      std::lock_guard lock(mu);
      return bucket.try_take();
    }
  };
  // An authorizer with what it keeps between requests; reused across
  // snapshots while its configuration is unchanged.
  struct AuthorizerState {
    explicit AuthorizerState(AuthorizerConfig c) : config(std::move(c)) {}
    const AuthorizerConfig config;
    AuthorizerCache cache;  // Lambda authorizers with a TTL
    JwksKeys keys;          // JWT authorizers
  };
  // What a request sees: replaced as a whole when routes or CORS change.
  struct Snapshot {
    RouteTable table;
    std::optional<CorsConfig> cors;
    std::map<std::string, std::shared_ptr<LimitedBucket>> route_buckets;        // by route key
    std::map<std::string, std::shared_ptr<AuthorizerState>, std::less<>> authorizers;  // by name
    std::map<std::string, std::shared_ptr<const UsagePlan>, std::less<>> plans;        // by name
    KeyRing keys;
  };
  struct Outcome;
  // An authorizer's verdict: the grant for the event, or the answer to send
  // and why (for the access log).
  struct AuthorizerRefusal {
    GatewayResponse response;
    std::string reason;
  };
  using AuthorizerVerdict = std::variant<AuthorizerGrant, AuthorizerRefusal>;

  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;
  [[nodiscard]] base::Status reload();
  void start_usage_flusher();
  [[nodiscard]] http::asio::awaitable<Outcome> serve(IncomingRequest request, std::shared_ptr<const Snapshot> snap,
                                                     std::string request_id, std::int64_t time_ms);
  // A request to a function URL: the answer when its config, AuthType or
  // CORS preflight settles it; otherwise nullopt, with the URL's config, the
  // function to invoke and the request and context as the function sees them.
  [[nodiscard]] std::optional<Outcome> admit_function_url(const UrlTarget& target, IncomingRequest& request,
                                                          EventContext& context, RouteTarget& function,
                                                          std::shared_ptr<const FunctionUrl>& url) const;
  [[nodiscard]] http::asio::awaitable<Outcome> integrate(const RouteTarget& target, const IncomingRequest& request,
                                                         const EventContext& context);
  [[nodiscard]] http::asio::awaitable<AuthorizerVerdict> authorize(const Route& route, const IncomingRequest& request,
                                                                   const EventContext& context,
                                                                   std::shared_ptr<AuthorizerState> state);
  [[nodiscard]] http::asio::awaitable<AuthorizerVerdict> authorize_jwt(const Route& route, std::string token,
                                                                       std::shared_ptr<AuthorizerState> state);
  [[nodiscard]] http::asio::awaitable<AuthorizerVerdict> authorize_lambda(const IncomingRequest& request,
                                                                          const EventContext& context,
                                                                          std::vector<std::string> identity,
                                                                          std::shared_ptr<AuthorizerState> state);
  // The one call into the invoker; nullopt when `timeout` passed first.
  [[nodiscard]] http::asio::awaitable<std::optional<invoker::InvokeResult>> invoke_function(
      const RouteTarget& target, std::string payload, std::chrono::milliseconds timeout);

  base::Result<ControlReply> put_route(const std::string& body);
  base::Result<ControlReply> list_routes();
  base::Result<ControlReply> delete_route(const http::Params& query);
  base::Result<ControlReply> cors_control(http::Verb method, const std::string& body);
  base::Result<ControlReply> authorizer_control(http::Verb method, const http::Params& query, const std::string& body);
  base::Result<ControlReply> api_key_control(http::Verb method, const http::Params& query, const std::string& body);
  base::Result<ControlReply> usage_plan_control(http::Verb method, const http::Params& query, const std::string& body);
  base::Result<ControlReply> plan_key_control(http::Verb method, const http::Params& query, const std::string& body);
  // A gateway setting holding documents by name (authorizers, API keys, usage
  // plans, usage counts); an empty object when unset.
  base::Result<nlohmann::json> stored_setting(std::string_view name);
  // The answer to a request the key check refused (403 or 429), counted in
  // the metrics; `reason` for the access log.
  GatewayResponse refuse_key(KeyCheck check, std::string& reason);
  // Logs, once per function, that its answer's body was not sent (a 204 or 304 with a body).
  void note_dropped_body(const std::string& function, unsigned status);
  // Builds the key ring of the next snapshot, keeping the usage of keys that stay.
  void load_keys(const Snapshot& previous, Snapshot& next, const nlohmann::json& plans, const nlohmann::json& keys);

  store::Store& store_;
  registry::Registry& registry_;
  invoker::Invoker* invoker_;
  GatewayMetrics metrics_;
  const base::Clock& clock_;
  GatewayConfig config_;
  LimitedBucket global_bucket_;
  AccessLog access_log_;
  FunctionUrls urls_;
  SignatureCheck signature_check_;
  std::atomic<std::uint16_t> listen_port_{0};

  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // GUARDED_BY(mu_)
  std::unordered_set<std::string> warned_bodies_;  // GUARDED_BY(mu_): functions told about a dropped body
  std::mutex control_mu_;                     // serialises control writes with their reload
  std::mutex flush_mu_;
  std::string flushed_usage_;  // GUARDED_BY(flush_mu_): the document last written
  bool usage_restored_ = false;  // GUARDED_BY(control_mu_ or start): counts read back from the store
  // Blocking work a request may need (fetching a JWKS) and the usage flusher;
  // never the io threads.
  boost::asio::thread_pool blocking_{1};
};

// A route as the control API shows it (and the store keeps it).
[[nodiscard]] nlohmann::json route_to_json(const Route& route);
// Parses a route from the control API's JSON (RouteKey, FunctionName,
// Qualifier, PayloadFormatVersion, ThrottlingRateLimit, ThrottlingBurstLimit).
[[nodiscard]] base::Result<Route> route_from_json(const nlohmann::json& body);

}  // namespace nimbus::gateway
