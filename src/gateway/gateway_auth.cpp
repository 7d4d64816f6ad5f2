// The Gateway's authorizers: deciding a request (Lambda REQUEST and JWT
// authorizers, events.md §1.6/§1.7) and the control paths that manage them.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/gateway.h"

namespace nimbus::gateway {

namespace asio = boost::asio;
using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxAuthorizers = 10;
// API Gateway's limit for a Lambda authorizer's reply.
constexpr std::chrono::milliseconds kAuthorizerTimeout{10000};
// A token with an unknown kid refreshes the JWKS at most this often.
constexpr std::int64_t kJwksRefreshIntervalMs = 10000;

// Runs on the blocking pool: fetches a JWT authorizer's keys.
asio::awaitable<void> refresh_keys(std::shared_ptr<void> keep_alive, JwksKeys* keys, AuthorizerConfig config) {
  auto loaded = load_key_set(config);
  if (loaded.ok()) {
    keys->set(std::make_shared<const KeySet>(std::move(*loaded)));
  } else {
    spdlog::warn("gateway: authorizer '{}': cannot refresh keys: {}", config.name, loaded.error().message);
  }
  (void)keep_alive;
  co_return;
}

}  // namespace

http::asio::awaitable<Gateway::AuthorizerVerdict> Gateway::authorize(const Route& route,
                                                                     const IncomingRequest& request,
                                                                     const EventContext& context,
                                                                     std::shared_ptr<AuthorizerState> state) {
  auto identity = identity_values(state->config, request, context);
  if (!identity) {
    metrics_.authorizer_denied.add();
    co_return AuthorizerRefusal{message_response(401, "Unauthorized"), "identity source missing or empty"};
  }
  if (state->config.type == AuthorizerType::kJwt) {
    co_return co_await authorize_jwt(route, std::move(identity->front()), std::move(state));
  }
  co_return co_await authorize_lambda(request, context, std::move(*identity), std::move(state));
}

http::asio::awaitable<Gateway::AuthorizerVerdict> Gateway::authorize_jwt(const Route& route, std::string token,
                                                                         std::shared_ptr<AuthorizerState> state) {
  auto keys = state->keys.keys();
  if ((!keys || has_unknown_kid(token, *keys)) &&
      state->keys.claim_refresh(clock_.now_ms(), kJwksRefreshIntervalMs)) {
    co_await asio::co_spawn(blocking_, refresh_keys(state, &state->keys, state->config), asio::use_awaitable);
    keys = state->keys.keys();
  }
  if (!keys) {
    metrics_.authorizer_errors.add();
    co_return AuthorizerRefusal{message_response(401, "Unauthorized"), "no signing keys could be loaded"};
  }
  auto verified = verify_jwt(token, *keys, state->config.jwt, clock_.now_ms() / 1000);
  if (const auto* error = std::get_if<JwtError>(&verified)) {
    metrics_.authorizer_denied.add();
    co_return AuthorizerRefusal{message_response(401, "Unauthorized"), error->message};
  }
  auto& jwt = std::get<VerifiedJwt>(verified);
  if (!route.authorization_scopes.empty() &&
      std::none_of(route.authorization_scopes.begin(), route.authorization_scopes.end(), [&](const std::string& s) {
        return std::find(jwt.scopes.begin(), jwt.scopes.end(), s) != jwt.scopes.end();
      })) {
    metrics_.authorizer_denied.add();
    co_return AuthorizerRefusal{message_response(403, "Forbidden"), "the token has none of the route's scopes"};
  }
  metrics_.authorizer_allowed.add();
  AuthorizerGrant grant;
  grant.kind = AuthorizerGrant::Kind::kJwt;
  grant.claims = std::move(jwt.claims);
  grant.scopes = std::move(jwt.scopes);
  co_return grant;
}

http::asio::awaitable<Gateway::AuthorizerVerdict> Gateway::authorize_lambda(const IncomingRequest& request,
                                                                            const EventContext& context,
                                                                            std::vector<std::string> identity,
                                                                            std::shared_ptr<AuthorizerState> state) {
  const AuthorizerConfig& config = state->config;
  const std::string arn = route_arn(registry_.config().region, context, request.method, request.raw_path);
  std::string cache_key;
  for (const auto& v : identity) cache_key.append(v).push_back('\n');
  const auto refuse_500 = [this](std::string reason) {
    metrics_.authorizer_errors.add();
    return AuthorizerRefusal{message_response(500, "Internal Server Error"), std::move(reason)};
  };

  std::optional<json> reply;
  std::int64_t latency_ms = 0;
  if (config.ttl_seconds > 0) {
    reply = state->cache.get(cache_key, clock_.now_ms());
    if (reply) metrics_.authorizer_cache_hits.add();
  }
  const bool fresh = !reply;
  if (fresh) {
    const json event = build_authorizer_event(config, request, context, identity, arn);
    const RouteTarget target{config.function, config.qualifier, config.payload_format, std::nullopt};
    const auto started = std::chrono::steady_clock::now();
    auto result = co_await invoke_function(target, event.dump(-1, ' ', false, json::error_handler_t::replace),
                                           kAuthorizerTimeout);
    latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                     .count();
    if (!result) co_return refuse_500("the authorizer timed out");
    if (result->status != invoker::InvokeStatus::kSuccess) {
      co_return refuse_500(result->status == invoker::InvokeStatus::kFunctionError ? "the authorizer failed"
                                                                                   : "the authorizer could not run");
    }
    reply = json::parse(result->payload, nullptr, false);
  }
  auto decision = evaluate_reply(config, *reply, arn);
  if (!decision.ok()) co_return refuse_500(decision.error().message);
  // Only usable replies are cached; a denial is cached like an allow, as API Gateway does.
  if (fresh && config.ttl_seconds > 0) {
    state->cache.put(cache_key, std::move(*reply), clock_.now_ms() + config.ttl_seconds * 1000LL);
  }
  if (!decision->allowed) {
    metrics_.authorizer_denied.add();
    co_return AuthorizerRefusal{message_response(403, "Forbidden"), "the authorizer denied the request"};
  }
  metrics_.authorizer_allowed.add();
  AuthorizerGrant grant;
  grant.kind = AuthorizerGrant::Kind::kLambda;
  grant.context = std::move(decision->context);
  grant.principal_id = std::move(decision->principal_id);
  grant.latency_ms = latency_ms;
  co_return grant;
}

// --- control API ------------------------------------------------------------

base::Result<ControlReply> Gateway::authorizer_control(http::Verb method, const http::Params& query,
                                                       const std::string& body) {
  if (method == http::Verb::get) {
    json list = json::array();
    for (const auto& [name, state] : snapshot()->authorizers) list.push_back(to_json(state->config));
    return ControlReply{200, json{{"Authorizers", std::move(list)}}};
  }
  std::lock_guard lock(control_mu_);
  auto stored = stored_setting("authorizers");
  if (!stored.ok()) return std::move(stored).error();
  if (method == http::Verb::delete_) {
    const std::string* name = http::find_param(query, "Name");
    if (name == nullptr || name->empty()) return make_error(ErrorCode::kValidation, "Name is required");
    if (!stored->contains(*name)) {
      return make_error(ErrorCode::kResourceNotFound, fmt::format("Authorizer not found: {}", *name));
    }
    for (const auto& route : snapshot()->table.routes()) {
      if (route.authorizer == *name) {
        return make_error(ErrorCode::kResourceConflict,
                          fmt::format("Authorizer {} is used by route '{}'; remove it from the route first", *name,
                                      route.key.text()));
      }
    }
    stored->erase(*name);
    NIMBUS_TRY(store_.put_gateway_setting("authorizers", stored->empty() ? std::string() : stored->dump()));
    NIMBUS_TRY(reload());
    return ControlReply{204, nullptr};
  }
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return make_error(ErrorCode::kInvalidRequestContent, "The authorizer is not valid JSON");
  auto config = parse_authorizer(parsed);
  if (!config.ok()) return std::move(config).error();
  if (!stored->contains(config->name) && stored->size() >= kMaxAuthorizers) {
    return make_error(ErrorCode::kValidation, fmt::format("A gateway has at most {} authorizers", kMaxAuthorizers));
  }
  if (config->type == AuthorizerType::kRequest) {
    if (auto fn = registry_.get_qualified(config->function, config->qualifier); !fn.ok()) {
      return make_error(ErrorCode::kResourceNotFound,
                        "Function not found: " + registry_.function_arn(config->function, config->qualifier));
    }
  } else if (auto keys = load_key_set(*config); !keys.ok()) {
    // Refuse now rather than deny every request later.
    return make_error(ErrorCode::kValidation, "JwksUri: " + keys.error().message);
  }
  const json doc = to_json(*config);
  (*stored)[config->name] = doc;
  NIMBUS_TRY(store_.put_gateway_setting("authorizers", stored->dump()));
  NIMBUS_TRY(reload());
  return ControlReply{201, doc};
}

}  // namespace nimbus::gateway
