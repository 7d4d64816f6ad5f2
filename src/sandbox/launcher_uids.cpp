// The launcher's uids (internal to the sandbox part): which uid and gid an
// instance runs as, the host-wide leases of primed runtimes and fork
// templates (UidPool), and giving them back. The rest of the launcher is in
// launcher_process.cpp.

#include <unistd.h>

#include <fmt/format.h>

#include "sandbox/detail/launcher_process.h"

namespace nimbus::sandbox::detail {

base::Result<std::pair<unsigned, unsigned>> LauncherProcess::pick_ids(const InstanceSpec& spec) {
  if (!report_.uid_switch) return std::pair<unsigned, unsigned>{::geteuid(), ::getegid()};
  if (spec.uid != 0) {
    if (used_uids_.count(spec.uid) != 0) {
      return base::make_error(base::ErrorCode::kResourceConflict,
                              fmt::format("sandbox: uid {} is in use by another instance", spec.uid));
    }
    return std::pair<unsigned, unsigned>{spec.uid, spec.gid != 0 ? spec.gid : spec.uid};
  }
  for (unsigned i = 0; i < config_.uid_count; ++i) {
    const unsigned uid = config_.uid_base + (next_uid_offset_ + i) % config_.uid_count;
    if (used_uids_.count(uid) == 0) {
      next_uid_offset_ = (next_uid_offset_ + i + 1) % config_.uid_count;
      return std::pair<unsigned, unsigned>{uid, uid};
    }
  }
  return base::make_error(base::ErrorCode::kTooManyRequests,
                          fmt::format("sandbox: all {} uids of the pool are in use", config_.uid_count));
}

void LauncherProcess::release_uid(const Instance& instance) {
  if (report_.uid_switch) used_uids_.erase(instance.uid);
  if (instance.leased_uid) uid_leases_.release(instance.uid);
}

base::Result<unsigned> LauncherProcess::lease_uid() {
  if (!report_.uid_switch) return ::geteuid();
  // uid_leases_ is host-wide; used_uids_ also holds uids given in specs.
  std::vector<unsigned> skipped;
  base::Result<unsigned> leased = base::make_error(base::ErrorCode::kTooManyRequests, "no uid");
  for (int i = 0; i < 64; ++i) {
    leased = uid_leases_.acquire();
    if (!leased.ok() || used_uids_.count(*leased) == 0) break;
    skipped.push_back(*leased);
  }
  for (const unsigned uid : skipped) uid_leases_.release(uid);
  if (leased.ok()) used_uids_.insert(*leased);
  return leased;
}

}  // namespace nimbus::sandbox::detail
