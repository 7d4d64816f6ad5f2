#include "sandbox/detail/child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "sandbox/detail/protocol.h"

namespace nimbus::sandbox::detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEtcFiles[] = {"resolv.conf", "hosts",     "nsswitch.conf", "localtime",
                                     "host.conf",   "gai.conf",  "protocols",     "services",
                                     "ld.so.cache", "ld.so.conf"};
// The user an instance runs as, named as in Lambda.
constexpr const char* kUserName = "sbx_user1051";
constexpr const char* kEtcDirs[] = {"ssl", "ca-certificates", "alternatives", "ld.so.conf.d"};
constexpr const char* kTopEntries[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom"};

bool under_usr(const fs::path& p) {
  const std::string s = p.lexically_normal().string();
  return s == "/usr" || s.rfind("/usr/", 0) == 0;
}

// --- async-signal-safe helpers for the child ---

void copy_cstr(char* dst, std::size_t cap, const char* src) {
  std::size_t i = 0;
  if (src != nullptr) {
    for (; i + 1 < cap && src[i] != '\0'; ++i) dst[i] = src[i];
  }
  dst[i] = '\0';
}

int g_error_fd = -1;  // set in the child only (its own copy of memory)

[[noreturn]] void fail(const char* step, const char* path, int err) {
  ChildFailure f;
  copy_cstr(f.step, sizeof f.step, step);
  copy_cstr(f.path, sizeof f.path, path);
  f.error = err;
  if (g_error_fd >= 0) {
    ssize_t n;
    do {
      n = ::write(g_error_fd, &f, sizeof f);
    } while (n < 0 && errno == EINTR);
  }
  _exit(127);
}

unsigned long preserved_mount_flags(const char* target) {
  struct statfs st;
  if (::statfs(target, &st) != 0) return 0;
  unsigned long out = 0;
  const unsigned long f = static_cast<unsigned long>(st.f_flags);
  if ((f & ST_NOSUID) != 0) out |= MS_NOSUID;
  if ((f & ST_NODEV) != 0) out |= MS_NODEV;
  if ((f & ST_NOEXEC) != 0) out |= MS_NOEXEC;
  if ((f & ST_NOATIME) != 0) out |= MS_NOATIME;
  if ((f & ST_NODIRATIME) != 0) out |= MS_NODIRATIME;
  if ((f & ST_RELATIME) != 0) out |= MS_RELATIME;
  return out;
}

void run_op(const ChildOp& op) {
  switch (op.kind) {
    case ChildOp::Kind::kMkdir:
      if (::mkdir(op.target, op.mode) != 0 && errno != EEXIST) fail(op.step, op.shown_path, errno);
      return;
    case ChildOp::Kind::kTouch: {
      const int fd = ::open(op.target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0) fail(op.step, op.shown_path, errno);
      ::close(fd);
      return;
    }
    case ChildOp::Kind::kWriteFile: {
      const int fd = ::open(op.target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, op.mode);
      if (fd < 0) fail(op.step, op.shown_path, errno);
      std::size_t done = 0;
      std::size_t size = 0;
      while (op.data[size] != '\0') ++size;
      while (done < size) {
        const ssize_t n = ::write(fd, op.data + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(op.step, op.shown_path, n < 0 ? errno : EIO);
        done += static_cast<std::size_t>(n);
      }
      ::close(fd);
      return;
    }
    case ChildOp::Kind::kSymlink:
      if (::symlink(op.source, op.target) != 0) fail(op.step, op.shown_path, errno);
      return;
    case ChildOp::Kind::kMount:
      if (::mount(op.source, op.target, op.fstype, op.flags, op.data) != 0) fail(op.step, op.shown_path, errno);
      return;
    case ChildOp::Kind::kBind:
      if (::mount(op.source, op.target, nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr) != 0) {
        fail(op.step, op.shown_path, errno);
      }
      return;
    case ChildOp::Kind::kBindReadOnly:
      if (::mount(op.source, op.target, nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr) != 0) {
        fail(op.step, op.shown_path, errno);
      }
      [[fallthrough]];
    case ChildOp::Kind::kRemountReadOnly: {
      const unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | op.flags | preserved_mount_flags(op.target);
      if (::mount(nullptr, op.target, nullptr, flags, nullptr) != 0) fail(op.step, op.shown_path, errno);
      return;
    }
  }
}

void bring_loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("loopback up", "lo", errno);
  struct ifreq ifr {};
  copy_cstr(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("loopback up", "lo", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("loopback up", "lo", errno);
  ::close(s);
}

}  // namespace

std::string tmpfs_options(std::uint64_t bytes) { return fmt::format("size={},mode=1777", bytes); }

HostLayout probe_host_layout(std::string scratch_root) {
  HostLayout host;
  host.scratch_root = std::move(scratch_root);
  std::error_code ec;
  for (const char* name : kTopEntries) {
    const fs::path p = fs::path("/") / name;
    const fs::file_status st = fs::symlink_status(p, ec);
    if (ec || !fs::exists(st)) continue;
    if (fs::is_symlink(st)) {
      const fs::path target = fs::read_symlink(p, ec);
      const fs::path resolved = fs::weakly_canonical(p, ec);
      if (!ec && under_usr(resolved)) host.top_symlinks.emplace_back(name, target.string());
    } else if (fs::is_directory(st)) {
      host.top_dirs.emplace_back(name);
    }
  }
  for (const char* name : kEtcFiles) {
    const fs::path p = fs::path("/etc") / name;
    const fs::file_status lst = fs::symlink_status(p, ec);
    if (ec || !fs::exists(lst)) continue;
    if (fs::is_symlink(lst)) {
      const fs::path resolved = fs::canonical(p, ec);
      if (ec) continue;  // dangling
      if (under_usr(resolved)) {
        host.etc_symlinks.emplace_back(name, fs::read_symlink(p, ec).string());
        continue;
      }
      if (fs::is_regular_file(resolved, ec)) host.etc_files.emplace_back(name);  // the bind follows the link
      continue;
    }
    if (fs::is_regular_file(lst)) host.etc_files.emplace_back(name);
  }
  for (const char* name : kEtcDirs) {
    if (fs::is_directory(fs::path("/etc") / name, ec)) host.etc_dirs.emplace_back(name);
  }
  for (const char* name : kDevNodes) {
    struct stat st {};
    if (::stat((std::string("/dev/") + name).c_str(), &st) == 0 && S_ISCHR(st.st_mode)) host.dev_nodes.emplace_back(name);
  }
  return host;
}

ChildPlan build_child_plan(const InstanceSpec& spec, const HostLayout& host, const ChildOptions& options,
                           unsigned uid, unsigned gid) {
  ChildPlan plan;
  plan.namespaces = options.namespaces;
  plan.network_none = options.namespaces && options.private_network;
  plan.switch_uid = options.switch_uid;
  plan.seccomp = options.seccomp_program != nullptr && !options.seccomp_program->empty();
  if (plan.seccomp) {
    plan.seccomp_program.len = static_cast<unsigned short>(options.seccomp_program->size());
    plan.seccomp_program.filter = const_cast<sock_filter*>(options.seccomp_program->data());
  }
  plan.uid = uid;
  plan.gid = gid;
  plan.nofile = 1024;
  plan.nproc = options.switch_uid ? spec.pids_max : 0;  // RLIMIT_NPROC counts every process of the uid

  plan.exec_path = plan.keep(spec.argv[0]);
  for (const std::string& a : spec.argv) plan.argv.push_back(const_cast<char*>(plan.keep(a)));
  plan.argv.push_back(nullptr);
  for (const std::string& e : spec.env) plan.envp.push_back(const_cast<char*>(plan.keep(e)));
  plan.envp.push_back(nullptr);
  plan.output_fd = spec.output_fd;
  plan.inherit_fds = spec.inherit_fds;
  plan.ignored_signals = options.ignored_signals;
  plan.scratch_fds.resize(spec.inherit_fds.size() + 8);

  if (!options.namespaces) {
    plan.workdir = plan.keep(spec.code_dir.string());
    return plan;
  }
  plan.workdir = "/var/task";

  const std::string root = host.scratch_root;
  const auto in_root = [&](std::string_view inside) { return plan.keep(root + std::string(inside)); };
  const auto add = [&](ChildOp op) { plan.ops.push_back(op); };
  const auto mkdir = [&](std::string_view inside, unsigned mode = 0755) {
    const char* t = in_root(inside);
    add({.kind = ChildOp::Kind::kMkdir, .target = t, .mode = mode, .step = plan.keep(fmt::format("mkdir {}", inside)),
         .shown_path = t});
  };
  const auto touch = [&](std::string_view inside) {
    const char* t = in_root(inside);
    add({.kind = ChildOp::Kind::kTouch, .target = t, .step = plan.keep(fmt::format("create {}", inside)),
         .shown_path = t});
  };
  const auto symlink = [&](std::string_view inside, const std::string& target) {
    const char* t = in_root(inside);
    add({.kind = ChildOp::Kind::kSymlink, .source = plan.keep(target), .target = t,
         .step = plan.keep(fmt::format("symlink {}", inside)), .shown_path = t});
  };
  // Binds are not recursive: mounts below a code directory (or the new root
  // itself, when a code directory contains the scratch directory) stay out.
  // Only /usr and its siblings take their submounts along.
  const auto bind_ro = [&](const std::string& source, std::string_view inside, unsigned long flags,
                           bool recursive = false) {
    const char* s = plan.keep(source);
    add({.kind = ChildOp::Kind::kBindReadOnly, .source = s, .target = in_root(inside), .flags = flags,
         .recursive = recursive, .step = plan.keep(fmt::format("mount {}", inside)), .shown_path = s});
  };
  const auto mount_fs = [&](const char* fstype, std::string_view inside, unsigned long flags, std::string data) {
    add({.kind = ChildOp::Kind::kMount, .source = fstype, .target = in_root(inside), .fstype = fstype, .flags = flags,
         .data = plan.keep(data), .step = plan.keep(fmt::format("mount {}", inside.empty() ? "/" : inside)),
         .shown_path = fstype});
  };
  constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV;

  // The new root: a small tmpfs, made read-only after pivot_root.
  mount_fs("tmpfs", "", kSafe, "mode=0755,size=1m,nr_inodes=4096");
  mkdir("/usr");
  bind_ro("/usr", "/usr", kSafe, /*recursive=*/true);
  for (const auto& [name, target] : host.top_symlinks) symlink("/" + name, target);
  for (const std::string& name : host.top_dirs) {
    mkdir("/" + name);
    bind_ro("/" + name, "/" + name, kSafe, /*recursive=*/true);
  }
  mkdir("/etc");
  for (const std::string& name : host.etc_files) {
    touch("/etc/" + name);
    bind_ro("/etc/" + name, "/etc/" + name, kSafe | MS_NOEXEC);
  }
  for (const std::string& name : host.etc_dirs) {
    mkdir("/etc/" + name);
    bind_ro("/etc/" + name, "/etc/" + name, kSafe | MS_NOEXEC);
  }
  for (const auto& [name, target] : host.etc_symlinks) symlink("/etc/" + name, target);
  mkdir("/var");
  mkdir("/var/task");
  mkdir("/tmp", 01777);

  mkdir("/dev");
  mount_fs("tmpfs", "/dev", kSafe | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64");
  for (const std::string& name : host.dev_nodes) {
    touch("/dev/" + name);
    const char* s = plan.keep("/dev/" + name);
    add({.kind = ChildOp::Kind::kBind, .source = s, .target = in_root("/dev/" + name),
         .step = plan.keep(fmt::format("mount /dev/{}", name)), .shown_path = s});
  }
  symlink("/dev/fd", "/proc/self/fd");
  symlink("/dev/stdin", "/proc/self/fd/0");
  symlink("/dev/stdout", "/proc/self/fd/1");
  symlink("/dev/stderr", "/proc/self/fd/2");
  mkdir("/dev/shm", 01777);
  mount_fs("tmpfs", "/dev/shm", kSafe | MS_NOEXEC, "size=64m,mode=1777");
  {
    const char* t = in_root("/dev");
    add({.kind = ChildOp::Kind::kRemountReadOnly, .target = t, .flags = kSafe | MS_NOEXEC,
         .step = "remount /dev read-only", .shown_path = t});
  }

  mkdir("/proc", 0555);
  mount_fs("proc", "/proc", kSafe | MS_NOEXEC, "");
  mkdir("/.old", 0700);

  // From here on: what belongs to this instance alone.
  plan.instance_ops_begin = plan.ops.size();
  // The instance's own user database: its uid resolves to a name (whoami,
  // getpwuid, os.homedir()) and the host's users stay private.
  const auto write_file = [&](std::string_view inside, std::string content) {
    const char* t = in_root(inside);
    add({.kind = ChildOp::Kind::kWriteFile, .target = t, .data = plan.keep(content), .mode = 0444,
         .step = plan.keep(fmt::format("create {}", inside)), .shown_path = t});
  };
  write_file("/etc/passwd", fmt::format("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                        "{0}:x:{1}:{2}::/tmp:/usr/sbin/nologin\n"
                                        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                                        kUserName, uid, gid));
  write_file("/etc/group", fmt::format("root:x:0:\n{0}:x:{1}:\nnogroup:x:65534:\n", kUserName, gid));
  // A primed runtime's sandbox (no code_dir, no tmp_bytes) gets its code
  // and /tmp from the launcher once it is claimed.
  if (!spec.code_dir.empty()) bind_ro(spec.code_dir.string(), "/var/task", kSafe);
  if (!spec.runtime_dir.empty()) {
    mkdir("/var/runtime");
    bind_ro(spec.runtime_dir.string(), "/var/runtime", kSafe);
  }
  if (spec.tmp_bytes != 0) mount_fs("tmpfs", "/tmp", kSafe, tmpfs_options(spec.tmp_bytes));

  plan.new_root = plan.keep(root);
  plan.put_old = plan.keep(root + "/.old");
  return plan;
}

void run_child(const ChildPlan& plan) noexcept {
  begin_child(plan);
  if (plan.namespaces) run_child_ops(plan, 0, plan.ops.size());
  finish_child(plan);
}

void run_child_ops(const ChildPlan& plan, std::size_t from, std::size_t to) noexcept {
  for (std::size_t i = from; i < to && i < plan.ops.size(); ++i) run_op(plan.ops[i]);
}

void begin_child(const ChildPlan& plan) noexcept {
  g_error_fd = plan.error_fd;
  // The launcher's ends of the pipes: the sync pipe must see EOF when the
  // launcher goes away.
  if (plan.sync_write_fd >= 0) ::close(plan.sync_write_fd);
  if (plan.error_read_fd >= 0) ::close(plan.error_read_fd);

  // Signals as a fresh process has them: the launcher blocks some and
  // ignores others, and both would survive execve. (Handlers do not.)
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (const int sig : plan.ignored_signals) sigaction(sig, &dfl, nullptr);

  // Wait until the launcher has put us into the cgroup.
  char go = 0;
  ssize_t n;
  do {
    n = ::read(plan.sync_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(126);

  if (::setsid() < 0) fail("setsid", "", errno);

  if (plan.namespaces) {
    // Now inside its cgroup: a cgroup namespace rooted there hides the
    // host's cgroup paths from /proc/self/cgroup (kernels before 4.6: skipped).
    (void)::syscall(SYS_unshare, CLONE_NEWCGROUP);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("make mounts private", "/", errno);
  }
}

void run_shell(const ChildPlan& shared, int control_fd, const HostLayout& host, const ChildOptions& options) noexcept {
  begin_child(shared);
  ::prctl(PR_SET_NAME, "nimbus-sandbox", 0, 0, 0);  // in ps until it execs
  // Keep only the error pipe and the control socket: the launcher's other
  // descriptors (its sockets, other shells' ends) must not be held open here.
  const int keep_low = std::min(shared.error_fd, control_fd);
  const int keep_high = std::max(shared.error_fd, control_fd);
  (void)::syscall(SYS_close_range, 3, keep_low - 1, 0);
  (void)::syscall(SYS_close_range, keep_low + 1, keep_high - 1, 0);
  (void)::syscall(SYS_close_range, keep_high + 1, ~0U, 0);
  if (shared.namespaces) run_child_ops(shared, 0, shared.instance_ops_begin);
  // Waiting may take long: die with the launcher.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail("pdeathsig", "", errno);

  Received assignment = receive_message(control_fd, std::chrono::milliseconds(-1));
  if (assignment.outcome != ReceiveOutcome::kMessage) _exit(126);
  // Taken: from here on a failure is this instance's, not a stale shell's.
  const char taken = 1;
  if (::send(control_fd, &taken, 1, MSG_NOSIGNAL) != 1) _exit(126);
  try {
    auto spec = spec_from_json(assignment.message.at("spec"), assignment.fds);
    if (!spec.ok()) fail("assignment", "", EINVAL);
    ChildPlan plan = build_child_plan(*spec, host, options, assignment.message.at("uid").get<unsigned>(),
                                      assignment.message.at("gid").get<unsigned>());
    plan.error_fd = shared.error_fd;
    plan.sync_fd = control_fd;  // EOF = the launcher is gone
    if (plan.namespaces) run_child_ops(plan, plan.instance_ops_begin, plan.ops.size());
    finish_child(plan);
  } catch (const std::exception&) {
    fail("assignment", "", EPROTO);
  }
}

void finish_child(const ChildPlan& plan) noexcept {
  g_error_fd = plan.error_fd;
  if (plan.namespaces) {
    if (::sethostname("nimbus", 6) != 0) fail("sethostname", "nimbus", errno);
    if (plan.network_none) bring_loopback_up();
    if (::syscall(SYS_pivot_root, plan.new_root, plan.put_old) != 0) fail("pivot_root", plan.new_root, errno);
    if (::chdir("/") != 0) fail("chdir", "/", errno);
    if (::umount2("/.old", MNT_DETACH) != 0) fail("detach old root", "/.old", errno);
    if (::rmdir("/.old") != 0) fail("rmdir", "/.old", errno);
    if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      fail("remount / read-only", "/", errno);
    }
  }

  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) fail("open", "/dev/null", errno);

  // Descriptors: stdin /dev/null, stdout+stderr the output, then the
  // inherited ones at 3, 4, ...; every other descriptor closes at exec. All
  // sources first move above every target so that no dup2 clobbers one.
  const int count = static_cast<int>(plan.inherit_fds.size());
  int base = 3 + count;
  const auto raise_base = [&](int fd) {
    if (fd >= base) base = fd + 1;
  };
  raise_base(plan.error_fd);
  raise_base(plan.sync_fd);
  raise_base(devnull);
  raise_base(plan.output_fd);
  for (int i = 0; i < count; ++i) raise_base(plan.inherit_fds[static_cast<std::size_t>(i)]);
  const auto lift = [&](int fd, const char* what) {
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, base);
    if (moved < 0) fail(what, "", errno);
    return moved;
  };
  g_error_fd = lift(plan.error_fd, "move error pipe");
  const int sync_fd = lift(plan.sync_fd, "move sync pipe");
  const int null_fd = lift(devnull, "move /dev/null");
  const int out_fd = plan.output_fd >= 0 ? lift(plan.output_fd, "move output descriptor") : null_fd;
  int* lifted = plan.scratch_fds.data();
  for (int i = 0; i < count; ++i) {
    lifted[i] = lift(plan.inherit_fds[static_cast<std::size_t>(i)], "move inherited descriptor");
  }
  if (::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) fail("dup2 stdio", "", errno);
  for (int i = 0; i < count; ++i) {
    if (::dup2(lifted[i], 3 + i) < 0) fail("dup2 inherited descriptor", "", errno);
  }
  if (::syscall(SYS_close_range, 3 + count, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    // Kernels before 5.11: mark them one by one.
    struct rlimit lim {};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    const rlim_t top = lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > 65536 ? 65536 : lim.rlim_cur;
    for (int fd = 3 + count; fd < static_cast<int>(top); ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  const struct rlimit nofile {plan.nofile, plan.nofile};
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) fail("setrlimit NOFILE", "", errno);
  if (plan.nproc != 0) {
    const struct rlimit nproc {plan.nproc, plan.nproc};
    if (::setrlimit(RLIMIT_NPROC, &nproc) != 0) fail("setrlimit NPROC", "", errno);
  }
  const struct rlimit core {0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  // SCHED_BATCH: a woken instance does not preempt the task that woke it. The
  // daemon wakes an instance with each event and, with normal policy, lost its
  // CPU right there, before it had answered the caller or read the next request.
  // The instance still gets an idle CPU at once, or this one when the daemon
  // waits. Lowering the policy needs no privilege and cannot fail here.
  const struct sched_param no_priority {};
  (void)::sched_setscheduler(0, SCHED_BATCH, &no_priority);

  if (plan.switch_uid) {
    // Raw system calls: this process has one thread, and glibc's wrappers
    // would try to coordinate with threads of the launcher's image.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail("setgroups", "", errno);
    if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) fail("setresgid", "", errno);
    if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) fail("setresuid", "", errno);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs", "", errno);
  // Set after the uid change, which clears it.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail("pdeathsig", "", errno);
  // The launcher might have died before that: its end of the sync pipe
  // is closed then.
  struct pollfd p {sync_fd, POLLIN, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) _exit(126);

  if (::chdir(plan.workdir) != 0) fail("chdir", plan.workdir, errno);
  if (plan.seccomp) {
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &plan.seccomp_program, 0, 0) != 0) {
      fail("seccomp", "", errno);
    }
  }
  ::execve(plan.exec_path, plan.argv.data(), plan.envp.data());
  fail("execve", plan.exec_path, errno);
}

}  // namespace nimbus::sandbox::detail
