#pragma once
// The sandbox part's public interface: the Launcher, a handle on the
// single-threaded launcher process that creates and destroys isolated
// function instances (namespaces, cgroups, seccomp, mounts, rlimits, uids).
//
// The multi-threaded daemon never forks. Launcher::start() forks the launcher
// process once, early in main(), before any thread exists; from then on the
// daemon asks it for instances over a Unix socketpair and learns about their
// exits over a second one. See docs/isolation.md for what an instance gets.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "sandbox/uid_pool.h"

namespace nimbus::sandbox {

enum class NetworkMode {
  kHost,  // the host's network namespace
  kNone,  // a new network namespace holding only the loopback interface (up); where the host
          // allows no network namespaces, the host's network (isolation().lost says so)
};

enum class CgroupVersion { kNone, kV1, kV2 };

// What the launcher may use. kAuto takes every isolation the host allows;
// kProcessOnly never uses namespaces, cgroups or uid switching even as root
// (what an unprivileged daemon gets; tests use it to exercise that path).
enum class LauncherMode { kAuto, kProcessOnly };

// One function instance to create. Validated by spawn() before it reaches
// the launcher (kInvalidParameterValue on a bad field).
struct InstanceSpec {
  // [a-z0-9-]{1,64}, unique among live instances. It names the instance's
  // cgroups, and the cpu/pids parents may be shared by every daemon on the
  // host that uses the same cgroup_name: make it unique per host.
  std::string instance_id;
  std::vector<std::string> argv;              // argv[0]: absolute path as seen inside the sandbox
  std::vector<std::string> env;               // "KEY=VALUE", the complete environment
  // Host directories, mounted read-only at /var/task (the cwd) and
  // /var/runtime (empty: none). Without namespaces (isolation().namespaces
  // false) nothing is mounted: the instance runs in code_dir itself and
  // argv must use host paths.
  std::filesystem::path code_dir;
  std::filesystem::path runtime_dir;
  std::uint64_t memory_bytes = 128ull << 20;  // hard limit, swap off
  std::uint64_t tmp_bytes = 512ull << 20;     // size of the private tmpfs /tmp
  // Relative CPU weight in cgroup v1 cpu.shares units (1024 = one vCPU, as
  // Lambda gives at 1769 MB); converted to cpu.weight on cgroup v2
  // (1024 -> 100). 0: derived from memory_bytes, max(2, MB * 1024 / 1769).
  unsigned cpu_weight = 0;
  // A cap on the CPU it may use, in thousandths of a CPU (a CFS quota:
  // v1 cpu.cfs_quota_us, v2 cpu.max; as much again of burst). 0: no cap.
  unsigned cpu_limit_millicores = 0;
  unsigned pids_max = 1024;                   // cgroup pids.max, and RLIMIT_NPROC when the uid is private
  unsigned uid = 0, gid = 0;                  // ids to run as; 0: the launcher picks a free uid from its
                                              // pool (gid = uid), unique per live instance
  NetworkMode network = NetworkMode::kHost;
  int output_fd = -1;                         // stdout and stderr of the instance (-1: /dev/null)
  std::vector<int> inherit_fds;               // passed to the instance at fd 3, 4, ... (at most 64)
  // A primed runtime claimed with Launcher::claim_primed() for this
  // instance (0: none). Its uid must be the claim's; argv is then the
  // template's, already running. Ignored (the claim released, a fresh
  // process started as the claim's uid) for NetworkMode::kNone or
  // inherited descriptors, and when the primed process died meanwhile.
  std::uint64_t primed_id = 0;
  // Fork of an initialised instance (docs/isolation.md): instances whose
  // specs carry the same non-empty key are forked from one fork template,
  // a process of the first such spec's command that ran the function's init
  // once and waits (the runtime must support it: nimbus's Python client
  // does). While that template is not ready, or where forking is not
  // possible (IsolationReport::fork false, NetworkMode::kNone, inherited
  // descriptors), the instance starts as without a key, and the launcher
  // starts the template in the background after it. Make the key name the
  // function's code and configuration exactly: a template serves every
  // spec with its key, whatever else the spec says.
  std::string fork_key;
};

// A runtime process that can be started ahead of time, before it is known
// which function it will run ("primed"): the interpreter and nimbus's
// runtime client loaded, in a sandbox of its own (namespaces, its cgroup,
// its uid, seccomp) whose /var/task is still empty and /tmp not mounted.
//
// The process finds NIMBUS_PRIMED_FD=3 in its environment: fd 3 is a stream
// socket to the launcher. It writes one byte there once it is ready, then
// reads until EOF one JSON object {"env": ["KEY=VALUE", ...]}: the
// instance's complete environment, which replaces its own. By then the
// function's code is mounted at /var/task (the process must chdir there
// again), /tmp is mounted, the cgroup has the function's limits and
// stdout/stderr lead to the instance's output (SpawnedInstance::output_fd).
struct RuntimeTemplate {
  std::vector<std::string> argv;      // argv[0]: absolute path inside the sandbox
  std::vector<std::string> env;       // "KEY=VALUE": what the process starts with
  std::filesystem::path runtime_dir;  // mounted at /var/runtime (empty: none)
};

// One primed runtime taken for an instance: pass id as InstanceSpec::
// primed_id and uid as InstanceSpec::uid, or hand it back with
// Launcher::release_primed().
struct PrimedClaim {
  std::uint64_t id = 0;
  unsigned uid = 0;
};

// With NetworkMode::kNone the instance cannot reach the host's loopback, so
// the launcher opens its Runtime API socket inside the instance's own network
// namespace, on this address; the caller adopts the listening descriptor.
inline constexpr const char* kPrivateRuntimeApiAddress = "127.0.0.1:9001";

struct SpawnedInstance {
  int pid = 0;       // in the daemon's pid namespace
  unsigned uid = 0;  // the uid the instance runs as
  int runtime_listener_fd = -1;  // NetworkMode::kNone only: listening on kPrivateRuntimeApiAddress
                                 // inside the instance's network namespace; the caller owns it
  bool pooled = false;           // it got a sandbox made ahead of time (LauncherConfig::pool_size)
  bool primed = false;           // it is a primed runtime (InstanceSpec::primed_id)
  bool forked = false;           // it was forked from its fork template (InstanceSpec::fork_key)
  // Primed only: the read end of the instance's stdout/stderr, which was
  // wired before the instance was known; read it instead of the pipe
  // behind InstanceSpec::output_fd (which stays unused). The caller owns it.
  int output_fd = -1;
};

// An instance's first process ended; everything of the instance is gone and
// its cgroup removed. oom_killed: the kernel's OOM killer killed a process of
// the instance's memory cgroup (the instance ran out of memory).
struct ExitEvent {
  int pid = 0;
  int wait_status = 0;  // as from waitpid: WIFEXITED/WIFSIGNALED...
  bool oom_killed = false;
  std::string instance_id;
  std::uint64_t peak_memory_bytes = 0;  // the cgroup's peak, read before it was removed
};

// What isolation the host allows, probed once by the launcher at start.
struct IsolationReport {
  bool root = false;               // the launcher runs with euid 0
  bool namespaces = false;         // mount, pid, ipc, uts namespaces + private root filesystem
  bool network_namespace = false;  // NetworkMode::kNone is available
  bool cgroups = false;            // memory, cpu and pids limits are enforced
  CgroupVersion cgroup_version = CgroupVersion::kNone;
  bool seccomp = false;            // the allow-list filter is loaded into every instance
  bool uid_switch = false;         // every instance runs as its own unprivileged uid
  bool fork = false;               // instances can be forked from fork templates (InstanceSpec::fork_key)
  std::vector<std::string> lost;   // one sentence per missing protection, for the daemon to print loudly
};

struct LauncherConfig {
  // Name of the cgroup created under the launcher's own group in each
  // controller; instances are its children.
  std::string cgroup_name = "nimbus";
  LauncherMode mode = LauncherMode::kAuto;
  // The uid pool: instances get uid_base, uid_base+1, ... (gid = uid).
  unsigned uid_base = 900000;
  unsigned uid_count = 65536;
  // How long one spawn may take inside the launcher before it is abandoned.
  std::chrono::milliseconds spawn_timeout{10000};
  // Sandboxes made ahead of time (namespaces entered, cgroup created, the
  // part of the root every instance shares mounted), refilled while the
  // launcher is idle; a spawn takes one and only adds the instance's own
  // part. 0: every spawn builds its sandbox from scratch. Instances with
  // NetworkMode::kNone always do.
  unsigned pool_size = 0;
  // Primed runtimes kept ready per RuntimeTemplate that claim_primed() was
  // asked for (at most kMaxRuntimeTemplates templates). 0: none.
  unsigned primed_per_runtime = 0;
  // Where primed runtimes lease their uids host-wide (UidPool), and from
  // which range: the same as the caller's own leases, so that a uid always
  // names one instance on the host.
  std::filesystem::path uid_lock_dir = kUidLockDir;
  unsigned lease_uid_base = kInstanceUidBase;
  unsigned lease_uid_count = kInstanceUidCount;
  // Fork templates kept at most (InstanceSpec::fork_key); once there are as
  // many, new keys get no template. 0: no forking.
  unsigned fork_templates = 16;
};

inline constexpr std::size_t kMaxRuntimeTemplates = 8;

// Handle on the launcher process. Owns the process, both sockets to it and,
// through it, every instance and cgroup it created.
//
// Built by the daemon's composition root with start(), on the main thread,
// before any other thread exists (it forks); the main thread must live as
// long as the daemon (the launcher is told of its parent's death through
// PR_SET_PDEATHSIG). spawn(), kill() and peak_memory() may then be called
// from any thread; spawn() and kill() are serialised by a mutex (one round
// trip each). read_exit_event() is meant for one reader, e.g. an asio
// posix::stream_descriptor on exit_event_fd() (the fd is non-blocking).
// Destroying the Launcher kills every instance, removes the cgroups and
// stops the launcher process; if the daemon dies instead, the launcher sees
// EOF on its socket (or SIGTERM) and does the same.
class Launcher {
 public:
  // Forks the launcher process and waits (bounded) for its probe of the host.
  // Errors (kService): socketpair/fork failed, the launcher did not answer,
  // the built-in seccomp policy did not compile.
  [[nodiscard]] static base::Result<std::unique_ptr<Launcher>> start(LauncherConfig config);

  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  [[nodiscard]] const IsolationReport& isolation() const { return report_; }

  // Creates one instance; returns once it has exec'd argv[0] (or failed).
  // Errors: kInvalidParameterValue for a bad spec; kService naming the step
  // and the path/errno, e.g. "sandbox step 'mount /var/task'
  // (/data/code/ab12): No such file or directory".
  [[nodiscard]] base::Result<SpawnedInstance> spawn(const InstanceSpec& spec);

  // Takes a ready primed runtime of `runtime` (see RuntimeTemplate);
  // nullopt when none is ready. The first call for a template also makes
  // the launcher keep LauncherConfig::primed_per_runtime of them ready
  // from then on (refilled while it is idle). One round trip.
  [[nodiscard]] std::optional<PrimedClaim> claim_primed(const RuntimeTemplate& runtime);
  // Hands back a claim that no spawn() used: it is ready for the next.
  void release_primed(const PrimedClaim& claim);

  // Starts the fork template of spec.fork_key now, unless it has one (or
  // there is no room, or forking is not possible); spec's descriptors are
  // not used. Returns once the template's process started, before its
  // init ran. One round trip.
  void prepare_fork_template(const InstanceSpec& spec);
  // Stops the fork template of `fork_key`, if any. Instances forked from it
  // live in its PID namespace and end with it: drop a key once no instance
  // of it is left (or when they may go too). One round trip.
  void drop_fork_template(const std::string& fork_key);

  // SIGKILLs every process of the instance whose first process is `pid`.
  // Returns at once; the ExitEvent follows. kResourceNotFound when no live
  // instance has that pid.
  base::Status kill(int pid);

  // Peak memory of a live instance's cgroup in bytes (v1
  // memory.max_usage_in_bytes; v2 memory.peak, else memory.current); 0 if
  // unknown (no cgroups, no such instance).
  [[nodiscard]] std::uint64_t peak_memory(const std::string& instance_id) const;

  // Readable when exit events are pending (non-blocking fd).
  [[nodiscard]] int exit_event_fd() const { return event_fd_; }
  // One pending exit event, or nullopt when none is pending. An event can
  // arrive before the spawn() that created its instance has returned to
  // its caller; key instances by instance_id or pid and tolerate that.
  [[nodiscard]] std::optional<ExitEvent> read_exit_event();
  // False once the launcher process is gone (EOF on a socket): instances are
  // dead then and no more events will come; the daemon should stop.
  [[nodiscard]] bool launcher_alive() const;

  // pid of the launcher process (diagnostics, tests).
  [[nodiscard]] int launcher_pid() const { return launcher_pid_; }

 private:
  Launcher(int launcher_pid, int request_fd, int event_fd);
  [[nodiscard]] base::Status receive_hello(std::chrono::milliseconds timeout);
  // Sends one request and waits for its reply; caller holds request_mutex_.
  // `reply_fds`: where to keep descriptors the reply carries (else closed).
  [[nodiscard]] base::Result<nlohmann::json> round_trip(nlohmann::json request, const std::vector<int>& fds,
                                                        std::vector<int>* reply_fds = nullptr);

  int launcher_pid_;
  int request_fd_;
  int event_fd_;
  IsolationReport report_;
  std::filesystem::path memory_dir_;  // parent memory cgroup of the instances; empty if none
  CgroupVersion cgroup_version_ = CgroupVersion::kNone;
  std::chrono::milliseconds reply_timeout_;
  std::mutex request_mutex_;          // one round trip on request_fd_ at a time
  std::uint64_t seq_ = 0;             // last request number; guarded by request_mutex_
  std::mutex event_mutex_;            // one reader of event_fd_ at a time
  // The memory cgroup of each live instance, from the spawn reply: its
  // directory name (a pooled sandbox's group is not named after its
  // instance) and its peak-memory file, opened at the first read and kept
  // open, since it is read after every invocation. Also the ids whose exit
  // event came before that reply. Guarded by groups_mutex_.
  struct MemoryGroup {
    std::string dir;
    int peak_fd = -1;
  };
  void forget_group(const std::string& instance_id);  // needs groups_mutex_
  mutable std::mutex groups_mutex_;
  mutable std::unordered_map<std::string, MemoryGroup> group_of_;
  std::unordered_set<std::string> exited_early_;
  std::atomic<bool> alive_{true};
};

}  // namespace nimbus::sandbox
