#pragma once
// Builds a deployment package (zip) from a directory, deterministically:
// entries sorted, timestamps fixed, so unchanged code gives the same
// CodeSha256 on every deploy.

#include <filesystem>
#include <string>

#include "base/result.h"

namespace nimbus::cli {

[[nodiscard]] base::Result<std::string> zip_directory(const std::filesystem::path& dir);
// A zip file as is, or a directory zipped.
[[nodiscard]] base::Result<std::string> load_package(const std::filesystem::path& path);

}  // namespace nimbus::cli
