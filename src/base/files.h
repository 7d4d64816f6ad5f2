#pragma once
// Small file-system helpers with errors named after the path and errno.

#include <filesystem>
#include <string>
#include <string_view>

#include "base/result.h"

namespace nimbus::base {

[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path);
// Writes to a temporary file beside `path`, fsyncs it and renames it over
// `path`, so readers see the old or the new content, never a torn one.
[[nodiscard]] Status write_file_atomic(const std::filesystem::path& path, std::string_view data,
                                       unsigned mode = 0644);
// "open /x/y: No such file or directory"
[[nodiscard]] std::string errno_message(std::string_view step, const std::filesystem::path& path,
                                        int err);

}  // namespace nimbus::base
