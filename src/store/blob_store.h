#pragma once
// Content-addressed code packages: safe inspection of untrusted zip files and
// the BlobStore that keeps each package once, by SHA-256, next to its unpacked
// read-only tree.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/crypto.h"
#include "base/result.h"

namespace nimbus::store {

// Lambda's limit on the unzipped size of a code package (250 MiB).
inline constexpr std::uint64_t kMaxUnzippedSize = 262144000;

// What inspect_zip learned about a package.
struct ZipInfo {
  std::uint64_t zipped_size = 0;
  std::uint64_t unzipped_size = 0;  // sum of regular file sizes, as bytes actually read
  std::vector<std::string> files;   // regular-file paths, normalised, relative, in zip order
};

// Reads a zip in memory, decompressing every file, and writes nothing.
// Rejects with ErrorCode::kInvalidParameterValue, naming the entry: input that
// is not a readable zip; absolute paths and paths with a ".." component;
// symlinks whose target is absolute or resolves (through other symlinks of
// the package too) outside the package root; hard links to anything but an
// earlier file; device files, fifos and sockets; paths given twice or nested
// under a file or symlink entry; and, as soon as the running count of bytes
// actually decompressed passes `max_unzipped`, the whole package.
// Pure function of its input, callable from any thread.
[[nodiscard]] base::Result<ZipInfo> inspect_zip(std::string_view zip_bytes,
                                                std::uint64_t max_unzipped = kMaxUnzippedSize);

class BlobStore;

// Keeps a package's unpacked directory on disk while held (BlobStore::lease):
// a remove() of the package waits for its last lease to end. Movable; any
// thread. The BlobStore must outlive its leases.
class CodeLease {
 public:
  CodeLease() = default;
  CodeLease(CodeLease&& other) noexcept;
  CodeLease& operator=(CodeLease&& other) noexcept;
  CodeLease(const CodeLease&) = delete;
  CodeLease& operator=(const CodeLease&) = delete;
  ~CodeLease();

  // The read-only unpacked directory; empty for a default-constructed lease.
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  friend class BlobStore;
  CodeLease(BlobStore* store, base::Sha256Digest digest, std::filesystem::path path)
      : store_(store), digest_(digest), path_(std::move(path)) {}
  void release();

  BlobStore* store_ = nullptr;
  base::Sha256Digest digest_{};
  std::filesystem::path path_;
};

// Code packages stored once by SHA-256 under a root directory:
//   <root>/blobs/<hex sha256>.zip   the zip, written atomically, mode 0444
//   <root>/code/<hex sha256>/       unpacked once: files 0444 (0555 when the zip
//                                   marks them executable), directories 0555
// Built by the daemon's composition root, which owns it for the daemon's
// lifetime; registry and invoker call it from any thread. Concurrent put() and
// unpacked() of the same digest are safe (temporary name + rename; the loser
// of a race throws its copy away). remove() waits for put() and unpacked()
// calls of this object in flight; other processes must not share the root.
class BlobStore {
 public:
  // `root` is created by open(); nothing touches the disk before that.
  explicit BlobStore(std::filesystem::path root);

  // Creates <root>, <root>/blobs and <root>/code. Errors (kService) name the
  // path and errno.
  [[nodiscard]] base::Status open();

  // Stores the zip unless its digest is present, and returns the digest
  // (SHA-256 of `zip_bytes`). Does not inspect the bytes: callers run
  // inspect_zip first.
  [[nodiscard]] base::Result<base::Sha256Digest> put(std::string_view zip_bytes);

  // Whether the zip of `digest` is stored.
  [[nodiscard]] bool contains(const base::Sha256Digest& digest) const;

  // The stored zip; kResourceNotFound when absent, kService when unreadable.
  [[nodiscard]] base::Result<std::string> read(const base::Sha256Digest& digest) const;

  // Where the zip of `digest` is (or would be) stored.
  [[nodiscard]] std::filesystem::path zip_path(const base::Sha256Digest& digest) const;

  // The read-only directory holding the unpacked package, unpacking it on the
  // first call. Checks the blob against its digest and applies every check of
  // inspect_zip (symlinks that stay inside the package are kept); writes never
  // follow a symlink. Errors: kResourceNotFound (no such blob),
  // kInvalidParameterValue (unsafe zip), kService (disk, tampered blob).
  [[nodiscard]] base::Result<std::filesystem::path> unpacked(const base::Sha256Digest& digest);

  // unpacked(), and the directory stays until the lease ends: what a sandbox
  // that mounts it holds for its lifetime.
  [[nodiscard]] base::Result<CodeLease> lease(const base::Sha256Digest& digest);

  // Removes the zip and its unpacked directory; removing an absent digest
  // succeeds. While the package is leased, the removal is left to the end of
  // its last lease, and a put() of the same package before then cancels it.
  [[nodiscard]] base::Status remove(const base::Sha256Digest& digest);

  // Packages whose removal waits for their leases to end.
  [[nodiscard]] std::size_t pending_removals() const;

 private:
  friend class CodeLease;
  base::Result<std::filesystem::path> unpacked_locked(const base::Sha256Digest& digest);
  // A lease ended: the removal left to it happens now.
  void end_lease(const base::Sha256Digest& digest);

  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path code_dir_;
  // Shared by put()/unpacked(), exclusive in remove(), so that a removal never
  // interleaves with a write of this object.
  mutable std::shared_mutex lifecycle_mu_;
  // Leases per package (hex digest), and the removals waiting for them.
  mutable std::mutex leases_mu_;
  std::unordered_map<std::string, int> leases_;  // GUARDED_BY(leases_mu_)
  std::unordered_set<std::string> doomed_;       // GUARDED_BY(leases_mu_)
};

}  // namespace nimbus::store
