#include "sandbox/detail/launcher_process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/seccomp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "sandbox/detail/seccomp_filter.h"

namespace nimbus::sandbox::detail {

using nlohmann::json;

long clone_process(unsigned long flags) {
  return ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
}

json error_reply(const std::string& message, std::string_view code) {
  return json{{"ok", false}, {"error", message}, {"code", code}};
}

std::string step_message(std::string_view step, std::string_view path, int err) {
  if (path.empty()) return fmt::format("sandbox step '{}': {}", step, std::strerror(err));
  return fmt::format("sandbox step '{}' ({}): {}", step, path, std::strerror(err));
}

CpuLimits cpu_limits_of(const InstanceSpec& spec) {
  return CpuLimits{spec.cpu_weight != 0 ? std::clamp(spec.cpu_weight, 2u, 262144u) : cpu_shares_for(spec.memory_bytes),
                   spec.cpu_limit_millicores};
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool wait_for(int pid, int* status, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const int r = ::waitpid(pid, status, WNOHANG | __WALL);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

namespace {

// A descriptor closed when it goes out of scope, unless released.
struct OwnedFd {
  int fd = -1;
  OwnedFd() = default;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// Opens a socket listening on 127.0.0.1:9001 inside the network namespace
// of `pid` (bringing its loopback up), and comes back to our own namespace.
base::Result<int> listen_in_network_of(int pid) {
  const std::string theirs_path = fmt::format("/proc/{}/ns/net", pid);
  OwnedFd own;
  OwnedFd theirs;
  own.fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  theirs.fd = ::open(theirs_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (own.fd < 0 || theirs.fd < 0) {
    return base::make_error(base::ErrorCode::kService, step_message("open network namespace", theirs_path, errno));
  }
  if (::setns(theirs.fd, CLONE_NEWNET) != 0) {
    return base::make_error(base::ErrorCode::kService, step_message("enter network namespace", theirs_path, errno));
  }
  std::string failed;
  int err = 0;
  OwnedFd listener;
  {
    OwnedFd ctl;
    ctl.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ctl.fd < 0 || ::ioctl(ctl.fd, SIOCGIFFLAGS, &ifr) != 0) {
      failed = "loopback up";
      err = errno;
    } else {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
      if (::ioctl(ctl.fd, SIOCSIFFLAGS, &ifr) != 0) {
        failed = "loopback up";
        err = errno;
      }
    }
  }
  if (failed.empty()) {
    listener.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(9001);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    if (listener.fd < 0 || ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(listener.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.fd, 64) != 0) {
      failed = "runtime API listener";
      err = errno;
    }
  }
  if (::setns(own.fd, CLONE_NEWNET) != 0) {
    // Stuck in an instance's network: nothing else may be spawned from here.
    std::abort();
  }
  if (!failed.empty()) {
    return base::make_error(base::ErrorCode::kService, step_message(failed, "127.0.0.1:9001", err));
  }
  return listener.release();
}

}  // namespace

LauncherProcess::LauncherProcess(LauncherConfig config, int request_fd, int event_fd, int daemon_pid)
    : config_(std::move(config)),
      request_fd_(request_fd),
      event_fd_(event_fd),
      daemon_pid_(daemon_pid),
      uid_leases_(config_.uid_lock_dir, config_.lease_uid_base, config_.lease_uid_count) {}

void LauncherProcess::log(const std::string& line) const {
  const std::string text = fmt::format("nimbus-launcher[{}]: {}\n", ::getpid(), line);
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

void LauncherProcess::setup_process() {
  // Die with the daemon (SIGTERM: clean up first), unless it is gone already.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  if (::getppid() != daemon_pid_) ::_exit(0);
  ::prctl(PR_SET_NAME, "nimbus-launcher", 0, 0, 0);
  // Orphans of instances without a pid namespace come back to us to reap.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // Keep no directory of the daemon busy; give instances a known umask.
  (void)!::chdir("/");
  ::umask(022);

  // Keep only stdio and the two sockets: the daemon's other descriptors
  // (listeners, the store, log files) must not leak into instances.
  std::vector<int> to_close;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
      const int fd = std::atoi(entry->d_name);
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      if (fd > 2 && fd != request_fd_ && fd != event_fd_ && fd != own) to_close.push_back(fd);
    }
    ::closedir(dir);
  }
  for (const int fd : to_close) ::close(fd);
  const int flags = ::fcntl(event_fd_, F_GETFL);
  ::fcntl(event_fd_, F_SETFL, flags | O_NONBLOCK);

  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, nullptr);   // the daemon decides when to stop
  ::sigaction(SIGPIPE, &ignore, nullptr);
  ::sigaction(SIGQUIT, &ignore, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction current {};
    if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) ignored_signals_.push_back(sig);
  }
  signal_fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) {
    log(fmt::format("signalfd: {}", std::strerror(errno)));
    ::_exit(1);
  }
}

std::string LauncherProcess::probe() {
  report_ = IsolationReport{};
  const bool auto_mode = config_.mode == LauncherMode::kAuto;
  report_.root = ::geteuid() == 0;

  // seccomp: compile the built-in policy; a failure is our bug.
  auto rules = parse_seccomp_policy(embedded_seccomp_policy());
  if (!rules.ok()) return rules.error().message;
  auto program = compile_seccomp_filter(*rules);
  if (!program.ok()) return program.error().message;
  seccomp_program_ = std::move(program).value();
  {
    sock_fprog prog{static_cast<unsigned short>(seccomp_program_.size()), seccomp_program_.data()};
    const long pid = clone_process(0);
    if (pid == 0) {
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(2);
      if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) ::_exit(3);
      // The filter must deny unshare(0), which is otherwise a no-op success.
      if (::syscall(SYS_unshare, 0) == 0 || errno != EPERM) ::_exit(4);
      ::_exit(0);
    }
    int status = 0;
    report_.seccomp = pid > 0 && wait_for(static_cast<int>(pid), &status, std::chrono::seconds(5)) &&
                      WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!report_.seccomp) {
      seccomp_program_.clear();
      report_.lost.push_back(
          "seccomp: the kernel refused the system-call filter, so functions may call mount, ptrace, bpf, "
          "keyctl and the other calls nimbus denies (only their missing privileges stop them).");
    }
  }

  if (!report_.root || !auto_mode) {
    const std::string who = !report_.root ? fmt::format("the daemon does not run as root (euid {})", ::geteuid())
                                          : std::string("process-only isolation was configured");
    report_.lost.push_back(fmt::format(
        "namespaces: {}, so instances share the host's mount, PID, IPC, UTS and network namespaces — a function "
        "can see every file and process the daemon's user can see, including other functions' code; there is no "
        "/var/task or /var/runtime (an instance runs in its code directory) and /tmp is the host's /tmp.",
        who));
    report_.lost.push_back(
        "cgroups: memory, CPU and process-count limits are not enforced by the kernel (only RLIMIT_NOFILE "
        "applies) and out-of-memory kills are not detected.");
    report_.lost.push_back("network: instances asking for no network get the host's network.");
    report_.lost.push_back(fmt::format(
        "uid switch: every instance runs as uid {}, the daemon's user, so functions can read each other's files "
        "and signal each other's processes and the daemon itself.",
        ::geteuid()));
    if (report_.root) {
      report_.lost.push_back("running as root without namespaces: every function runs as root on the host.");
    }
    return {};
  }

  // Where the launcher comes back to after mounting into a primed sandbox.
  own_mount_ns_fd_ = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  // A directory each child mounts its new root on (in its own namespace).
  char scratch[] = "/tmp/nimbus-launcher-XXXXXX";
  if (::mkdtemp(scratch) != nullptr) {
    scratch_root_ = scratch;
  } else {
    log(fmt::format("cannot create {}: {}; instances get no private root", scratch, std::strerror(errno)));
  }

  // Namespaces, mounts and the uid switch, tried in a throw-away child.
  const auto try_namespaces = [&](unsigned long flags) -> int {
    const long pid = clone_process(flags);
    if (pid == 0) {
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(2);
      if (::mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") != 0) ::_exit(3);
      if (::syscall(SYS_setresgid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(4);
      if (::syscall(SYS_setresuid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(4);
      ::_exit(0);
    }
    if (pid < 0) return -1;
    int status = 0;
    if (!wait_for(static_cast<int>(pid), &status, std::chrono::seconds(5))) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  int result = scratch_root_.empty() ? -1 : try_namespaces(kNamespaceFlags | CLONE_NEWNET);
  report_.network_namespace = result == 0 || result == 4;
  if (!report_.network_namespace && !scratch_root_.empty()) result = try_namespaces(kNamespaceFlags);
  report_.namespaces = result == 0 || result == 4;
  report_.uid_switch = result == 0;
  if (!report_.namespaces) {
    // Without namespaces a private uid still separates instances.
    const long pid = clone_process(0);
    if (pid == 0) {
      if (::syscall(SYS_setgroups, 0, nullptr) != 0) ::_exit(2);
      if (::syscall(SYS_setresgid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(2);
      if (::syscall(SYS_setresuid, config_.uid_base, config_.uid_base, config_.uid_base) != 0) ::_exit(2);
      ::_exit(0);
    }
    int status = 0;
    report_.uid_switch = pid > 0 && wait_for(static_cast<int>(pid), &status, std::chrono::seconds(5)) &&
                         WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (!report_.namespaces) {
    report_.lost.push_back(
        "namespaces: the kernel refused new mount/PID/IPC/UTS namespaces or mounts (a container without "
        "CAP_SYS_ADMIN?), so instances see the host's files and processes; there is no /var/task or "
        "/var/runtime and /tmp is the host's /tmp.");
  } else if (!report_.network_namespace) {
    report_.lost.push_back(
        "network namespaces: the kernel refused CLONE_NEWNET, so instances asking for no network get the "
        "host's network.");
  }
  if (!report_.uid_switch) {
    report_.lost.push_back(fmt::format(
        "uid switch: changing to uid {} failed, so every function runs as root.", config_.uid_base));
  }
  if (report_.namespaces) host_ = probe_host_layout(scratch_root_);

  layout_ = prepare_cgroups(config_.cgroup_name, daemon_pid_);
  report_.cgroups = layout_.version != CgroupVersion::kNone;
  report_.cgroup_version = layout_.version;
  for (std::string& s : layout_.lost) report_.lost.push_back(std::move(s));
  layout_.lost.clear();
  probe_fork(*rules);
  return {};
}

void LauncherProcess::run() {
  setup_process();
  const std::string fatal = probe();
  json hello{{"op", "hello"}};
  if (!fatal.empty()) {
    hello["error"] = fatal;
  } else {
    hello["report"] = report_to_json(report_);
    hello["memory_dir"] = layout_.memory.string();
  }
  if (!send_message(request_fd_, hello, {}).ok() || !fatal.empty()) shutdown(1);
  serve();
}

void LauncherProcess::serve() {
  for (;;) {
    std::vector<pollfd> fds{{request_fd_, POLLIN, 0},
                            {signal_fd_, POLLIN, 0},
                            {event_fd_, static_cast<short>(pending_events_.empty() ? 0 : POLLOUT), 0}};
    // Primed runtimes still starting: their ready byte (or EOF) comes here.
    std::vector<std::uint64_t> starting;
    for (const auto& [id, primed] : primed_) {
      if (primed.state != Primed::State::kStarting) continue;
      fds.push_back({primed.channel_fd, POLLIN, 0});
      starting.push_back(id);
    }
    // Fork templates, their spares and forked instances (fork_templates.cpp).
    const ForkPollSet fork_set = add_fork_fds(fds);
    // Idle with the pool short of its size: look for work without waiting,
    // and make one sandbox when there is none.
    const bool short_of_some = pool_short();
    const bool fill_now = short_of_some && std::chrono::steady_clock::now() >= pool_retry_at_;
    int timeout = pending_removals_.empty() ? -1 : 100;
    if (fill_now) {
      timeout = 0;
    } else if (short_of_some) {
      // Back when the fill may go on.
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(pool_retry_at_ - std::chrono::steady_clock::now());
      const int until = static_cast<int>(std::clamp<std::int64_t>(wait.count(), 1, 1000));
      timeout = timeout < 0 ? until : std::min(timeout, until);
    }
    const int r = ::poll(fds.data(), fds.size(), timeout);
    if (r == 0 && fill_now) fill_one();
    if (r < 0 && errno != EINTR) {
      log(fmt::format("poll: {}", std::strerror(errno)));
      shutdown(1);
    }
    if (r > 0 && (fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo info;
      bool stop = false;
      while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGHUP) stop = true;
      }
      reap();
      if (stop) shutdown(0);
    }
    // Before the request: a runtime whose ready byte came in the same poll
    // must count as ready for a spawn that claims one.
    for (std::size_t i = 0; r > 0 && i < starting.size(); ++i) {
      if (fds[3 + i].revents != 0) on_primed_channel(starting[i]);
    }
    if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      Received request = receive_message(request_fd_, std::chrono::milliseconds(0));
      if (request.outcome == ReceiveOutcome::kClosed ||
          (request.outcome == ReceiveOutcome::kError && (fds[0].revents & POLLIN) == 0)) {
        shutdown(0);  // the daemon is gone or stopping
      }
      if (request.outcome == ReceiveOutcome::kMessage) {
        try {
          handle_request(request);
        } catch (const std::exception& e) {  // a malformed request must not end the launcher
          for (const int fd : request.fds) ::close(fd);
          log(fmt::format("bad request: {}", e.what()));
        }
      }
      if (request.outcome == ReceiveOutcome::kError) log("bad request: " + request.error);
    }
    if (r > 0) on_fork_fds(fork_set, fds);
    start_wanted_templates();
    if (!pending_events_.empty()) flush_events();
    if (!pending_removals_.empty()) retry_removals();
  }
}

bool LauncherProcess::pool_short() const {
  if (!report_.namespaces) return false;
  return shells_.size() < config_.pool_size || primed_short().has_value();
}

void LauncherProcess::fill_one() {
  // Shells first: every spawn can use one, a primed runtime only its own.
  if (shells_.size() < config_.pool_size) return fill_pool();
  if (const auto runtime = primed_short()) start_primed(*runtime);
}

void LauncherProcess::handle_request(Received& request) {
  const auto op_it = request.message.find("op");
  const std::string op = op_it != request.message.end() && op_it->is_string() ? op_it->get<std::string>() : "";
  json reply;
  if (op == "spawn" && request.message.contains("spec")) {
    auto spec = spec_from_json(request.message["spec"], request.fds);
    if (spec.ok()) {
      request.fds.clear();  // spawn() owns and closes them now
      reply = spawn(*spec);
    } else {
      reply = error_reply(spec.error().message);
    }
  } else if (op == "kill" && request.message.contains("pid") && request.message["pid"].is_number_integer()) {
    reply = kill_instance(request.message["pid"].get<int>());
  } else if (op == "claim" && request.message.contains("runtime")) {
    auto runtime = template_from_json(request.message["runtime"]);
    reply = runtime.ok() ? claim_primed(*runtime) : error_reply(runtime.error().message, "invalid");
  } else if (op == "release" && request.message.contains("id") && request.message["id"].is_number_unsigned()) {
    reply = release_primed(request.message["id"].get<std::uint64_t>());
  } else if (op == "prepare_template" && request.message.contains("spec")) {
    auto spec = spec_from_json(request.message["spec"], request.fds);
    if (spec.ok() && report_.fork && !spec->fork_key.empty()) start_template(*spec);
    reply = spec.ok() ? json{{"ok", true}} : error_reply(spec.error().message);
  } else if (op == "drop_template" && request.message.contains("key") && request.message["key"].is_string()) {
    reply = drop_template(request.message["key"].get<std::string>());
  } else {
    reply = error_reply(fmt::format("sandbox launcher: unknown request '{}'", op));
  }
  for (const int fd : request.fds) ::close(fd);
  const auto seq = request.message.find("seq");
  reply["seq"] = seq != request.message.end() && seq->is_number_unsigned() ? seq->get<std::uint64_t>() : 0;
  int err = 0;
  const bool sent = send_message(request_fd_, reply, reply_fds_, &err).ok();
  for (const int fd : reply_fds_) ::close(fd);
  reply_fds_.clear();
  if (!sent) {
    log(fmt::format("reply lost: {}", std::strerror(err)));
    if (err == EPIPE || err == ECONNRESET) shutdown(0);
  }
}

json LauncherProcess::spawn(InstanceSpec& spec) {
  // The descriptors received with the request are ours to close.
  struct ReceivedFds {
    InstanceSpec& spec;
    ~ReceivedFds() {
      if (spec.output_fd >= 0) ::close(spec.output_fd);
      for (const int fd : spec.inherit_fds) ::close(fd);
    }
  } received{spec};

  // A claim this spawn cannot get to goes back for the next.
  const auto refuse = [&](json reply) {
    if (spec.primed_id != 0 && primed_.count(spec.primed_id) != 0) (void)release_primed(spec.primed_id);
    return reply;
  };
  if (live_ids_.count(spec.instance_id) != 0) {
    return refuse(
        error_reply(fmt::format("sandbox: instance '{}' is already running", spec.instance_id), "conflict"));
  }
  const auto check_dir = [&](const std::filesystem::path& dir, std::string_view step) -> std::string {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return step_message(step, dir.string(), errno);
    if (!S_ISDIR(st.st_mode)) return step_message(step, dir.string(), ENOTDIR);
    return {};
  };
  const bool ns = report_.namespaces;
  if (auto e = check_dir(spec.code_dir, ns ? "mount /var/task" : "chdir"); !e.empty()) return refuse(error_reply(e));
  if (!spec.runtime_dir.empty() && ns) {
    if (auto e = check_dir(spec.runtime_dir, "mount /var/runtime"); !e.empty()) return refuse(error_reply(e));
  }
  if (ns && ::access(scratch_root_.c_str(), F_OK) != 0 && ::mkdir(scratch_root_.c_str(), 0700) != 0) {
    return refuse(error_reply(step_message("mkdir", scratch_root_, errno)));
  }

  // A claimed primed runtime takes the instance; where it cannot, the
  // instance gets a fresh process with the claim's uid and its lease.
  bool leased_uid = false;
  if (const auto claimed = primed_.find(spec.primed_id); spec.primed_id != 0 && claimed != primed_.end() &&
                                                        claimed->second.state == Primed::State::kClaimed) {
    Primed& primed = claimed->second;
    const bool fits = primed.pid != 0 && spec.network == NetworkMode::kHost && spec.inherit_fds.empty();
    if (fits) {
      if (auto reply = spawn_primed(spec, primed)) {
        primed_.erase(claimed);
        return std::move(*reply);
      }
    }
    discard_primed(primed, /*keep_lease=*/true);
    if (report_.uid_switch) {
      used_uids_.erase(primed.uid);
      spec.uid = spec.gid = primed.uid;
      leased_uid = true;
    }
    primed_.erase(claimed);
  }

  auto ids = pick_ids(spec);
  if (!ids.ok()) {
    if (leased_uid) uid_leases_.release(spec.uid);
    return error_reply(ids.error().message, "throttled");
  }
  const unsigned uid = ids->first;
  const unsigned gid = ids->second;
  const bool private_network = ns && report_.network_namespace && spec.network == NetworkMode::kNone;
  Instance instance;
  instance.id = spec.instance_id;
  instance.uid = uid;
  instance.leased_uid = leased_uid;
  // A function with a fork template: its instance is forked from it.
  if (auto reply = spawn_forked(spec, uid, gid)) return std::move(*reply);
  while (ns && !private_network && !shells_.empty()) {
    if (auto reply = spawn_in_shell(spec, uid, gid, leased_uid)) {
      if (leased_uid && !reply->value("ok", false)) uid_leases_.release(uid);
      return std::move(*reply);
    }
  }

  const auto give_up = [&](const std::string& message) {
    if (leased_uid) uid_leases_.release(uid);
    if (!remove_cgroup(instance.cgroup)) pending_removals_.push_back(instance.cgroup);
    return error_reply(message);
  };
  if (layout_.version != CgroupVersion::kNone) {
    const CpuLimits cpu = cpu_limits_of(spec);
    auto group = create_instance_cgroup(layout_, spec.instance_id, spec.memory_bytes, cpu, spec.pids_max);
    if (!group.ok()) return give_up(group.error().message);
    instance.cgroup = std::move(group).value();
  }
  // A private network: open the Runtime API socket inside it, for the daemon.
  OwnedFd runtime_listener;
  const auto listen_inside = [&](int pid) -> std::string {
    if (!private_network) return {};
    auto listener = listen_in_network_of(pid);
    if (!listener.ok()) return listener.error().message;
    runtime_listener.fd = *listener;
    return {};
  };
  auto pid = launch_child(spec, uid, gid, private_network, instance.cgroup, listen_inside);
  if (!pid.ok()) return give_up(pid.error().message);

  json reply = adopt(*pid, std::move(instance));
  if (runtime_listener.fd >= 0) {
    reply_fds_.push_back(runtime_listener.release());
    reply["runtime_listener"] = true;
  }
  return reply;
}

base::Result<int> LauncherProcess::launch_child(const InstanceSpec& spec, unsigned uid, unsigned gid,
                                                bool private_network, const InstanceCgroup& group,
                                                const std::function<std::string(int)>& before_go,
                                                bool fork_template) {
  const auto failed = [](std::string message) { return base::make_error(base::ErrorCode::kService, std::move(message)); };
  int sync_pipe[2];
  int error_pipe[2];
  if (::pipe2(sync_pipe, O_CLOEXEC) != 0) return failed(step_message("pipe", "", errno));
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(sync_pipe[0]);
    ::close(sync_pipe[1]);
    return failed(step_message("pipe", "", err));
  }

  ChildOptions options = child_options(private_network);
  if (fork_template && options.seccomp_program != nullptr) options.seccomp_program = &fork_seccomp_program_;
  ChildPlan plan = build_child_plan(spec, host_, options, uid, gid);
  plan.sync_fd = sync_pipe[0];
  plan.sync_write_fd = sync_pipe[1];
  plan.error_fd = error_pipe[1];
  plan.error_read_fd = error_pipe[0];

  unsigned long flags = 0;
  if (report_.namespaces) flags = kNamespaceFlags | (private_network ? CLONE_NEWNET : 0);
  const long cloned = clone_process(flags);
  if (cloned == 0) run_child(plan);  // never returns
  const int clone_errno = errno;
  ::close(sync_pipe[0]);
  ::close(error_pipe[1]);
  const auto close_ours = [&] {
    ::close(sync_pipe[1]);
    ::close(error_pipe[0]);
  };
  if (cloned < 0) {
    close_ours();
    return failed(step_message("clone", "", clone_errno));
  }
  const int pid = static_cast<int>(cloned);
  const auto abandon = [&](std::string message) {
    ::kill(pid, SIGKILL);
    int status = 0;
    (void)wait_for(pid, &status, std::chrono::seconds(5));
    close_ours();
    kill_cgroup(group);
    return failed(std::move(message));
  };

  // Into the cgroup before any code of the instance runs, then go.
  if (layout_.version != CgroupVersion::kNone) {
    if (auto joined = join_cgroup(group, pid); !joined.ok()) return abandon(joined.error().message);
  }
  if (before_go) {
    if (auto refused = before_go(pid); !refused.empty()) return abandon(std::move(refused));
  }
  const char go = 1;
  if (::write(sync_pipe[1], &go, 1) != 1) return abandon(step_message("release child", "", errno));
  if (auto exec_failed = wait_for_exec(error_pipe[0], spec.argv[0]); !exec_failed.empty()) {
    return abandon(std::move(exec_failed));
  }
  close_ours();
  return pid;
}

ChildOptions LauncherProcess::child_options(bool private_network) const {
  ChildOptions options;
  options.ignored_signals = ignored_signals_;
  options.namespaces = report_.namespaces;
  options.private_network = private_network;
  options.switch_uid = report_.uid_switch;
  options.seccomp_program = report_.seccomp ? &seccomp_program_ : nullptr;
  return options;
}

std::string LauncherProcess::wait_for_exec(int error_read_fd, const std::string& program) {
  ChildFailure failure{};
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + config_.spawn_timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return fmt::format("sandbox step 'exec' ({}): did not finish within {} ms", program,
                         config_.spawn_timeout.count());
    }
    pollfd p{error_read_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return step_message("wait for exec", "", errno);
    if (r == 0) continue;
    const ssize_t n = ::read(error_read_fd, reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got == sizeof failure) break;
  }
  if (got == 0) return {};
  failure.step[sizeof failure.step - 1] = '\0';
  failure.path[sizeof failure.path - 1] = '\0';
  return got == sizeof failure ? step_message(failure.step, failure.path, failure.error)
                               : std::string("sandbox step 'report': truncated failure record");
}

json LauncherProcess::adopt(int pid, Instance instance) {
  if (report_.uid_switch) used_uids_.insert(instance.uid);
  live_ids_.insert(instance.id);
  // Refill the pool later: building a sandbox now would take a core from
  // the instance that is just starting.
  pool_retry_at_ = std::max(pool_retry_at_, std::chrono::steady_clock::now() + kPoolRefillDelay);
  json reply{{"ok", true}, {"pid", pid}, {"uid", instance.uid}};
  if (!instance.cgroup.memory_dir.empty()) reply["cgroup"] = instance.cgroup.memory_dir.filename().string();
  instances_.emplace(pid, std::move(instance));
  return reply;
}

json LauncherProcess::kill_instance(int pid) {
  const auto it = instances_.find(pid);
  if (it == instances_.end()) return error_reply(fmt::format("sandbox: no live instance with pid {}", pid), "not_found");
  ::kill(pid, SIGKILL);
  if (!report_.namespaces) ::kill(-pid, SIGKILL);  // its session/process group
  kill_cgroup(it->second.cgroup);
  return json{{"ok", true}};
}

void LauncherProcess::reap() {
  for (;;) {
    int status = 0;
    const int pid = ::waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) break;
    if (instances_.count(pid) != 0) {
      finish_instance(pid, status);
      continue;
    }
    if (reap_primed(pid) || reap_template(pid)) continue;
    const auto shell = std::find_if(shells_.begin(), shells_.end(), [pid](const Shell& s) { return s.pid == pid; });
    if (shell != shells_.end()) {  // died waiting (killed, or a step of the shared part failed)
      ::close(shell->control_fd);
      ::close(shell->error_read_fd);
      kill_cgroup(shell->cgroup);
      if (!remove_cgroup(shell->cgroup)) pending_removals_.push_back(shell->cgroup);
      shells_.erase(shell);
      if (!stopping_) pool_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    // Anything else is an orphan handed to us as subreaper: just reaped.
  }
}

void LauncherProcess::finish_instance(int pid, int status) {
  auto node = instances_.extract(pid);
  Instance& instance = node.mapped();
  // The pid namespace took the rest down with its init; without one, the
  // session's processes go now. The cgroup is the backstop either way.
  if (!report_.namespaces) ::kill(-pid, SIGKILL);
  kill_cgroup(instance.cgroup);
  const bool oom = cgroup_oom_killed(instance.cgroup);
  const std::uint64_t peak =
      instance.cgroup.memory_dir.empty() ? 0 : read_peak_memory(instance.cgroup.memory_dir, instance.cgroup.version);
  if (!remove_cgroup(instance.cgroup)) pending_removals_.push_back(instance.cgroup);
  release_uid(instance);
  live_ids_.erase(instance.id);
  ExitEvent event{pid, status, oom, instance.id, peak};
  pending_events_.push_back(event_to_json(event));
}

void LauncherProcess::flush_events() {
  std::size_t sent = 0;
  for (; sent < pending_events_.size(); ++sent) {
    int err = 0;
    if (!send_message(event_fd_, pending_events_[sent], {}, &err).ok()) {
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      if (stopping_) break;
      log(fmt::format("exit event lost: {}", std::strerror(err)));
      if (err == EPIPE || err == ECONNRESET) shutdown(0);
    }
  }
  pending_events_.erase(pending_events_.begin(), pending_events_.begin() + static_cast<std::ptrdiff_t>(sent));
}

void LauncherProcess::retry_removals() {
  std::vector<InstanceCgroup> still;
  for (const InstanceCgroup& group : pending_removals_) {
    kill_cgroup(group);
    if (!remove_cgroup(group)) still.push_back(group);
  }
  pending_removals_ = std::move(still);
}

void LauncherProcess::shutdown(int code) {
  if (stopping_) ::_exit(code);
  stopping_ = true;
  for (const auto& [pid, instance] : instances_) {
    ::kill(pid, SIGKILL);
    if (!report_.namespaces) ::kill(-pid, SIGKILL);
    kill_cgroup(instance.cgroup);
  }
  for (const Shell& shell : shells_) ::kill(shell.pid, SIGKILL);
  for (auto& [id, primed] : primed_) discard_primed(primed, /*keep_lease=*/false);
  primed_.clear();
  for (auto& [key, t] : templates_) discard_template(t);
  templates_.clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const auto running = [&] { return !instances_.empty() || !shells_.empty(); };
  while (running() && std::chrono::steady_clock::now() < deadline) {
    reap();
    finish_ended_forked();
    if (running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (int i = 0; i < 200 && !pending_removals_.empty(); ++i) {
    retry_removals();
    if (!pending_removals_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  flush_events();  // best effort: the daemon may still be listening
  remove_parent_groups(layout_);
  if (!scratch_root_.empty()) ::rmdir(scratch_root_.c_str());
  ::_exit(code);
}

}  // namespace nimbus::sandbox::detail
