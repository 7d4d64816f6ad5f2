#pragma once
// The runtimes nimbus accepts and what each runs on this machine.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus::registry {

enum class RuntimeFamily { kPython, kNode, kProvided };

struct RuntimeInfo {
  std::string_view id;      // Lambda's identifier, e.g. "python3.12"
  RuntimeFamily family;
};

// Every supported runtime, in the order error messages list them.
[[nodiscard]] const std::vector<RuntimeInfo>& supported_runtimes();
[[nodiscard]] const RuntimeInfo* find_runtime(std::string_view id);
// "[python3.11, python3.12, ...]" for error messages.
[[nodiscard]] std::string runtime_list();
// Absolute path of the interpreter a family runs (python3, node) on this
// machine, resolved by searching fixed system directories, never a PATH shim;
// nullopt when it is not installed. kProvided has none (the package's bootstrap).
[[nodiscard]] std::optional<std::string> resolve_interpreter(RuntimeFamily family);

}  // namespace nimbus::registry
