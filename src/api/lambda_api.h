#pragma once
// LambdaApi: the Lambda-compatible REST API (REST-JSON under /2015-03-31/...,
// as botocore's Lambda model describes it) plus nimbus's own extensions under
// /nimbus/v1/. Verifies SigV4, routes, converts JSON to registry calls and
// back, and writes every error in Lambda's shape from base's one table.
// Holds no state of its own beyond its configuration.
//
// Threads: handle() is a coroutine run on the control listener's executor by
// any of its threads; it is re-entrant. Owned by the daemon.

#include <functional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <optional>
#include <variant>
#include <string>

#include "api/sigv4.h"
#include "base/clock.h"
#include "events/async_queue.h"
#include "events/invoke_config.h"
#include "http/router.h"
#include "http/types.h"
#include "invoker/invoker.h"
#include "registry/registry.h"
#include "telemetry/logs.h"
#include "telemetry/metrics.h"

namespace nimbus::events {
class EventSourceMappings;
struct MappingView;
}  // namespace nimbus::events

namespace nimbus::api {

enum class AuthMode { kSigV4, kNone };

struct ApiConfig {
  AuthMode auth = AuthMode::kSigV4;
  Credentials credentials;          // the one key pair nimbus accepts
  std::int64_t max_clock_skew_ms = 5 * 60 * 1000;
  // Largest request body (CreateFunction with a 50 MB zip in base64).
  static constexpr std::uint64_t kMaxRequestBytes = 70167211;
};

// The parts the API calls; invoker/metrics/logs may be null (control only).
struct ApiParts {
  registry::Registry& registry;
  invoker::Invoker* invoker = nullptr;
  telemetry::Registry* metrics = nullptr;
  telemetry::LogStore* logs = nullptr;
  // Asynchronous invocation (InvocationType Event) and event invoke configs;
  // null: Event invokes and those operations are refused.
  events::AsyncQueue* async_queue = nullptr;
  events::EventInvokeConfigs* event_configs = nullptr;
  // SQS event source mappings; null: those operations are refused.
  events::EventSourceMappings* event_source_mappings = nullptr;
};

// A nimbus extension that another part serves under a path prefix of the
// control API (the gateway's /nimbus/v1/routes): LambdaApi checks the
// signature and renders errors in Lambda's shape; the extension gets the
// method, the path, the decoded query and the body, and answers a status and
// a JSON body (null: none).
struct ExtensionReply {
  unsigned status = 200;
  nlohmann::json body;
};
using Extension = std::function<base::Result<ExtensionReply>(http::Verb, std::string_view path,
                                                             const http::Params& query, const std::string& body)>;

// A whole AWS service that shares the control port (SQS): LambdaApi offers it
// every request before Lambda routing; for those `claims` accepts it verifies
// SigV4 with `signing_name` as the credential scope's service, then hands over
// the whole request (headers and body) and returns the service's response
// as it is. Errors found before that (signature) are rendered by the service.
struct ServiceHandler {
  std::string signing_name;
  std::function<bool(const http::Request&)> claims;
  std::function<http::asio::awaitable<http::Response>(http::Request)> handle;
  std::function<http::Response(const base::Error&, const http::Request&)> render_error;
};

class LambdaApi {
 public:
  LambdaApi(ApiParts parts, const base::Clock& clock, ApiConfig config);

  // Serves requests whose path starts with `prefix` through `extension`.
  // Call before the API serves requests (not synchronised).
  void add_extension(std::string prefix, Extension extension);
  // Serves the requests `service.claims` accepts through `service` (see
  // ServiceHandler). Call before the API serves requests (not synchronised).
  void add_service(ServiceHandler service);

  // Told when DeleteFunction removed a function (alias: nullopt) or
  // DeleteAlias an alias, after the registry did, so parts above the API
  // (function URLs) drop what belonged to it. Call before serving.
  using RemovalHook = std::function<void(std::string_view function, std::optional<std::string_view> alias)>;
  void on_removed(RemovalHook hook) { removal_hooks_.push_back(std::move(hook)); }
  // Verifies a request's SigV4 signature for the service "lambda" with the
  // daemon's credentials, as every API request is (any thread).
  [[nodiscard]] base::Status check_signature(const http::Request& request) const { return authenticate(request); }

  // Serves one request.
  [[nodiscard]] http::asio::awaitable<http::Response> handle(http::Request request);
  // An error in Lambda's shape (for failures found before handle() runs).
  [[nodiscard]] http::Response render_error(const base::Error& error, unsigned version) const;

 private:
  using SyncRoute = http::Response (LambdaApi::*)(const http::Request&, const http::Params& path,
                                                  const http::Params& query);
  using AsyncRoute = http::asio::awaitable<http::Response> (LambdaApi::*)(const http::Request&,
                                                                          const http::Params& path,
                                                                          const http::Params& query);
  using Route = std::variant<SyncRoute, AsyncRoute>;
  http::asio::awaitable<http::Response> dispatch(http::Request request);
  [[nodiscard]] base::Status authenticate(const http::Request& request,
                                          std::string_view service = "lambda") const;

  http::Response create_function(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_function(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_configuration(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response list_functions(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response update_code(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response update_configuration(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response delete_function(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response tag_resource(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response untag_resource(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response list_tags(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response account_settings(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response download_code(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response health(const http::Request& req, const http::Params& path, const http::Params& query);
  http::asio::awaitable<http::Response> invoke(const http::Request& req, const http::Params& path,
                                               const http::Params& query);
  http::Response put_concurrency(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_concurrency(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response delete_concurrency(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response publish_version(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response list_versions(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response create_alias(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response list_aliases(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_alias(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response update_alias(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response delete_alias(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response put_provisioned(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_provisioned(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response delete_provisioned(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response put_event_invoke_config(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response update_event_invoke_config(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response get_event_invoke_config(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response delete_event_invoke_config(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response list_event_invoke_configs(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response write_event_invoke_config(const http::Request& req, const http::Params& path, const http::Params& query,
                                           events::ConfigWrite mode);
  // Enqueues an Event invoke; 202 once committed.
  http::asio::awaitable<http::Response> invoke_event(std::string name, std::string qualifier, std::string payload,
                                                     unsigned version);
  http::asio::awaitable<http::Response> create_event_source_mapping(const http::Request& req, const http::Params& path,
                                                                  const http::Params& query);
  http::Response get_event_source_mapping(const http::Request& req, const http::Params& path, const http::Params& query);
  http::asio::awaitable<http::Response> update_event_source_mapping(const http::Request& req, const http::Params& path,
                                                                  const http::Params& query);
  http::asio::awaitable<http::Response> delete_event_source_mapping(const http::Request& req, const http::Params& path,
                                                                  const http::Params& query);
  http::Response list_event_source_mappings(const http::Request& req, const http::Params& path,
                                            const http::Params& query);
  // A mapping as Lambda shows it; `state` overrides the live one (Creating, ...).
  nlohmann::json render_mapping(const events::MappingView& view, std::string_view state = {}) const;
  http::Response metrics(const http::Request& req, const http::Params& path, const http::Params& query);
  http::Response function_logs(const http::Request& req, const http::Params& path, const http::Params& query);

  // The function and qualifier a FunctionName path label and ?Qualifier name.
  base::Result<registry::FunctionRef> qualified_name(std::string_view label, const http::Params& query) const;
  // The $LATEST name a FunctionName path label refers to, or why none.
  base::Result<std::string> unqualified_name(std::string_view label, const http::Params& query) const;
  // PublishVersion's response (also CreateFunction / UpdateFunctionCode with Publish).
  http::Response render_published(const http::Request& req, const std::string& name, std::optional<std::string> code_sha256);
  // A provisioned config as Get/Put/List show it, with the invoker's live count.
  nlohmann::json provisioned_view(const registry::ProvisionedConcurrency& config);
  std::string code_token(std::string_view name, std::string_view sha_hex) const;

  registry::Registry& registry_;
  invoker::Invoker* invoker_;
  telemetry::Registry* metrics_;
  telemetry::LogStore* logs_;
  events::AsyncQueue* async_queue_;
  events::EventInvokeConfigs* event_configs_;
  events::EventSourceMappings* event_source_mappings_;
  const base::Clock& clock_;
  ApiConfig config_;
  http::Router<Route> router_;
  std::vector<std::pair<std::string, Extension>> extensions_;
  std::vector<ServiceHandler> services_;
  std::vector<RemovalHook> removal_hooks_;
};

}  // namespace nimbus::api
