#include "api/lambda_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/codec.h"
#include "api/detail/responses.h"
#include "api/sts_api.h"
#include "base/crypto.h"
#include "base/json.h"
#include "registry/validation.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;
namespace bhttp = boost::beast::http;

using detail::empty_response;
using detail::json_response;
using detail::max_items;
using detail::query_value;

LambdaApi::LambdaApi(ApiParts parts, const base::Clock& clock, ApiConfig config)
    : registry_(parts.registry),
      invoker_(parts.invoker),
      metrics_(parts.metrics),
      logs_(parts.logs),
      async_queue_(parts.async_queue),
      event_configs_(parts.event_configs),
      event_source_mappings_(parts.event_source_mappings),
      clock_(clock),
      config_(std::move(config)) {
  using V = http::Verb;
  auto bind = [](auto method) { return Route(method); };
  router_.add(V::post, "/2015-03-31/functions", bind(&LambdaApi::create_function));
  router_.add(V::get, "/2015-03-31/functions", bind(&LambdaApi::list_functions));
  router_.add(V::get, "/2015-03-31/functions/{name}", bind(&LambdaApi::get_function));
  router_.add(V::delete_, "/2015-03-31/functions/{name}", bind(&LambdaApi::delete_function));
  router_.add(V::get, "/2015-03-31/functions/{name}/configuration", bind(&LambdaApi::get_configuration));
  router_.add(V::put, "/2015-03-31/functions/{name}/configuration", bind(&LambdaApi::update_configuration));
  router_.add(V::put, "/2015-03-31/functions/{name}/code", bind(&LambdaApi::update_code));
  router_.add(V::post, "/2017-03-31/tags/{arn}", bind(&LambdaApi::tag_resource));
  router_.add(V::delete_, "/2017-03-31/tags/{arn}", bind(&LambdaApi::untag_resource));
  router_.add(V::get, "/2017-03-31/tags/{arn}", bind(&LambdaApi::list_tags));
  router_.add(V::get, "/2016-08-19/account-settings", bind(&LambdaApi::account_settings));
  router_.add(V::get, "/nimbus/v1/code/{name}", bind(&LambdaApi::download_code));
  router_.add(V::get, "/nimbus/v1/health", bind(&LambdaApi::health));
  router_.add(V::post, "/2015-03-31/functions/{name}/invocations", bind(&LambdaApi::invoke));
  router_.add(V::put, "/2017-10-31/functions/{name}/concurrency", bind(&LambdaApi::put_concurrency));
  router_.add(V::delete_, "/2017-10-31/functions/{name}/concurrency", bind(&LambdaApi::delete_concurrency));
  router_.add(V::get, "/2019-09-30/functions/{name}/concurrency", bind(&LambdaApi::get_concurrency));
  router_.add(V::post, "/2015-03-31/functions/{name}/versions", bind(&LambdaApi::publish_version));
  router_.add(V::get, "/2015-03-31/functions/{name}/versions", bind(&LambdaApi::list_versions));
  router_.add(V::post, "/2015-03-31/functions/{name}/aliases", bind(&LambdaApi::create_alias));
  router_.add(V::get, "/2015-03-31/functions/{name}/aliases", bind(&LambdaApi::list_aliases));
  router_.add(V::get, "/2015-03-31/functions/{name}/aliases/{alias}", bind(&LambdaApi::get_alias));
  router_.add(V::put, "/2015-03-31/functions/{name}/aliases/{alias}", bind(&LambdaApi::update_alias));
  router_.add(V::delete_, "/2015-03-31/functions/{name}/aliases/{alias}", bind(&LambdaApi::delete_alias));
  router_.add(V::put, "/2019-09-30/functions/{name}/provisioned-concurrency", bind(&LambdaApi::put_provisioned));
  router_.add(V::get, "/2019-09-30/functions/{name}/provisioned-concurrency", bind(&LambdaApi::get_provisioned));
  router_.add(V::delete_, "/2019-09-30/functions/{name}/provisioned-concurrency", bind(&LambdaApi::delete_provisioned));
  router_.add(V::put, "/2019-09-25/functions/{name}/event-invoke-config", bind(&LambdaApi::put_event_invoke_config));
  router_.add(V::post, "/2019-09-25/functions/{name}/event-invoke-config", bind(&LambdaApi::update_event_invoke_config));
  router_.add(V::get, "/2019-09-25/functions/{name}/event-invoke-config", bind(&LambdaApi::get_event_invoke_config));
  router_.add(V::delete_, "/2019-09-25/functions/{name}/event-invoke-config", bind(&LambdaApi::delete_event_invoke_config));
  router_.add(V::get, "/2019-09-25/functions/{name}/event-invoke-config/list", bind(&LambdaApi::list_event_invoke_configs));
  router_.add(V::post, "/2015-03-31/event-source-mappings", bind(&LambdaApi::create_event_source_mapping));
  router_.add(V::get, "/2015-03-31/event-source-mappings", bind(&LambdaApi::list_event_source_mappings));
  router_.add(V::get, "/2015-03-31/event-source-mappings/{uuid}", bind(&LambdaApi::get_event_source_mapping));
  router_.add(V::put, "/2015-03-31/event-source-mappings/{uuid}", bind(&LambdaApi::update_event_source_mapping));
  router_.add(V::delete_, "/2015-03-31/event-source-mappings/{uuid}", bind(&LambdaApi::delete_event_source_mapping));
  router_.add(V::get, "/metrics", bind(&LambdaApi::metrics));
  router_.add(V::get, "/nimbus/v1/functions/{name}/logs", bind(&LambdaApi::function_logs));
}

void LambdaApi::add_extension(std::string prefix, Extension extension) {
  extensions_.emplace_back(std::move(prefix), std::move(extension));
}

void LambdaApi::add_service(ServiceHandler service) { services_.push_back(std::move(service)); }

http::Response LambdaApi::render_error(const base::Error& error, unsigned version) const {
  const base::ErrorShape& shape = base::shape_of(error.code);
  json body = {{"Type", shape.fault}, {std::string(shape.message_key), error.message}};
  http::Response res = json_response(static_cast<http::Status>(shape.http_status), body, version);
  res.set("x-amzn-ErrorType", shape.type);
  res.set("x-amzn-RequestId", base::uuid4());
  return res;
}

base::Status LambdaApi::authenticate(const http::Request& request, std::string_view service) const {
  if (config_.auth == AuthMode::kNone) return base::Ok{};
  const auto lookup = [this](std::string_view akid) -> std::optional<std::string> {
    if (base::constant_time_equal(akid, config_.credentials.access_key_id)) {
      return config_.credentials.secret_access_key;
    }
    return std::nullopt;
  };
  auto identity = verify_sigv4(request, lookup, service, clock_.now_ms(), config_.max_clock_skew_ms);
  if (!identity.ok()) return std::move(identity).error();
  return base::Ok{};
}

http::asio::awaitable<http::Response> LambdaApi::handle(http::Request request) {
  http::Response res = co_await dispatch(std::move(request));
  if (res[http::Field::content_type].empty() && !res.body().empty()) {
    res.set(http::Field::content_type, "application/json");
  }
  if (res["x-amzn-RequestId"].empty()) res.set("x-amzn-RequestId", base::uuid4());
  co_return res;
}

namespace {
// The service a request's SigV4 credential scope names ("" when it carries
// no Authorization header, or one that does not parse).
std::string scope_service(const http::Request& request) {
  const auto header = request[http::Field::authorization];
  if (header.empty()) return {};
  auto parsed = detail::parse_authorization(std::string_view(header.data(), header.size()));
  return parsed.ok() ? parsed->service : std::string();
}
}  // namespace

http::asio::awaitable<http::Response> LambdaApi::dispatch(http::Request request) {
  // A signed request names its service in its credential scope, and that
  // decides where it goes; an unsigned one is recognised by its shape.
  const std::string scoped = scope_service(request);
  for (const auto& service : services_) {
    if (scoped.empty() ? !service.claims(request) : scoped != service.signing_name) continue;
    if (auto auth = authenticate(request, service.signing_name); !auth.ok()) {
      co_return service.render_error(auth.error(), request);
    }
    co_return co_await service.handle(std::move(request));
  }
  if (!scoped.empty() && scoped != "lambda") {
    std::string offered = "lambda";
    for (const auto& service : services_) offered += ", " + service.signing_name;
    co_return unknown_service_response(request, scoped, offered);
  }
  const auto [path, raw_query] = http::split_target(request.target());
  const auto found = router_.find(request.method(), path);
  if (const auto* miss = std::get_if<http::RouteMiss>(&found)) {
    const bool no_method = *miss == http::RouteMiss::kNoMethod;
    // Unknown paths still need a valid signature, so nothing leaks to strangers.
    if (auto auth = authenticate(request); !auth.ok()) co_return render_error(auth.error(), request.version());
    for (const auto& [prefix, extension] : extensions_) {
      if (!path.starts_with(prefix)) continue;
      base::Result<ExtensionReply> reply = make_error(ErrorCode::kService, "internal error");
      try {
        reply = extension(request.method(), path, http::parse_query(raw_query), request.body());
      } catch (const std::exception& e) {
        spdlog::error("api: {} {}: {}", std::string(request.method_string()), std::string(path), e.what());
      }
      if (!reply.ok()) co_return render_error(reply.error(), request.version());
      if (reply->body.is_null()) co_return empty_response(static_cast<http::Status>(reply->status), request.version());
      co_return json_response(static_cast<http::Status>(reply->status), reply->body, request.version());
    }
    co_return render_error(
        make_error(ErrorCode::kNotImplemented,
                   fmt::format("{} {} is not an operation nimbus offers",
                               std::string(request.method_string()), std::string(path)) +
                       (no_method ? " (the path exists with another method)" : "")),
        request.version());
  }
  const auto& match = std::get<http::Router<Route>::Match>(found);
  // The code download link carries its own token; health is public.
  const bool open = path.starts_with("/nimbus/v1/code/") || path == "/nimbus/v1/health" || path == "/metrics";
  if (!open) {
    if (auto auth = authenticate(request); !auth.ok()) co_return render_error(auth.error(), request.version());
  }
  const http::Params query = http::parse_query(raw_query);
  const std::string where = std::string(request.method_string()) + " " + std::string(path);
  try {
    if (const auto* sync = std::get_if<SyncRoute>(match.handler)) {
      co_return (this->*(*sync))(request, match.params, query);
    }
    co_return co_await (this->*std::get<AsyncRoute>(*match.handler))(request, match.params, query);
  } catch (const std::exception& e) {
    spdlog::error("api: {}: {}", where, e.what());
  }
  co_return render_error(make_error(ErrorCode::kService, "internal error"), request.version());
}

base::Result<registry::FunctionRef> LambdaApi::qualified_name(std::string_view label,
                                                              const http::Params& query) const {
  auto ref = registry_.resolve(label);
  if (!ref.ok()) return std::move(ref).error();
  const std::string qualifier_param = query_value(query, "Qualifier");
  if (!ref->qualifier.empty() && !qualifier_param.empty() && ref->qualifier != qualifier_param) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "The derived qualifier from the function name does not match the specified qualifier.");
  }
  if (ref->qualifier.empty()) ref->qualifier = qualifier_param;
  return ref;
}

base::Result<std::string> LambdaApi::unqualified_name(std::string_view label, const http::Params& query) const {
  auto ref = qualified_name(label, query);
  if (!ref.ok()) return std::move(ref).error();
  if (!ref->qualifier.empty() && ref->qualifier != registry::kLatest) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Published versions and aliases cannot be changed; call this operation on the "
                                  "function or $LATEST, not on {}",
                                  registry_.function_arn(ref->name, ref->qualifier)));
  }
  return std::move(ref->name);
}

std::string LambdaApi::code_token(std::string_view name, std::string_view sha_hex) const {
  const auto mac = base::hmac_sha256(config_.credentials.secret_access_key,
                                     fmt::format("code:{}:{}", name, sha_hex));
  return base::to_hex(mac).substr(0, 32);
}

http::Response LambdaApi::create_function(const http::Request& req, const http::Params&, const http::Params&) {
  NIMBUS_API_TRY(parse_body(req.body()), body);
  NIMBUS_API_TRY(parse_create_function(*body), spec);
  if (spec->dead_letter_target) {
    if (auto s = events::check_dead_letter_target(*spec->dead_letter_target); !s.ok()) {
      return render_error(s.error(), req.version());
    }
  }
  NIMBUS_API_TRY(registry_.create(std::move(*spec)), created);
  if (body->value("Publish", false)) return render_published(req, created->name, std::nullopt);
  return json_response(http::Status::created,
                       render_configuration(*created, registry_.function_arn(created->name), ConfigView::kCreated),
                       req.version());
}

http::Response LambdaApi::get_function(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(registry_.get_qualified(ref->name, ref->qualifier), config);
  const std::string* name = &ref->name;
  const std::string& qualifier = ref->qualifier;
  const std::string host = std::string(req[http::Field::host].empty() ? "127.0.0.1" : req[http::Field::host]);
  json out = {
      {"Configuration", render_configuration(*config, registry_.function_arn(*name, qualifier), ConfigView::kFull)},
      {"Code",
       {{"RepositoryType", "S3"},
        {"Location", fmt::format("http://{}/nimbus/v1/code/{}?sha256={}&token={}", host, *name,
                                 config->code_sha256_hex, code_token(*name, config->code_sha256_hex))}}},
  };
  if (!config->tags.empty()) out["Tags"] = config->tags;
  if (config->reserved_concurrency) {
    out["Concurrency"] = {{"ReservedConcurrentExecutions", *config->reserved_concurrency}};
  }
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::get_configuration(const http::Request& req, const http::Params& path,
                                            const http::Params& query) {
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(registry_.get_qualified(ref->name, ref->qualifier), config);
  return json_response(http::Status::ok,
                       render_configuration(*config, registry_.function_arn(ref->name, ref->qualifier),
                                            ConfigView::kFull),
                       req.version());
}

http::Response LambdaApi::list_functions(const http::Request& req, const http::Params&, const http::Params& query) {
  NIMBUS_API_TRY(max_items(query), limit);
  const std::string version = query_value(query, "FunctionVersion");
  if (!version.empty() && version != "ALL") {
    return render_error(make_error(ErrorCode::kValidation,
                                   fmt::format("1 validation error detected: Value '{}' at 'functionVersion' failed "
                                               "to satisfy constraint: Member must satisfy enum value set: [ALL]",
                                               version)),
                        req.version());
  }
  NIMBUS_API_TRY(registry_.list(query_value(query, "Marker"), *limit), page);
  json functions = json::array();
  for (const auto& f : page->functions) {
    functions.push_back(render_configuration(
        f, registry_.function_arn(f.name, version == "ALL" ? "$LATEST" : ""), ConfigView::kListRow));
    if (version != "ALL") continue;
    // FunctionVersion=ALL: every published version follows its $LATEST.
    std::string marker = "$LATEST";
    for (;;) {
      auto versions = registry_.list_versions(f.name, marker, 50);
      if (!versions.ok()) break;
      for (const auto& v : versions->functions) {
        functions.push_back(render_configuration(v, registry_.function_arn(v.name, v.version), ConfigView::kListRow));
      }
      if (versions->next_marker.empty()) break;
      marker = versions->next_marker;
    }
  }
  json out = {{"Functions", std::move(functions)}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::update_code(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  if (auto s = reject_unknown(*body,
                              {"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri", "Publish",
                               "DryRun", "RevisionId", "Architectures"},
                              "UpdateFunctionCode");
      !s.ok()) {
    return render_error(s.error(), req.version());
  }
  const auto zip_it = body->find("ZipFile");
  if (body->contains("S3Bucket") || body->contains("ImageUri")) {
    return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                   "Only ZipFile code is supported by nimbus (no S3 or image sources)"),
                        req.version());
  }
  if (zip_it == body->end() || !zip_it->is_string()) {
    return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                   "Please provide a source for function code: ZipFile"),
                        req.version());
  }
  auto zip = base::base64_decode(zip_it->get_ref<const std::string&>());
  if (!zip) {
    return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                   "ZipFile is not valid base64 (standard alphabet with padding)"),
                        req.version());
  }
  std::optional<std::string> revision;
  if (const auto r = body->find("RevisionId"); r != body->end() && r->is_string()) revision = r->get<std::string>();
  if (body->value("DryRun", false)) {
    NIMBUS_API_TRY(registry_.get(*name), current);
    return json_response(http::Status::ok,
                         render_configuration(*current, registry_.function_arn(*name), ConfigView::kFull),
                         req.version());
  }
  NIMBUS_API_TRY(registry_.update_code(*name, std::move(*zip), revision), updated);
  if (invoker_) invoker_->retire(*name, std::string(registry::kLatest));
  if (body->value("Publish", false)) return render_published(req, *name, std::nullopt);
  return json_response(http::Status::ok,
                       render_configuration(*updated, registry_.function_arn(*name), ConfigView::kFull),
                       req.version());
}

http::Response LambdaApi::update_configuration(const http::Request& req, const http::Params& path,
                                               const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  NIMBUS_API_TRY(parse_update_configuration(*body), patch);
  if (patch->dead_letter_target) {
    if (auto s = events::check_dead_letter_target(*patch->dead_letter_target); !s.ok()) {
      return render_error(s.error(), req.version());
    }
  }
  NIMBUS_API_TRY(registry_.update_configuration(*name, *patch), updated);
  if (invoker_) invoker_->retire(*name, std::string(registry::kLatest));
  return json_response(http::Status::ok,
                       render_configuration(*updated, registry_.function_arn(*name), ConfigView::kFull),
                       req.version());
}

http::Response LambdaApi::delete_function(const http::Request& req, const http::Params& path, const http::Params& query) {
  const std::string qualifier = query_value(query, "Qualifier");
  if (qualifier == "$LATEST") {
    return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                   "$LATEST version cannot be deleted without deleting the function."),
                        req.version());
  }
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  if (!ref->qualifier.empty()) {
    // DeleteFunction with a version number deletes that version only.
    if (auto s = registry_.delete_version(ref->name, ref->qualifier); !s.ok()) {
      return render_error(s.error(), req.version());
    }
    if (invoker_) invoker_->retire(ref->name, ref->qualifier);
    return empty_response(http::Status::no_content, req.version());
  }
  const std::string* name = &ref->name;
  if (auto s = registry_.remove(*name); !s.ok()) return render_error(s.error(), req.version());
  if (invoker_) invoker_->retire(*name);
  if (logs_) logs_->remove(*name);
  if (event_configs_) event_configs_->forget_function(*name);
  for (const auto& hook : removal_hooks_) hook(*name, std::nullopt);
  return empty_response(http::Status::no_content, req.version());
}

namespace {
// Tags apply to unqualified function ARNs only.
base::Result<std::string> tag_target(const registry::Registry& registry, std::string_view arn) {
  if (!arn.starts_with("arn:")) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'resource' failed to satisfy "
                                  "constraint: Member must satisfy regular expression pattern: "
                                  "arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:"
                                  "\\d{{12}}:function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
                                  arn));
  }
  auto ref = registry.resolve(arn);
  if (!ref.ok()) return std::move(ref).error();
  if (!ref->qualifier.empty()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Tags on function aliases and versions are not supported. Please specify a function ARN.");
  }
  return ref->name;
}
}  // namespace

http::Response LambdaApi::tag_resource(const http::Request& req, const http::Params& path, const http::Params&) {
  NIMBUS_API_TRY(tag_target(registry_, *http::find_param(path, "arn")), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  if (auto s = reject_unknown(*body, {"Tags"}, "TagResource"); !s.ok()) return render_error(s.error(), req.version());
  NIMBUS_API_TRY(parse_tags(*body, "Tags"), tags);
  if (auto s = registry_.tag(*name, *tags); !s.ok()) return render_error(s.error(), req.version());
  return empty_response(http::Status::no_content, req.version());
}

http::Response LambdaApi::untag_resource(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(tag_target(registry_, *http::find_param(path, "arn")), name);
  std::vector<std::string> keys;
  for (const auto& [k, v] : query) {
    if (k == "tagKeys") keys.push_back(v);
  }
  if (keys.empty()) {
    return render_error(make_error(ErrorCode::kValidation,
                                   "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                                   "constraint: Member must not be null"),
                        req.version());
  }
  if (auto s = registry_.untag(*name, keys); !s.ok()) return render_error(s.error(), req.version());
  return empty_response(http::Status::no_content, req.version());
}

http::Response LambdaApi::list_tags(const http::Request& req, const http::Params& path, const http::Params&) {
  NIMBUS_API_TRY(tag_target(registry_, *http::find_param(path, "arn")), name);
  NIMBUS_API_TRY(registry_.get(*name), config);
  return json_response(http::Status::ok, {{"Tags", json(config->tags)}}, req.version());
}

http::Response LambdaApi::account_settings(const http::Request& req, const http::Params&, const http::Params&) {
  NIMBUS_API_TRY(registry_.usage(), usage);
  const auto& rc = registry_.config();
  json out = {
      {"AccountLimit",
       {{"TotalCodeSize", 80530636800LL},
        {"CodeSizeUnzipped", 262144000},
        {"CodeSizeZipped", 52428800},
        {"ConcurrentExecutions", rc.account_concurrency},
        {"UnreservedConcurrentExecutions", rc.account_concurrency - registry_.reserved_total()}}},
      {"AccountUsage", {{"TotalCodeSize", usage->total_code_size}, {"FunctionCount", usage->function_count}}},
  };
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::download_code(const http::Request& req, const http::Params& path, const http::Params& query) {
  const std::string& name = *http::find_param(path, "name");
  const std::string sha = query_value(query, "sha256");
  const std::string token = query_value(query, "token");
  if (sha.empty() || !base::constant_time_equal(token, code_token(name, sha))) {
    return render_error(make_error(ErrorCode::kAccessDenied, "The code download link is invalid or expired"),
                        req.version());
  }
  NIMBUS_API_TRY(registry_.get(name), config);
  if (config->code_sha256_hex != sha) {
    return render_error(make_error(ErrorCode::kResourceNotFound, "That code is no longer the function's code"),
                        req.version());
  }
  NIMBUS_API_TRY(registry_.code_zip(name), zip);
  http::Response res{http::Status::ok, req.version()};
  res.set(http::Field::content_type, "application/zip");
  res.body() = std::move(*zip);
  return res;
}

http::Response LambdaApi::health(const http::Request& req, const http::Params&, const http::Params&) {
  return json_response(http::Status::ok, {{"status", "ok"}}, req.version());
}

namespace {
constexpr std::size_t kMaxSyncPayload = 6291456;
constexpr std::size_t kMaxClientContext = 3583;
}  // namespace

http::asio::awaitable<http::Response> LambdaApi::invoke(const http::Request& req, const http::Params& path,
                                                        const http::Params& query) {
  const unsigned version = req.version();
  if (invoker_ == nullptr) {
    co_return render_error(make_error(ErrorCode::kService, "this nimbus runs without an execution core"), version);
  }
  const bool event = req["X-Amz-Invocation-Type"] == "Event";
  if (event && req.body().size() > events::kMaxEventPayload) {
    co_return render_error(make_error(ErrorCode::kRequestTooLarge,
                                      fmt::format("{} byte payload is too large for the Event invocation type (limit {} "
                                                  "bytes)",
                                                  req.body().size(), events::kMaxEventPayload)),
                           version);
  }
  if (req.body().size() > kMaxSyncPayload) {
    co_return render_error(make_error(ErrorCode::kRequestTooLarge,
                                      fmt::format("Request must be smaller than {} bytes for the InvokeFunction operation",
                                                  kMaxSyncPayload)),
                           version);
  }
  auto ref = qualified_name(*http::find_param(path, "name"), query);
  if (!ref.ok()) {
    base::Error e = std::move(ref).error();
    co_return render_error(e, version);
  }
  const std::string qualifier = ref->qualifier.empty() ? std::string(registry::kLatest) : ref->qualifier;
  const std::string& name = ref->name;
  const std::string type = req["X-Amz-Invocation-Type"].empty() ? "RequestResponse" : std::string(req["X-Amz-Invocation-Type"]);
  const std::string log_type = req["X-Amz-Log-Type"].empty() ? "None" : std::string(req["X-Amz-Log-Type"]);
  if (type != "RequestResponse" && type != "Event" && type != "DryRun") {
    co_return render_error(make_error(ErrorCode::kValidation,
                                      fmt::format("1 validation error detected: Value '{}' at 'invocationType' failed to "
                                                  "satisfy constraint: Member must satisfy enum value set: "
                                                  "[Event, RequestResponse, DryRun]",
                                                  type)),
                           version);
  }
  if (log_type != "None" && log_type != "Tail") {
    co_return render_error(make_error(ErrorCode::kValidation,
                                      fmt::format("1 validation error detected: Value '{}' at 'logType' failed to satisfy "
                                                  "constraint: Member must satisfy enum value set: [None, Tail]",
                                                  log_type)),
                           version);
  }
  std::string payload = req.body();
  if (!payload.empty()) {
    if (!base::is_json(payload)) {
      co_return render_error(make_error(ErrorCode::kInvalidRequestContent,
                                        "Could not parse request body into json: Could not parse payload into json: " +
                                            json_error_detail(payload)),
                             version);
    }
  }
  std::string client_context;
  if (const auto cc = req["X-Amz-Client-Context"]; !cc.empty()) {
    if (cc.size() > kMaxClientContext) {
      co_return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                        fmt::format("Client context must be smaller than {} bytes", kMaxClientContext)),
                             version);
    }
    auto decoded = base::base64_decode(cc);
    if (!decoded || json::parse(*decoded, nullptr, false).is_discarded()) {
      co_return render_error(make_error(ErrorCode::kInvalidParameterValue,
                                        "X-Amz-Client-Context must be base64-encoded JSON"),
                             version);
    }
    client_context = std::move(*decoded);
  }
  if (type != "RequestResponse") {
    // The synchronous path learns this from the invoker's own lookup.
    if (auto target = registry_.get_qualified(name, ref->qualifier); !target.ok()) {
      co_return render_error(make_error(ErrorCode::kResourceNotFound,
                                        "Function not found: " + registry_.function_arn(name, qualifier)),
                             version);
    }
  }
  if (type == "DryRun") {
    http::Response res{http::Status::no_content, version};
    co_return res;
  }
  if (type == "Event") {
    co_return co_await invoke_event(name, ref->qualifier, std::move(payload), version);
  }
  invoker::InvokeRequest request;
  request.function = name;
  request.qualifier = ref->qualifier;
  request.payload = std::move(payload);
  request.client_context = std::move(client_context);
  request.invoked_arn = registry_.function_arn(name, ref->qualifier);
  auto result = co_await invoker_->invoke(std::move(request));
  http::Response res{http::Status::ok, version};
  res.set("x-amzn-RequestId", result.request_id);
  switch (result.status) {
    case invoker::InvokeStatus::kThrottled: {
      http::Response throttled = render_error(result.error, version);
      json body = {{"Reason", result.throttle_reason}, {"Type", "User"}, {"message", result.error.message}};
      throttled.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
      co_return throttled;
    }
    case invoker::InvokeStatus::kFailed:
      if (result.error.code == ErrorCode::kResourceNotFound) {
        // Lambda names the version it looked for.
        result.error.message = "Function not found: " + registry_.function_arn(name, qualifier);
      }
      co_return render_error(result.error, version);
    case invoker::InvokeStatus::kFunctionError:
      res.set("X-Amz-Function-Error", "Unhandled");
      break;
    case invoker::InvokeStatus::kSuccess:
      break;
  }
  res.set("X-Amz-Executed-Version", result.executed_version);
  res.set(http::Field::content_type, "application/json");
  if (log_type == "Tail") res.set("X-Amz-Log-Result", base::base64_encode(result.log));
  res.body() = std::move(result.payload);
  co_return res;
}

namespace {
base::Error functions_only() {
  return make_error(ErrorCode::kInvalidParameterValue,
                    "This operation is permitted on Lambda functions only. Aliases and versions do not support this "
                    "operation. Please specify either a function name or an unqualified function ARN.");
}
}  // namespace

http::Response LambdaApi::put_concurrency(const http::Request& req, const http::Params& path, const http::Params&) {
  NIMBUS_API_TRY(registry_.resolve(*http::find_param(path, "name")), ref);
  if (!ref->qualifier.empty()) return render_error(functions_only(), req.version());
  NIMBUS_API_TRY(parse_body(req.body()), body);
  if (auto s = reject_unknown(*body, {"ReservedConcurrentExecutions"}, "PutFunctionConcurrency"); !s.ok()) {
    return render_error(s.error(), req.version());
  }
  const auto it = body->find("ReservedConcurrentExecutions");
  if (it == body->end() || !it->is_number_integer()) {
    return render_error(make_error(ErrorCode::kValidation,
                                   "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to "
                                   "satisfy constraint: Member must not be null"),
                        req.version());
  }
  const auto value = it->get<std::int64_t>();
  NIMBUS_API_TRY(registry_.set_reserved_concurrency(
                     ref->name, static_cast<int>(std::clamp<std::int64_t>(value, -1, 1 << 30))),
                 updated);
  return json_response(http::Status::ok, {{"ReservedConcurrentExecutions", *updated->reserved_concurrency}},
                       req.version());
}

http::Response LambdaApi::get_concurrency(const http::Request& req, const http::Params& path, const http::Params&) {
  NIMBUS_API_TRY(registry_.resolve(*http::find_param(path, "name")), ref);
  if (!ref->qualifier.empty()) return render_error(functions_only(), req.version());
  NIMBUS_API_TRY(registry_.get(ref->name), config);
  json out = json::object();
  if (config->reserved_concurrency) out["ReservedConcurrentExecutions"] = *config->reserved_concurrency;
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::delete_concurrency(const http::Request& req, const http::Params& path, const http::Params&) {
  NIMBUS_API_TRY(registry_.resolve(*http::find_param(path, "name")), ref);
  if (!ref->qualifier.empty()) return render_error(functions_only(), req.version());
  NIMBUS_API_TRY(registry_.set_reserved_concurrency(ref->name, std::nullopt), updated);
  return empty_response(http::Status::no_content, req.version());
}

http::Response LambdaApi::metrics(const http::Request& req, const http::Params&, const http::Params&) {
  http::Response res{http::Status::ok, req.version()};
  res.set(http::Field::content_type, "text/plain; version=0.0.4");
  if (metrics_) res.body() = metrics_->render();
  return res;
}

http::Response LambdaApi::function_logs(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(registry_.get(*name), config);
  auto number = [&query](std::string_view key, std::int64_t fallback) {
    const std::string* v = http::find_param(query, key);
    if (v == nullptr || v->empty()) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    return *end == '\0' ? static_cast<std::int64_t>(n) : fallback;
  };
  const auto after = static_cast<std::uint64_t>(std::max<std::int64_t>(0, number("after", 0)));
  const std::int64_t since = number("since", 0);
  const auto limit = static_cast<std::size_t>(std::clamp<std::int64_t>(number("limit", 1000), 1, 10000));
  json lines = json::array();
  std::uint64_t last = after;
  if (logs_) {
    for (const auto& line : logs_->read(*name, after, since, limit)) {
      lines.push_back({{"seq", line.seq}, {"time", line.time_ms}, {"text", line.text}});
      last = line.seq;
    }
  }
  return json_response(http::Status::ok, {{"lines", std::move(lines)}, {"next", last}}, req.version());
}

}  // namespace nimbus::api
