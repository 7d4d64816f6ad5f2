#include "cli/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "base/files.h"

namespace nimbus::cli {

using base::ErrorCode;
using base::make_error;

namespace {
constexpr std::time_t kFixedMtime = 315532800;  // 1980-01-01, the zip epoch

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

la_ssize_t append_to_string(archive*, void* client, const void* buf, size_t len) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}
}  // namespace

base::Result<std::string> zip_directory(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) || it->is_symlink(ec)) files.push_back(it->path());
  }
  if (ec) return make_error(ErrorCode::kInvalidParameterValue, fmt::format("read {}: {}", dir.string(), ec.message()));
  if (files.empty()) {
    return make_error(ErrorCode::kInvalidParameterValue, fmt::format("{} holds no files to deploy", dir.string()));
  }
  std::sort(files.begin(), files.end());

  std::string out;
  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  archive_write_set_format_zip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open2(a.get(), &out, nullptr, append_to_string, nullptr, nullptr) != ARCHIVE_OK) {
    return make_error(ErrorCode::kService, fmt::format("zip: {}", archive_error_string(a.get())));
  }
  for (const auto& file : files) {
    const std::string rel = file.lexically_relative(dir).generic_string();  // never follows symlinks
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
      return make_error(ErrorCode::kInvalidParameterValue, base::errno_message("stat", file, errno));
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), rel.c_str());
    archive_entry_set_mtime(entry.get(), kFixedMtime, 0);
    std::string content;
    if (S_ISLNK(st.st_mode)) {
      const auto target = std::filesystem::read_symlink(file, ec);
      if (ec) return make_error(ErrorCode::kInvalidParameterValue, fmt::format("readlink {}: {}", file.string(), ec.message()));
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_perm(entry.get(), 0777);
      archive_entry_set_symlink(entry.get(), target.c_str());
    } else {
      auto data = base::read_file(file);
      if (!data.ok()) return std::move(data).error();
      content = std::move(*data);
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_perm(entry.get(), (st.st_mode & 0111) ? 0755 : 0644);
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    }
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK ||
        (!content.empty() &&
         archive_write_data(a.get(), content.data(), content.size()) != static_cast<la_ssize_t>(content.size()))) {
      return make_error(ErrorCode::kService, fmt::format("zip {}: {}", rel, archive_error_string(a.get())));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return make_error(ErrorCode::kService, fmt::format("zip: {}", archive_error_string(a.get())));
  }
  return out;
}

base::Result<std::string> load_package(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return zip_directory(path);
  if (!std::filesystem::exists(path, ec)) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("{}: no such file or directory", path.string()));
  }
  auto data = base::read_file(path);
  if (!data.ok()) return make_error(ErrorCode::kInvalidParameterValue, data.error().message);
  return data;
}

}  // namespace nimbus::cli
