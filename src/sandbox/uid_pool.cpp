#include "sandbox/uid_pool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "base/files.h"

namespace nimbus::sandbox {

UidPool::UidPool(std::filesystem::path lock_dir, unsigned base, unsigned count)
    : dir_(std::move(lock_dir)), base_(base), count_(count) {}

UidPool::~UidPool() {
  std::lock_guard lock(mu_);
  for (const auto& [uid, fd] : held_) ::close(fd);
}

base::Result<unsigned> UidPool::acquire() {
  std::lock_guard lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return base::make_error(base::ErrorCode::kService,
                            "uid leases: create " + dir_.string() + ": " + ec.message());
  }
  for (unsigned tried = 0; tried < count_; ++tried) {
    const unsigned uid = base_ + (cursor_++ % count_);
    if (held_.count(uid) != 0) continue;
    const auto path = dir_ / std::to_string(uid);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return base::make_error(base::ErrorCode::kService, base::errno_message("open", path, errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      held_[uid] = fd;
      return uid;
    }
    ::close(fd);  // another daemon holds it
  }
  return base::make_error(base::ErrorCode::kTooManyRequests, "every instance uid is in use");
}

void UidPool::release(unsigned uid) {
  std::lock_guard lock(mu_);
  const auto it = held_.find(uid);
  if (it == held_.end()) return;
  ::close(it->second);  // drops the flock
  held_.erase(it);
}

std::size_t UidPool::leased() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

}  // namespace nimbus::sandbox
