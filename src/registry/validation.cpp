#include "registry/validation.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "registry/runtimes.h"

namespace nimbus::registry {

using base::ErrorCode;
using base::make_error;

namespace {

// Lambda's wording for a failed model constraint.
base::Error constraint(std::string_view value, std::string_view member, std::string_view rule) {
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy "
                                "constraint: {}",
                                value, member, rule));
}

base::Status range(int value, std::string_view member, int lo, int hi) {
  if (value < lo) {
    return constraint(std::to_string(value), member,
                      fmt::format("Member must have value greater than or equal to {}", lo));
  }
  if (value > hi) {
    return constraint(std::to_string(value), member,
                      fmt::format("Member must have value less than or equal to {}", hi));
  }
  return base::Ok{};
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

constexpr std::array<std::string_view, 17> kReservedEnv = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT"};

}  // namespace

base::Status validate_name(std::string_view name) {
  if (name.empty()) return constraint(name, "functionName", "Member must have length greater than or equal to 1");
  if (name.size() > 64) {
    return constraint(name, "functionName", "Member must have length less than or equal to 64");
  }
  if (!std::all_of(name.begin(), name.end(), is_name_char)) {
    return constraint(name, "functionName",
                      "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+");
  }
  return base::Ok{};
}

base::Status validate_runtime(std::string_view runtime) {
  if (find_runtime(runtime) != nullptr) return base::Ok{};
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("Value {} at 'runtime' failed to satisfy constraint: Member must "
                                "satisfy enum value set: {} or be a valid ARN",
                                runtime, runtime_list()));
}

base::Status validate_handler(std::string_view handler, std::string_view runtime) {
  if (handler.empty()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Handler is required for a function of package type Zip");
  }
  if (handler.size() > 128) {
    return constraint(handler, "handler", "Member must have length less than or equal to 128");
  }
  if (std::any_of(handler.begin(), handler.end(),
                  [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; })) {
    return constraint(handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+");
  }
  const RuntimeInfo* info = find_runtime(runtime);
  if (info != nullptr && info->family != RuntimeFamily::kProvided) {
    // module.function (Python) or file.export (Node): a dot with text on both sides.
    const auto dot = handler.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == handler.size()) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Handler '{}' is not in the form module.function that runtime "
                                    "{} expects (for example app.handler)",
                                    handler, runtime));
    }
  }
  return base::Ok{};
}

base::Status validate_role(std::string_view role) {
  // Role is accepted and stored; nimbus has no IAM, but the shape is checked
  // as Lambda's model does: arn:aws:iam::<12 digits>:role/<path+name>.
  constexpr std::string_view kPrefix = "arn:aws:iam::";
  const bool shaped = role.starts_with(kPrefix) && role.size() > kPrefix.size() + 18 &&
                      std::all_of(role.begin() + kPrefix.size(), role.begin() + kPrefix.size() + 12,
                                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
                      role.substr(kPrefix.size() + 12, 6) == ":role/";
  if (!shaped) {
    return constraint(role, "role",
                      "Member must satisfy regular expression pattern: "
                      "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+");
  }
  return base::Ok{};
}

namespace {
// Length in characters (UTF-8 code points), as Lambda counts.
std::size_t utf8_length(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
// The first `n` characters of `s`, never cutting one in half.
std::string_view utf8_prefix(std::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t chars = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == n) break;
  }
  return s.substr(0, i);
}
}  // namespace

base::Status validate_description(std::string_view description) {
  if (utf8_length(description) > 256) {
    return constraint(utf8_prefix(description, 40), "description",
                      "Member must have length less than or equal to 256");
  }
  return base::Ok{};
}

base::Status validate_timeout(int timeout) { return range(timeout, "timeout", 1, 900); }
base::Status validate_memory_size(int memory_size) {
  return range(memory_size, "memorySize", 128, 10240);
}
base::Status validate_ephemeral_storage(int size) {
  return range(size, "ephemeralStorage.size", 512, 10240);
}

base::Status validate_environment(const EnvVars& env) {
  std::vector<std::string> reserved;
  for (const auto& [key, value] : env) {
    const bool shaped = key.size() >= 2 && std::isalpha(static_cast<unsigned char>(key[0])) != 0 &&
                        std::all_of(key.begin(), key.end(), [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
                        });
    if (!shaped) {
      return constraint(key, "environment.variables",
                        "Map keys must satisfy constraint: [Member must satisfy regular expression "
                        "pattern: [a-zA-Z]([a-zA-Z0-9_])+]");
    }
    if (std::find(kReservedEnv.begin(), kReservedEnv.end(), key) != kReservedEnv.end()) {
      reserved.push_back(key);
    }
  }
  if (!reserved.empty()) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Lambda was unable to configure your environment variables because "
                                  "the environment variables you have provided contains reserved "
                                  "keys that are currently not supported for modification. Reserved "
                                  "keys used in this request: {}",
                                  fmt::join(reserved, ", ")));
  }
  const std::string measured = nlohmann::json(env).dump();
  if (measured.size() > kMaxEnvironmentBytes) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Lambda was unable to configure your environment variables because "
                                  "the environment variables you have provided exceeded the 4KB "
                                  "limit. String measured: {}",
                                  measured));
  }
  return base::Ok{};
}

base::Status validate_architectures(const std::vector<std::string>& archs) {
  if (archs.size() != 1) {
    return constraint(fmt::format("[{}]", fmt::join(archs, ", ")), "architectures",
                      "Member must have length less than or equal to 1 and greater than or equal to 1");
  }
  if (archs[0] != "x86_64" && archs[0] != "arm64") {
    return constraint(archs[0], "architectures",
                      "Member must satisfy enum value set: [x86_64, arm64]");
  }
  return base::Ok{};
}

base::Status validate_tracing_mode(std::string_view mode) {
  if (mode != "Active" && mode != "PassThrough") {
    return constraint(mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]");
  }
  return base::Ok{};
}

base::Status validate_tags(const Tags& tags) {
  if (tags.size() > kMaxTags) {
    return make_error(ErrorCode::kInvalidParameterValue, "Number of tags exceeds resource tag limit.");
  }
  for (const auto& [key, value] : tags) {
    if (key.empty() || key.size() > 128) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Tag key '{}' must be 1 to 128 characters long", key));
    }
    if (value.size() > 256) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Tag value for key '{}' must be at most 256 characters long", key));
    }
    if (key.starts_with("aws:")) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Tag key '{}' uses the reserved prefix aws:", key));
    }
  }
  return base::Ok{};
}

base::Status validate_config(const FunctionConfig& c) {
  NIMBUS_TRY(validate_name(c.name));
  NIMBUS_TRY(validate_role(c.role));
  NIMBUS_TRY(validate_runtime(c.runtime));
  NIMBUS_TRY(validate_handler(c.handler, c.runtime));
  NIMBUS_TRY(validate_description(c.description));
  NIMBUS_TRY(validate_timeout(c.timeout));
  NIMBUS_TRY(validate_memory_size(c.memory_size));
  NIMBUS_TRY(validate_ephemeral_storage(c.ephemeral_storage));
  NIMBUS_TRY(validate_environment(c.environment));
  NIMBUS_TRY(validate_architectures(c.architectures));
  NIMBUS_TRY(validate_tracing_mode(c.tracing_mode));
  NIMBUS_TRY(validate_tags(c.tags));
  return base::Ok{};
}

base::Result<FunctionRef> parse_function_ref(std::string_view text, std::string_view region,
                                             std::string_view account_id) {
  const std::string original(text);
  auto invalid = [&] {
    return constraint(original, "functionName",
                      "Member must satisfy regular expression pattern: "
                      "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
                      "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?");
  };
  if (text.empty() || text.size() > 170) return invalid();
  // Split on ':' into at most 8 parts.
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  std::string_view name;
  std::string_view qualifier;
  if (parts[0] == "arn") {
    // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    if (parts.size() < 7 || parts.size() > 8 || parts[2] != "lambda" || parts[5] != "function") {
      return invalid();
    }
    if (parts[3] != region) {
      return make_error(ErrorCode::kResourceNotFound,
                        fmt::format("Functions from '{}' are not reachable in this region ('{}')",
                                    parts[3], region));
    }
    if (parts[4] != account_id) {
      return make_error(ErrorCode::kAccessDenied,
                        fmt::format("User is not authorized to access resources of account {}", parts[4]));
    }
    name = parts[6];
    if (parts.size() == 8) qualifier = parts[7];
  } else if (parts.size() >= 3 && parts[1] == "function") {
    // <account>:function:<name>[:<qualifier>]
    if (parts.size() > 4) return invalid();
    if (parts[0] != account_id) {
      return make_error(ErrorCode::kAccessDenied,
                        fmt::format("User is not authorized to access resources of account {}", parts[0]));
    }
    name = parts[2];
    if (parts.size() == 4) qualifier = parts[3];
  } else if (parts.size() <= 2) {
    name = parts[0];
    if (parts.size() == 2) qualifier = parts[1];
  } else {
    return invalid();
  }
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), is_name_char)) {
    return invalid();
  }
  const bool has_qualifier = parts.size() == 8 || parts.size() == 4 || parts.size() == 2;
  if (has_qualifier &&
      (qualifier.empty() || qualifier.size() > 128 ||
       (qualifier != "$LATEST" && !std::all_of(qualifier.begin(), qualifier.end(), is_name_char)))) {
    return invalid();
  }
  return FunctionRef{std::string(name), std::string(qualifier)};
}

}  // namespace nimbus::registry
