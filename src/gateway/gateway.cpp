#include "gateway/gateway.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/validation.h"
#include "gateway/detail/text.h"

namespace nimbus::gateway {

namespace asio = boost::asio;
using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxRoutes = 300;
constexpr std::size_t kMaxScopes = 10;

// Lambda's synchronous Invoke payload limit: a bigger event cannot be sent.
constexpr std::size_t kMaxEventBytes = 6 * 1024 * 1024;

std::string header_of(const IncomingRequest& r, std::string_view lower_name) {
  for (const auto& [k, v] : r.headers) {
    if (detail::ascii_lower(k) == lower_name) return v;
  }
  return {};
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Headers a function may not set: they describe the connection, not the response.
bool hop_by_hop(std::string_view name) {
  const std::string n = detail::ascii_lower(name);
  return n == "content-length" || n == "transfer-encoding" || n == "connection" || n == "keep-alive" ||
         n == "upgrade" || n == "te" || n == "trailer";
}

bool valid_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || c == ':' || c == '(' || c == ')' || c == ',' || c == ';' || c == '"' || c == '/' ||
        c == '[' || c == ']' || c == '{' || c == '}' || c == '=' || c == '?' || c == '\\' || c == '<' || c == '>' ||
        c == '@') {
      return false;
    }
  }
  return value.find_first_of("\r\n", 0) == std::string_view::npos && value.find('\0') == std::string_view::npos;
}

// The host part of a Host header ("api.local:8080" → "api.local").
std::string host_name(std::string_view host) {
  if (host.empty()) return "localhost";
  if (host.front() == '[') return std::string(host.substr(0, host.find(']') + 1));
  return std::string(host.substr(0, host.rfind(':') == std::string_view::npos ? host.size() : host.rfind(':')));
}

struct PendingInvoke {
  explicit PendingInvoke(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<invoker::InvokeResult> result;
};

// Runs beside the request on its executor (the connection's); whoever finishes first wins
// (a timed-out invocation finishes on its own and is dropped).
asio::awaitable<void> run_invoke(invoker::Invoker* invoker, invoker::InvokeRequest request,
                                 std::shared_ptr<PendingInvoke> pending) {
  pending->result = co_await invoker->invoke(std::move(request));
  pending->timer.cancel();
}

}  // namespace

struct Gateway::Outcome {
  GatewayResponse response;
  std::string route_key;
  std::string function;
  double integration_ms = -1;
  std::string error;
  std::string api_key_id;  // the key a keyed route admitted
  const CorsConfig* cors = nullptr;  // a function URL's CORS, instead of the gateway's
  std::shared_ptr<const FunctionUrl> url;  // keeps `cors` alive
};

json route_to_json(const Route& route) {
  json out = {{"RouteKey", route.key.text()},
              {"FunctionName", route.target.function},
              {"PayloadFormatVersion", to_string(route.target.format)}};
  if (!route.target.qualifier.empty()) out["Qualifier"] = route.target.qualifier;
  if (route.target.throttle) {
    out["ThrottlingRateLimit"] = route.target.throttle->rate;
    out["ThrottlingBurstLimit"] = route.target.throttle->burst;
  }
  if (!route.authorizer.empty()) out["Authorizer"] = route.authorizer;
  if (!route.authorization_scopes.empty()) out["AuthorizationScopes"] = route.authorization_scopes;
  if (route.validation) out["RequestValidation"] = to_json(*route.validation);
  if (route.api_key_required) out["ApiKeyRequired"] = true;
  return out;
}

base::Result<Route> route_from_json(const json& body) {
  if (!body.is_object()) return make_error(ErrorCode::kInvalidRequestContent, "The route must be a JSON object");
  static constexpr std::string_view kKnown[] = {"RouteKey",           "FunctionName",         "Qualifier",
                                                "PayloadFormatVersion", "ThrottlingRateLimit", "ThrottlingBurstLimit",
                                                "Authorizer",         "AuthorizationScopes",  "RequestValidation",
                                                "ApiKeyRequired"};
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return make_error(ErrorCode::kValidation, fmt::format("Unknown route member '{}'", key));
    }
  }
  const auto text = [&](const char* member) -> std::string {
    const auto it = body.find(member);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (const char* member : {"RouteKey", "FunctionName", "Qualifier", "PayloadFormatVersion", "Authorizer"}) {
    if (const auto it = body.find(member); it != body.end() && !it->is_string() && !it->is_null()) {
      return make_error(ErrorCode::kValidation, fmt::format("{} must be a string", member));
    }
  }
  if (text("RouteKey").empty()) return make_error(ErrorCode::kValidation, "RouteKey is required");
  if (text("FunctionName").empty()) return make_error(ErrorCode::kValidation, "FunctionName is required");
  auto key = parse_route_key(text("RouteKey"));
  if (!key.ok()) return std::move(key).error();
  Route route{std::move(*key), RouteTarget{text("FunctionName"), text("Qualifier"), PayloadFormat::kV2, std::nullopt},
              text("Authorizer"), {}, nullptr};
  if (const auto scopes = body.find("AuthorizationScopes"); scopes != body.end() && !scopes->is_null()) {
    if (!scopes->is_array() || scopes->size() > kMaxScopes ||
        !std::all_of(scopes->begin(), scopes->end(), [](const json& v) { return v.is_string() && !v.empty(); })) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("AuthorizationScopes must be a list of at most {} non-empty strings", kMaxScopes));
    }
    if (route.authorizer.empty()) return make_error(ErrorCode::kValidation, "AuthorizationScopes need an Authorizer");
    for (const auto& v : *scopes) route.authorization_scopes.push_back(v.get<std::string>());
  }
  if (const auto validation = body.find("RequestValidation"); validation != body.end() && !validation->is_null()) {
    auto parsed = parse_request_validation(*validation);
    if (!parsed.ok()) return make_error(parsed.error().code, "RequestValidation: " + parsed.error().message);
    route.validation = std::make_shared<const RequestValidation>(std::move(*parsed));
  }
  if (const auto required = body.find("ApiKeyRequired"); required != body.end() && !required->is_null()) {
    if (!required->is_boolean()) return make_error(ErrorCode::kValidation, "ApiKeyRequired must be true or false");
    route.api_key_required = required->get<bool>();
  }
  if (const std::string v = text("PayloadFormatVersion"); !v.empty()) {
    auto format = parse_payload_format(v);
    if (!format.ok()) return std::move(format).error();
    route.target.format = *format;
  }
  const auto rate = body.find("ThrottlingRateLimit");
  const auto burst = body.find("ThrottlingBurstLimit");
  const bool has_rate = rate != body.end() && !rate->is_null();
  const bool has_burst = burst != body.end() && !burst->is_null();
  if (has_rate != has_burst) {
    return make_error(ErrorCode::kValidation, "ThrottlingRateLimit and ThrottlingBurstLimit go together");
  }
  if (has_rate) {
    if (!rate->is_number() || rate->get<double>() <= 0) {
      return make_error(ErrorCode::kValidation, "ThrottlingRateLimit must be a number above 0");
    }
    if (!burst->is_number_integer() || burst->get<std::int64_t>() < 1) {
      return make_error(ErrorCode::kValidation, "ThrottlingBurstLimit must be an integer of at least 1");
    }
    route.target.throttle = RouteThrottle{rate->get<double>(), burst->get<std::int64_t>()};
  }
  return route;
}

Gateway::Gateway(store::Store& store, registry::Registry& registry, invoker::Invoker* invoker,
                 telemetry::Registry& metrics, const base::Clock& clock, GatewayConfig config)
    : store_(store),
      registry_(registry),
      invoker_(invoker),
      metrics_(metrics),
      clock_(clock),
      config_(std::move(config)),
      global_bucket_(config_.rate, config_.burst, clock),
      urls_(store, registry, clock),
      snapshot_(std::make_shared<Snapshot>()) {}

base::Status Gateway::start() {
  if (!config_.access_log.empty()) NIMBUS_TRY(access_log_.open(config_.access_log));
  NIMBUS_TRY(reload());
  NIMBUS_TRY(urls_.load());
  start_usage_flusher();
  return base::Ok{};
}

std::shared_ptr<const Gateway::Snapshot> Gateway::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

base::Result<json> Gateway::stored_setting(std::string_view name) {
  auto doc = store_.get_gateway_setting(name);
  if (!doc.ok()) return std::move(doc).error();
  if (doc->empty()) return json::object();
  json parsed = json::parse(*doc, nullptr, false);
  if (!parsed.is_object()) return make_error(ErrorCode::kService, fmt::format("the stored {} are not a JSON object", name));
  return parsed;
}

base::Status Gateway::reload() {
  auto rows = store_.list_routes();
  if (!rows.ok()) return std::move(rows).error();
  std::vector<Route> routes;
  for (const auto& row : *rows) {
    auto route = route_from_json(json::parse(row.document, nullptr, false));
    if (!route.ok()) {
      spdlog::warn("gateway: ignoring stored route '{}': {}", row.route_key, route.error().message);
      continue;
    }
    routes.push_back(std::move(*route));
  }
  auto next = std::make_shared<Snapshot>();
  auto cors_doc = store_.get_gateway_setting("cors");
  if (!cors_doc.ok()) return std::move(cors_doc).error();
  if (!cors_doc->empty()) {
    auto cors = parse_cors(json::parse(*cors_doc, nullptr, false));
    if (cors.ok()) {
      next->cors = std::move(*cors);
    } else {
      spdlog::warn("gateway: ignoring stored CORS configuration: {}", cors.error().message);
    }
  }
  const auto previous = snapshot();
  auto authorizers = stored_setting("authorizers");
  if (!authorizers.ok()) return std::move(authorizers).error();
  for (const auto& [name, doc] : authorizers->items()) {
    auto config = parse_authorizer(doc);
    if (!config.ok()) {
      spdlog::warn("gateway: ignoring stored authorizer '{}': {}", name, config.error().message);
      continue;
    }
    // Keep the state (cache, keys) of an authorizer whose configuration did not change.
    if (const auto old = previous->authorizers.find(name);
        old != previous->authorizers.end() && old->second->config == *config) {
      next->authorizers.emplace(name, old->second);
      continue;
    }
    auto state = std::make_shared<AuthorizerState>(std::move(*config));
    if (state->config.type == AuthorizerType::kJwt) {
      auto keys = load_key_set(state->config);
      if (keys.ok()) {
        state->keys.set(std::make_shared<const KeySet>(std::move(*keys)));
      } else {
        spdlog::warn("gateway: authorizer '{}': no keys yet ({}); the first token will fetch them", name,
                     keys.error().message);
      }
    }
    next->authorizers.emplace(name, std::move(state));
  }
  for (const auto& r : routes) {
    if (!r.target.throttle) continue;
    const std::string key = r.key.text();
    const auto old = previous->route_buckets.find(key);
    // Keep a bucket whose limits did not change, so an edit elsewhere does not refill it.
    if (old != previous->route_buckets.end() && old->second->bucket.rate() == r.target.throttle->rate &&
        old->second->bucket.burst() == r.target.throttle->burst) {
      next->route_buckets[key] = old->second;
    } else {
      next->route_buckets[key] = std::make_shared<LimitedBucket>(r.target.throttle->rate, r.target.throttle->burst, clock_);
    }
  }
  auto plans = stored_setting("usage_plans");
  if (!plans.ok()) return std::move(plans).error();
  auto keys = stored_setting("api_keys");
  if (!keys.ok()) return std::move(keys).error();
  load_keys(*previous, *next, *plans, *keys);
  next->table = RouteTable(std::move(routes));
  std::lock_guard lock(mu_);
  snapshot_ = std::move(next);
  return base::Ok{};
}

http::Response Gateway::render_error(const base::Error& error, unsigned version) const {
  const GatewayResponse r = error.code == ErrorCode::kRequestTooLarge ? message_response(413, "Request Entity Too Large")
                                                                       : message_response(400, "Bad Request");
  http::Response res{static_cast<http::Status>(r.status), version};
  for (const auto& [k, v] : r.headers) res.insert(k, v);
  res.body() = r.body;
  return res;
}

void Gateway::note_dropped_body(const std::string& function, unsigned status) {
  {
    std::lock_guard lock(mu_);
    if (!warned_bodies_.insert(function).second) return;
  }
  spdlog::warn("gateway: function '{}' answered {} with a body; the body is not sent (HTTP allows none on {}); "
               "said once per function",
               function, status, status);
}

http::asio::awaitable<http::Response> Gateway::handle(http::Request req, http::RequestContext context) {
  const auto started = std::chrono::steady_clock::now();
  IncomingRequest in;
  in.method = std::string(req.method_string());
  const auto [path, query] = http::split_target(req.target());
  in.raw_path = std::string(path);
  in.raw_query = std::string(query);
  for (const auto& field : req) in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  in.body = std::move(req.body());
  in.protocol = req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  auto address = context.peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  in.source_ip = address.to_string();

  AccessRecord record;
  record.request_id = make_request_id();
  record.time_ms = clock_.now_ms();
  record.source_ip = in.source_ip;
  record.method = in.method;
  record.path = in.raw_path;
  record.protocol = in.protocol;
  record.user_agent = header_of(in, "user-agent");
  const std::string origin = header_of(in, "origin");

  const auto snap = snapshot();
  Outcome out;
  try {
    out = co_await serve(std::move(in), snap, record.request_id, record.time_ms);
  } catch (const std::exception& e) {
    spdlog::error("gateway: {} {}: {}", record.method, record.path, e.what());
    out.response = message_response(500, "Internal Server Error");
    out.error = e.what();
  }
  // Preflights carry their own CORS headers; every other answer gets the
  // configured ones: a function URL's own, or the gateway's.
  const CorsConfig* cors = out.url != nullptr ? out.cors : snap->cors ? &*snap->cors : nullptr;
  if (cors != nullptr && out.route_key != "preflight") apply_cors(*cors, origin, out.response.headers);

  http::Response res{static_cast<http::Status>(out.response.status), req.version()};
  for (const auto& [k, v] : out.response.headers) {
    if (hop_by_hop(k) || !valid_header(k, v)) continue;
    res.insert(k, v);
  }
  res.set("apigw-requestid", record.request_id);
  // A HEAD answer has headers only, whatever the function returned; so do
  // 1xx, 204 and 304 answers (HTTP forbids a body on them), as on API Gateway.
  const unsigned status = out.response.status;
  const bool bodyless_status = status < 200 || status == 204 || status == 304;
  if (bodyless_status && !out.response.body.empty()) note_dropped_body(out.function, status);
  if (req.method() != http::Verb::head && !bodyless_status) res.body() = std::move(out.response.body);

  record.status = out.response.status;
  record.route_key = out.route_key;
  record.function = out.function;
  record.integration_latency_ms = out.integration_ms;
  record.error = out.error;
  record.api_key_id = out.api_key_id;
  record.response_length = res.body().size();
  record.latency_ms = ms_since(started);
  metrics_.for_status(record.status).add();
  metrics_.latency.observe(record.latency_ms);
  if (record.status == 429) metrics_.throttled.add();
  access_log_.write(record);
  co_return res;
}

namespace {
// The request as it arrived, for checking its signature.
http::Request as_http_request(const IncomingRequest& in) {
  http::Request req;
  req.method_string(in.method);
  req.target(in.raw_query.empty() ? in.raw_path : in.raw_path + "?" + in.raw_query);
  req.version(11);
  for (const auto& [name, value] : in.headers) req.insert(name, value);
  req.body() = in.body;
  return req;
}
}  // namespace

std::optional<Gateway::Outcome> Gateway::admit_function_url(const UrlTarget& target, IncomingRequest& request,
                                                            EventContext& context, RouteTarget& function,
                                                            std::shared_ptr<const FunctionUrl>& url) const {
  Outcome out;
  out.route_key = "$default";
  out.url = urls_.find(target.url_id);
  if (out.url == nullptr) {
    out.response = message_response(404, "Not Found");
    out.error = "no such function URL";
    return out;
  }
  out.function = out.url->function;
  out.cors = out.url->cors ? &*out.url->cors : nullptr;
  const std::string origin = header_of(request, "origin");
  const std::string preflight_method = header_of(request, "access-control-request-method");
  if (out.cors != nullptr && is_preflight(request.method, origin, preflight_method)) {
    out.response.status = 204;
    out.response.headers = preflight_headers(*out.cors, origin, preflight_method);
    out.route_key = "preflight";
    return out;
  }
  if (out.url->auth == UrlAuthType::kAwsIam) {
    base::Status signature = make_error(ErrorCode::kAccessDenied, "no signature check");
    if (signature_check_) signature = signature_check_(as_http_request(request));
    if (!signature.ok()) {
      out.response = message_response(403, "Forbidden");
      out.error = "AWS_IAM function URL: " + signature.error().message;
      return out;
    }
  }
  request.raw_path = target.path;
  context.api_id = out.url->url_id;
  context.domain_prefix = out.url->url_id;
  context.route_key = "$default";
  function = RouteTarget{out.url->function, out.url->qualifier, PayloadFormat::kV2, std::nullopt};
  url = std::move(out.url);
  return std::nullopt;
}

http::asio::awaitable<Gateway::Outcome> Gateway::serve(IncomingRequest request, std::shared_ptr<const Snapshot> snap,
                                                       std::string request_id, std::int64_t time_ms) {
  Outcome out;
  if (const PathProblem problem = check_path(request.raw_path); problem != PathProblem::kNone) {
    out.response = message_response(400, "Bad Request");
    out.error = problem == PathProblem::kDotSegment ? "dot segment in path" : "malformed path";
    co_return out;
  }
  if (!global_bucket_.try_take()) {
    out.response = message_response(429, "Too Many Requests");
    out.error = "gateway rate limit";
    co_return out;
  }
  const std::string host = host_name(header_of(request, "host"));
  EventContext context;
  context.request_id = std::move(request_id);
  context.time_ms = time_ms;
  context.account_id = registry_.config().account_id;
  context.domain_name = host;
  context.domain_prefix = host.substr(0, host.find('.'));
  context.api_id = config_.api_id;

  if (const auto url_target = function_url_target(detail::ascii_lower(host), request.raw_path)) {
    RouteTarget function;
    std::shared_ptr<const FunctionUrl> url;
    if (auto refused = admit_function_url(*url_target, request, context, function, url)) co_return std::move(*refused);
    Outcome result = co_await integrate(function, request, context);
    result.route_key = "$default";
    result.cors = url->cors ? &*url->cors : nullptr;
    result.url = std::move(url);
    co_return result;
  }

  if (snap->cors &&
      is_preflight(request.method, header_of(request, "origin"), header_of(request, "access-control-request-method"))) {
    out.response.status = 204;
    out.response.headers = preflight_headers(*snap->cors, header_of(request, "origin"),
                                             header_of(request, "access-control-request-method"));
    out.route_key = "preflight";
    co_return out;
  }

  const auto match = snap->table.match(request.method, request.raw_path);
  if (!match) {
    out.response = message_response(404, "Not Found");
    co_return out;
  }
  const Route& route = *match->route;
  out.route_key = route.key.text();
  // The API key first: a request without a usable key uses none of the route's capacity.
  if (route.api_key_required) {
    const KeyEntry* key = nullptr;
    const KeyCheck check = snap->keys.check(header_of(request, "x-api-key"), clock_, &key);
    if (check != KeyCheck::kAllowed) {
      out.response = refuse_key(check, out.error);
      co_return out;
    }
    context.api_key = key->key.value;
    context.api_key_id = key->key.id;
    out.api_key_id = key->key.id;  // also on the later refusals (route throttle, authorizer, validation)
  }
  if (const auto bucket = snap->route_buckets.find(out.route_key); bucket != snap->route_buckets.end()) {
    if (!bucket->second->try_take()) {
      out.response = message_response(429, "Too Many Requests");
      out.error = "route rate limit";
      co_return out;
    }
  }
  context.route_key = out.route_key;
  context.resource_path = route.key.path();
  context.has_path_parameters = route.key.has_variables();
  context.path_parameters = match->path_parameters;
  if (!route.authorizer.empty()) {
    const auto state = snap->authorizers.find(route.authorizer);
    if (state == snap->authorizers.end()) {
      metrics_.authorizer_errors.add();
      out.response = message_response(500, "Internal Server Error");
      out.error = fmt::format("authorizer '{}' does not exist", route.authorizer);
      co_return out;
    }
    AuthorizerVerdict verdict = co_await authorize(route, request, context, state->second);
    if (auto* refused = std::get_if<AuthorizerRefusal>(&verdict)) {
      out.response = std::move(refused->response);
      out.error = fmt::format("authorizer {}: {}", route.authorizer, refused->reason);
      co_return out;
    }
    context.authorizer = std::move(std::get<AuthorizerGrant>(verdict));
  }
  // After authorization, as API Gateway orders it: strangers learn nothing about the schema.
  if (route.validation) {
    if (auto problem = validate_request(*route.validation, request, match->path_parameters)) {
      metrics_.validation_failures.add();
      out.response = message_response(400, *problem);
      out.error = std::move(*problem);
      co_return out;
    }
  }
  Outcome result = co_await integrate(route.target, request, context);
  result.route_key = out.route_key;
  result.api_key_id = context.api_key_id;
  co_return result;
}

http::asio::awaitable<Gateway::Outcome> Gateway::integrate(const RouteTarget& target, const IncomingRequest& request,
                                                           const EventContext& context) {
  Outcome out;
  out.function = target.function;
  IncomingRequest forwarded = request;
  add_forwarding_headers(forwarded, listen_port_.load(), config_.tls ? "https" : "http", context.time_ms);
  const json event =
      target.format == PayloadFormat::kV1 ? build_event_v1(forwarded, context) : build_event_v2(forwarded, context);
  std::string payload = event.dump(-1, ' ', false, json::error_handler_t::replace);
  if (payload.size() > kMaxEventBytes) {
    out.response = message_response(413, "Request Entity Too Large");
    out.error = fmt::format("event of {} bytes is over Lambda's {} byte limit", payload.size(), kMaxEventBytes);
    co_return out;
  }
  const auto started = std::chrono::steady_clock::now();
  auto result = co_await invoke_function(target, std::move(payload), config_.integration_timeout);
  out.integration_ms = ms_since(started);
  metrics_.integration_latency.observe(out.integration_ms);
  if (!result) {
    metrics_.integration_errors.add();
    out.response = message_response(503, "Service Unavailable");
    out.error = fmt::format("integration timeout after {} ms", config_.integration_timeout.count());
    co_return out;
  }
  switch (result->status) {
    case invoker::InvokeStatus::kSuccess: {
      auto mapped = target.format == PayloadFormat::kV1 ? map_response_v1(result->payload)
                                                        : map_response_v2(result->payload);
      if (mapped.ok()) {
        out.response = std::move(*mapped);
      } else {
        metrics_.integration_errors.add();
        out.response = message_response(500, "Internal Server Error");
        out.error = mapped.error().message;
      }
      break;
    }
    case invoker::InvokeStatus::kFunctionError:
      metrics_.integration_errors.add();
      out.response = message_response(500, "Internal Server Error");
      out.error = "function error";
      break;
    case invoker::InvokeStatus::kThrottled:
      out.response = message_response(429, "Too Many Requests");
      out.error = "function throttled: " + result->throttle_reason;
      break;
    case invoker::InvokeStatus::kFailed:
      metrics_.integration_errors.add();
      out.response = result->error.code == ErrorCode::kRequestTooLarge
                         ? message_response(413, "Request Entity Too Large")
                         : message_response(500, "Internal Server Error");
      out.error = result->error.message;
      break;
  }
  co_return out;
}

http::asio::awaitable<std::optional<invoker::InvokeResult>> Gateway::invoke_function(
    const RouteTarget& target, std::string payload, std::chrono::milliseconds timeout) {
  if (invoker_ == nullptr) {
    invoker::InvokeResult none;
    none.status = invoker::InvokeStatus::kFailed;
    none.error = make_error(ErrorCode::kService, "this nimbus runs without an execution core");
    co_return none;
  }
  invoker::InvokeRequest request;
  request.function = target.function;
  request.qualifier = target.qualifier;
  request.payload = std::move(payload);
  request.invoked_arn = registry_.function_arn(target.function, target.qualifier);
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  request.abandoned = abandoned;

  auto executor = co_await asio::this_coro::executor;
  auto pending = std::make_shared<PendingInvoke>(executor);
  pending->timer.expires_after(timeout);
  asio::co_spawn(executor, run_invoke(invoker_, std::move(request), pending), [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("gateway: invocation failed: {}", ex.what());
    }
  });
  if (!pending->result) {
    auto [ec] = co_await pending->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;  // cancelled when the result arrives, else the timeout fired
  }
  if (!pending->result) {
    // Timed out: if the invocation still waits in line for an instance, it leaves now.
    abandoned->store(true);
    invoker_->abandon_waiting();
  }
  co_return std::move(pending->result);
}

// --- control API ------------------------------------------------------------

base::Result<ControlReply> Gateway::control(http::Verb method, std::string_view path, const http::Params& query,
                                            const std::string& body) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/nimbus/v1/routes") {
    if (method == http::Verb::get) return list_routes();
    if (method == http::Verb::post || method == http::Verb::put) return put_route(body);
    if (method == http::Verb::delete_) return delete_route(query);
  } else if (path == "/nimbus/v1/gateway/authorizers") {
    if (method == http::Verb::get || method == http::Verb::post || method == http::Verb::put ||
        method == http::Verb::delete_) {
      return authorizer_control(method, query, body);
    }
  } else if (path == "/nimbus/v1/gateway/apikeys") {
    if (method == http::Verb::get || method == http::Verb::post || method == http::Verb::put ||
        method == http::Verb::delete_) {
      return api_key_control(method, query, body);
    }
  } else if (path == "/nimbus/v1/gateway/usage-plans") {
    if (method == http::Verb::get || method == http::Verb::post || method == http::Verb::put ||
        method == http::Verb::delete_) {
      return usage_plan_control(method, query, body);
    }
  } else if (path == "/nimbus/v1/gateway/usage-plans/keys") {
    if (method == http::Verb::post || method == http::Verb::put || method == http::Verb::delete_) {
      return plan_key_control(method, query, body);
    }
  } else if (path == "/nimbus/v1/gateway/cors") {
    if (method == http::Verb::get || method == http::Verb::put || method == http::Verb::delete_) {
      return cors_control(method, body);
    }
  }
  return make_error(ErrorCode::kNotImplemented,
                    fmt::format("{} {} is not an operation nimbus offers", std::string(http::beast::http::to_string(method)),
                                std::string(path)));
}

base::Result<ControlReply> Gateway::list_routes() {
  json routes = json::array();
  for (const auto& r : snapshot()->table.routes()) routes.push_back(route_to_json(r));
  return ControlReply{200, json{{"Routes", std::move(routes)}}};
}

base::Result<ControlReply> Gateway::put_route(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return make_error(ErrorCode::kInvalidRequestContent, "The route body is not valid JSON");
  auto route = route_from_json(parsed);
  if (!route.ok()) return std::move(route).error();
  if (auto fn = registry_.get_qualified(route->target.function, route->target.qualifier); !fn.ok()) {
    return make_error(ErrorCode::kResourceNotFound,
                      "Function not found: " + registry_.function_arn(route->target.function, route->target.qualifier));
  }
  std::lock_guard lock(control_mu_);
  const std::string key = route->key.text();
  const auto snap = snapshot();
  if (!route->authorizer.empty() && !snap->authorizers.contains(route->authorizer)) {
    return make_error(ErrorCode::kResourceNotFound, fmt::format("Authorizer not found: {}", route->authorizer));
  }
  if (snap->table.find(key) == nullptr && snap->table.routes().size() >= kMaxRoutes) {
    return make_error(ErrorCode::kValidation, fmt::format("A gateway has at most {} routes", kMaxRoutes));
  }
  const json doc = route_to_json(*route);
  NIMBUS_TRY(store_.put_route(store::RouteRow{key, doc.dump(), clock_.now_ms()}));
  NIMBUS_TRY(reload());
  return ControlReply{201, doc};
}

base::Result<ControlReply> Gateway::delete_route(const http::Params& query) {
  const std::string* text = http::find_param(query, "RouteKey");
  if (text == nullptr || text->empty()) return make_error(ErrorCode::kValidation, "RouteKey is required");
  auto key = parse_route_key(*text);
  if (!key.ok()) return std::move(key).error();
  std::lock_guard lock(control_mu_);
  NIMBUS_TRY(store_.delete_route(key->text()));
  NIMBUS_TRY(reload());
  return ControlReply{204, nullptr};
}

base::Result<ControlReply> Gateway::cors_control(http::Verb method, const std::string& body) {
  if (method == http::Verb::get) {
    const auto snap = snapshot();
    return ControlReply{200, json{{"CorsConfiguration", snap->cors ? to_json(*snap->cors) : json(nullptr)}}};
  }
  std::lock_guard lock(control_mu_);
  if (method == http::Verb::delete_) {
    NIMBUS_TRY(store_.put_gateway_setting("cors", ""));
    NIMBUS_TRY(reload());
    return ControlReply{204, nullptr};
  }
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) {
    return make_error(ErrorCode::kInvalidRequestContent, "The CORS configuration is not valid JSON");
  }
  auto cors = parse_cors(parsed);
  if (!cors.ok()) return std::move(cors).error();
  const json doc = to_json(*cors);
  NIMBUS_TRY(store_.put_gateway_setting("cors", doc.dump()));
  NIMBUS_TRY(reload());
  return ControlReply{200, json{{"CorsConfiguration", doc}}};
}

}  // namespace nimbus::gateway
