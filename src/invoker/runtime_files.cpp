#include "invoker/runtime_files.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "base/crypto.h"
#include "base/files.h"

namespace nimbus::invoker {

base::Result<std::filesystem::path> install_runtime_files(const std::filesystem::path& root) {
  base::Sha256 hash;
  for (const auto& f : runtime_files()) {
    hash.update(f.path);
    hash.update(std::string_view("\0", 1));
    hash.update(f.content);
  }
  const auto dir = root / base::to_hex(hash.finish()).substr(0, 16);
  if (std::filesystem::exists(dir / ".complete")) return dir;
  const auto tmp = root / fmt::format("tmp-{}", base::to_hex(base::random_bytes(6)));
  std::error_code ec;
  for (const auto& f : runtime_files()) {
    const auto path = tmp / f.path;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return base::make_error(base::ErrorCode::kService, fmt::format("create {}: {}", path.parent_path().string(), ec.message()));
    NIMBUS_TRY(base::write_file_atomic(path, f.content, 0444));
  }
  NIMBUS_TRY(base::write_file_atomic(tmp / ".complete", "", 0444));
  std::filesystem::rename(tmp, dir, ec);
  if (ec) {
    std::filesystem::remove_all(tmp, ec);
    if (std::filesystem::exists(dir / ".complete")) return dir;  // another process won the race
    return base::make_error(base::ErrorCode::kService, fmt::format("install runtimes into {}", dir.string()));
  }
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) ::chmod(it->path().c_str(), 0555);
  }
  ::chmod(dir.c_str(), 0555);
  return dir;
}

}  // namespace nimbus::invoker
