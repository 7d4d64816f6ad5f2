#include "registry/runtimes.h"

#include <unistd.h>

#include <array>

namespace nimbus::registry {

const std::vector<RuntimeInfo>& supported_runtimes() {
  static const std::vector<RuntimeInfo> kRuntimes = {
      {"python3.11", RuntimeFamily::kPython},    {"python3.12", RuntimeFamily::kPython},
      {"python3.13", RuntimeFamily::kPython},    {"nodejs18.x", RuntimeFamily::kNode},
      {"nodejs20.x", RuntimeFamily::kNode},      {"nodejs22.x", RuntimeFamily::kNode},
      {"provided.al2", RuntimeFamily::kProvided}, {"provided.al2023", RuntimeFamily::kProvided},
  };
  return kRuntimes;
}

const RuntimeInfo* find_runtime(std::string_view id) {
  for (const auto& r : supported_runtimes()) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

std::string runtime_list() {
  std::string out = "[";
  for (const auto& r : supported_runtimes()) {
    if (out.size() > 1) out += ", ";
    out += r.id;
  }
  return out + "]";
}

std::optional<std::string> resolve_interpreter(RuntimeFamily family) {
  static constexpr std::array<const char*, 3> kDirs = {"/usr/bin/", "/usr/local/bin/", "/bin/"};
  const char* name = nullptr;
  switch (family) {
    case RuntimeFamily::kPython: name = "python3"; break;
    case RuntimeFamily::kNode: name = "node"; break;
    case RuntimeFamily::kProvided: return std::nullopt;
  }
  for (const char* dir : kDirs) {
    std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return std::nullopt;
}

}  // namespace nimbus::registry
