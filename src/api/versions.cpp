// LambdaApi: versions, aliases and provisioned concurrency (the routes are
// registered in lambda_api.cpp).

#include <fmt/format.h>

#include "api/codec.h"
#include "api/detail/responses.h"
#include "api/lambda_api.h"
#include "registry/validation.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using detail::empty_response;
using detail::json_response;
using detail::max_items;
using detail::query_value;
using nlohmann::json;

http::Response LambdaApi::render_published(const http::Request& req, const std::string& name,
                                           std::optional<std::string> code_sha256) {
  registry::PublishSpec spec;
  spec.code_sha256 = std::move(code_sha256);
  NIMBUS_API_TRY(registry_.publish_version(name, spec), version);
  return json_response(http::Status::created,
                       render_configuration(*version, registry_.function_arn(name, version->version), ConfigView::kFull),
                       req.version());
}

http::Response LambdaApi::publish_version(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  if (auto s = reject_unknown(*body, {"CodeSha256", "Description", "RevisionId"}, "PublishVersion"); !s.ok()) {
    return render_error(s.error(), req.version());
  }
  registry::PublishSpec spec;
  for (const auto& [member, target] : {std::pair{"CodeSha256", &spec.code_sha256},
                                       std::pair{"Description", &spec.description},
                                       std::pair{"RevisionId", &spec.revision_id}}) {
    const auto it = body->find(member);
    if (it == body->end() || it->is_null()) continue;
    if (!it->is_string()) {
      return render_error(make_error(ErrorCode::kValidation,
                                     fmt::format("1 validation error detected: {} must be a string", member)),
                          req.version());
    }
    *target = it->get<std::string>();
  }
  if (spec.description) {
    if (auto s = registry::validate_description(*spec.description); !s.ok()) return render_error(s.error(), req.version());
  }
  NIMBUS_API_TRY(registry_.publish_version(*name, spec), version);
  return json_response(http::Status::created,
                       render_configuration(*version, registry_.function_arn(*name, version->version), ConfigView::kFull),
                       req.version());
}


http::Response LambdaApi::list_versions(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(max_items(query), limit);
  NIMBUS_API_TRY(registry_.list_versions(*name, query_value(query, "Marker"), *limit), page);
  json versions = json::array();
  for (const auto& v : page->functions) {
    versions.push_back(render_configuration(v, registry_.function_arn(v.name, v.version), ConfigView::kListRow));
  }
  json out = {{"Versions", std::move(versions)}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::create_alias(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  NIMBUS_API_TRY(parse_alias(*body, AliasOperation::kCreate), spec);
  NIMBUS_API_TRY(registry_.create_alias(*name, *spec), alias);
  return json_response(http::Status::created, render_alias(*alias, registry_.function_arn(*name, alias->name)),
                       req.version());
}

http::Response LambdaApi::list_aliases(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(max_items(query), limit);
  NIMBUS_API_TRY(registry_.list_aliases(*name, query_value(query, "FunctionVersion"), query_value(query, "Marker"),
                                        *limit),
                 page);
  json aliases = json::array();
  for (const auto& a : page->aliases) aliases.push_back(render_alias(a, registry_.function_arn(*name, a.name)));
  json out = {{"Aliases", std::move(aliases)}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return json_response(http::Status::ok, out, req.version());
}

http::Response LambdaApi::get_alias(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(registry_.get_alias(*name, *http::find_param(path, "alias")), alias);
  return json_response(http::Status::ok, render_alias(*alias, registry_.function_arn(*name, alias->name)),
                       req.version());
}

http::Response LambdaApi::update_alias(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  NIMBUS_API_TRY(parse_alias(*body, AliasOperation::kUpdate), spec);
  spec->name = *http::find_param(path, "alias");
  NIMBUS_API_TRY(registry_.update_alias(*name, *spec), alias);
  return json_response(http::Status::ok, render_alias(*alias, registry_.function_arn(*name, alias->name)),
                       req.version());
}

http::Response LambdaApi::delete_alias(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), query), name);
  const std::string& alias = *http::find_param(path, "alias");
  if (auto s = registry_.delete_alias(*name, alias); !s.ok()) return render_error(s.error(), req.version());
  for (const auto& hook : removal_hooks_) hook(*name, alias);
  return empty_response(http::Status::no_content, req.version());
}

json LambdaApi::provisioned_view(const registry::ProvisionedConcurrency& p) {
  int ready = 0;
  std::string failure;
  if (invoker_) {
    if (auto target = registry_.get_qualified(p.function, p.qualifier); target.ok()) {
      const auto state = invoker_->provisioned_state(*target);
      ready = state.ready;
      failure = state.failure;
    }
  }
  return render_provisioned(p, ready, failure);
}

http::Response LambdaApi::put_provisioned(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(parse_body(req.body()), body);
  if (auto s = reject_unknown(*body, {"ProvisionedConcurrentExecutions"}, "PutProvisionedConcurrencyConfig"); !s.ok()) {
    return render_error(s.error(), req.version());
  }
  const auto it = body->find("ProvisionedConcurrentExecutions");
  if (it == body->end() || !it->is_number_integer()) {
    return render_error(make_error(ErrorCode::kValidation,
                                   "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed "
                                   "to satisfy constraint: Member must not be null"),
                        req.version());
  }
  const auto requested = static_cast<int>(std::clamp<std::int64_t>(it->get<std::int64_t>(), -1, 1 << 30));
  NIMBUS_API_TRY(registry_.put_provisioned(ref->name, ref->qualifier, requested), config);
  return json_response(http::Status::accepted, provisioned_view(*config), req.version());
}

http::Response LambdaApi::get_provisioned(const http::Request& req, const http::Params& path, const http::Params& query) {
  if (query_value(query, "List") == "ALL") {
    // ListProvisionedConcurrencyConfigs.
    NIMBUS_API_TRY(unqualified_name(*http::find_param(path, "name"), http::Params{}), name);
    NIMBUS_API_TRY(registry_.list_provisioned(*name), configs);
    json list = json::array();
    for (const auto& p : *configs) {
      json row = provisioned_view(p);
      row["FunctionArn"] = registry_.function_arn(p.function, p.qualifier);
      list.push_back(std::move(row));
    }
    return json_response(http::Status::ok, {{"ProvisionedConcurrencyConfigs", std::move(list)}}, req.version());
  }
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  NIMBUS_API_TRY(registry_.get_provisioned(ref->name, ref->qualifier), config);
  return json_response(http::Status::ok, provisioned_view(*config), req.version());
}

http::Response LambdaApi::delete_provisioned(const http::Request& req, const http::Params& path, const http::Params& query) {
  NIMBUS_API_TRY(qualified_name(*http::find_param(path, "name"), query), ref);
  if (auto s = registry_.delete_provisioned(ref->name, ref->qualifier); !s.ok()) {
    return render_error(s.error(), req.version());
  }
  return empty_response(http::Status::no_content, req.version());
}

}  // namespace nimbus::api
