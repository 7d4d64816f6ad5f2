// The launcher's pool of sandboxes made ahead of time (LauncherConfig::
// pool_size): making one, handing one an instance, discarding one. The
// rest of the launcher is in launcher_process.cpp; docs/isolation.md says
// what the pool does for users.

#include "sandbox/detail/launcher_process.h"

#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::sandbox::detail {

using nlohmann::json;

std::optional<json> LauncherProcess::spawn_in_shell(const InstanceSpec& spec, unsigned uid, unsigned gid,
                                                    bool leased_uid) {
  Shell shell = std::move(shells_.front());
  shells_.pop_front();
  if (layout_.version != CgroupVersion::kNone) {
    const CpuLimits cpu = cpu_limits_of(spec);
    if (auto limited = set_cgroup_limits(shell.cgroup, spec.memory_bytes, cpu, spec.pids_max); !limited.ok()) {
      discard_shell(shell);
      return error_reply(limited.error().message);
    }
    (void)rename_instance_cgroup(shell.cgroup, spec.instance_id);  // as primed_runtimes.cpp says
  }
  std::vector<int> fds;
  if (spec.output_fd >= 0) fds.push_back(spec.output_fd);
  fds.insert(fds.end(), spec.inherit_fds.begin(), spec.inherit_fds.end());
  const json assignment{{"spec", spec_to_json(spec)}, {"uid", uid}, {"gid", gid}};
  int err = 0;
  // The shell answers one byte once it has the spec; no answer: it died
  // waiting (the kernel may not have closed its end yet when it was killed).
  char taken = 0;
  pollfd answer{shell.control_fd, POLLIN, 0};
  if (!send_message(shell.control_fd, assignment, fds, &err).ok() ||
      ::poll(&answer, 1, static_cast<int>(config_.spawn_timeout.count())) != 1 ||
      ::recv(shell.control_fd, &taken, 1, 0) != 1) {
    log(fmt::format("pooled sandbox {} is gone; building one from scratch", shell.pid));
    discard_shell(shell);
    return std::nullopt;
  }
  if (auto failed = wait_for_exec(shell.error_read_fd, spec.argv[0]); !failed.empty()) {
    discard_shell(shell);
    return error_reply(failed);
  }
  ::close(shell.control_fd);
  ::close(shell.error_read_fd);
  json reply = adopt(shell.pid, Instance{spec.instance_id, std::move(shell.cgroup), uid, leased_uid});
  reply["pooled"] = true;
  return reply;
}

void LauncherProcess::discard_shell(Shell& shell) {
  ::kill(shell.pid, SIGKILL);
  int status = 0;
  (void)wait_for(shell.pid, &status, std::chrono::seconds(5));
  ::close(shell.control_fd);
  ::close(shell.error_read_fd);
  kill_cgroup(shell.cgroup);
  if (!remove_cgroup(shell.cgroup)) pending_removals_.push_back(shell.cgroup);
}

void LauncherProcess::fill_pool() {
  Shell shell;
  // '.' keeps the group's name apart from every instance id ([a-z0-9-]).
  const std::string name = fmt::format("shell.{}", ++shell_seq_);
  const auto failed = [&](const std::string& message) {
    log(fmt::format("sandbox pool: {} (retrying in 1 s)", message));
    pool_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    if (!remove_cgroup(shell.cgroup)) pending_removals_.push_back(shell.cgroup);
  };
  if (::access(scratch_root_.c_str(), F_OK) != 0 && ::mkdir(scratch_root_.c_str(), 0700) != 0) {
    return failed(step_message("mkdir", scratch_root_, errno));
  }
  if (layout_.version != CgroupVersion::kNone) {
    auto group = create_instance_cgroup(layout_, name, kWaitingSandboxMemory, CpuLimits{cpu_shares_for(kWaitingSandboxMemory), 0}, 1024);
    if (!group.ok()) return failed(group.error().message);
    shell.cgroup = std::move(group).value();
  }
  int sync_pipe[2];
  int error_pipe[2];
  int control[2];
  if (::pipe2(sync_pipe, O_CLOEXEC) != 0) return failed(step_message("pipe", "", errno));
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    ::close(sync_pipe[0]);
    ::close(sync_pipe[1]);
    return failed(step_message("pipe", "", errno));
  }
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) != 0) {
    for (const int fd : {sync_pipe[0], sync_pipe[1], error_pipe[0], error_pipe[1]}) ::close(fd);
    return failed(step_message("socketpair", "", errno));
  }
  // The shared part does not depend on the instance: any spec will do.
  InstanceSpec any;
  any.argv = {"/"};
  const ChildOptions options = child_options(false);
  ChildPlan plan = build_child_plan(any, host_, options, 0, 0);
  plan.sync_fd = sync_pipe[0];
  plan.sync_write_fd = sync_pipe[1];
  plan.error_fd = error_pipe[1];
  plan.error_read_fd = error_pipe[0];
  const long cloned = clone_process(kNamespaceFlags);
  if (cloned == 0) {
    ::close(control[0]);
    run_shell(plan, control[1], host_, options);  // never returns
  }
  const int clone_errno = errno;
  ::close(sync_pipe[0]);
  ::close(error_pipe[1]);
  ::close(control[1]);
  shell.control_fd = control[0];
  shell.error_read_fd = error_pipe[0];
  if (cloned < 0) {
    ::close(sync_pipe[1]);
    ::close(shell.control_fd);
    ::close(shell.error_read_fd);
    return failed(step_message("clone", "", clone_errno));
  }
  shell.pid = static_cast<int>(cloned);
  const char go = 1;
  std::string refused;
  if (layout_.version != CgroupVersion::kNone) {
    if (auto joined = join_cgroup(shell.cgroup, shell.pid); !joined.ok()) refused = joined.error().message;
  }
  if (refused.empty() && ::write(sync_pipe[1], &go, 1) != 1) refused = step_message("release child", "", errno);
  ::close(sync_pipe[1]);
  if (!refused.empty()) {
    discard_shell(shell);
    pool_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    log(fmt::format("sandbox pool: {} (retrying in 1 s)", refused));
    return;
  }
  shells_.push_back(std::move(shell));
}

}  // namespace nimbus::sandbox::detail
