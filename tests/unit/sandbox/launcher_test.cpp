// End-to-end tests of the launcher: real instances of /bin/sh and friends in
// full isolation. They need root (namespaces, cgroups, uid switch) and skip
// otherwise; the process-only tests at the end run as any user.

#include "sandbox/launcher.h"

#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sandbox_test_util.h"

namespace nimbus::sandbox {
namespace {

using namespace std::chrono_literals;
using test_support::ExitEvents;
using test_support::lines_of;
using test_support::OutputPipe;
using test_support::processes_of_uid;
using test_support::TempDir;

std::string unique_id(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string cgroup_name() { return "nimbus-test-" + std::to_string(::getpid()); }

// A uid range of its own per test process, so that test processes run in
// parallel (ctest -j) never share a uid.
unsigned uid_base(unsigned slot) {
  return 1000000 + static_cast<unsigned>(::getpid() % 20000) * 256 + slot * 64;
}

// How the instances of a test start. Every isolation test runs three
// times: in sandboxes built from scratch per spawn (pool 0), in pre-created
// ones (pool 2), and in primed runtimes (a Python process started ahead of
// time that, handed its instance, execs the test's argv); the three must be
// indistinguishable from inside.
enum class Start { kScratch, kPooled, kPrimed };

// A primed "runtime" for tests: ready byte, environment, then exec of the
// argv the test passed in TEST_ARGV, with the environment exactly the
// instance's and the signal dispositions Python changed set back.
constexpr const char* kPrimedShim = R"(import json, os, signal
fd = int(os.environ["NIMBUS_PRIMED_FD"])
os.write(fd, b"r")
data = b""
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        break
    data += chunk
os.close(fd)
env = dict(e.split("=", 1) for e in json.loads(data)["env"])
argv = json.loads(env.pop("TEST_ARGV"))
for s in (signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
os.chdir("/var/task")
os.execve(argv[0], argv, env)
)";

RuntimeTemplate test_runtime() {
  return RuntimeTemplate{{"/usr/bin/python3", "-S", "-c", kPrimedShim}, {"PATH=/usr/bin:/bin", "LANG=C"}, {}};
}

// Claims a primed runtime, waiting (bounded) until one is ready.
std::optional<PrimedClaim> claim_ready(Launcher& launcher, const RuntimeTemplate& runtime) {
  for (int i = 0; i < 1000; ++i) {
    if (auto claim = launcher.claim_primed(runtime)) return claim;
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

// Claims until `wanted` is handed out again, and gives the others back: the
// lowest-numbered ready runtime goes first, and one that was still starting
// when `wanted` was claimed may be ready by now.
std::optional<PrimedClaim> claim_again(Launcher& launcher, const RuntimeTemplate& runtime, const PrimedClaim& wanted) {
  std::vector<PrimedClaim> others;
  std::optional<PrimedClaim> found;
  for (int i = 0; i < 4 && !found; ++i) {
    auto claim = claim_ready(launcher, runtime);
    if (!claim) break;
    if (claim->id == wanted.id) {
      found = claim;
    } else {
      others.push_back(*claim);
    }
  }
  for (const PrimedClaim& other : others) launcher.release_primed(other);
  return found;
}

std::string json_array(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

class LauncherTest : public ::testing::TestWithParam<Start> {
 protected:
  struct Started {
    std::unique_ptr<Launcher> launcher;
    std::unique_ptr<ExitEvents> events;
  };
  static void TearDownTestSuite() { started_.clear(); }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, cgroups, uid switch)";
    const Start start = GetParam();
    if (started_.count(start) == 0) {
      LauncherConfig config;
      config.cgroup_name = cgroup_name() + "-start" + std::to_string(static_cast<int>(start));
      config.uid_base = uid_base(static_cast<unsigned>(start));
      config.uid_count = 64;
      config.pool_size = start == Start::kScratch ? 0 : 2;
      config.primed_per_runtime = start == Start::kPrimed ? 2 : 0;
      config.uid_lock_dir = uid_locks_.path();
      config.lease_uid_base = uid_base(3);
      config.lease_uid_count = 64;
      auto launcher = Launcher::start(config);
      ASSERT_TRUE(launcher.ok()) << launcher.error().message;
      for (const std::string& s : (*launcher)->isolation().lost) std::fprintf(stderr, "isolation lost: %s\n", s.c_str());
      auto events = std::make_unique<ExitEvents>(**launcher);
      started_[start] = Started{std::move(launcher).value(), std::move(events)};
    }
    launcher_ = started_[start].launcher.get();
    events_ = started_[start].events.get();
    const IsolationReport& report = launcher_->isolation();
    if (!report.namespaces || !report.cgroups || !report.uid_switch || !report.seccomp) {
      GTEST_SKIP() << "this host does not allow full isolation even as root (see 'isolation lost' above)";
    }
    code_.write("hello.txt", "hello from the code dir\n");
  }

  InstanceSpec shell(const std::string& script) const {
    InstanceSpec spec;
    spec.instance_id = unique_id("t");
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"};
    spec.code_dir = code_.path();
    return spec;
  }

  struct Run {
    SpawnedInstance instance;
    std::string output;
    ExitEvent exit;
  };
  // With Start::kPrimed: makes `spec` one for a claimed primed runtime
  // (which then execs spec's argv). Fails the test when none gets ready.
  void prime(InstanceSpec& spec) {
    if (GetParam() != Start::kPrimed) return;
    const auto claim = claim_ready(*launcher_, test_runtime());
    ASSERT_TRUE(claim.has_value()) << "no primed runtime got ready within 10 s";
    spec.primed_id = claim->id;
    spec.uid = spec.gid = claim->uid;
    spec.env.push_back("TEST_ARGV=" + json_array(spec.argv));
  }

  // Spawns, collects the output until EOF, waits for the exit event.
  Run run(InstanceSpec spec) {
    OutputPipe out;
    prime(spec);
    spec.output_fd = out.write_fd();
    auto spawned = launcher_->spawn(spec);
    EXPECT_TRUE(spawned.ok()) << (spawned.ok() ? "" : spawned.error().message);
    if (!spawned.ok()) return {};
    Run result;
    result.instance = *spawned;
    // A primed runtime's output was wired before it had an instance.
    const bool fits_primed = spec.inherit_fds.empty() && spec.network == NetworkMode::kHost;
    EXPECT_EQ(spawned->primed, GetParam() == Start::kPrimed && fits_primed);
    if (spawned->output_fd >= 0) {
      out.adopt_read_end(spawned->output_fd);
    }
    result.output = out.read_all();
    const auto exit = events_->wait(spawned->pid);
    EXPECT_TRUE(exit.has_value()) << "no exit event for pid " << spawned->pid;
    if (exit) result.exit = *exit;
    return result;
  }

  static std::map<Start, Started> started_;
  static TempDir uid_locks_;
  Launcher* launcher_ = nullptr;
  ExitEvents* events_ = nullptr;
  TempDir code_;
};

std::map<Start, LauncherTest::Started> LauncherTest::started_;
TempDir LauncherTest::uid_locks_;

INSTANTIATE_TEST_SUITE_P(Sandboxes, LauncherTest, ::testing::Values(Start::kScratch, Start::kPooled, Start::kPrimed),
                         [](const ::testing::TestParamInfo<Start>& param) {
                           switch (param.param) {
                             case Start::kScratch: return std::string("FromScratch");
                             case Start::kPooled: return std::string("Pooled");
                             case Start::kPrimed: return std::string("Primed");
                           }
                           return std::string();
                         });

TEST_P(LauncherTest, ReportsFullIsolationAsRoot) {
  const IsolationReport& report = launcher_->isolation();
  EXPECT_TRUE(report.root);
  EXPECT_TRUE(report.namespaces);
  EXPECT_TRUE(report.cgroups);
  EXPECT_NE(report.cgroup_version, CgroupVersion::kNone);
  EXPECT_TRUE(report.seccomp);
  EXPECT_TRUE(report.uid_switch);
}

// (1) The code is at /var/task, which is the working directory.
TEST_P(LauncherTest, SeesCodeAtVarTaskAsWorkingDirectory) {
  const Run r = run(shell("pwd; cat /var/task/hello.txt; ls /var/task"));
  if (GetParam() == Start::kScratch) {
    EXPECT_FALSE(r.instance.pooled);
  }
  EXPECT_EQ(r.output, "/var/task\nhello from the code dir\nhello.txt\n");
  EXPECT_TRUE(WIFEXITED(r.exit.wait_status));
  EXPECT_EQ(WEXITSTATUS(r.exit.wait_status), 0);
  EXPECT_FALSE(r.exit.oom_killed);
}

// (2) Nothing of the host beyond /usr and a few /etc files is visible.
TEST_P(LauncherTest, HostFilesAreInvisible) {
  TempDir data;
  data.write("secret", "s3cret\n");
  const std::string script = "ls " + code_.path().string() + " >/dev/null 2>&1; echo code=$?; " +
                             "ls /root >/dev/null 2>&1; echo root=$?; " + "ls " + data.path().string() +
                             " >/dev/null 2>&1; echo data=$?; " + "ls /home >/dev/null 2>&1; echo home=$?; " +
                             "ls -A /; echo ---; ls /etc";
  const Run r = run(shell(script));
  const std::vector<std::string> lines = lines_of(r.output);
  ASSERT_GE(lines.size(), 4u) << r.output;
  EXPECT_NE(lines[0], "code=0");
  EXPECT_NE(lines[1], "root=0");
  EXPECT_NE(lines[2], "data=0");
  EXPECT_NE(lines[3], "home=0");
  const auto sep = std::find(lines.begin(), lines.end(), "---");
  ASSERT_NE(sep, lines.end());
  const std::set<std::string> root_entries(lines.begin() + 4, sep);
  const std::set<std::string> allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc",
                                         "sbin", "tmp", "usr", "var"};
  for (const std::string& entry : root_entries) EXPECT_TRUE(allowed.count(entry)) << "unexpected /" << entry;
  const std::set<std::string> etc_allowed = {"resolv.conf", "hosts", "nsswitch.conf", "passwd", "group",
                                             "localtime", "host.conf", "gai.conf", "protocols", "services",
                                             "ld.so.cache", "ld.so.conf", "ssl", "ca-certificates",
                                             "alternatives", "ld.so.conf.d"};
  for (auto it = sep + 1; it != lines.end(); ++it) EXPECT_TRUE(etc_allowed.count(*it)) << "unexpected /etc/" << *it;
}

// Mounts below a code directory stay out of /var/task (regression: with a
// recursive bind, a code_dir above the launcher's scratch directory showed
// the new root again under /var/task).
TEST_P(LauncherTest, MountsBelowTheCodeDirectoryStayOut) {
  InstanceSpec spec = shell("grep -c nimbus-launcher /proc/self/mountinfo; grep -c ' /var/task' /proc/self/mountinfo");
  spec.code_dir = "/tmp";
  const Run r = run(spec);
  EXPECT_EQ(r.output, "0\n1\n");
}

// (3) The instance is the init of its own pid namespace.
TEST_P(LauncherTest, IsPidOneInItsNamespace) {
  const Run r = run(shell("echo $$; ls /proc | grep -c '^[0-9]'; grep -v ':/$' /proc/self/cgroup | wc -l"));
  const auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 3u) << r.output;
  EXPECT_EQ(lines[2], "0") << "host cgroup paths are visible";
  EXPECT_EQ(lines[0], "1");
  EXPECT_LE(std::stoi(lines[1]), 3) << "processes of the host are visible in /proc";
  EXPECT_NE(r.instance.pid, 1);
}

// (4) It runs as its own unprivileged uid, without capabilities.
TEST_P(LauncherTest, RunsAsTheInstanceUid) {
  const Run r = run(shell("id -u; id -g; id -G; grep CapEff /proc/self/status; hostname; whoami; "
                          "grep -c . /etc/passwd"));
  const auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 7u) << r.output;
  EXPECT_NE(r.instance.uid, 0u);
  EXPECT_EQ(lines[0], std::to_string(r.instance.uid));
  EXPECT_EQ(lines[1], std::to_string(r.instance.uid));
  EXPECT_EQ(lines[2], std::to_string(r.instance.uid));  // no supplementary groups
  EXPECT_EQ(lines[3], "CapEff:\t0000000000000000");
  EXPECT_EQ(lines[4], "nimbus");
  EXPECT_EQ(lines[5], "sbx_user1051");
  EXPECT_EQ(lines[6], "3");  // root, the instance's user, nobody: none of the host's users
}

// Signal dispositions and mask are those of a fresh process, though the
// launcher blocks and ignores some for itself.
TEST_P(LauncherTest, StartsWithDefaultSignals) {
  InstanceSpec spec = shell("");
  spec.argv = {"/bin/grep", "-E", "^(SigBlk|SigIgn)", "/proc/self/status"};
  const Run r = run(spec);
  EXPECT_EQ(r.output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

// (5) /var/task is read-only; /tmp is private, writable and size-limited.
TEST_P(LauncherTest, CodeIsReadOnlyAndTmpIsLimited) {
  InstanceSpec spec = shell(
      "touch /var/task/new 2>/dev/null; echo task=$?; "
      "echo data > /tmp/a && cat /tmp/a; "
      "dd if=/dev/zero of=/tmp/big bs=1M count=8 2>/dev/null; echo dd=$?; "
      "touch /usr/new 2>/dev/null; echo usr=$?; "
      "touch /newfile 2>/dev/null; echo root=$?");
  spec.tmp_bytes = 4ull << 20;
  const Run r = run(spec);
  const auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 5u) << r.output;
  EXPECT_NE(lines[0], "task=0");
  EXPECT_EQ(lines[1], "data");
  EXPECT_NE(lines[2], "dd=0");
  EXPECT_NE(lines[3], "usr=0");
  EXPECT_NE(lines[4], "root=0");
  EXPECT_FALSE(std::filesystem::exists(code_.path() / "new"));
}

// (6) Allocating past the memory limit gets the instance OOM-killed, and the
// exit event says so.
TEST_P(LauncherTest, MemoryLimitKillsAndReportsOom) {
  InstanceSpec spec;
  spec.instance_id = unique_id("oom");
  spec.argv = {"/usr/bin/python3", "-c", "b = bytearray(200 << 20); print('survived')"};
  spec.env = {"PATH=/usr/bin"};
  spec.code_dir = code_.path();
  spec.memory_bytes = 64ull << 20;
  const Run r = run(spec);
  EXPECT_EQ(r.output.find("survived"), std::string::npos);
  ASSERT_TRUE(WIFSIGNALED(r.exit.wait_status)) << "status " << r.exit.wait_status << " output " << r.output;
  EXPECT_EQ(WTERMSIG(r.exit.wait_status), SIGKILL);
  EXPECT_TRUE(r.exit.oom_killed);
  EXPECT_EQ(r.exit.instance_id, spec.instance_id);

  // A normal exit is not an OOM.
  const Run ok = run(shell("exit 3"));
  EXPECT_TRUE(WIFEXITED(ok.exit.wait_status));
  EXPECT_EQ(WEXITSTATUS(ok.exit.wait_status), 3);
  EXPECT_FALSE(ok.exit.oom_killed);
}

// (7) kill() ends the instance with everything it started.
TEST_P(LauncherTest, KillEndsInstanceAndItsChildren) {
  OutputPipe out;
  InstanceSpec spec = shell("sleep 1000 & sleep 1000 & echo started; wait");
  spec.output_fd = out.write_fd();
  auto spawned = launcher_->spawn(spec);
  ASSERT_TRUE(spawned.ok()) << spawned.error().message;
  out.close_write();
  ASSERT_NE(out.read_until("started\n").find("started"), std::string::npos);
  // sh + two sleeps run as the instance's uid.
  const auto deadline = test_support::Clock::now() + 10s;
  while (processes_of_uid(spawned->uid).size() < 3 && test_support::Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(processes_of_uid(spawned->uid).size(), 3u);

  ASSERT_TRUE(launcher_->kill(spawned->pid).ok());
  const auto exit = events_->wait(spawned->pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(WIFSIGNALED(exit->wait_status));
  EXPECT_EQ(WTERMSIG(exit->wait_status), SIGKILL);
  EXPECT_FALSE(exit->oom_killed);
  EXPECT_TRUE(processes_of_uid(spawned->uid).empty());

  // Killing it again: it is gone.
  const auto again = launcher_->kill(spawned->pid);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, base::ErrorCode::kResourceNotFound);
}

// (8) A failing step is named in the error, with the path.
TEST_P(LauncherTest, MissingCodeDirNamesStepAndPath) {
  InstanceSpec spec = shell("true");
  spec.code_dir = code_.path() / "missing";
  const auto spawned = launcher_->spawn(spec);
  ASSERT_FALSE(spawned.ok());
  EXPECT_EQ(spawned.error().code, base::ErrorCode::kService);
  EXPECT_EQ(spawned.error().message,
            "sandbox step 'mount /var/task' (" + spec.code_dir.string() + "): No such file or directory");

  // A failure inside the child (execve of a missing program) comes back the same way.
  InstanceSpec missing = shell("true");
  missing.argv = {"/var/task/bootstrap"};
  const auto failed = launcher_->spawn(missing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "sandbox step 'execve' (/var/task/bootstrap): No such file or directory");

  // The same id can be used again: nothing of the failed spawn is left.
  InstanceSpec again = shell("echo again");
  again.instance_id = missing.instance_id;
  EXPECT_EQ(run(again).output, "again\n");
}

// (9) Concurrent instances get distinct uids.
TEST_P(LauncherTest, ConcurrentInstancesGetDistinctUids) {
  OutputPipe a_out, b_out;
  InstanceSpec a = shell("echo up; sleep 1000");
  InstanceSpec b = shell("echo up; sleep 1000");
  a.output_fd = a_out.write_fd();
  b.output_fd = b_out.write_fd();
  auto sa = launcher_->spawn(a);
  auto sb = launcher_->spawn(b);
  ASSERT_TRUE(sa.ok()) << sa.error().message;
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  EXPECT_NE(sa->uid, sb->uid);
  EXPECT_NE(sa->uid, 0u);
  EXPECT_NE(sb->uid, 0u);

  // The same instance_id twice at once is refused.
  InstanceSpec dup = shell("true");
  dup.instance_id = a.instance_id;
  const auto d = launcher_->spawn(dup);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, base::ErrorCode::kResourceConflict);

  EXPECT_TRUE(launcher_->kill(sa->pid).ok());
  EXPECT_TRUE(launcher_->kill(sb->pid).ok());
  EXPECT_TRUE(events_->wait(sa->pid).has_value());
  EXPECT_TRUE(events_->wait(sb->pid).has_value());
}

// (10) The seccomp filter denies new namespaces, mounts and odd personalities.
TEST_P(LauncherTest, SeccompDeniesNamespacesAndMounts) {
  utsname u{};
  ::uname(&u);
  const Run r = run(shell(std::string("unshare -Ur true 2>/dev/null; echo userns=$?; ") +
                          "unshare -m true 2>/dev/null; echo mountns=$?; " +
                          "mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; " + "setarch " + u.machine +
                          " -R true 2>/dev/null; echo personality=$?; " + "setarch " + u.machine +
                          " true 2>/dev/null; echo plain=$?"));
  const auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 5u) << r.output;
  EXPECT_NE(lines[0], "userns=0");
  EXPECT_NE(lines[1], "mountns=0");
  EXPECT_NE(lines[2], "mount=0");
  EXPECT_NE(lines[3], "personality=0");
  EXPECT_EQ(lines[4], "plain=0");  // the usual personality still works
}

// (11) The environment is exactly what was passed.
TEST_P(LauncherTest, EnvironmentIsExactlyThePassedOne) {
  InstanceSpec spec = shell("");
  spec.argv = {"/usr/bin/env"};
  spec.env = {"A=1", "B=two words", "AWS_LAMBDA_FUNCTION_NAME=hello", "EMPTY="};
  const Run r = run(spec);
  EXPECT_EQ(lines_of(r.output), spec.env);
}

// (12) NetworkMode::kNone leaves only the loopback interface, and it is up.
TEST_P(LauncherTest, NetworkNoneHasOnlyLoopback) {
  if (!launcher_->isolation().network_namespace) GTEST_SKIP() << "no network namespaces here";
  InstanceSpec spec = shell(
      "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
      "python3 -c \"import socket\ntry: socket.create_connection(('127.0.0.1', 9), 2)\n"
      "except OSError as e: print('errno', e.errno)\"");
  spec.network = NetworkMode::kNone;
  const Run r = run(spec);
  const auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  EXPECT_EQ(lines[0], "lo");
  EXPECT_EQ(lines[1], "errno 111") << "loopback is not up (ECONNREFUSED expected)";
}

// Inherited descriptors land at 3, 4, ...; nothing else leaks in.
TEST_P(LauncherTest, InheritsOnlyTheGivenDescriptors) {
  OutputPipe extra;
  InstanceSpec spec = shell("echo via-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '");
  spec.inherit_fds = {extra.write_fd()};
  const Run r = run(spec);
  EXPECT_EQ(extra.read_all(), "via-fd3\n");
  // 0 1 2 3, plus the directory ls itself has open.
  EXPECT_EQ(r.output.substr(0, 8), "0 1 2 3 ") << r.output;
  EXPECT_LE(lines_of(r.output).size(), 1u);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), ' '), 5) << r.output;
}

// peak_memory() reads the instance's cgroup.
TEST_P(LauncherTest, PeakMemoryIsReported) {
  OutputPipe out;
  InstanceSpec spec = shell("");
  spec.argv = {"/usr/bin/python3", "-c",
               "import sys, time\nb = bytearray(40 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
               "print('ready', flush=True)\ntime.sleep(1000)"};
  spec.output_fd = out.write_fd();
  auto spawned = launcher_->spawn(spec);
  ASSERT_TRUE(spawned.ok()) << spawned.error().message;
  out.close_write();
  ASSERT_NE(out.read_until("ready").find("ready"), std::string::npos);
  const std::uint64_t peak = launcher_->peak_memory(spec.instance_id);
  EXPECT_GE(peak, 40ull << 20);
  EXPECT_LT(peak, spec.memory_bytes + (1ull << 20));
  EXPECT_EQ(launcher_->peak_memory("no-such-instance"), 0u);
  EXPECT_EQ(launcher_->peak_memory("../../etc"), 0u);
  ASSERT_TRUE(launcher_->kill(spawned->pid).ok());
  ASSERT_TRUE(events_->wait(spawned->pid).has_value());
  EXPECT_EQ(launcher_->peak_memory(spec.instance_id), 0u) << "the cgroup outlived the instance";
}

// A bad spec never reaches the launcher.
TEST_P(LauncherTest, RejectsBadSpecs) {
  InstanceSpec bad_id = shell("true");
  bad_id.instance_id = "Upper/../x";
  EXPECT_EQ(launcher_->spawn(bad_id).error().code, base::ErrorCode::kInvalidParameterValue);
  InstanceSpec relative = shell("true");
  relative.argv = {"sh"};
  EXPECT_EQ(launcher_->spawn(relative).error().code, base::ErrorCode::kInvalidParameterValue);
  InstanceSpec bad_fd = shell("true");
  bad_fd.inherit_fds = {987654};
  EXPECT_EQ(launcher_->spawn(bad_fd).error().code, base::ErrorCode::kInvalidParameterValue);
}

// The spawn latency of /bin/true, printed (not asserted): the median of 20.
TEST_P(LauncherTest, MeasuresSpawnLatency) {
  for (const NetworkMode mode : {NetworkMode::kHost, NetworkMode::kNone}) {
    if (mode == NetworkMode::kNone && !launcher_->isolation().network_namespace) continue;
    std::vector<double> spawn_ms, total_ms;
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(100ms);  // untimed: a pool refills while the launcher is idle
      InstanceSpec spec = shell("");
      spec.argv = {"/bin/true"};
      spec.network = mode;
      const auto t0 = test_support::Clock::now();
      auto spawned = launcher_->spawn(spec);
      const auto t1 = test_support::Clock::now();
      ASSERT_TRUE(spawned.ok()) << spawned.error().message;
      ASSERT_TRUE(events_->wait(spawned->pid).has_value());
      const auto t2 = test_support::Clock::now();
      spawn_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      total_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
    }
    std::sort(spawn_ms.begin(), spawn_ms.end());
    std::sort(total_ms.begin(), total_ms.end());
    std::printf("spawn latency of /bin/true (start mode %d, network %s), median of 20: spawn() returned after %.2f ms "
                "(min %.2f, max %.2f); exit event after %.2f ms\n",
                static_cast<int>(GetParam()), mode == NetworkMode::kHost ? "host" : "none", spawn_ms[10], spawn_ms.front(), spawn_ms.back(),
                total_ms[10]);
  }
}

// The launcher's children that wait for an instance: pooled sandboxes
// (cgroup "shell.N") or primed runtimes ("primed.N"), by `group_prefix`.
std::vector<int> waiting_children(int launcher_pid, std::string_view group_prefix) {
  std::vector<int> out;
  std::ifstream children("/proc/" + std::to_string(launcher_pid) + "/task/" + std::to_string(launcher_pid) +
                         "/children");
  int pid = 0;
  while (children >> pid) {
    std::ifstream cgroup("/proc/" + std::to_string(pid) + "/cgroup");
    const std::string text((std::istreambuf_iterator<char>(cgroup)), std::istreambuf_iterator<char>());
    if (text.find(group_prefix) != std::string::npos) out.push_back(pid);
  }
  return out;
}

// The pool refills itself, and a sandbox that died while waiting is
// replaced: spawns keep working and are served from the pool again.
TEST_P(LauncherTest, PoolRefillsAndSurvivesDeadSandboxes) {
  if (GetParam() != Start::kPooled) GTEST_SKIP() << "tests the pool of shells alone";
  const std::size_t size = 2;
  const auto wait_for_shells = [&](std::size_t n) {
    for (int i = 0; i < 500 && waiting_children(launcher_->launcher_pid(), "/shell.").size() < n; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    return waiting_children(launcher_->launcher_pid(), "/shell.");
  };
  auto shells = wait_for_shells(size);
  ASSERT_EQ(shells.size(), size);
  // Taken by a spawn: the instance runs in what was a waiting sandbox.
  const Run first = run(shell("echo $$; cat /proc/self/cgroup >/dev/null"));
  EXPECT_EQ(first.output, "1\n");
  EXPECT_TRUE(std::find(shells.begin(), shells.end(), first.instance.pid) != shells.end())
      << "pid " << first.instance.pid << " was not one of the waiting sandboxes";
  EXPECT_TRUE(first.instance.pooled);
  // Killed while waiting: the next spawns still succeed, and the pool is full again.
  for (const int pid : wait_for_shells(size)) ::kill(pid, SIGKILL);
  for (int i = 0; i < 3; ++i) {
    const Run r = run(shell("cat /var/task/hello.txt"));
    EXPECT_EQ(r.output, "hello from the code dir\n");
    EXPECT_TRUE(WIFEXITED(r.exit.wait_status) && WEXITSTATUS(r.exit.wait_status) == 0);
  }
  EXPECT_EQ(wait_for_shells(size).size(), size);
}

// A claim handed back is handed out again; a primed runtime that died after
// its claim still gives the instance a fresh process as the claim's uid;
// one that died waiting is replaced.
TEST_P(LauncherTest, PrimedRuntimesSurviveReleaseAndDeath) {
  if (GetParam() != Start::kPrimed) GTEST_SKIP() << "tests primed runtimes alone";
  const auto first = claim_ready(*launcher_, test_runtime());
  ASSERT_TRUE(first.has_value());
  launcher_->release_primed(*first);
  const auto again = claim_again(*launcher_, test_runtime(), *first);
  ASSERT_TRUE(again.has_value()) << "primed runtime " << first->id << " was not handed out again";
  EXPECT_EQ(again->uid, first->uid);

  // Every primed process dies, the claimed one included.
  const auto primed_pids = [&] { return waiting_children(launcher_->launcher_pid(), "/primed."); };
  const auto killed = primed_pids();
  ASSERT_FALSE(killed.empty());
  for (const int pid : killed) ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(100ms);

  InstanceSpec spec = shell("id -u; cat /var/task/hello.txt");
  spec.primed_id = again->id;
  spec.uid = spec.gid = again->uid;
  OutputPipe out;
  spec.output_fd = out.write_fd();
  auto spawned = launcher_->spawn(spec);
  ASSERT_TRUE(spawned.ok()) << spawned.error().message;
  EXPECT_FALSE(spawned->primed);
  EXPECT_EQ(spawned->output_fd, -1);
  EXPECT_EQ(out.read_all(), std::to_string(again->uid) + "\nhello from the code dir\n");
  ASSERT_TRUE(events_->wait(spawned->pid).has_value());

  // New ones replace the dead, and they serve instances.
  const Run r = run(shell("cat /var/task/hello.txt"));
  EXPECT_TRUE(r.instance.primed);
  EXPECT_EQ(r.output, "hello from the code dir\n");
  for (const int pid : primed_pids()) {
    EXPECT_TRUE(std::find(killed.begin(), killed.end(), pid) == killed.end());
  }
}

// A spec the daemon side rejects never reaches the launcher; its claim is
// handed back, so the same primed runtime serves the next claim.
TEST_P(LauncherTest, RejectedSpecGivesItsClaimBack) {
  if (GetParam() != Start::kPrimed) GTEST_SKIP() << "tests primed runtimes alone";
  const auto claim = claim_ready(*launcher_, test_runtime());
  ASSERT_TRUE(claim.has_value());
  InstanceSpec spec = shell("true");
  spec.argv.clear();
  spec.primed_id = claim->id;
  spec.uid = spec.gid = claim->uid;
  const auto spawned = launcher_->spawn(spec);
  ASSERT_FALSE(spawned.ok());
  const auto again = claim_again(*launcher_, test_runtime(), *claim);
  ASSERT_TRUE(again.has_value()) << "primed runtime " << claim->id << " was not handed out again";
  launcher_->release_primed(*again);
}

// Destroying the Launcher kills what runs and removes the cgroups.
TEST(LauncherLifetimeTest, DestructionKillsInstancesAndRemovesCgroups) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir code;
  LauncherConfig config;
  config.cgroup_name = cgroup_name() + "-life";
  config.uid_base = uid_base(1);
  config.uid_count = 64;
  auto launcher = Launcher::start(config);
  ASSERT_TRUE(launcher.ok()) << launcher.error().message;
  OutputPipe out;
  InstanceSpec spec;
  spec.instance_id = "life";
  spec.argv = {"/bin/sh", "-c", "sleep 1000 & echo up; sleep 1000"};
  spec.code_dir = code.path();
  spec.output_fd = out.write_fd();
  auto spawned = (*launcher)->spawn(spec);
  ASSERT_TRUE(spawned.ok()) << spawned.error().message;
  out.close_write();
  ASSERT_NE(out.read_until("up").find("up"), std::string::npos);
  EXPECT_GT((*launcher)->peak_memory("life"), 0u);

  // Where the launcher put the instance's memory group.
  std::ifstream cgroup_file("/proc/" + std::to_string((*launcher)->launcher_pid()) + "/cgroup");
  std::string line, memory_path;
  while (std::getline(cgroup_file, line)) {
    if (line.find(":memory:") != std::string::npos) memory_path = line.substr(line.find(":memory:") + 8);
  }
  const std::filesystem::path parent =
      std::filesystem::path("/sys/fs/cgroup/memory") / std::filesystem::path(memory_path).relative_path() /
      config.cgroup_name;
  const bool v1 = (*launcher)->isolation().cgroup_version == CgroupVersion::kV1;
  if (v1) {
    EXPECT_TRUE(std::filesystem::exists(parent / "life"));
  }

  launcher->reset();
  EXPECT_TRUE(processes_of_uid(spawned->uid).empty());
  if (v1) {
    EXPECT_FALSE(std::filesystem::exists(parent / "life"));
    EXPECT_FALSE(std::filesystem::exists(parent));
  }
}

// If the daemon dies without a word, the launcher kills its instances.
TEST(LauncherLifetimeTest, DaemonDeathKillsInstances) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir code;
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t daemon = ::fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    // A stand-in daemon: starts a launcher, spawns, reports, dies.
    ::close(report[0]);
    LauncherConfig config;
    config.cgroup_name = cgroup_name() + "-death";
    config.uid_base = uid_base(2);
    config.uid_count = 64;
    auto launcher = Launcher::start(config);
    if (!launcher.ok()) ::_exit(1);
    InstanceSpec spec;
    spec.instance_id = "orphan";
    spec.argv = {"/bin/sh", "-c", "sleep 1000 & sleep 1000"};
    spec.code_dir = code.path();
    auto spawned = (*launcher)->spawn(spec);
    if (!spawned.ok()) ::_exit(2);
    const unsigned uid = spawned->uid;
    (void)!::write(report[1], &uid, sizeof uid);
    ::_exit(0);  // no destructor: the launcher must notice on its own
  }
  ::close(report[1]);
  unsigned uid = 0;
  ASSERT_EQ(::read(report[0], &uid, sizeof uid), static_cast<ssize_t>(sizeof uid));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto deadline = test_support::Clock::now() + 10s;
  while (!processes_of_uid(uid).empty() && test_support::Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(processes_of_uid(uid).empty());
}

// Process-only mode (what a daemon without root gets): no namespaces, but
// rlimits, no_new_privs, seccomp and output redirection still apply. Runs as
// any user.
TEST(ProcessOnlyLauncherTest, RunsWithReducedIsolationAndSaysSo) {
  TempDir code;
  code.write("hello.txt", "hi\n");
  LauncherConfig config;
  config.cgroup_name = cgroup_name() + "-plain";
  config.mode = LauncherMode::kProcessOnly;
  auto launcher = Launcher::start(config);
  ASSERT_TRUE(launcher.ok()) << launcher.error().message;
  const IsolationReport& report = (*launcher)->isolation();
  EXPECT_FALSE(report.namespaces);
  EXPECT_FALSE(report.cgroups);
  EXPECT_FALSE(report.uid_switch);
  EXPECT_TRUE(report.seccomp);
  EXPECT_GE(report.lost.size(), 3u);
  for (const std::string& s : report.lost) std::printf("lost: %s\n", s.c_str());

  ExitEvents events(**launcher);
  OutputPipe out;
  InstanceSpec spec;
  spec.instance_id = "plain";
  spec.argv = {"/bin/sh", "-c",
               "pwd; cat hello.txt; echo $$; unshare -m true 2>/dev/null; echo unshare=$?; ulimit -n; "
               "ls /proc/self/fd | wc -l; sleep 1000 & echo $! > /dev/null; exit 7"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.code_dir = code.path();
  spec.output_fd = out.write_fd();
  auto spawned = (*launcher)->spawn(spec);
  ASSERT_TRUE(spawned.ok()) << spawned.error().message;
  EXPECT_EQ(spawned->uid, ::geteuid());
  const std::string output = out.read_all();
  const auto exit = events.wait(spawned->pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(WIFEXITED(exit->wait_status));
  EXPECT_EQ(WEXITSTATUS(exit->wait_status), 7);
  EXPECT_FALSE(exit->oom_killed);
  const auto lines = lines_of(output);
  ASSERT_EQ(lines.size(), 6u) << output;
  EXPECT_EQ(lines[0], code.path().string());
  EXPECT_EQ(lines[1], "hi");
  EXPECT_NE(lines[2], "1");
  EXPECT_NE(lines[3], "unshare=0");  // seccomp, even as root
  EXPECT_EQ(lines[4], "1024");
  EXPECT_EQ(lines[5], "4");  // 0, 1, 2 and ls's own directory

  // A missing code directory is named too.
  InstanceSpec missing = spec;
  missing.instance_id = "plain-missing";
  missing.output_fd = -1;
  missing.code_dir = code.path() / "nope";
  const auto failed = (*launcher)->spawn(missing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "sandbox step 'chdir' (" + missing.code_dir.string() + "): No such file or directory");
}

}  // namespace
}  // namespace nimbus::sandbox
