// The launcher's primed runtimes (RuntimeTemplate in launcher.h): runtime
// processes started in sandboxes of their own before it is known which
// function they will run, and handed an instance once one is claimed. The
// rest of the launcher is in launcher_process.cpp; docs/isolation.md says
// what primed runtimes do for users.

#include "sandbox/detail/launcher_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::sandbox::detail {

using nlohmann::json;

namespace {

bool same_template(const RuntimeTemplate& a, const RuntimeTemplate& b) {
  return a.argv == b.argv && a.env == b.env && a.runtime_dir == b.runtime_dir;
}

// The whole of `data` on a blocking socket; false when the peer is gone.
bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

json LauncherProcess::claim_primed(const RuntimeTemplate& runtime) {
  json reply{{"ok", true}, {"claim", nullptr}};
  if (config_.primed_per_runtime == 0 || !report_.namespaces) return reply;
  const auto known = std::find_if(runtimes_.begin(), runtimes_.end(),
                                  [&](const RuntimeTemplate& t) { return same_template(t, runtime); });
  if (known == runtimes_.end()) {
    // From now on this runtime is kept ready (filled while idle).
    if (runtimes_.size() < kMaxRuntimeTemplates) runtimes_.push_back(runtime);
    return reply;
  }
  const auto index = static_cast<std::size_t>(known - runtimes_.begin());
  for (auto& [id, primed] : primed_) {
    if (primed.runtime != index || primed.state != Primed::State::kReady) continue;
    primed.state = Primed::State::kClaimed;
    reply["claim"] = json{{"id", id}, {"uid", primed.uid}};
    // Its spawn comes next: starting a replacement now (the interpreter's
    // exec, milliseconds) would make the spawn wait for it.
    pool_retry_at_ = std::max(pool_retry_at_, std::chrono::steady_clock::now() + kPoolRefillDelay);
    break;
  }
  return reply;
}

json LauncherProcess::release_primed(std::uint64_t id) {
  const auto it = primed_.find(id);
  if (it == primed_.end() || it->second.state != Primed::State::kClaimed) {
    return error_reply(fmt::format("sandbox: no claimed primed runtime {}", id), "not_found");
  }
  if (it->second.pid != 0) {
    it->second.state = Primed::State::kReady;
  } else {  // died while claimed: nothing left to hand out
    discard_primed(it->second, /*keep_lease=*/false);
    primed_.erase(it);
  }
  return json{{"ok", true}};
}

std::optional<std::size_t> LauncherProcess::primed_short() const {
  for (std::size_t i = 0; i < runtimes_.size(); ++i) {
    const auto waiting = std::count_if(primed_.begin(), primed_.end(), [i](const auto& entry) {
      return entry.second.runtime == i && entry.second.state != Primed::State::kClaimed;
    });
    if (static_cast<unsigned>(waiting) < config_.primed_per_runtime) return i;
  }
  return std::nullopt;
}

void LauncherProcess::start_primed(std::size_t runtime) {
  const RuntimeTemplate& t = runtimes_[runtime];
  Primed primed;
  primed.runtime = runtime;
  const std::string name = fmt::format("primed.{}", ++primed_seq_);
  const auto failed = [&](const std::string& message) {
    log(fmt::format("primed runtime {}: {} (retrying in 1 s)", t.argv[0], message));
    pool_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    discard_primed(primed, /*keep_lease=*/false);
  };
  if (::access(scratch_root_.c_str(), F_OK) != 0 && ::mkdir(scratch_root_.c_str(), 0700) != 0) {
    return failed(step_message("mkdir", scratch_root_, errno));
  }
  auto uid = lease_uid();
  if (!uid.ok()) return failed(uid.error().message);
  primed.uid = *uid;
  if (layout_.version != CgroupVersion::kNone) {
    auto group = create_instance_cgroup(layout_, name, kWaitingSandboxMemory, CpuLimits{cpu_shares_for(kWaitingSandboxMemory), 0},
                                        1024);
    if (!group.ok()) return failed(group.error().message);
    primed.cgroup = std::move(group).value();
  }
  int channel[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0) {
    return failed(step_message("socketpair", "", errno));
  }
  primed.channel_fd = channel[0];
  int output[2];
  if (::pipe2(output, O_CLOEXEC) != 0) {
    ::close(channel[1]);
    return failed(step_message("pipe", "", errno));
  }
  primed.output_fd = output[0];
  ::fcntl(primed.output_fd, F_SETPIPE_SZ, 1 << 20);

  // No code and no /tmp yet (build_child_plan leaves them out): they come
  // with the instance.
  InstanceSpec spec;
  spec.instance_id = name;
  spec.argv = t.argv;
  spec.env = t.env;
  spec.env.push_back("NIMBUS_PRIMED_FD=3");
  spec.runtime_dir = t.runtime_dir;
  spec.tmp_bytes = 0;
  spec.output_fd = output[1];
  spec.inherit_fds = {channel[1]};
  const auto open_namespace = [&](int pid) -> std::string {
    const std::string path = fmt::format("/proc/{}/ns/mnt", pid);
    primed.mount_ns_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    return primed.mount_ns_fd < 0 ? step_message("open mount namespace", path, errno) : std::string();
  };
  auto pid = launch_child(spec, primed.uid, primed.uid, /*private_network=*/false, primed.cgroup, open_namespace);
  ::close(output[1]);
  ::close(channel[1]);
  if (!pid.ok()) return failed(pid.error().message);
  primed.pid = *pid;
  primed_.emplace(primed_seq_, std::move(primed));
}

void LauncherProcess::on_primed_channel(std::uint64_t id) {
  const auto it = primed_.find(id);
  if (it == primed_.end() || it->second.state != Primed::State::kStarting) return;
  char ready = 0;
  ssize_t n;
  do {
    n = ::recv(it->second.channel_fd, &ready, 1, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 1) {
    it->second.state = Primed::State::kReady;
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  // EOF before the ready byte: it failed to start (its output says why).
  log(fmt::format("primed runtime {} ended before it was ready", it->second.pid));
  discard_primed(it->second, /*keep_lease=*/false);
  primed_.erase(it);
  pool_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
}

std::optional<json> LauncherProcess::spawn_primed(const InstanceSpec& spec, Primed& primed) {
  const auto cannot = [&](const std::string& why) -> std::optional<json> {
    log(fmt::format("primed runtime {}: {}; starting a fresh process instead", primed.pid, why));
    return std::nullopt;
  };
  if (layout_.version != CgroupVersion::kNone) {
    const CpuLimits cpu = cpu_limits_of(spec);
    if (auto limited = set_cgroup_limits(primed.cgroup, spec.memory_bytes, cpu, spec.pids_max); !limited.ok()) {
      return cannot(limited.error().message);
    }
    // Named after its instance from now on, as every instance's group is
    // (if this fails it keeps its name: the reply says which it has).
    (void)rename_instance_cgroup(primed.cgroup, spec.instance_id);
  }
  if (auto failed = mount_instance_files(primed.mount_ns_fd, spec); !failed.empty()) return cannot(failed);
  // RLIMIT_NPROC follows pids_max (the cgroup's limit is set above); the
  // process started with InstanceSpec's default.
  if (report_.uid_switch && spec.pids_max != InstanceSpec{}.pids_max) {
    const rlimit nproc{spec.pids_max, spec.pids_max};
    if (::prlimit(primed.pid, RLIMIT_NPROC, &nproc, nullptr) != 0) {
      return cannot(step_message("setrlimit NPROC", "", errno));
    }
  }
  // The environment goes last: from here on the instance runs.
  if (!send_all(primed.channel_fd, json{{"env", spec.env}}.dump())) {
    return cannot(step_message("hand over the environment", "", errno));
  }
  close_fd(primed.channel_fd);
  close_fd(primed.mount_ns_fd);
  reply_fds_.push_back(primed.output_fd);
  primed.output_fd = -1;
  json reply = adopt(primed.pid, Instance{spec.instance_id, std::move(primed.cgroup), primed.uid, true});
  reply["pooled"] = true;
  reply["primed"] = true;
  reply["output"] = true;
  return reply;
}

std::string LauncherProcess::mount_instance_files(int ns_fd, const InstanceSpec& spec, bool with_code) {
  // A detached copy of the code directory (its own mounts stay out, as with
  // a plain bind), read-only, attached inside the sandbox's namespace.
  int tree = -1;
  if (with_code) {
    tree = ::open_tree(AT_FDCWD, spec.code_dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) return step_message("mount /var/task", spec.code_dir.string(), errno);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (::mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      const int err = errno;
      ::close(tree);
      return step_message("remount /var/task read-only", spec.code_dir.string(), err);
    }
  }
  if (own_mount_ns_fd_ < 0 || ::setns(ns_fd, CLONE_NEWNS) != 0) {
    const int err = own_mount_ns_fd_ < 0 ? EBADF : errno;
    if (tree >= 0) ::close(tree);
    return step_message("enter mount namespace", "", err);
  }
  std::string failed;
  if (with_code && ::move_mount(tree, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    failed = step_message("mount /var/task", spec.code_dir.string(), errno);
  } else if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options(spec.tmp_bytes).c_str()) != 0) {
    failed = step_message("mount /tmp", "tmpfs", errno);
  }
  if (tree >= 0) ::close(tree);
  if (::setns(own_mount_ns_fd_, CLONE_NEWNS) != 0 || ::chdir("/") != 0) {
    // Stuck in an instance's namespace: nothing this process does is safe.
    log(step_message("leave mount namespace", "", errno));
    shutdown(1);
  }
  return failed;
}

void LauncherProcess::discard_primed(Primed& primed, bool keep_lease) {
  if (primed.pid != 0) {
    ::kill(primed.pid, SIGKILL);
    int status = 0;
    (void)wait_for(primed.pid, &status, std::chrono::seconds(5));
    primed.pid = 0;
  }
  close_fd(primed.channel_fd);
  close_fd(primed.output_fd);
  close_fd(primed.mount_ns_fd);
  kill_cgroup(primed.cgroup);
  if (!remove_cgroup(primed.cgroup)) pending_removals_.push_back(primed.cgroup);
  primed.cgroup = {};
  if (!keep_lease && primed.uid != 0 && report_.uid_switch) {
    used_uids_.erase(primed.uid);
    uid_leases_.release(primed.uid);
    primed.uid = 0;
  }
}

bool LauncherProcess::reap_primed(int pid) {
  const auto it = std::find_if(primed_.begin(), primed_.end(), [pid](const auto& e) { return e.second.pid == pid; });
  if (it == primed_.end()) return false;
  it->second.pid = 0;  // reaped already
  const bool claimed = it->second.state == Primed::State::kClaimed;
  discard_primed(it->second, /*keep_lease=*/claimed);
  // A claimed one stays until its spawn or release says what became of the claim.
  if (!claimed) primed_.erase(it);
  if (!stopping_) pool_retry_at_ = std::max(pool_retry_at_, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  return true;
}

}  // namespace nimbus::sandbox::detail
