// What an instance of a function runs: its command line, its environment
// (Lambda's reserved and default variables) and the primed runtime it can
// start from. The rest of the invoker is in invoker.cpp.

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

#include "base/crypto.h"
#include "base/clock.h"
#include "invoker/invoker.h"
#include "registry/runtimes.h"

namespace nimbus::invoker {

using base::ErrorCode;
using base::make_error;

Invoker::Paths Invoker::paths_for(const std::filesystem::path& code_dir) const {
  // With a private root the code and runtimes sit at Lambda's paths; without
  // namespaces (degraded mode) they are where they are on the host.
  if (launcher_.isolation().namespaces) return Paths{"/var/task", "/var/runtime"};
  return Paths{code_dir.string(), config_.runtimes_dir.string()};
}

base::Result<std::vector<std::string>> Invoker::command_for(const registry::FunctionConfig& config,
                                                            const std::filesystem::path& code_dir) const {
  const Paths paths = paths_for(code_dir);
  const auto* runtime = registry::find_runtime(config.runtime);
  if (runtime == nullptr) {
    return make_error(ErrorCode::kInvalidParameterValue, "unsupported runtime " + config.runtime);
  }
  switch (runtime->family) {
    case registry::RuntimeFamily::kPython: {
      auto python = registry::resolve_interpreter(runtime->family);
      if (!python) return make_error(ErrorCode::kService, "python3 is not installed on this machine");
      return std::vector<std::string>{*python, "-u", paths.runtime + "/python/bootstrap.py"};
    }
    case registry::RuntimeFamily::kNode: {
      auto node = registry::resolve_interpreter(runtime->family);
      if (!node) return make_error(ErrorCode::kService, "node is not installed on this machine");
      return std::vector<std::string>{*node, paths.runtime + "/node/index.mjs"};
    }
    case registry::RuntimeFamily::kProvided: {
      const auto bootstrap = code_dir / "bootstrap";
      if (::access(bootstrap.c_str(), X_OK) != 0) {
        return make_error(ErrorCode::kInvalidParameterValue,
                          "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]");
      }
      return std::vector<std::string>{paths.task + "/bootstrap"};
    }
  }
  return make_error(ErrorCode::kService, "unreachable");
}

namespace {
// The variables Lambda sets unless the function sets them itself.
std::vector<std::pair<std::string, std::string>> default_environment(const registry::RuntimeInfo* runtime) {
  std::vector<std::pair<std::string, std::string>> env{
      {"TZ", ":UTC"},
      {"LANG", "en_US.UTF-8"},
      {"PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"},
      {"LD_LIBRARY_PATH", "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"}};
  if (runtime != nullptr && runtime->family == registry::RuntimeFamily::kNode) {
    env.emplace_back("NODE_PATH", "/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task");
  }
  return env;
}
}  // namespace

std::vector<std::string> Invoker::environment(const registry::FunctionConfig& c, const std::string& runtime_api,
                                              const Paths& paths, InitType init) const {
  std::vector<std::string> env;
  for (const auto& [k, v] : c.environment) env.push_back(k + "=" + v);
  const auto* runtime = registry::find_runtime(c.runtime);
  const std::int64_t now = clock_.now_ms();
  const std::string date = base::format_lambda_time(now).substr(0, 10);
  std::string stream = fmt::format("{}/{}/{}/[{}]{}", date.substr(0, 4), date.substr(5, 2), date.substr(8, 2),
                                   c.version, base::to_hex(base::random_bytes(16)));
  // Reserved variables come last and were refused at configuration time, so
  // a user can never override them.
  env.push_back("AWS_LAMBDA_RUNTIME_API=" + runtime_api);
  env.push_back("_HANDLER=" + c.handler);
  env.push_back("LAMBDA_TASK_ROOT=" + paths.task);
  env.push_back("LAMBDA_RUNTIME_DIR=" + paths.runtime);
  env.push_back("AWS_LAMBDA_FUNCTION_NAME=" + c.name);
  env.push_back("AWS_LAMBDA_FUNCTION_VERSION=" + c.version);
  env.push_back(fmt::format("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={}", c.memory_size));
  env.push_back("AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + c.name);
  env.push_back("AWS_LAMBDA_LOG_STREAM_NAME=" + stream);
  env.push_back(std::string("AWS_LAMBDA_INITIALIZATION_TYPE=") +
                (init == InitType::kProvisioned ? "provisioned-concurrency" : "on-demand"));
  env.push_back("AWS_REGION=" + config_.region);
  env.push_back("AWS_DEFAULT_REGION=" + config_.region);
  if (runtime != nullptr && runtime->family != registry::RuntimeFamily::kProvided) {
    env.push_back("AWS_EXECUTION_ENV=AWS_Lambda_" + c.runtime);
  }
  for (const auto& [key, value] : default_environment(runtime)) {
    if (c.environment.count(key) == 0) env.push_back(key + "=" + value);
  }
  return env;
}

std::optional<sandbox::RuntimeTemplate> Invoker::primed_runtime(const registry::FunctionConfig& config,
                                                                const std::vector<std::string>& command,
                                                                bool private_network) const {
  const auto* runtime = registry::find_runtime(config.runtime);
  if (!config_.primed_runtimes || private_network || !launcher_.isolation().namespaces || runtime == nullptr ||
      runtime->family == registry::RuntimeFamily::kProvided) {
    return std::nullopt;
  }
  // What the interpreter, its loader or libc read as they start: a primed
  // process started without the function's values.
  constexpr std::string_view kPrefixes[] = {"PYTHON", "NODE_", "LD_", "LC_", "MALLOC_", "UV_"};
  constexpr std::string_view kNames[] = {"LANG", "LANGUAGE", "TZ", "PATH", "GLIBC_TUNABLES", "AWS_LAMBDA_EXEC_WRAPPER"};
  for (const auto& [key, value] : config.environment) {
    for (const std::string_view prefix : kPrefixes) {
      if (key.starts_with(prefix)) return std::nullopt;
    }
    if (std::find(std::begin(kNames), std::end(kNames), key) != std::end(kNames)) return std::nullopt;
  }
  const Paths paths = paths_for({});
  sandbox::RuntimeTemplate primed{command,
                                  {"LAMBDA_TASK_ROOT=" + paths.task, "LAMBDA_RUNTIME_DIR=" + paths.runtime},
                                  config_.runtimes_dir};
  for (const auto& [key, value] : default_environment(runtime)) primed.env.push_back(key + "=" + value);
  return primed;
}

}  // namespace nimbus::invoker
