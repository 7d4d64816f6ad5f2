#include "sandbox/detail/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "base/files.h"

namespace nimbus::sandbox::detail {

namespace fs = std::filesystem;
using base::ErrorCode;
using base::make_error;

namespace {

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(sep, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
  const auto digit = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && digit(s[i + 1]) && digit(s[i + 2]) && digit(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

// Writes `text` to an existing cgroup file; 0 or errno.
int write_file(const fs::path& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  for (;;) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    break;
  }
  ::close(fd);
  return err;
}

std::optional<std::string> read_small(const fs::path& path) {
  auto text = base::read_file(path);
  if (!text.ok()) return std::nullopt;
  return std::move(text).value();
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

base::Error step_error(std::string_view step, const fs::path& path, int err) {
  return make_error(ErrorCode::kService,
                    fmt::format("sandbox step '{}' ({}): {}", step, path.string(), std::strerror(err)));
}

// "key N" in a flat-keyed cgroup file; nullopt when absent.
std::optional<std::uint64_t> read_key(const fs::path& path, std::string_view key) {
  const auto text = read_small(path);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string k;
  std::uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<int> read_procs(const fs::path& dir) {
  std::vector<int> pids;
  const auto text = read_small(dir / "cgroup.procs");
  if (!text) return pids;
  std::istringstream in(*text);
  int pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// mkdir that tolerates an existing directory.
int make_dir(const fs::path& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return 0;
  return errno;
}

}  // namespace

std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo) {
  std::vector<CgroupMount> mounts;
  for (const std::string& line : split(mountinfo, '\n')) {
    if (line.empty()) continue;
    const std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const std::vector<std::string> before = split(std::string_view(line).substr(0, dash), ' ');
    const std::vector<std::string> after = split(std::string_view(line).substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) continue;
    CgroupMount m;
    if (after[0] == "cgroup2") {
      m.v2 = true;
    } else if (after[0] == "cgroup") {
      for (const std::string& opt : split(after[2], ',')) {
        if (opt == "rw" || opt == "ro" || opt.find('=') != std::string::npos) continue;
        m.controllers.push_back(opt);
      }
    } else {
      continue;
    }
    m.root = unescape_octal(before[3]);
    m.mount_point = unescape_octal(before[4]);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

OwnGroups locate_own_groups(const std::vector<CgroupMount>& mounts, std::string_view proc_self_cgroup) {
  OwnGroups own;
  const auto resolve = [](const CgroupMount& m, const std::string& path) -> std::optional<fs::path> {
    // The path is relative to the hierarchy (or cgroup namespace) root; the
    // mount shows the subtree `m.root`.
    if (m.root == "/") return m.mount_point / fs::path(path).relative_path();
    if (path == m.root) return m.mount_point;
    if (path.size() > m.root.size() && path.compare(0, m.root.size(), m.root) == 0 && path[m.root.size()] == '/') {
      return m.mount_point / fs::path(path.substr(m.root.size() + 1));
    }
    return std::nullopt;
  };
  for (const std::string& line : split(proc_self_cgroup, '\n')) {
    const std::size_t first = line.find(':');
    if (first == std::string::npos) continue;
    const std::size_t second = line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string id = line.substr(0, first);
    const std::vector<std::string> controllers = split(line.substr(first + 1, second - first - 1), ',');
    const std::string path = line.substr(second + 1);
    if (path.empty() || path[0] != '/') continue;
    if (id == "0" && controllers.size() == 1 && controllers[0].empty()) {
      for (const CgroupMount& m : mounts) {
        if (m.v2 && !own.v2) own.v2 = resolve(m, path);
      }
      continue;
    }
    for (const CgroupMount& m : mounts) {
      if (m.v2) continue;
      // The mount must carry exactly this hierarchy's controllers.
      bool same = m.controllers.size() == controllers.size();
      for (const std::string& c : controllers) same = same && contains(m.controllers, c);
      if (!same) continue;
      const auto dir = resolve(m, path);
      if (!dir) continue;
      if (contains(controllers, "memory") && !own.v1_memory) own.v1_memory = dir;
      if (contains(controllers, "cpu") && !own.v1_cpu) own.v1_cpu = dir;
      if (contains(controllers, "pids") && !own.v1_pids) own.v1_pids = dir;
    }
  }
  return own;
}

CgroupLayout prepare_cgroups(const std::string& name, int daemon_pid) {
  CgroupLayout layout;
  const auto mountinfo = read_small("/proc/self/mountinfo");
  const auto self_cgroup = read_small("/proc/self/cgroup");
  if (!mountinfo || !self_cgroup) {
    layout.lost.push_back("cgroups: /proc/self/mountinfo or /proc/self/cgroup is unreadable.");
    return layout;
  }
  const OwnGroups own = locate_own_groups(parse_cgroup_mounts(*mountinfo), *self_cgroup);

  if (own.v1_memory) {
    const fs::path memory = *own.v1_memory / name;
    if (const int err = make_dir(memory); err != 0) {
      layout.lost.push_back(fmt::format("cgroups: cannot create {} ({}).", memory.string(), std::strerror(err)));
      return layout;
    }
    layout.version = CgroupVersion::kV1;
    layout.memory = memory;
    if (own.v1_cpu && make_dir(*own.v1_cpu / name) == 0) {
      layout.cpu = *own.v1_cpu / name;
    } else {
      layout.lost.push_back("cgroups: no usable v1 cpu controller, so instances are not given CPU shares.");
    }
    if (own.v1_pids && make_dir(*own.v1_pids / name) == 0) {
      layout.pids = *own.v1_pids / name;
    } else {
      layout.lost.push_back("cgroups: no usable v1 pids controller, so only RLIMIT_NPROC limits processes.");
    }
    return layout;
  }

  if (own.v2) {
    const fs::path& self = *own.v2;
    const auto available = read_small(self / "cgroup.controllers");
    const std::vector<std::string> controllers = split(available.value_or(""), ' ');
    const auto has = [&](std::string_view c) {
      for (std::string s : controllers) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        if (s == c) return true;
      }
      return false;
    };
    if (!has("memory")) {
      layout.lost.push_back(fmt::format(
          "cgroups: the memory controller is not available in {}, so memory, CPU and process limits are not "
          "enforced by the kernel.",
          self.string()));
      return layout;
    }
    std::string enable = "+memory";
    if (has("cpu")) enable += " +cpu";
    if (has("pids")) enable += " +pids";
    int err = write_file(self / "cgroup.subtree_control", enable);
    if (err == EBUSY) {
      // "No internal processes": the own group may not hold processes once
      // it hands controllers down. Move ours into a leaf, if ours are all.
      const std::vector<int> procs = read_procs(self);
      const bool only_ours = std::all_of(procs.begin(), procs.end(),
                                         [&](int p) { return p == ::getpid() || p == daemon_pid; });
      const fs::path leaf = self / (name + "-daemon");
      if (only_ours && make_dir(leaf) == 0) {
        for (const int p : procs) (void)write_file(leaf / "cgroup.procs", std::to_string(p));
        err = write_file(self / "cgroup.subtree_control", enable);
      }
    }
    if (err != 0) {
      layout.lost.push_back(fmt::format("cgroups: cannot enable controllers in {} ({}).",
                                        (self / "cgroup.subtree_control").string(), std::strerror(err)));
      return layout;
    }
    const fs::path parent = self / name;
    if (const int e = make_dir(parent); e != 0) {
      layout.lost.push_back(fmt::format("cgroups: cannot create {} ({}).", parent.string(), std::strerror(e)));
      return layout;
    }
    if (const int e = write_file(parent / "cgroup.subtree_control", enable); e != 0) {
      layout.lost.push_back(fmt::format("cgroups: cannot enable controllers in {} ({}).",
                                        (parent / "cgroup.subtree_control").string(), std::strerror(e)));
      return layout;
    }
    layout.version = CgroupVersion::kV2;
    layout.memory = parent;
    if (has("cpu")) {
      layout.cpu = parent;
    } else {
      layout.lost.push_back("cgroups: the v2 cpu controller is not available, so instances get no CPU weight.");
    }
    if (has("pids")) {
      layout.pids = parent;
    } else {
      layout.lost.push_back("cgroups: the v2 pids controller is not available, so only RLIMIT_NPROC limits processes.");
    }
    return layout;
  }

  layout.lost.push_back(
      "cgroups: no usable memory cgroup (neither a v1 memory hierarchy nor cgroup v2 with the memory controller), "
      "so memory, CPU and process limits are not enforced by the kernel and out-of-memory kills are not detected.");
  return layout;
}

void remove_parent_groups(const CgroupLayout& layout) {
  for (const fs::path& dir : {layout.memory, layout.cpu, layout.pids}) {
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
}

unsigned cpu_shares_for(std::uint64_t memory_bytes) {
  const std::uint64_t mb = memory_bytes >> 20;
  const std::uint64_t shares = mb * 1024 / 1769;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(shares, 2, 262144));
}

unsigned cpu_weight_for_shares(unsigned shares) {
  return static_cast<unsigned>(std::clamp<std::uint64_t>(std::uint64_t{shares} * 100 / 1024, 1, 10000));
}

unsigned cpu_quota_micros(unsigned millicores) {
  return std::max(1000u, static_cast<unsigned>(std::uint64_t{millicores} * kCpuPeriodMicros / 1000));
}

base::Result<InstanceCgroup> create_instance_cgroup(const CgroupLayout& layout, const std::string& instance_id,
                                                    std::uint64_t memory_bytes, CpuLimits cpu,
                                                    unsigned pids_max) {
  InstanceCgroup group;
  group.version = layout.version;
  if (layout.version == CgroupVersion::kNone) return group;

  const auto make = [&](const fs::path& parent) -> base::Result<fs::path> {
    const fs::path dir = parent / instance_id;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      const int err = errno;
      // A leftover of an earlier run is reused when it is empty.
      if (err != EEXIST || !read_procs(dir).empty()) return step_error("cgroup mkdir", dir, err);
    }
    if (std::find(group.dirs.begin(), group.dirs.end(), dir) == group.dirs.end()) group.dirs.push_back(dir);
    return dir;
  };
  const auto fail = [&](base::Error error) -> base::Result<InstanceCgroup> {
    (void)remove_cgroup(group);
    return error;
  };

  auto memory = make(layout.memory);
  if (!memory.ok()) return fail(std::move(memory).error());
  group.memory_dir = *memory;
  if (layout.version == CgroupVersion::kV1) {
    if (!layout.cpu.empty()) {
      auto cpu_dir = make(layout.cpu);
      if (!cpu_dir.ok()) return fail(std::move(cpu_dir).error());
      group.cpu_dir = *cpu_dir;
    }
    if (!layout.pids.empty()) {
      auto pids = make(layout.pids);
      if (!pids.ok()) return fail(std::move(pids).error());
      group.pids_dir = *pids;
    }
  } else {
    // v2: one group with every controller.
    if (!layout.cpu.empty()) group.cpu_dir = group.memory_dir;
    if (!layout.pids.empty()) group.pids_dir = group.memory_dir;
  }
  if (auto s = set_cgroup_limits(group, memory_bytes, cpu, pids_max); !s.ok()) return fail(std::move(s).error());
  return group;
}

base::Status set_cgroup_limits(const InstanceCgroup& group, std::uint64_t memory_bytes, CpuLimits cpu,
                               unsigned pids_max) {
  const auto write = [](const fs::path& dir, std::string_view file, const std::string& value) -> base::Status {
    const fs::path path = dir / file;
    if (const int err = write_file(path, value); err != 0) {
      return step_error(fmt::format("cgroup {}", file), path, err);
    }
    return base::Ok{};
  };
  const fs::path& memory = group.memory_dir;
  const std::string limit = std::to_string(memory_bytes);
  if (group.version == CgroupVersion::kV1) {
    // Swap off: memory+swap limited to the memory limit, and no swapping.
    // memsw must stay >= the memory limit at every step, so the order
    // depends on whether a reused group's limits go up or down.
    const bool memsw = ::access((memory / "memory.memsw.limit_in_bytes").c_str(), F_OK) == 0;
    if (write_file(memory / "memory.limit_in_bytes", limit) != 0 && memsw) {
      (void)write_file(memory / "memory.memsw.limit_in_bytes", limit);
    }
    NIMBUS_TRY(write(memory, "memory.limit_in_bytes", limit));
    if (memsw) NIMBUS_TRY(write(memory, "memory.memsw.limit_in_bytes", limit));
    (void)write_file(memory / "memory.swappiness", "0");
    if (!group.cpu_dir.empty()) {
      NIMBUS_TRY(write(group.cpu_dir, "cpu.shares", std::to_string(cpu.shares)));
      // The burst must not pass the quota: zero it before the quota changes.
      (void)write_file(group.cpu_dir / "cpu.cfs_burst_us", "0");
      NIMBUS_TRY(write(group.cpu_dir, "cpu.cfs_period_us", std::to_string(kCpuPeriodMicros)));
      const unsigned quota = cpu.quota_millicores == 0 ? 0 : cpu_quota_micros(cpu.quota_millicores);
      NIMBUS_TRY(write(group.cpu_dir, "cpu.cfs_quota_us", quota == 0 ? std::string("-1") : std::to_string(quota)));
      if (quota != 0) (void)write_file(group.cpu_dir / "cpu.cfs_burst_us", std::to_string(quota));
    }
    if (!group.pids_dir.empty()) NIMBUS_TRY(write(group.pids_dir, "pids.max", std::to_string(pids_max)));
    return base::Ok{};
  }
  if (group.version != CgroupVersion::kV2) return base::Ok{};
  NIMBUS_TRY(write(memory, "memory.max", limit));
  if (::access((memory / "memory.swap.max").c_str(), F_OK) == 0) NIMBUS_TRY(write(memory, "memory.swap.max", "0"));
  (void)write_file(memory / "memory.oom.group", "1");  // an OOM kill takes the whole instance
  if (!group.cpu_dir.empty()) {
    NIMBUS_TRY(write(group.cpu_dir, "cpu.weight", std::to_string(cpu_weight_for_shares(cpu.shares))));
    const unsigned quota = cpu.quota_millicores == 0 ? 0 : cpu_quota_micros(cpu.quota_millicores);
    (void)write_file(group.cpu_dir / "cpu.max.burst", "0");
    NIMBUS_TRY(write(group.cpu_dir, "cpu.max",
                     fmt::format("{} {}", quota == 0 ? std::string("max") : std::to_string(quota), kCpuPeriodMicros)));
    if (quota != 0) (void)write_file(group.cpu_dir / "cpu.max.burst", std::to_string(quota));
  }
  if (!group.pids_dir.empty()) NIMBUS_TRY(write(group.pids_dir, "pids.max", std::to_string(pids_max)));
  return base::Ok{};
}

base::Status join_cgroup(const InstanceCgroup& group, int pid) {
  const std::string text = std::to_string(pid);
  for (const fs::path& dir : group.dirs) {
    const fs::path path = dir / "cgroup.procs";
    if (const int err = write_file(path, text); err != 0) return step_error("cgroup join", path, err);
  }
  return base::Ok{};
}

bool cgroup_oom_killed(const InstanceCgroup& group) {
  if (group.memory_dir.empty()) return false;
  const char* file = group.version == CgroupVersion::kV1 ? "memory.oom_control" : "memory.events";
  const auto n = read_key(group.memory_dir / file, "oom_kill");
  return n.has_value() && *n > 0;
}

void kill_cgroup(const InstanceCgroup& group) {
  for (const fs::path& dir : group.dirs) {
    if (group.version == CgroupVersion::kV2 && write_file(dir / "cgroup.kill", "1") == 0) continue;
    for (const int pid : read_procs(dir)) {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
  }
}

bool rename_instance_cgroup(InstanceCgroup& group, const std::string& name) {
  std::vector<std::filesystem::path> renamed;
  renamed.reserve(group.dirs.size());
  for (const auto& dir : group.dirs) {
    auto target = dir.parent_path() / name;
    if (::rename(dir.c_str(), target.c_str()) != 0) {
      for (std::size_t i = 0; i < renamed.size(); ++i) (void)::rename(renamed[i].c_str(), group.dirs[i].c_str());
      return false;
    }
    renamed.push_back(std::move(target));
  }
  const auto moved = [&](const std::filesystem::path& old) {
    for (std::size_t i = 0; i < group.dirs.size(); ++i) {
      if (group.dirs[i] == old) return renamed[i];
    }
    return old;
  };
  group.memory_dir = moved(group.memory_dir);
  group.cpu_dir = moved(group.cpu_dir);
  group.pids_dir = moved(group.pids_dir);
  group.dirs = std::move(renamed);
  return true;
}

bool remove_cgroup(const InstanceCgroup& group) {
  bool all = true;
  for (const fs::path& dir : group.dirs) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) all = false;
  }
  return all;
}

namespace {
// The files that hold a memory group's peak, in the order they are tried.
std::vector<fs::path> peak_memory_files(const fs::path& instance_dir, CgroupVersion version) {
  if (version == CgroupVersion::kV1) return {instance_dir / "memory.max_usage_in_bytes"};
  // memory.peak is new in Linux 5.19; before that, the current usage is the best there is.
  if (version == CgroupVersion::kV2) return {instance_dir / "memory.peak", instance_dir / "memory.current"};
  return {};
}
}  // namespace

int open_peak_memory(const fs::path& instance_dir, CgroupVersion version) {
  for (const fs::path& file : peak_memory_files(instance_dir, version)) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
  }
  return -1;
}

std::optional<std::uint64_t> read_peak_memory_fd(int fd) {
  char buf[32];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(buf, buf + n, value);
  if (ec != std::errc{} || end == buf) return std::nullopt;
  return value;
}

std::uint64_t read_peak_memory(const fs::path& instance_dir, CgroupVersion version) {
  const int fd = open_peak_memory(instance_dir, version);
  if (fd < 0) return 0;
  const auto value = read_peak_memory_fd(fd);
  ::close(fd);
  return value.value_or(0);
}

}  // namespace nimbus::sandbox::detail
