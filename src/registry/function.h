#pragma once
// The registry's vocabulary: a function's full Lambda configuration, what a
// caller asks for when creating or changing one, and how a function is named.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace nimbus::registry {

using EnvVars = std::map<std::string, std::string>;
using Tags = std::map<std::string, std::string>;

inline constexpr std::string_view kLatest = "$LATEST";

// Everything Lambda's FunctionConfiguration says about $LATEST or one
// published version, plus the function's tags.
struct FunctionConfig {
  std::string name;
  std::string version{kLatest};    // "$LATEST" or a published number ("1", "2", ...)
  int last_published = 0;          // $LATEST only: the last version number issued
  std::string runtime;
  std::string role;
  std::string handler;
  std::string description;
  int timeout = 3;                 // seconds, 1..900
  int memory_size = 128;           // MB, 128..10240
  EnvVars environment;
  std::vector<std::string> architectures{"x86_64"};
  int ephemeral_storage = 512;     // MB of /tmp, 512..10240
  std::string tracing_mode = "PassThrough";
  std::string dead_letter_target;  // ARN or empty
  std::string code_sha256;         // base64 of the zip's SHA-256 (Lambda's CodeSha256)
  std::string code_sha256_hex;     // the blob's name in the store
  std::int64_t code_size = 0;
  std::int64_t last_modified_ms = 0;
  std::string revision_id;
  Tags tags;
  std::optional<int> reserved_concurrency;  // PutFunctionConcurrency
};

// CreateFunction's input, already parsed from JSON (the api part does that).
struct FunctionSpec {
  std::string name;
  std::string runtime;
  std::string role;
  std::string handler;
  std::optional<std::string> description;
  std::optional<int> timeout;
  std::optional<int> memory_size;
  std::optional<EnvVars> environment;
  std::optional<std::vector<std::string>> architectures;
  std::optional<int> ephemeral_storage;
  std::optional<std::string> tracing_mode;
  std::optional<std::string> dead_letter_target;
  Tags tags;
  std::string zip;  // the package bytes
};

// UpdateFunctionConfiguration's input: each member given replaces the whole value.
struct ConfigPatch {
  std::optional<std::string> runtime;
  std::optional<std::string> role;
  std::optional<std::string> handler;
  std::optional<std::string> description;
  std::optional<int> timeout;
  std::optional<int> memory_size;
  std::optional<EnvVars> environment;
  std::optional<int> ephemeral_storage;
  std::optional<std::string> tracing_mode;
  std::optional<std::string> dead_letter_target;
  std::optional<std::string> revision_id;  // optimistic lock
};

// PublishVersion's input.
struct PublishSpec {
  std::optional<std::string> code_sha256;  // must match $LATEST's when given
  std::optional<std::string> description;
  std::optional<std::string> revision_id;  // $LATEST's, optimistic lock
};

// A named pointer to a version, optionally splitting traffic with a second one.
struct Alias {
  std::string function;
  std::string name;
  std::string function_version;
  std::string description;
  std::map<std::string, double> additional_weights;  // RoutingConfig.AdditionalVersionWeights (≤ 1)
  std::string revision_id;
};

// CreateAlias / UpdateAlias input; on update, members left empty keep their value.
struct AliasSpec {
  std::string name;
  std::optional<std::string> function_version;
  std::optional<std::string> description;
  std::optional<std::map<std::string, double>> additional_weights;
  std::optional<std::string> revision_id;
};

// PutProvisionedConcurrencyConfig: keep `requested` instances of the version
// that `qualifier` (an alias or a version number) names initialised.
struct ProvisionedConcurrency {
  std::string function;
  std::string qualifier;
  int requested = 0;
  std::int64_t last_modified_ms = 0;
};

// A function name as a caller may write it: name, name:qualifier, partial or
// full ARN. The qualifier is empty when none was given.
struct FunctionRef {
  std::string name;
  std::string qualifier;
};

// Stored document <-> config. The document is our own format; never shown.
[[nodiscard]] nlohmann::json to_document(const FunctionConfig& config);
[[nodiscard]] FunctionConfig from_document(const nlohmann::json& document);
[[nodiscard]] nlohmann::json to_document(const Alias& alias);
[[nodiscard]] Alias alias_from_document(const nlohmann::json& document);
[[nodiscard]] nlohmann::json to_document(const ProvisionedConcurrency& config);
[[nodiscard]] ProvisionedConcurrency provisioned_from_document(const nlohmann::json& document);
// Whether `text` is a published version number ("1", "42").
[[nodiscard]] bool is_version_number(std::string_view text);

}  // namespace nimbus::registry
