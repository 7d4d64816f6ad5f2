#include "store/blob_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/files.h"

namespace nimbus::store {
namespace {

namespace fs = std::filesystem;
using base::ErrorCode;

constexpr std::string_view kNotAZip =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";
constexpr std::size_t kMaxComponentBytes = 255;  // NAME_MAX
constexpr std::size_t kMaxSymlinkBytes = 4095;   // PATH_MAX without the NUL
constexpr std::size_t kMaxEntryPathBytes = 4085;  // PATH_MAX without "/var/task/" and the NUL
constexpr int kMaxSymlinkHops = 40;              // the kernel's MAXSYMLINKS
constexpr std::size_t kReadChunk = 64 * 1024;

base::Error not_a_zip() {
  return base::make_error(ErrorCode::kInvalidParameterValue, std::string(kNotAZip));
}

base::Error bad_entry(std::string_view name, std::string_view what) {
  // A name may be thousands of bytes long: the message shows its ends.
  constexpr std::size_t kShownBytes = 160;
  const std::string shown = name.size() <= kShownBytes
                                ? std::string(name)
                                : fmt::format("{}...{}", name.substr(0, 100), name.substr(name.size() - 50));
  return base::make_error(ErrorCode::kInvalidParameterValue, fmt::format("Code package entry '{}' {}", shown, what));
}

base::Error fs_error(std::string_view step, const fs::path& path, int err) {
  return base::make_error(ErrorCode::kService, base::errno_message(step, path, err));
}

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes and reports close(2)'s errno (0 when fine): a failed close can mean
  // lost writes.
  int close() {
    const int fd = std::exchange(fd_, -1);
    return fd >= 0 && ::close(fd) != 0 ? errno : 0;
  }

 private:
  int fd_ = -1;
};

// Splits on '/', dropping empty and "." components.
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (!part.empty() && part != ".") out.emplace_back(part);
    start = end + 1;
  }
  return out;
}

std::string join_path(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) out.push_back('/');
    out += parts[i];
  }
  return out;
}

// Why a name cannot be used as a path inside the package, or nullopt.
std::optional<std::string_view> unsafe_name(std::string_view name, const std::vector<std::string>& parts) {
  if (!name.empty() && name.front() == '/') return "escapes the package root";
  // Inside an instance it is /var/task/<name>, which must fit PATH_MAX.
  if (name.size() > kMaxEntryPathBytes) return "has a path longer than 4085 bytes";
  for (const std::string& part : parts) {
    if (part == "..") return "escapes the package root";
    if (part.size() > kMaxComponentBytes) return "has a path component longer than 255 bytes";
  }
  return std::nullopt;
}

enum class EntryKind { kDirectory, kFile, kSymlink };

enum class LinkVerdict { kInside, kOutside, kLoop };

// Where a symlink of the package leads, followed through the package's other
// symlinks the way the kernel would: kOutside if it leaves the root at any
// step. `links` maps normalised symlink paths to their targets.
LinkVerdict resolve_link(const std::map<std::string, std::string>& links, const std::string& link_path) {
  std::vector<std::string> dir = split_path(link_path);
  dir.pop_back();  // a link's target is relative to the directory holding it
  const std::vector<std::string> first = split_path(links.at(link_path));
  std::deque<std::string> todo(first.begin(), first.end());
  int hops = 1;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == "..") {
      // `dir` holds only real directories (symlinks are expanded when met),
      // so ".." is its parent, and popping past the root leaves the package.
      if (dir.empty()) return LinkVerdict::kOutside;
      dir.pop_back();
      continue;
    }
    dir.push_back(std::move(part));
    const auto link = links.find(join_path(dir, dir.size()));
    if (link == links.end()) continue;
    if (++hops > kMaxSymlinkHops) return LinkVerdict::kLoop;
    if (!link->second.empty() && link->second.front() == '/') return LinkVerdict::kOutside;
    dir.pop_back();
    const std::vector<std::string> more = split_path(link->second);
    todo.insert(todo.begin(), more.begin(), more.end());
  }
  return LinkVerdict::kInside;
}

// Writes a checked package below a directory it owns, never following a
// symlink: every directory is opened with O_NOFOLLOW, files are created with
// O_EXCL | O_NOFOLLOW. Used by one thread.
class TreeWriter {
 public:
  explicit TreeWriter(fs::path root) : root_(std::move(root)) {}

  base::Status open() {
    root_fd_ = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_fd_.valid()) return fs_error("open", root_, errno);
    return base::Ok{};
  }

  base::Status directory(const std::vector<std::string>& parts) {
    auto dir = open_dirs(parts, parts.size());
    if (!dir.ok()) return std::move(dir).error();
    return base::Ok{};
  }

  base::Status begin_file(const std::vector<std::string>& parts, unsigned perm) {
    auto parent = open_dirs(parts, parts.size() - 1);
    if (!parent.ok()) return std::move(parent).error();
    file_path_ = root_ / join_path(parts, parts.size());
    file_mode_ = (perm & 0111) != 0 ? 0555 : 0444;
    file_ = Fd(::openat(parent->get(), parts.back().c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file_.valid()) return fs_error("create", file_path_, errno);
    return base::Ok{};
  }

  base::Status file_data(std::string_view chunk) {
    while (!chunk.empty()) {
      const ssize_t n = ::write(file_.get(), chunk.data(), chunk.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fs_error("write", file_path_, errno);
      }
      chunk.remove_prefix(static_cast<std::size_t>(n));
    }
    return base::Ok{};
  }

  base::Status end_file() {
    if (::fchmod(file_.get(), file_mode_) != 0) return fs_error("chmod", file_path_, errno);
    if (const int err = file_.close(); err != 0) return fs_error("close", file_path_, err);
    return base::Ok{};
  }

  base::Status symlink(const std::vector<std::string>& parts, const std::string& target) {
    auto parent = open_dirs(parts, parts.size() - 1);
    if (!parent.ok()) return std::move(parent).error();
    if (::symlinkat(target.c_str(), parent->get(), parts.back().c_str()) != 0) {
      return fs_error("symlink", root_ / join_path(parts, parts.size()), errno);
    }
    return base::Ok{};
  }

  base::Status hardlink(const std::vector<std::string>& parts, const std::string& target) {
    auto parent = open_dirs(parts, parts.size() - 1);
    if (!parent.ok()) return std::move(parent).error();
    // `target` is an earlier regular file whose parents are all real
    // directories (checked by the walk), so this lookup follows no symlink.
    if (::linkat(root_fd_.get(), target.c_str(), parent->get(), parts.back().c_str(), 0) != 0) {
      return fs_error("link", root_ / join_path(parts, parts.size()), errno);
    }
    return base::Ok{};
  }

  // Makes every directory read-only and flushes the tree to disk, so that a
  // published tree is complete after a crash.
  base::Status seal() {
    for (const std::string& dir : created_dirs_) {
      if (::fchmodat(root_fd_.get(), dir.c_str(), 0555, 0) != 0) {
        return fs_error("chmod", root_ / dir, errno);
      }
    }
    if (::fchmod(root_fd_.get(), 0555) != 0) return fs_error("chmod", root_, errno);
    if (::syncfs(root_fd_.get()) != 0) return fs_error("sync", root_, errno);
    return base::Ok{};
  }

 private:
  // Opens (creating as needed) the directory made of the first `count` parts.
  base::Result<Fd> open_dirs(const std::vector<std::string>& parts, std::size_t count) {
    Fd dir(::dup(root_fd_.get()));
    if (!dir.valid()) return fs_error("dup", root_, errno);
    for (std::size_t i = 0; i < count; ++i) {
      const char* name = parts[i].c_str();
      if (::mkdirat(dir.get(), name, 0755) == 0) {
        created_dirs_.push_back(join_path(parts, i + 1));
      } else if (errno != EEXIST) {
        return fs_error("mkdir", root_ / join_path(parts, i + 1), errno);
      }
      Fd next(::openat(dir.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) return fs_error("open", root_ / join_path(parts, i + 1), errno);
      dir = std::move(next);
    }
    return dir;
  }

  fs::path root_;
  Fd root_fd_;
  std::vector<std::string> created_dirs_;
  Fd file_;
  fs::path file_path_;
  unsigned file_mode_ = 0444;
};

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

// Reads every entry of the zip, applies the checks of inspect_zip and, when
// `writer` is set, writes each entry as soon as it passed its own checks.
// Checks that need the whole package (where symlinks lead) run at the end, so
// a failed walk must discard what `writer` wrote.
base::Result<ZipInfo> walk_zip(std::string_view bytes, std::uint64_t max_unzipped, TreeWriter* writer) {
  if (bytes.empty()) return not_a_zip();
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (a == nullptr) return base::make_error(ErrorCode::kService, "archive_read_new failed");
  // The seekable reader trusts the central directory, as unzip does.
  if (archive_read_support_format_zip_seekable(a.get()) != ARCHIVE_OK) {
    return base::make_error(ErrorCode::kService,
                            fmt::format("libarchive: {}", archive_error_string(a.get())));
  }
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return not_a_zip();
  }

  ZipInfo info;
  info.zipped_size = bytes.size();
  std::map<std::string, EntryKind> kinds;                       // every path so far, parents included
  std::map<std::string, std::string> links;                     // symlink path -> target
  std::vector<std::pair<std::string, std::string>> link_names;  // path, name in the zip
  std::string buf(kReadChunk, '\0');

  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return not_a_zip();
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) return not_a_zip();
    const std::string_view name = raw_name;
    const std::vector<std::string> parts = split_path(name);
    if (auto why = unsafe_name(name, parts)) return bad_entry(name, *why);

    const char* hardlink = archive_entry_hardlink(entry);
    const unsigned type = archive_entry_filetype(entry);
    EntryKind kind = EntryKind::kFile;
    if (hardlink != nullptr || type == AE_IFREG) {
      kind = EntryKind::kFile;
    } else if (type == AE_IFDIR) {
      kind = EntryKind::kDirectory;
    } else if (type == AE_IFLNK) {
      kind = EntryKind::kSymlink;
    } else if (type == AE_IFCHR || type == AE_IFBLK) {
      return bad_entry(name, "is a device file");
    } else if (type == AE_IFIFO) {
      return bad_entry(name, "is a fifo");
    } else if (type == AE_IFSOCK) {
      return bad_entry(name, "is a socket");
    } else {
      return bad_entry(name, "has an unsupported file type");
    }

    if (parts.empty()) {
      if (kind == EntryKind::kDirectory) continue;  // the root itself, "./"
      return bad_entry(name, "has an empty path");
    }
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const auto [it, added] = kinds.emplace(join_path(parts, i), EntryKind::kDirectory);
      if (!added && it->second != EntryKind::kDirectory) {
        return bad_entry(name, "is nested under a file or symlink entry");
      }
    }
    const std::string path = join_path(parts, parts.size());
    if (const auto [it, added] = kinds.emplace(path, kind); !added) {
      if (kind == EntryKind::kDirectory && it->second == EntryKind::kDirectory) continue;
      return bad_entry(name, "appears more than once in the package");
    }

    if (hardlink != nullptr) {
      const std::vector<std::string> target_parts = split_path(hardlink);
      const auto target = kinds.find(join_path(target_parts, target_parts.size()));
      if (unsafe_name(hardlink, target_parts) || target_parts.empty() || target == kinds.end() ||
          target->second != EntryKind::kFile) {
        return bad_entry(name, "is a hard link that points outside the package");
      }
      if (writer != nullptr) NIMBUS_TRY(writer->hardlink(parts, target->first));
      info.files.push_back(path);
      continue;
    }

    switch (kind) {
      case EntryKind::kDirectory:
        if (writer != nullptr) NIMBUS_TRY(writer->directory(parts));
        break;
      case EntryKind::kSymlink: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr || *target == '\0') return bad_entry(name, "is an empty symlink");
        if (*target == '/') return bad_entry(name, "is a symlink that points outside the package");
        if (std::strlen(target) > kMaxSymlinkBytes) {
          return bad_entry(name, "is a symlink with a target longer than 4095 bytes");
        }
        links.emplace(path, target);
        link_names.emplace_back(path, name);
        if (writer != nullptr) NIMBUS_TRY(writer->symlink(parts, target));
        break;
      }
      case EntryKind::kFile: {
        if (writer != nullptr) {
          NIMBUS_TRY(writer->begin_file(parts, static_cast<unsigned>(archive_entry_perm(entry))));
        }
        // Sizes in the headers are not trusted: count what decompression yields.
        for (;;) {
          const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
          if (n < 0) return not_a_zip();
          if (n == 0) break;
          info.unzipped_size += static_cast<std::uint64_t>(n);
          if (info.unzipped_size > max_unzipped) {
            return base::make_error(ErrorCode::kInvalidParameterValue,
                                    fmt::format("Unzipped size must be smaller than {} bytes", max_unzipped));
          }
          if (writer != nullptr) {
            NIMBUS_TRY(writer->file_data({buf.data(), static_cast<std::size_t>(n)}));
          }
        }
        if (writer != nullptr) NIMBUS_TRY(writer->end_file());
        info.files.push_back(path);
        break;
      }
    }
  }

  for (const auto& [path, name] : link_names) {
    switch (resolve_link(links, path)) {
      case LinkVerdict::kInside:
        break;
      case LinkVerdict::kOutside:
        return bad_entry(name, "is a symlink that points outside the package");
      case LinkVerdict::kLoop:
        return bad_entry(name, "is a symlink loop");
    }
  }
  return info;
}

// Makes a tree writable again (directories 0755) and deletes it; symlinks are
// removed, never followed.
base::Status remove_tree(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? base::Status(base::Ok{}) : fs_error("stat", path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (::chmod(path.c_str(), 0755) != 0) return fs_error("chmod", path, errno);
    // The iterator does not descend into symlinked directories.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat entry {};
      if (::lstat(it->path().c_str(), &entry) == 0 && S_ISDIR(entry.st_mode) &&
          ::chmod(it->path().c_str(), 0755) != 0) {
        return fs_error("chmod", it->path(), errno);
      }
    }
    if (ec) return fs_error("list", path, ec.value());
  }
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return fs_error("remove", path, ec.value());
  return base::Ok{};
}

base::Status fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return fs_error("open", dir, errno);
  if (::fsync(fd.get()) != 0) return fs_error("fsync", dir, errno);
  return base::Ok{};
}

bool is_directory_entry(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A name for a temporary file or directory that no other writer picks.
std::string temp_name(std::string_view kind, const std::string& hex) {
  return fmt::format(".{}-{}-{}", kind, hex, base::to_hex(base::random_bytes(8)));
}

}  // namespace

base::Result<ZipInfo> inspect_zip(std::string_view zip_bytes, std::uint64_t max_unzipped) {
  return walk_zip(zip_bytes, max_unzipped, nullptr);
}

BlobStore::BlobStore(std::filesystem::path root)
    : root_(std::move(root)), blobs_dir_(root_ / "blobs"), code_dir_(root_ / "code") {}

base::Status BlobStore::open() {
  for (const fs::path* dir : {&root_, &blobs_dir_, &code_dir_}) {
    std::error_code ec;
    fs::create_directories(*dir, ec);
    if (ec) return fs_error("create directory", *dir, ec.value());
    if (!is_directory_entry(*dir)) return fs_error("create directory", *dir, ENOTDIR);
  }
  return base::Ok{};
}

fs::path BlobStore::zip_path(const base::Sha256Digest& digest) const {
  return blobs_dir_ / (base::to_hex(digest) + ".zip");
}

bool BlobStore::contains(const base::Sha256Digest& digest) const {
  struct stat st {};
  return ::stat(zip_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

base::Result<base::Sha256Digest> BlobStore::put(std::string_view zip_bytes) {
  std::shared_lock lock(lifecycle_mu_);
  const base::Sha256Digest digest = base::sha256(zip_bytes);
  {
    std::lock_guard leases(leases_mu_);
    doomed_.erase(base::to_hex(digest));  // wanted again
  }
  if (contains(digest)) return digest;
  const fs::path path = zip_path(digest);
  // write_file_atomic's own temporary name is fixed, so each writer first
  // writes under a name of its own; the final rename is atomic and the
  // content is the same whoever wins.
  const fs::path tmp = blobs_dir_ / temp_name("tmp", base::to_hex(digest));
  NIMBUS_TRY(base::write_file_atomic(tmp, zip_bytes, 0444));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fs_error("rename", path, err);
  }
  NIMBUS_TRY(fsync_dir(blobs_dir_));
  return digest;
}

base::Result<std::string> BlobStore::read(const base::Sha256Digest& digest) const {
  if (!contains(digest)) {
    return base::make_error(ErrorCode::kResourceNotFound,
                            fmt::format("Code blob {} does not exist", base::to_hex(digest)));
  }
  return base::read_file(zip_path(digest));
}

base::Result<fs::path> BlobStore::unpacked(const base::Sha256Digest& digest) {
  std::shared_lock lock(lifecycle_mu_);
  return unpacked_locked(digest);
}

base::Result<CodeLease> BlobStore::lease(const base::Sha256Digest& digest) {
  std::shared_lock lock(lifecycle_mu_);
  auto dir = unpacked_locked(digest);
  if (!dir.ok()) return std::move(dir).error();
  std::lock_guard leases(leases_mu_);
  ++leases_[base::to_hex(digest)];
  return CodeLease(this, digest, std::move(*dir));
}

std::size_t BlobStore::pending_removals() const {
  std::lock_guard leases(leases_mu_);
  return doomed_.size();
}

void BlobStore::end_lease(const base::Sha256Digest& digest) {
  const std::string hex = base::to_hex(digest);
  {
    std::lock_guard leases(leases_mu_);
    const auto it = leases_.find(hex);
    if (it == leases_.end() || --it->second > 0) return;
    leases_.erase(it);
    if (doomed_.erase(hex) == 0) return;
  }
  // remove() looks again under its own lock: a lease taken meanwhile leaves
  // the removal to that one.
  if (auto removed = remove(digest); !removed.ok()) {
    spdlog::warn("blob store: removing {} after its last lease: {}", hex, removed.error().message);
  }
}

CodeLease::CodeLease(CodeLease&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)), digest_(other.digest_), path_(std::move(other.path_)) {}

CodeLease& CodeLease::operator=(CodeLease&& other) noexcept {
  if (this != &other) {
    release();
    store_ = std::exchange(other.store_, nullptr);
    digest_ = other.digest_;
    path_ = std::move(other.path_);
  }
  return *this;
}

CodeLease::~CodeLease() { release(); }

void CodeLease::release() {
  if (store_ != nullptr) std::exchange(store_, nullptr)->end_lease(digest_);
}

base::Result<fs::path> BlobStore::unpacked_locked(const base::Sha256Digest& digest) {
  const std::string hex = base::to_hex(digest);
  const fs::path dir = code_dir_ / hex;
  if (is_directory_entry(dir)) return dir;

  auto bytes = read(digest);
  if (!bytes.ok()) return std::move(bytes).error();
  if (base::sha256(*bytes) != digest) {
    return base::make_error(ErrorCode::kService,
                            fmt::format("blob {} does not match its digest", zip_path(digest).string()));
  }

  const fs::path tmp = code_dir_ / temp_name("tmp", hex);
  if (::mkdir(tmp.c_str(), 0755) != 0) return fs_error("mkdir", tmp, errno);
  base::Status written = [&]() -> base::Status {
    TreeWriter writer(tmp);
    NIMBUS_TRY(writer.open());
    NIMBUS_TRY(walk_zip(*bytes, kMaxUnzippedSize, &writer));
    return writer.seal();
  }();
  if (!written.ok()) {
    (void)remove_tree(tmp);  // the walk's error is the one worth reporting
    return std::move(written).error();
  }
  // Same parent, so renaming a read-only directory needs no write permission
  // on it.
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    const int err = errno;
    (void)remove_tree(tmp);
    if ((err == EEXIST || err == ENOTEMPTY) && is_directory_entry(dir)) return dir;  // lost a race
    return fs_error("rename", dir, err);
  }
  NIMBUS_TRY(fsync_dir(code_dir_));
  return dir;
}

base::Status BlobStore::remove(const base::Sha256Digest& digest) {
  std::unique_lock lock(lifecycle_mu_);
  const std::string hex = base::to_hex(digest);
  {
    std::lock_guard leases(leases_mu_);
    if (leases_.count(hex) != 0) {
      doomed_.insert(hex);  // a sandbox still mounts it
      return base::Ok{};
    }
  }
  const fs::path dir = code_dir_ / hex;
  if (is_directory_entry(dir)) {
    // Move the tree aside first so that nobody sees it half deleted.
    const fs::path trash = code_dir_ / temp_name("trash", hex);
    if (::rename(dir.c_str(), trash.c_str()) != 0) return fs_error("rename", dir, errno);
    NIMBUS_TRY(remove_tree(trash));
  }
  const fs::path path = zip_path(digest);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fs_error("unlink", path, errno);
  return base::Ok{};
}

}  // namespace nimbus::store
