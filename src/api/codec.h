#pragma once
// Lambda REST-JSON <-> registry types: strict parsing of request bodies
// (wrong types and unknown members are named in the error) and rendering of
// FunctionConfiguration exactly as botocore's model spells it.

#include <initializer_list>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "registry/function.h"

namespace nimbus::api {

// Why `text` is not JSON, in the parser's words ("syntax error at line 1 ...").
[[nodiscard]] std::string json_error_detail(std::string_view text);
// Parses a request body as a JSON object; an empty body is {}.
[[nodiscard]] base::Result<nlohmann::json> parse_body(std::string_view body);
// Fails naming the first member of `body` that is not in `known`.
[[nodiscard]] base::Status reject_unknown(const nlohmann::json& body,
                                          std::initializer_list<std::string_view> known,
                                          std::string_view operation);

[[nodiscard]] base::Result<registry::FunctionSpec> parse_create_function(const nlohmann::json& body);
[[nodiscard]] base::Result<registry::ConfigPatch> parse_update_configuration(const nlohmann::json& body);
[[nodiscard]] base::Result<registry::Tags> parse_tags(const nlohmann::json& body, std::string_view member);

enum class AliasOperation { kCreate, kUpdate };
// CreateAlias / UpdateAlias bodies (the alias name of an update comes from the path).
[[nodiscard]] base::Result<registry::AliasSpec> parse_alias(const nlohmann::json& body, AliasOperation operation);
[[nodiscard]] nlohmann::json render_alias(const registry::Alias& alias, const std::string& arn);
// A ProvisionedConcurrencyConfig with `available` initialised instances; Status
// is READY when all requested are, FAILED when starting one failed (`failure`).
[[nodiscard]] nlohmann::json render_provisioned(const registry::ProvisionedConcurrency& config, int available,
                                                const std::string& failure);

// How much of FunctionConfiguration to show.
enum class ConfigView {
  kFull,     // Get*/Update*: with State and LastUpdateStatus
  kCreated,  // CreateFunction: State only (Lambda has no LastUpdateStatus yet)
  kListRow,  // ListFunctions: neither
};

// FunctionConfiguration for `config`; `arn` is the (possibly qualified) ARN to show.
[[nodiscard]] nlohmann::json render_configuration(const registry::FunctionConfig& config,
                                                  const std::string& arn, ConfigView view);

}  // namespace nimbus::api
