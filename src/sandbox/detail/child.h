#pragma once
// The child side of a spawn (internal to the sandbox part). The launcher
// builds a ChildPlan — every path, string, argument array and flag the child
// needs — before clone(); the child then runs run_child(), which uses only
// async-signal-safe system calls (no allocation, no locks, no stdio) until
// execve. A failing step is written to the error pipe as a ChildFailure.

#include <linux/filter.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/launcher.h"

namespace nimbus::sandbox::detail {

// What the host offers to build an instance's root from; probed once.
struct HostLayout {
  std::string scratch_root;  // empty directory where each child mounts its new root
  // Top-level entries beside /usr: usrmerge symlinks (name, target) or real
  // directories bound read-only.
  std::vector<std::pair<std::string, std::string>> top_symlinks;
  std::vector<std::string> top_dirs;
  // /etc essentials that exist: bound files, bound directories, symlinks
  // recreated as they are (their targets lie under /usr). passwd and group
  // are not among them: each instance gets its own (see build_child_plan).
  std::vector<std::string> etc_files, etc_dirs;
  std::vector<std::pair<std::string, std::string>> etc_symlinks;
  std::vector<std::string> dev_nodes;  // null, zero, full, random, urandom (those that exist)
};

// Looks at the host's / and /etc. `scratch_root` must exist.
[[nodiscard]] HostLayout probe_host_layout(std::string scratch_root);

// One file-system step of the child, run before pivot_root.
struct ChildOp {
  enum class Kind : std::uint8_t {
    kMkdir,         // mkdir(target, mode)
    kTouch,         // create an empty file at target (a bind-mount point)
    kWriteFile,     // create target with `data` as its content, mode `mode`
    kSymlink,       // symlink(source, target)
    kMount,         // mount(source, target, fstype, flags, data)
    kBindReadOnly,  // bind source on target, then remount read-only with `flags` added
    kBind,          // bind source on target
    kRemountReadOnly,  // remount the mount at target read-only with `flags` added
  };
  Kind kind = Kind::kMkdir;
  const char* source = nullptr;
  const char* target = nullptr;
  const char* fstype = nullptr;
  unsigned long flags = 0;
  const char* data = nullptr;
  unsigned mode = 0755;
  bool recursive = false;            // binds: take the mounts below source along
  const char* step = nullptr;        // "mount /var/task"
  const char* shown_path = nullptr;  // the path named in an error (the host path for binds)
};

// Written by a failing child to the error pipe (one atomic write).
struct ChildFailure {
  char step[64];
  char path[1024];
  int error;
};

// Everything the child needs, prepared before clone(). Owns its strings.
struct ChildPlan {
  bool namespaces = false;
  bool network_none = false;
  bool switch_uid = false;
  bool seccomp = false;
  std::vector<ChildOp> ops;          // run in order, before pivot_root
  // ops[0, instance_ops_begin) build what every instance's root has in
  // common (/usr, /etc, /dev, /proc, mount points); the rest are the
  // instance's own (its code, /tmp of its size, its /etc/passwd). A pooled
  // shell runs the first part ahead of time.
  std::size_t instance_ops_begin = 0;
  const char* new_root = nullptr;    // where ops built the root
  const char* put_old = nullptr;     // new_root/.old
  const char* workdir = nullptr;     // "/var/task", or the host code_dir without namespaces
  const char* exec_path = nullptr;   // argv[0]
  std::vector<char*> argv;           // NUL-terminated arrays
  std::vector<char*> envp;
  int sync_fd = -1;                  // read end: one byte = go (cgroup joined); EOF = abort
  int sync_write_fd = -1;            // the launcher's end, closed in the child
  int error_fd = -1;                 // write end, O_CLOEXEC: EOF at the launcher = exec succeeded
  int error_read_fd = -1;            // the launcher's end, closed in the child
  int output_fd = -1;                // -1: /dev/null
  std::vector<int> inherit_fds;      // to fds 3, 4, ...
  std::vector<int> ignored_signals;  // SIG_IGN in the launcher: back to SIG_DFL (exec keeps SIG_IGN)
  mutable std::vector<int> scratch_fds;  // room for the fd shuffle (no allocation in the child)
  unsigned uid = 0, gid = 0;
  rlim_t nofile = 1024;
  rlim_t nproc = 0;                  // 0: leave RLIMIT_NPROC alone
  sock_fprog seccomp_program{};      // valid when seccomp
  // Storage behind every const char* above: heap buffers that stay where
  // they are when the plan moves (the plan cannot be copied).
  std::vector<std::unique_ptr<char[]>> strings;

  const char* keep(std::string_view s) {
    auto copy = std::make_unique<char[]>(s.size() + 1);
    std::memcpy(copy.get(), s.data(), s.size());
    copy[s.size()] = '\0';
    return strings.emplace_back(std::move(copy)).get();
  }
};

struct ChildOptions {
  std::vector<int> ignored_signals;
  bool namespaces = false;
  bool private_network = false;  // the child is in a new network namespace: bring lo up
  bool switch_uid = false;
  const std::vector<sock_filter>* seccomp_program = nullptr;  // null: no filter
};

// The mount options of an instance's /tmp of `bytes`.
[[nodiscard]] std::string tmpfs_options(std::uint64_t bytes);

// Builds the plan for `spec`; uid/gid are the final ids. The fds are filled
// in by the caller (sync/error pipes).
[[nodiscard]] ChildPlan build_child_plan(const InstanceSpec& spec, const HostLayout& host,
                                         const ChildOptions& options, unsigned uid, unsigned gid);

// The child after clone(): never returns; execs or _exits (127 after
// reporting a failure, 126 when the launcher went away). The three stages
// below in one go.
[[noreturn]] void run_child(const ChildPlan& plan) noexcept;

// Stages of run_child, for a pooled shell that stops between them:
// begin_child closes the launcher's pipe ends, resets signals, waits for the
// go byte (cgroup joined), starts a session and, with namespaces, makes the
// mounts private; run_child_ops runs ops[from, to); finish_child builds
// nothing more: it pivots into the new root, sets up descriptors, rlimits,
// uid, no_new_privs, seccomp and execs.
void begin_child(const ChildPlan& plan) noexcept;
// A pooled shell after clone(), with `shared` built for no instance in
// particular: begins, builds ops[0, instance_ops_begin) and waits on
// `control_fd` for one message {"spec":{...}, "uid":n, "gid":n} with the
// spec's descriptors attached (protocol.h). It then builds that instance's
// plan, runs its own ops and finishes like run_child. EOF on `control_fd`
// (the launcher is gone) ends it with 126. A shell is a fork of the
// single-threaded launcher, so while it waits it may allocate; from its
// plan on it keeps run_child's rules.
[[noreturn]] void run_shell(const ChildPlan& shared, int control_fd, const HostLayout& host,
                            const ChildOptions& options) noexcept;
void run_child_ops(const ChildPlan& plan, std::size_t from, std::size_t to) noexcept;
[[noreturn]] void finish_child(const ChildPlan& plan) noexcept;

}  // namespace nimbus::sandbox::detail
