#pragma once
// The launcher process's side (internal to the sandbox part): probes the
// host, then serves spawn and kill requests from the daemon, reaps
// instances, detects OOM kills, removes cgroups, recycles uids and sends
// exit events — one thread, one poll loop, until the daemon goes away.

#include <poll.h>
#include <sched.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/detail/cgroups.h"
#include "sandbox/detail/child.h"
#include "sandbox/launcher.h"
#include "sandbox/detail/protocol.h"
#include "sandbox/detail/seccomp_filter.h"
#include "sandbox/uid_pool.h"

namespace nimbus::sandbox::detail {

// The namespaces every instance gets (a network namespace is added for
// NetworkMode::kNone).
inline constexpr unsigned long kNamespaceFlags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;

// The memory limit of a sandbox made ahead of time until an instance sets
// its own: Lambda's smallest memory size.
inline constexpr std::uint64_t kWaitingSandboxMemory = 128ull << 20;

// How long the launcher waits after a spawn (or a claim, whose spawn
// follows) before it refills the pool and the primed runtimes.
inline constexpr std::chrono::milliseconds kPoolRefillDelay{30};

// fork()-like clone: the child continues on a copy of the stack. Raw system
// call, so that glibc runs no fork handlers (none of which would be
// async-signal-safe to rely on); the child only makes raw calls anyway.
long clone_process(unsigned long flags);
// {"ok":false, "error":message, "code":code}
nlohmann::json error_reply(const std::string& message, std::string_view code = "service");
// "sandbox step 'mount /var/task' (/data/code/ab12): No such file or directory"
std::string step_message(std::string_view step, std::string_view path, int err);
// The instance's cgroup CPU weight in cpu.shares units: its cpu_weight
// (clamped to 2..262144) or, when 0, derived from its memory.
[[nodiscard]] CpuLimits cpu_limits_of(const InstanceSpec& spec);
// Closes `fd` if open and sets it to -1.
void close_fd(int& fd);
// waitpid with a deadline; true when reaped.
bool wait_for(int pid, int* status, std::chrono::milliseconds limit);

// Lives in the forked launcher process only; built and run by
// Launcher::start() right after fork(). run() never returns.
class LauncherProcess {
 public:
  LauncherProcess(LauncherConfig config, int request_fd, int event_fd, int daemon_pid);

  [[noreturn]] void run();

 private:
  struct Instance {
    std::string id;
    InstanceCgroup cgroup;
    unsigned uid = 0;
    bool leased_uid = false;  // uid_leases_ holds its uid (it was primed)
    int pidfd = -1;           // forked: not our child; its exit shows here
  };
  // A sandbox made ahead of time (LauncherConfig::pool_size): a child in
  // its namespaces and cgroup with the shared part of its root built,
  // waiting in run_shell() for an instance.
  struct Shell {
    int pid = 0;
    InstanceCgroup cgroup;
    int control_fd = -1;     // ours: the instance's spec and descriptors go here
    int error_read_fd = -1;  // EOF: it exec'd; a ChildFailure: a step failed
  };
  // A primed runtime (RuntimeTemplate): exec'd in a sandbox of its own
  // with no code yet, waiting on its channel for an instance.
  struct Primed {
    enum class State { kStarting, kReady, kClaimed };
    State state = State::kStarting;
    std::size_t runtime = 0;  // index into runtimes_
    int pid = 0;              // 0: it died while claimed (its uid lease is kept for the claim)
    InstanceCgroup cgroup;
    unsigned uid = 0;         // leased from uid_leases_
    int mount_ns_fd = -1;     // its mount namespace: the code and /tmp go there
    int channel_fd = -1;      // ours of its fd 3: the ready byte comes, the environment goes
    int output_fd = -1;       // read end of its stdout and stderr
  };

  void setup_process();
  // Sets report_.fork and compiles fork_seccomp_program_ (fork_templates.cpp).
  void probe_fork(const std::vector<SeccompRule>& rules);
  // Fills report_, layout_, host_, seccomp_program_; returns an error text
  // that makes start() fail (a broken built-in policy), else empty.
  std::string probe();
  [[noreturn]] void serve();
  void handle_request(Received& request);
  nlohmann::json spawn(InstanceSpec& spec);
  // Hands `spec` to the oldest shell; nullopt when that shell turned out to
  // be gone (it is discarded; the caller builds a sandbox from scratch).
  // leased_uid: uid_leases_ holds `uid` (the instance's claim was primed).
  std::optional<nlohmann::json> spawn_in_shell(const InstanceSpec& spec, unsigned uid, unsigned gid,
                                               bool leased_uid);
  // Reads the child's error pipe until EOF (it exec'd: empty result) or a
  // failure record (the message naming the step), bounded by spawn_timeout.
  std::string wait_for_exec(int error_read_fd, const std::string& program);
  // Clones a child that runs build_child_plan(spec, uid, gid), puts it into
  // `group`, runs `before_go(pid)` (an error text stops it), lets it go and
  // waits until it exec'd. On failure the child is killed and reaped (the
  // caller removes the cgroup) and the error names the step.
  // fork_template: the child gets the fork template's seccomp program.
  base::Result<int> launch_child(const InstanceSpec& spec, unsigned uid, unsigned gid, bool private_network,
                                 const InstanceCgroup& group, const std::function<std::string(int)>& before_go,
                                 bool fork_template = false);
  nlohmann::json adopt(int pid, Instance instance);
  ChildOptions child_options(bool private_network) const;
  // True when shells or primed runtimes are missing; fill_one() makes one.
  [[nodiscard]] bool pool_short() const;
  void fill_one();
  void fill_pool();
  void discard_shell(Shell& shell);

  // Primed runtimes (primed_runtimes.cpp).
  nlohmann::json claim_primed(const RuntimeTemplate& runtime);
  nlohmann::json release_primed(std::uint64_t id);
  // The first template short of primed_per_runtime ready ones, if any.
  [[nodiscard]] std::optional<std::size_t> primed_short() const;
  void start_primed(std::size_t runtime);
  // The claimed `primed` takes `spec`'s instance; nullopt when it could
  // not (the caller discards it and starts a fresh process instead).
  std::optional<nlohmann::json> spawn_primed(const InstanceSpec& spec, Primed& primed);
  // Mounts spec's code at /var/task (unless !with_code) and its /tmp in
  // the mount namespace `ns_fd`; an error text when a step failed.
  std::string mount_instance_files(int ns_fd, const InstanceSpec& spec, bool with_code = true);
  // Kills it and frees what it holds; keep_lease: its uid lease stays
  // (for the instance that claimed it).
  void discard_primed(Primed& primed, bool keep_lease);
  void on_primed_channel(std::uint64_t id);
  // A primed runtime's pid exited: true if it was one.
  bool reap_primed(int pid);
  [[nodiscard]] base::Result<unsigned> lease_uid();

  // Fork templates (fork_templates.cpp): a process that ran a function's
  // init once, in a sandbox of its own, and forks that function's new
  // instances (InstanceSpec::fork_key).
  // A child the template forked ahead of time, waiting for its instance:
  // "u" on sync_fd once it unshared (its pid comes with it).
  struct Spare {
    int sync_fd = -1;  // ours, SO_PASSCRED
    int pid = 0;       // 0: not unshared yet
  };
  struct ForkTemplate {
    enum class State { kStarting, kReady, kFailed };
    State state = State::kStarting;
    int pid = 0;  // 0: gone
    InstanceCgroup cgroup;
    unsigned uid = 0;     // leased from uid_leases_
    int channel_fd = -1;  // ours of its fd 3 (SOCK_SEQPACKET): "r", then spare requests
    std::deque<Spare> spares;  // oldest first
  };
  // Spares kept per ready template: a burst of that many new instances
  // skips the fork itself.
  static constexpr std::size_t kForkSpares = 2;
  // Asks `t` to fork one more spare; false when the request could not go
  // (the template is gone or its socket full).
  bool request_spare(ForkTemplate& t);
  void top_up_spares(ForkTemplate& t);
  // Mounts a /proc of the spare `pid`'s own PID namespace in its mount
  // namespace; an error text when that failed.
  std::string mount_own_proc(int pid);
  // Its "u" (or EOF) came; a failed spare's sync_fd is closed.
  void on_spare_ready(ForkTemplate& t, Spare& spare);
  // Forks `spec`'s instance from the ready template of its key; nullopt
  // when it has no fork key, forking is not possible, there is no ready
  // template (one is started after the reply if there is none) or the fork
  // failed: the spawn goes on without.
  std::optional<nlohmann::json> spawn_forked(const InstanceSpec& spec, unsigned uid, unsigned gid);
  // Starts the template of spec.fork_key if it has none and there is room
  // (after the reply to the spawn that asked, from the serve loop).
  void start_template(const InstanceSpec& spec);
  void on_template_channel(const std::string& key);
  // A template's pid exited: true if it was one.
  bool reap_template(int pid);
  void discard_template(ForkTemplate& t);
  nlohmann::json drop_template(const std::string& key);
  // A forked instance's pidfd is readable: it ended.
  void finish_forked(int pid);
  // Every forked instance whose pidfd is readable now ended (shutdown).
  void finish_ended_forked();
  // What the serve loop polls for fork templates: fds[first...] in this order.
  struct ForkPollSet {
    std::size_t first = 0;
    std::vector<std::string> initialising;                // templates running init, by key
    std::vector<std::pair<std::string, int>> unsharing;   // spares on their way: key, sync fd
    std::vector<int> forked;                              // forked instances, by pid
  };
  [[nodiscard]] ForkPollSet add_fork_fds(std::vector<pollfd>& fds) const;
  void on_fork_fds(const ForkPollSet& set, const std::vector<pollfd>& fds);
  // Starts the templates that spawns answered in this round asked for.
  void start_wanted_templates();
  nlohmann::json kill_instance(int pid);
  void reap();
  void finish_instance(int pid, int status);
  void flush_events();
  void retry_removals();
  [[noreturn]] void shutdown(int code);
  void log(const std::string& line) const;

  [[nodiscard]] base::Result<std::pair<unsigned, unsigned>> pick_ids(const InstanceSpec& spec);
  void release_uid(const Instance& instance);

  LauncherConfig config_;
  int request_fd_;
  int event_fd_;
  int daemon_pid_;
  int signal_fd_ = -1;
  IsolationReport report_;
  CgroupLayout layout_;
  HostLayout host_;
  std::string scratch_root_;
  std::vector<sock_filter> seccomp_program_;
  std::vector<sock_filter> fork_seccomp_program_;  // a fork template's (FilterVariant::kForkTemplate)
  std::vector<int> ignored_signals_;  // SIG_IGN here; reset in every child
  std::map<int, Instance> instances_;  // by pid
  std::set<std::string> live_ids_;
  std::set<unsigned> used_uids_;
  unsigned next_uid_offset_ = 0;
  std::vector<nlohmann::json> pending_events_;
  std::vector<int> reply_fds_;  // descriptors the next reply carries (then closed)
  std::vector<InstanceCgroup> pending_removals_;
  std::deque<Shell> shells_;  // ready, oldest first
  unsigned shell_seq_ = 0;
  std::chrono::steady_clock::time_point pool_retry_at_{};  // after a failed fill
  std::vector<RuntimeTemplate> runtimes_;                  // claimed at least once
  std::map<std::uint64_t, Primed> primed_;                 // by claim id
  std::uint64_t primed_seq_ = 0;
  UidPool uid_leases_;
  std::map<std::string, ForkTemplate> templates_;  // by fork key
  std::vector<InstanceSpec> templates_wanted_;      // started after the current reply
  unsigned template_seq_ = 0;
  int own_mount_ns_fd_ = -1;  // to come back after mounting into a primed sandbox
  bool stopping_ = false;
};

}  // namespace nimbus::sandbox::detail
