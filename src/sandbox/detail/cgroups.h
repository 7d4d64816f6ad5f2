#pragma once
// cgroup handling for the launcher (internal to the sandbox part): finding the
// launcher's own groups (cgroup v1 per controller, or v2), creating the
// instances' parent group and one group per instance with its limits, moving
// a process in, reading OOM kills and peak memory, killing what is left, and
// removing the groups. Used by the launcher process only (single thread),
// except the peak-memory readers, which the daemon calls from any thread.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sandbox/launcher.h"

namespace nimbus::sandbox::detail {

// One cgroup file-system mount, from /proc/self/mountinfo.
struct CgroupMount {
  std::filesystem::path mount_point;
  std::string root;                      // the part of the hierarchy mounted there ("/" usually)
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: from the super options (memory, cpu, cpuacct, pids, ...)
};

// The launcher's own group per controller (the groups it lives in), as
// absolute paths in the mounted file systems.
struct OwnGroups {
  std::optional<std::filesystem::path> v1_memory, v1_cpu, v1_pids;
  std::optional<std::filesystem::path> v2;
};

[[nodiscard]] std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo);
// Maps the lines of /proc/self/cgroup to the mounts. Pure.
[[nodiscard]] OwnGroups locate_own_groups(const std::vector<CgroupMount>& mounts, std::string_view proc_self_cgroup);

// Where the instances' groups live: the parent group "<own>/<name>" per
// controller. For v2 memory, cpu and pids are the same directory.
struct CgroupLayout {
  CgroupVersion version = CgroupVersion::kNone;
  std::filesystem::path memory, cpu, pids;  // empty: controller not available
  std::vector<std::string> lost;            // sentences about missing controllers
};

// Reads /proc/self/mountinfo and /proc/self/cgroup, picks v1 (a v1 memory
// hierarchy is mounted) or v2 (memory is available in the own v2 group),
// creates "<own>/<name>" and, on v2, enables the memory, cpu and pids
// controllers for it (moving the daemon and the launcher into a leaf group
// "<own>/<name>-daemon" when the own group must have no processes of its
// own). kNone with an explanation in `lost` when none can be used.
[[nodiscard]] CgroupLayout prepare_cgroups(const std::string& name, int daemon_pid);

// Removes the parent groups again (best effort: they may still be in use).
void remove_parent_groups(const CgroupLayout& layout);

// Lambda's CPU allocation: proportional to memory, 1024 shares at 1769 MB.
[[nodiscard]] unsigned cpu_shares_for(std::uint64_t memory_bytes);
// cgroup v2 cpu.weight for v1 shares: 1024 -> 100, clamped to 1..10000.
[[nodiscard]] unsigned cpu_weight_for_shares(unsigned shares);

// An instance's CPU: its weight against others, and a cap (a CFS quota per
// kCpuPeriodMicros period, with as much again of burst for a spike after idling).
struct CpuLimits {
  unsigned shares = 1024;          // v1 cpu.shares units (v2: converted to cpu.weight)
  unsigned quota_millicores = 0;   // thousandths of a CPU; 0: no cap
};
inline constexpr unsigned kCpuPeriodMicros = 100000;
// The CFS quota in microseconds per kCpuPeriodMicros for `millicores` (the
// kernel's least is 1 ms).
[[nodiscard]] unsigned cpu_quota_micros(unsigned millicores);

// One instance's groups.
struct InstanceCgroup {
  CgroupVersion version = CgroupVersion::kNone;
  std::vector<std::filesystem::path> dirs;  // every group of the instance (v2: one)
  std::filesystem::path memory_dir;         // the one holding the memory controller
  std::filesystem::path cpu_dir, pids_dir;  // empty: controller not available (v2: = memory_dir)
};

// mkdir the instance's groups and write the limits. Errors (kService) name
// the step and the file, e.g. "sandbox step 'cgroup memory.limit_in_bytes'
// (/sys/fs/cgroup/memory/.../memory.limit_in_bytes): Invalid argument".
[[nodiscard]] base::Result<InstanceCgroup> create_instance_cgroup(const CgroupLayout& layout,
                                                                  const std::string& instance_id,
                                                                  std::uint64_t memory_bytes, CpuLimits cpu,
                                                                  unsigned pids_max);
// (Re)writes the limits of an existing group: memory (swap off), CPU
// weight and cap, pids. Lowering the memory limit below what the group uses fails.
[[nodiscard]] base::Status set_cgroup_limits(const InstanceCgroup& group, std::uint64_t memory_bytes,
                                             CpuLimits cpu, unsigned pids_max);
// Renames every group of the instance to `name`, beside where it is (a
// sandbox made ahead of time takes its instance's name). All or nothing:
// false, and nothing renamed, when one rename fails.
bool rename_instance_cgroup(InstanceCgroup& group, const std::string& name);
// Writes `pid` into cgroup.procs of every group of the instance.
[[nodiscard]] base::Status join_cgroup(const InstanceCgroup& group, int pid);
// Whether the OOM killer killed a process in the group (v1
// memory.oom_control, v2 memory.events: "oom_kill N", N > 0).
[[nodiscard]] bool cgroup_oom_killed(const InstanceCgroup& group);
// SIGKILLs every process in the group (v2 cgroup.kill when present).
void kill_cgroup(const InstanceCgroup& group);
// rmdir every group; true when all are gone.
[[nodiscard]] bool remove_cgroup(const InstanceCgroup& group);

// Peak memory in bytes of the group `instance_dir` (a memory group), 0 if unknown.
[[nodiscard]] std::uint64_t read_peak_memory(const std::filesystem::path& instance_dir, CgroupVersion version);
// The file read_peak_memory() reads, opened read-only (close-on-exec) for
// repeated reads with read_peak_memory_fd(); -1 if there is none.
[[nodiscard]] int open_peak_memory(const std::filesystem::path& instance_dir, CgroupVersion version);
// Reads a file from open_peak_memory() again from its start (cgroup files
// are generated anew on each read at offset 0); nullopt if that fails.
[[nodiscard]] std::optional<std::uint64_t> read_peak_memory_fd(int fd);

}  // namespace nimbus::sandbox::detail
