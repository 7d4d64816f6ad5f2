#pragma once
// UidPool: host-wide leases of the unprivileged uids instances run as. A uid
// is leased while this process holds an flock on <dir>/<uid>, so two daemons
// on one host never hand out the same uid (the Runtime API trusts a uid to
// identify one instance), and a crashed daemon's leases vanish with it.
// Thread-safe; owned by the daemon's invoker.

#include <filesystem>
#include <map>
#include <mutex>

#include "base/result.h"

namespace nimbus::sandbox {

// The uids instances run as, leased host-wide through lock files in
// kUidLockDir by every nimbus daemon and its launcher.
inline constexpr const char* kUidLockDir = "/run/nimbus/uids";
inline constexpr unsigned kInstanceUidBase = 800000;
inline constexpr unsigned kInstanceUidCount = 100000;

class UidPool {
 public:
  UidPool(std::filesystem::path lock_dir, unsigned base, unsigned count);
  ~UidPool();
  UidPool(const UidPool&) = delete;
  UidPool& operator=(const UidPool&) = delete;

  // A free uid (kTooManyRequests when all are leased; kService when the lock
  // directory cannot be used, naming it).
  [[nodiscard]] base::Result<unsigned> acquire();
  // Gives a uid back once no process of it is left.
  void release(unsigned uid);
  [[nodiscard]] std::size_t leased() const;

 private:
  std::filesystem::path dir_;
  unsigned base_;
  unsigned count_;
  mutable std::mutex mu_;
  std::map<unsigned, int> held_;  // GUARDED_BY(mu_): uid -> locked fd
  unsigned cursor_ = 0;           // GUARDED_BY(mu_)
};

}  // namespace nimbus::sandbox
