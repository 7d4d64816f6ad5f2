#pragma once
// The runtime clients shipped with nimbus (runtimes/ in the source tree),
// embedded in the binary at build time and written once into the data
// directory, where every instance sees them read-only at /var/runtime.

#include <filesystem>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace nimbus::invoker {

struct EmbeddedFile {
  std::string_view path;     // relative, e.g. "python/bootstrap.py"
  std::string_view content;
};

[[nodiscard]] const std::vector<EmbeddedFile>& runtime_files();

// Writes the files under <root>/<content hash>/ (once; read-only) and returns
// that directory.
[[nodiscard]] base::Result<std::filesystem::path> install_runtime_files(const std::filesystem::path& root);

}  // namespace nimbus::invoker
