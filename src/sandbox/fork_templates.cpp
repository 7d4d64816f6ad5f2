// The launcher's fork templates (InstanceSpec::fork_key): a runtime process
// that ran one function's init in a sandbox of its own and forks that
// function's new instances from its initialised state, so that a function
// whose init takes a second starts new instances in milliseconds. The other
// side is runtimes/python/nimbus_fork_template.py; docs/isolation.md says
// what users get and what they give up.
//
// Ahead of time (the spares, kForkSpares per template):
//   1. a SOCK_SEQPACKET pair with SO_PASSCRED on our end; "p" + the
//      instances' seccomp program to the template, the pair's other end
//      attached; the template forks a spare;
//   2. the spare unshares user, mount, IPC and UTS namespaces, then a PID
//      namespace (the template's filter allows exactly these two calls),
//      forks once more so that the instance is pid 1 there, loads the
//      program, warms up and says "u": the kernel attaches its pid as we
//      see it; we mount a /proc of its PID namespace for it.
// At a spawn (the launcher's single thread, bounded by spawn_timeout):
//   3. a cgroup for the instance; we map the instance's uid and gid into the
//      spare's user namespace, move it into the cgroup, mount a fresh /tmp
//      in its mount namespace, open a pidfd, and send "g" + the instance's
//      ids and environment with its output pipe attached;
//   4. the spare switches uid, drops its capabilities and says "s".
// The instance is not our child (the template, the init of its parent PID
// namespace, reaps it); its end shows on the pidfd.

#include "sandbox/detail/launcher_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/files.h"

namespace nimbus::sandbox::detail {

using nlohmann::json;

namespace {

// One datagram from a forked child within `deadline` (a past deadline: what
// is there now); its sender's pid (as this process sees it) when `pid` is
// given. nullopt: nothing came in time; empty: EOF or an error.
std::optional<std::string> receive_from_child(int fd, std::chrono::steady_clock::time_point deadline, int* pid) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return std::nullopt;
    if (r < 0) return std::string();
    char data[512];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return std::string();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); pid != nullptr && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        *pid = cred.pid;
      }
    }
    return std::string(data, static_cast<std::size_t>(n));
  }
}

// The exit status of a process that is not our child, from its pidfd
// (PIDFD_GET_INFO, Linux 6.15); 0 where the kernel cannot tell.
int exit_status_of(int pidfd) {
  struct PidfdInfo {
    std::uint64_t mask;
    std::uint64_t cgroupid;
    std::uint32_t ids[11];  // pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid
    std::int32_t exit_code;
    std::uint32_t coredump_mask;
    std::uint32_t spare;
  };
  constexpr std::uint64_t kInfoExit = 1u << 3;
  const unsigned long request = _IOWR(0xFF, 11, PidfdInfo);
  // The exit is recorded when the template has reaped it, a moment after
  // the pidfd turned readable.
  for (int attempt = 0; attempt < 20; ++attempt) {
    PidfdInfo info{};
    info.mask = kInfoExit;
    if (::ioctl(pidfd, request, &info) != 0 && errno != ESRCH) return 0;
    if ((info.mask & kInfoExit) != 0) return info.exit_code;
    std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
  return 0;
}

// `env` with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: what Lambda's
// SnapStart sets both while init runs for the snapshot and in every
// environment restored from it, as a template and its instances are here.
std::vector<std::string> snap_start_environment(std::vector<std::string> env) {
  std::erase_if(env, [](const std::string& e) { return e.starts_with("AWS_LAMBDA_INITIALIZATION_TYPE="); });
  env.push_back("AWS_LAMBDA_INITIALIZATION_TYPE=snap-start");
  return env;
}

// Why a child's answer is not the expected one.
std::string child_failure(const std::optional<std::string>& said) {
  if (!said) return "no answer from the child in time";
  if (said->starts_with("e")) return "the child: " + said->substr(1);
  return said->empty() ? "the child ended" : "unexpected answer from the child";
}

// One datagram with one descriptor attached.
bool send_datagram(int fd, const std::string& data, int attached) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &attached, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(data.size());
}

bool write_id_map(int pid, const char* file, unsigned id) {
  const auto path = fmt::format("/proc/{}/{}", pid, file);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const auto line = fmt::format("{} {} 1\n", id, id);
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  return ok;
}

}  // namespace

void LauncherProcess::probe_fork(const std::vector<SeccompRule>& rules) {
  report_.fork = false;
  if (config_.fork_templates == 0) return;
  const bool isolated = report_.namespaces && report_.uid_switch && report_.cgroups && report_.seccomp;
  if (!isolated) return;  // what is missing is reported already
  auto program = compile_seccomp_filter(rules, FilterVariant::kForkTemplate);
  if (!program.ok()) {
    log(program.error().message);
    return;
  }
  fork_seccomp_program_ = std::move(program).value();
  // What a forked child does first, as an unprivileged uid under the
  // template's filter: its own user namespace (with the others).
  sock_fprog prog{static_cast<unsigned short>(fork_seccomp_program_.size()), fork_seccomp_program_.data()};
  const long pid = clone_process(0);
  if (pid == 0) {
    if (::syscall(SYS_setresgid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(2);
    if (::syscall(SYS_setresuid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(2);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(3);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) ::_exit(3);
    if (::syscall(SYS_unshare, kForkNamespaceFlags) != 0) ::_exit(4);
    if (::syscall(SYS_unshare, CLONE_NEWPID) != 0) ::_exit(5);
    ::_exit(0);
  }
  int status = 0;
  report_.fork = pid > 0 && wait_for(static_cast<int>(pid), &status, std::chrono::seconds(5)) &&
                 WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!report_.fork) {
    fork_seccomp_program_.clear();
    report_.lost.push_back(
        "fork of initialised instances: an unprivileged process may not create a user namespace here, so new "
        "instances of a function with a slow init run its init again.");
  }
}

void LauncherProcess::start_template(const InstanceSpec& instance) {
  if (templates_.count(instance.fork_key) != 0 || templates_.size() >= config_.fork_templates) return;
  ForkTemplate t;
  const auto failed = [&](const std::string& message) {
    log(fmt::format("fork template for {}: {}", instance.fork_key, message));
    discard_template(t);
    t.state = ForkTemplate::State::kFailed;  // not tried again for this key
    templates_.emplace(instance.fork_key, std::move(t));
  };
  auto uid = lease_uid();
  if (!uid.ok()) return failed(uid.error().message);
  t.uid = *uid;
  const std::string name = fmt::format("template.{}", ++template_seq_);
  const CpuLimits cpu = cpu_limits_of(instance);
  auto group = create_instance_cgroup(layout_, name, instance.memory_bytes, cpu, instance.pids_max);
  if (!group.ok()) return failed(group.error().message);
  t.cgroup = std::move(group).value();
  int channel[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel) != 0) {
    return failed(step_message("socketpair", "", errno));
  }
  t.channel_fd = channel[0];

  InstanceSpec spec = instance;
  spec.instance_id = name;
  spec.output_fd = -1;  // what its init prints goes nowhere; its instances' output is theirs
  spec.inherit_fds = {channel[1]};
  spec.primed_id = 0;
  spec.fork_key.clear();
  spec.env = snap_start_environment(spec.env);
  spec.env.push_back("NIMBUS_TEMPLATE_FD=3");
  auto pid = launch_child(spec, t.uid, t.uid, /*private_network=*/false, t.cgroup, {}, /*fork_template=*/true);
  ::close(channel[1]);
  if (!pid.ok()) return failed(pid.error().message);
  t.pid = *pid;
  templates_.emplace(instance.fork_key, std::move(t));
}

void LauncherProcess::on_template_channel(const std::string& key) {
  const auto it = templates_.find(key);
  if (it == templates_.end() || it->second.state != ForkTemplate::State::kStarting) return;
  char ready = 0;
  ssize_t n;
  do {
    n = ::recv(it->second.channel_fd, &ready, 1, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && ready == 'r') {
    it->second.state = ForkTemplate::State::kReady;
    top_up_spares(it->second);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  // Its init failed (the instances started without it say why) or it
  // cannot serve forks: this key goes on without one.
  log(fmt::format("fork template {} of {} ended before it was ready", it->second.pid, key));
  discard_template(it->second);
  it->second.state = ForkTemplate::State::kFailed;
}

bool LauncherProcess::request_spare(ForkTemplate& t) {
  Spare spare;
  int sync[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) {
    log(step_message("socketpair", "", errno));
    return false;
  }
  spare.sync_fd = sync[0];
  const int on = 1;
  // The child's "u" then carries its pid as this process sees it. It
  // loads the instance's seccomp program ("p" + the program) while it waits.
  std::string request = "p";
  request.append(reinterpret_cast<const char*>(seccomp_program_.data()), seccomp_program_.size() * sizeof(sock_filter));
  if (::setsockopt(spare.sync_fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0 ||
      !send_datagram(t.channel_fd, request, sync[1])) {
    ::close(sync[0]);
    ::close(sync[1]);
    return false;
  }
  ::close(sync[1]);
  t.spares.push_back(spare);
  return true;
}

void LauncherProcess::top_up_spares(ForkTemplate& t) {
  while (t.spares.size() < kForkSpares && request_spare(t)) {
  }
}

void LauncherProcess::on_spare_ready(ForkTemplate& t, Spare& spare) {
  int pid = 0;
  const auto said = receive_from_child(spare.sync_fd, std::chrono::steady_clock::now(), &pid);
  if (!said) return;  // not yet (a stale poll result)
  std::string failed = *said == "u" && pid > 0 ? mount_own_proc(pid) : child_failure(said);
  if (failed.empty()) {
    spare.pid = pid;
    return;
  }
  log(fmt::format("fork template {}: a spare child failed: {}", t.pid, failed));
  if (pid > 0) ::kill(pid, SIGKILL);
  close_fd(spare.sync_fd);  // dropped from t.spares by the caller
}

std::string LauncherProcess::mount_own_proc(int pid) {
  // procfs shows the PID namespace of the process that mounts it: a helper
  // enters the spare's PID namespace (for its child), the child enters the
  // spare's mount namespace and mounts.
  const std::string pid_ns_path = fmt::format("/proc/{}/ns/pid", pid);
  const std::string mnt_ns_path = fmt::format("/proc/{}/ns/mnt", pid);
  int pid_ns = ::open(pid_ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  int mnt_ns = ::open(mnt_ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  const auto done = [&](std::string result) {
    close_fd(pid_ns);
    close_fd(mnt_ns);
    return result;
  };
  if (pid_ns < 0 || mnt_ns < 0) return done(step_message("open namespaces", pid_ns_path, errno));
  const long helper = clone_process(0);
  if (helper == 0) {
    if (::setns(pid_ns, CLONE_NEWPID) != 0) ::_exit(10);
    const long inner = clone_process(0);
    if (inner == 0) {
      if (::setns(mnt_ns, CLONE_NEWNS) != 0) ::_exit(11);
      if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) ::_exit(12);
      ::_exit(0);
    }
    int status = 0;
    if (inner < 0 || ::waitpid(static_cast<int>(inner), &status, __WALL) < 0) ::_exit(13);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 14);
  }
  if (helper < 0) return done(step_message("clone", "", errno));
  int status = 0;
  if (!wait_for(static_cast<int>(helper), &status, std::chrono::seconds(5))) {
    ::kill(static_cast<int>(helper), SIGKILL);
    (void)wait_for(static_cast<int>(helper), &status, std::chrono::seconds(5));
    return done("mount /proc of a forked instance: no answer");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return done(fmt::format("mount /proc of a forked instance failed at step {}",
                            WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return done({});
}

std::optional<json> LauncherProcess::spawn_forked(const InstanceSpec& spec, unsigned uid, unsigned gid) {
  if (!report_.fork || spec.fork_key.empty() || spec.network != NetworkMode::kHost || !spec.inherit_fds.empty()) {
    return std::nullopt;
  }
  const auto it = templates_.find(spec.fork_key);
  if (it == templates_.end()) {
    // Started after the reply to this spawn (start_wanted_templates()).
    InstanceSpec wanted = spec;
    wanted.output_fd = -1;  // the received descriptors stay with the spawn
    wanted.inherit_fds.clear();
    templates_wanted_.push_back(std::move(wanted));
    return std::nullopt;
  }
  if (it->second.state != ForkTemplate::State::kReady) return std::nullopt;
  ForkTemplate& t = it->second;
  const auto deadline = std::chrono::steady_clock::now() + config_.spawn_timeout;
  // The oldest spare: forked and unshared ahead of time, or at least on its
  // way (a fork is milliseconds, a fresh start runs init again).
  if (t.spares.empty()) request_spare(t);
  if (t.spares.empty()) return std::nullopt;
  Spare spare = t.spares.front();
  t.spares.pop_front();
  Instance instance;
  instance.id = spec.instance_id;
  instance.uid = uid;
  int ns_fd = -1;
  const auto cannot = [&](const std::string& why) -> std::optional<json> {
    log(fmt::format("fork template {} of {}: {}; starting a fresh process instead", t.pid, spec.fork_key, why));
    if (spare.pid > 0) ::kill(spare.pid, SIGKILL);
    close_fd(spare.sync_fd);
    close_fd(ns_fd);
    close_fd(instance.pidfd);
    kill_cgroup(instance.cgroup);
    if (!remove_cgroup(instance.cgroup)) pending_removals_.push_back(instance.cgroup);
    return std::nullopt;
  };
  if (spare.pid == 0) {
    const auto said = receive_from_child(spare.sync_fd, deadline, &spare.pid);
    if (said != "u" || spare.pid <= 0) return cannot(child_failure(said));
    if (auto failed = mount_own_proc(spare.pid); !failed.empty()) return cannot(failed);
  }
  const int child = spare.pid;
  const CpuLimits cpu = cpu_limits_of(spec);
  auto group = create_instance_cgroup(layout_, spec.instance_id, spec.memory_bytes, cpu, spec.pids_max);
  if (!group.ok()) return cannot(group.error().message);
  instance.cgroup = std::move(group).value();
  if (!write_id_map(child, "uid_map", uid) || !write_id_map(child, "gid_map", gid)) {
    return cannot(step_message("write uid_map", fmt::format("/proc/{}", child), errno));
  }
  if (auto joined = join_cgroup(instance.cgroup, child); !joined.ok()) return cannot(joined.error().message);
  const std::string ns_path = fmt::format("/proc/{}/ns/mnt", child);
  ns_fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) return cannot(step_message("open mount namespace", ns_path, errno));
  if (auto failed = mount_instance_files(ns_fd, spec, /*with_code=*/false); !failed.empty()) return cannot(failed);
  close_fd(ns_fd);
  instance.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  if (instance.pidfd < 0) return cannot(step_message("pidfd_open", "", errno));

  // "g" and the instance's ids and environment; its stdout and stderr attached.
  const std::string go = "g" + json{{"uid", uid}, {"gid", gid}, {"env", snap_start_environment(spec.env)}}.dump();
  int output = spec.output_fd;
  if (output < 0) output = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (output < 0) return cannot(step_message("open", "/dev/null", errno));
  const bool sent = send_datagram(spare.sync_fd, go, output);
  if (spec.output_fd < 0) ::close(output);
  if (!sent) return cannot(step_message("release the child", "", errno));
  const auto settled = receive_from_child(spare.sync_fd, deadline, nullptr);
  if (settled != "s") return cannot(child_failure(settled));
  close_fd(spare.sync_fd);
  json reply = adopt(child, std::move(instance));
  reply["forked"] = true;
  // The next spare: forked while this instance connects.
  top_up_spares(t);
  return reply;
}

LauncherProcess::ForkPollSet LauncherProcess::add_fork_fds(std::vector<pollfd>& fds) const {
  ForkPollSet set;
  set.first = fds.size();
  // Templates running their init: their "r" (or EOF) comes here.
  for (const auto& [key, t] : templates_) {
    if (t.state != ForkTemplate::State::kStarting || t.channel_fd < 0) continue;
    fds.push_back({t.channel_fd, POLLIN, 0});
    set.initialising.push_back(key);
  }
  // Spares on their way: their "u".
  for (const auto& [key, t] : templates_) {
    for (const Spare& spare : t.spares) {
      if (spare.pid != 0 || spare.sync_fd < 0) continue;
      fds.push_back({spare.sync_fd, POLLIN, 0});
      set.unsharing.emplace_back(key, spare.sync_fd);
    }
  }
  // Forked instances, not our children: their ends show on their pidfds.
  for (const auto& [pid, instance] : instances_) {
    if (instance.pidfd < 0) continue;
    fds.push_back({instance.pidfd, POLLIN, 0});
    set.forked.push_back(pid);
  }
  return set;
}

void LauncherProcess::on_fork_fds(const ForkPollSet& set, const std::vector<pollfd>& fds) {
  // A request handled in the same round may have changed what these name:
  // each is looked up again, and a read that finds nothing is no event.
  std::size_t slot = set.first;
  for (std::size_t i = 0; i < set.initialising.size(); ++i, ++slot) {
    if (fds[slot].revents != 0) on_template_channel(set.initialising[i]);
  }
  for (std::size_t i = 0; i < set.unsharing.size(); ++i, ++slot) {
    if (fds[slot].revents == 0) continue;
    const auto t = templates_.find(set.unsharing[i].first);
    if (t == templates_.end()) continue;
    auto& spares = t->second.spares;
    const auto spare = std::find_if(spares.begin(), spares.end(),
                                    [&](const Spare& s) { return s.sync_fd == set.unsharing[i].second; });
    if (spare == spares.end()) continue;
    on_spare_ready(t->second, *spare);
    if (spare->sync_fd < 0) spares.erase(spare);
  }
  for (std::size_t i = 0; i < set.forked.size(); ++i, ++slot) {
    if (fds[slot].revents != 0) finish_forked(set.forked[i]);
  }
}

void LauncherProcess::start_wanted_templates() {
  auto wanted = std::move(templates_wanted_);
  templates_wanted_.clear();
  for (const InstanceSpec& spec : wanted) start_template(spec);
}

void LauncherProcess::finish_ended_forked() {
  std::vector<int> ended;
  for (const auto& [pid, instance] : instances_) {
    pollfd p{instance.pidfd, POLLIN, 0};
    if (instance.pidfd >= 0 && ::poll(&p, 1, 0) == 1) ended.push_back(pid);
  }
  for (const int pid : ended) finish_forked(pid);
}

void LauncherProcess::finish_forked(int pid) {
  const auto it = instances_.find(pid);
  if (it == instances_.end()) return;
  const int status = exit_status_of(it->second.pidfd);
  close_fd(it->second.pidfd);
  finish_instance(pid, status);
}

bool LauncherProcess::reap_template(int pid) {
  const auto it = std::find_if(templates_.begin(), templates_.end(), [pid](const auto& e) { return e.second.pid == pid; });
  if (it == templates_.end()) return false;
  it->second.pid = 0;  // reaped already
  discard_template(it->second);
  // Died: the key may get a new one (a kill or an OOM of the template is
  // no verdict on the function); ended before it was ready: it may not.
  if (it->second.state == ForkTemplate::State::kReady) {
    templates_.erase(it);
  } else {
    it->second.state = ForkTemplate::State::kFailed;
  }
  return true;
}

void LauncherProcess::discard_template(ForkTemplate& t) {
  if (t.pid != 0) {
    ::kill(t.pid, SIGKILL);
    int status = 0;
    (void)wait_for(t.pid, &status, std::chrono::seconds(5));
    t.pid = 0;
  }
  close_fd(t.channel_fd);
  for (Spare& spare : t.spares) close_fd(spare.sync_fd);  // they died with its PID namespace
  t.spares.clear();
  kill_cgroup(t.cgroup);
  if (!remove_cgroup(t.cgroup)) pending_removals_.push_back(t.cgroup);
  t.cgroup = {};
  if (t.uid != 0) {
    used_uids_.erase(t.uid);
    uid_leases_.release(t.uid);
    t.uid = 0;
  }
}

json LauncherProcess::drop_template(const std::string& key) {
  if (const auto it = templates_.find(key); it != templates_.end()) {
    discard_template(it->second);
    templates_.erase(it);
  }
  return json{{"ok", true}};
}

}  // namespace nimbus::sandbox::detail
