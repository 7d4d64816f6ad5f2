#include "api/codec.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/json.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

// Lambda names members in camelCase in validation messages ("timeout").
std::string member_name(std::string_view key) {
  std::string out(key);
  if (!out.empty()) out[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[0])));
  return out;
}

base::Error wrong_type(std::string_view key, std::string_view expected, const json& value) {
  const std::string member = member_name(key);
  std::string shown = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (shown.size() > 60) {
    std::size_t cut = 60;
    while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    shown = shown.substr(0, cut) + "...";
  }
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy "
                                "constraint: Member must be {}",
                                shown, member, expected));
}

// Readers for optional members: absent or null leaves `out` untouched.
base::Status read_string(const json& obj, std::string_view key, std::optional<std::string>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_string()) return wrong_type(key, "a string", *it);
  out = it->get<std::string>();
  return base::Ok{};
}

base::Status read_int(const json& obj, std::string_view key, std::optional<int>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_number_integer()) return wrong_type(key, "an integer", *it);
  const auto v = it->get<std::int64_t>();
  // Clamp absurd values into something the range check will name precisely.
  out = static_cast<int>(std::clamp<std::int64_t>(v, -2147483647, 2147483647));
  return base::Ok{};
}

base::Status read_bool(const json& obj, std::string_view key, std::optional<bool>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_boolean()) return wrong_type(key, "a boolean", *it);
  out = it->get<bool>();
  return base::Ok{};
}

base::Result<registry::EnvVars> read_string_map(const json& value, std::string_view member) {
  if (!value.is_object()) return wrong_type(member, "a map of strings", value);
  registry::EnvVars out;
  for (const auto& [k, v] : value.items()) {
    if (!v.is_string()) return wrong_type(fmt::format("{}.{}", member, k), "a string", v);
    out[k] = v.get<std::string>();
  }
  return out;
}

// Environment: {"Variables": {...}}
base::Status read_environment(const json& obj, std::optional<registry::EnvVars>& out) {
  const auto it = obj.find("Environment");
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_object()) return wrong_type("environment", "a structure", *it);
  NIMBUS_TRY(reject_unknown(*it, {"Variables"}, "Environment"));
  const auto vars = it->find("Variables");
  if (vars == it->end() || vars->is_null()) {
    out = registry::EnvVars{};
    return base::Ok{};
  }
  auto map = read_string_map(*vars, "environment.variables");
  if (!map.ok()) return std::move(map).error();
  out = std::move(*map);
  return base::Ok{};
}

base::Status read_nested_int(const json& obj, std::string_view key, std::string_view inner,
                             std::optional<int>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_object()) return wrong_type(key, "a structure", *it);
  return read_int(*it, inner, out);
}

base::Status read_nested_string(const json& obj, std::string_view key, std::string_view inner,
                                std::optional<std::string>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return base::Ok{};
  if (!it->is_object()) return wrong_type(key, "a structure", *it);
  return read_string(*it, inner, out);
}

base::Error unsupported(std::string_view what) {
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("{} is not supported by nimbus", what));
}

// Members nimbus accepts but has no use for (no VPCs, KMS, code signing here);
// they must at least be well-formed objects/strings.
base::Status check_unsupported_members(const json& body) {
  const auto layers = body.find("Layers");
  if (layers != body.end() && !layers->is_null()) {
    if (!layers->is_array()) return wrong_type("layers", "a list", *layers);
    if (layers->size() > 5) return make_error(ErrorCode::kInvalidParameterValue, "Cannot reference more than 5 layers.");
    if (!layers->empty()) return unsupported("Layers");
  }
  const auto fs = body.find("FileSystemConfigs");
  if (fs != body.end() && !fs->is_null() && !(fs->is_array() && fs->empty())) {
    return unsupported("FileSystemConfigs (EFS)");
  }
  const auto image = body.find("ImageConfig");
  if (image != body.end() && !image->is_null() && !(image->is_object() && image->empty())) {
    return unsupported("ImageConfig (container images)");
  }
  return base::Ok{};
}

}  // namespace

std::string json_error_detail(std::string_view text) {
  // Re-parse with exceptions to get the parser's position and reason.
  try {
    const json reparsed = json::parse(text);
    return "unexpected " + std::string(reparsed.type_name());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999999
    return e.what();
  }
}

base::Result<json> parse_body(std::string_view body) {
  if (body.empty()) return json::object();
  json parsed = base::parse_json(body);  // a CreateFunction body can carry a zip of 50 MB
  if (parsed.is_discarded()) {
    return make_error(ErrorCode::kInvalidRequestContent,
                      "Could not parse request body into json: " + json_error_detail(body));
  }
  if (!parsed.is_object()) {
    return make_error(ErrorCode::kInvalidRequestContent,
                      "Could not parse request body into json: the body must be a JSON object");
  }
  return parsed;
}

base::Status reject_unknown(const json& body, std::initializer_list<std::string_view> known,
                            std::string_view operation) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return make_error(ErrorCode::kInvalidRequestContent,
                        fmt::format("Unrecognized field '{}' in the {} request", key, operation));
    }
  }
  return base::Ok{};
}

base::Result<registry::FunctionSpec> parse_create_function(const json& body) {
  NIMBUS_TRY(reject_unknown(
      body,
      {"FunctionName", "Runtime", "Role", "Handler", "Code", "Description", "Timeout", "MemorySize",
       "Publish", "VpcConfig", "PackageType", "DeadLetterConfig", "Environment", "KMSKeyArn",
       "TracingConfig", "Tags", "Layers", "FileSystemConfigs", "ImageConfig", "CodeSigningConfigArn",
       "Architectures", "EphemeralStorage", "SnapStart", "LoggingConfig"},
      "CreateFunction"));
  registry::FunctionSpec spec;
  std::optional<std::string> name, runtime, role, handler, package_type;
  NIMBUS_TRY(read_string(body, "FunctionName", name));
  NIMBUS_TRY(read_string(body, "Runtime", runtime));
  NIMBUS_TRY(read_string(body, "Role", role));
  NIMBUS_TRY(read_string(body, "Handler", handler));
  NIMBUS_TRY(read_string(body, "PackageType", package_type));
  if (!name) return make_error(ErrorCode::kValidation, "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null");
  if (!role) return make_error(ErrorCode::kValidation, "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null");
  if (package_type && *package_type != "Zip") return unsupported("PackageType " + *package_type + " (only Zip)");
  if (!runtime) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Runtime is required for a function of package type Zip");
  }
  spec.name = *name;
  spec.runtime = *runtime;
  spec.role = *role;
  spec.handler = handler.value_or("");
  NIMBUS_TRY(read_string(body, "Description", spec.description));
  NIMBUS_TRY(read_int(body, "Timeout", spec.timeout));
  NIMBUS_TRY(read_int(body, "MemorySize", spec.memory_size));
  NIMBUS_TRY(read_environment(body, spec.environment));
  NIMBUS_TRY(read_nested_int(body, "EphemeralStorage", "Size", spec.ephemeral_storage));
  NIMBUS_TRY(read_nested_string(body, "TracingConfig", "Mode", spec.tracing_mode));
  NIMBUS_TRY(read_nested_string(body, "DeadLetterConfig", "TargetArn", spec.dead_letter_target));
  NIMBUS_TRY(check_unsupported_members(body));
  std::optional<bool> publish;  // the api part publishes after creating
  NIMBUS_TRY(read_bool(body, "Publish", publish));
  if (const auto it = body.find("Architectures"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return wrong_type("architectures", "a list", *it);
    std::vector<std::string> archs;
    for (const auto& a : *it) {
      if (!a.is_string()) return wrong_type("architectures", "a list of strings", *it);
      archs.push_back(a.get<std::string>());
    }
    spec.architectures = std::move(archs);
  }
  if (const auto it = body.find("Tags"); it != body.end() && !it->is_null()) {
    auto tags = read_string_map(*it, "tags");
    if (!tags.ok()) return std::move(tags).error();
    spec.tags = std::move(*tags);
  }
  const auto code = body.find("Code");
  if (code == body.end() || !code->is_object()) {
    return make_error(ErrorCode::kValidation, "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null");
  }
  NIMBUS_TRY(reject_unknown(*code, {"ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"}, "Code"));
  if (code->contains("S3Bucket") || code->contains("S3Key")) {
    return unsupported("Code.S3Bucket/S3Key (upload the package as Code.ZipFile)");
  }
  if (code->contains("ImageUri")) return unsupported("Code.ImageUri (container images)");
  const auto zip_b64 = code->find("ZipFile");
  if (zip_b64 == code->end() || zip_b64->is_null()) {
    return make_error(ErrorCode::kInvalidParameterValue, "Please provide a source for function code: Code.ZipFile");
  }
  if (!zip_b64->is_string()) return wrong_type("ZipFile", "a string", *zip_b64);
  auto zip = base::base64_decode(zip_b64->get_ref<const std::string&>());  // tens of MB: no copy
  if (!zip) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Code.ZipFile is not valid base64 (standard alphabet with padding)");
  }
  spec.zip = std::move(*zip);
  return spec;
}

base::Result<registry::ConfigPatch> parse_update_configuration(const json& body) {
  NIMBUS_TRY(reject_unknown(
      body,
      {"Role", "Handler", "Description", "Timeout", "MemorySize", "VpcConfig", "Environment",
       "Runtime", "DeadLetterConfig", "KMSKeyArn", "TracingConfig", "RevisionId", "Layers",
       "FileSystemConfigs", "ImageConfig", "EphemeralStorage", "SnapStart", "LoggingConfig"},
      "UpdateFunctionConfiguration"));
  registry::ConfigPatch p;
  NIMBUS_TRY(read_string(body, "Role", p.role));
  NIMBUS_TRY(read_string(body, "Handler", p.handler));
  NIMBUS_TRY(read_string(body, "Description", p.description));
  NIMBUS_TRY(read_int(body, "Timeout", p.timeout));
  NIMBUS_TRY(read_int(body, "MemorySize", p.memory_size));
  NIMBUS_TRY(read_environment(body, p.environment));
  NIMBUS_TRY(read_string(body, "Runtime", p.runtime));
  NIMBUS_TRY(read_nested_string(body, "DeadLetterConfig", "TargetArn", p.dead_letter_target));
  NIMBUS_TRY(read_nested_string(body, "TracingConfig", "Mode", p.tracing_mode));
  NIMBUS_TRY(read_string(body, "RevisionId", p.revision_id));
  NIMBUS_TRY(read_nested_int(body, "EphemeralStorage", "Size", p.ephemeral_storage));
  NIMBUS_TRY(check_unsupported_members(body));
  return p;
}

base::Result<registry::Tags> parse_tags(const json& body, std::string_view member) {
  const auto it = body.find(member);
  if (it == body.end() || it->is_null()) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value null at '{}' failed to "
                                  "satisfy constraint: Member must not be null",
                                  member));
  }
  return read_string_map(*it, "tags");
}

json render_configuration(const registry::FunctionConfig& c, const std::string& arn, ConfigView view) {
  json out = {
      {"FunctionName", c.name},
      {"FunctionArn", arn},
      {"Runtime", c.runtime},
      {"Role", c.role},
      {"Handler", c.handler},
      {"CodeSize", c.code_size},
      {"Description", c.description},
      {"Timeout", c.timeout},
      {"MemorySize", c.memory_size},
      {"LastModified", base::format_lambda_time(c.last_modified_ms)},
      {"CodeSha256", c.code_sha256},
      {"Version", c.version},
      {"TracingConfig", {{"Mode", c.tracing_mode}}},
      {"RevisionId", c.revision_id},
      {"PackageType", "Zip"},
      {"Architectures", c.architectures},
      {"EphemeralStorage", {{"Size", c.ephemeral_storage}}},
      {"SnapStart", {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
      {"LoggingConfig", {{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/" + c.name}}},
  };
  if (!c.environment.empty()) out["Environment"] = {{"Variables", c.environment}};
  if (!c.dead_letter_target.empty()) out["DeadLetterConfig"] = {{"TargetArn", c.dead_letter_target}};
  // nimbus applies changes synchronously: a function is Active and its
  // last update Successful as soon as the call returns.
  if (view != ConfigView::kListRow) out["State"] = "Active";
  if (view == ConfigView::kFull) out["LastUpdateStatus"] = "Successful";
  return out;
}

base::Result<registry::AliasSpec> parse_alias(const json& body, AliasOperation operation) {
  const bool create = operation == AliasOperation::kCreate;
  if (create) {
    NIMBUS_TRY(reject_unknown(body, {"Name", "FunctionVersion", "Description", "RoutingConfig"}, "CreateAlias"));
  } else {
    NIMBUS_TRY(reject_unknown(body, {"FunctionVersion", "Description", "RoutingConfig", "RevisionId"}, "UpdateAlias"));
  }
  registry::AliasSpec spec;
  auto text = [&body](std::string_view member, std::string_view model_name) -> base::Result<std::optional<std::string>> {
    const auto it = body.find(member);
    if (it == body.end() || it->is_null()) return std::optional<std::string>();
    if (!it->is_string()) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value at '{}' failed to satisfy constraint: "
                                    "Member must be a string",
                                    model_name));
    }
    return std::optional<std::string>(it->get<std::string>());
  };
  auto name = text("Name", "name");
  auto function_version = text("FunctionVersion", "functionVersion");
  auto description = text("Description", "description");
  auto revision_id = text("RevisionId", "revisionId");
  for (auto* r : {&name, &function_version, &description, &revision_id}) {
    if (!r->ok()) return std::move(*r).error();
  }
  if (*name) spec.name = **name;
  spec.function_version = *function_version;
  spec.description = *description;
  spec.revision_id = *revision_id;
  if (create && !*name) {
    return make_error(ErrorCode::kValidation,
                      "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must "
                      "not be null");
  }
  if (const auto routing = body.find("RoutingConfig"); routing != body.end() && !routing->is_null()) {
    if (!routing->is_object()) {
      return make_error(ErrorCode::kValidation, "RoutingConfig must be an object with AdditionalVersionWeights");
    }
    NIMBUS_TRY(reject_unknown(*routing, {"AdditionalVersionWeights"}, "RoutingConfig"));
    std::map<std::string, double> weights;
    if (const auto w = routing->find("AdditionalVersionWeights"); w != routing->end() && !w->is_null()) {
      if (!w->is_object()) {
        return make_error(ErrorCode::kValidation, "AdditionalVersionWeights must map a version to a weight");
      }
      for (const auto& [version, weight] : w->items()) {
        if (!weight.is_number()) {
          return make_error(ErrorCode::kValidation,
                            fmt::format("AdditionalVersionWeights: the weight of version {} must be a number", version));
        }
        weights[version] = weight.get<double>();
      }
    }
    spec.additional_weights = std::move(weights);
  }
  return spec;
}

json render_alias(const registry::Alias& a, const std::string& arn) {
  json out = {{"AliasArn", arn},
              {"Name", a.name},
              {"FunctionVersion", a.function_version},
              {"Description", a.description},
              {"RevisionId", a.revision_id}};
  if (!a.additional_weights.empty()) out["RoutingConfig"] = {{"AdditionalVersionWeights", a.additional_weights}};
  return out;
}

json render_provisioned(const registry::ProvisionedConcurrency& p, int available, const std::string& failure) {
  const int shown = std::min(available, p.requested);
  std::string status = shown >= p.requested ? "READY" : "IN_PROGRESS";
  if (shown < p.requested && !failure.empty()) status = "FAILED";
  // "2019-11-21T19:32:12+0000": Lambda's time without the milliseconds.
  std::string modified = base::format_lambda_time(p.last_modified_ms);
  if (const auto dot = modified.find('.'); dot != std::string::npos) modified.erase(dot, 4);
  json out = {{"RequestedProvisionedConcurrentExecutions", p.requested},
              {"AvailableProvisionedConcurrentExecutions", shown},
              {"AllocatedProvisionedConcurrentExecutions", shown},
              {"Status", status},
              {"LastModified", modified}};
  if (status == "FAILED") out["StatusReason"] = failure;
  return out;
}

}  // namespace nimbus::api
