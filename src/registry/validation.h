#pragma once
// Lambda's limits on a function's configuration, as pure checks. Each returns
// the first problem as an Error whose message names the field, in the wording
// Lambda uses (ValidationException for model constraints,
// InvalidParameterValueException for semantic ones).

#include <string_view>

#include "base/result.h"
#include "registry/function.h"

namespace nimbus::registry {

inline constexpr std::size_t kMaxZippedBytes = 52428800;      // 50 MB direct upload
inline constexpr std::uint64_t kMaxUnzippedBytes = 262144000; // 250 MB
inline constexpr std::size_t kMaxEnvironmentBytes = 4096;     // 4 KB
inline constexpr std::size_t kMaxTags = 50;

[[nodiscard]] base::Status validate_name(std::string_view name);
[[nodiscard]] base::Status validate_runtime(std::string_view runtime);
[[nodiscard]] base::Status validate_handler(std::string_view handler, std::string_view runtime);
[[nodiscard]] base::Status validate_role(std::string_view role);
[[nodiscard]] base::Status validate_description(std::string_view description);
[[nodiscard]] base::Status validate_timeout(int timeout);
[[nodiscard]] base::Status validate_memory_size(int memory_size);
[[nodiscard]] base::Status validate_ephemeral_storage(int size);
[[nodiscard]] base::Status validate_environment(const EnvVars& env);
[[nodiscard]] base::Status validate_architectures(const std::vector<std::string>& archs);
[[nodiscard]] base::Status validate_tracing_mode(std::string_view mode);
[[nodiscard]] base::Status validate_tags(const Tags& tags);
// The whole configuration, field by field in Lambda's order.
[[nodiscard]] base::Status validate_config(const FunctionConfig& config);

// Parses a FunctionName as Lambda accepts it: "f", "f:q", "123456789012:function:f[:q]",
// "arn:aws:lambda:<region>:<account>:function:f[:q]". The region and account of an
// ARN must be ours (`region`, `account_id`).
[[nodiscard]] base::Result<FunctionRef> parse_function_ref(std::string_view text,
                                                           std::string_view region,
                                                           std::string_view account_id);

}  // namespace nimbus::registry
