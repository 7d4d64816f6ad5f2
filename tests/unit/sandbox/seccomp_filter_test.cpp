// The seccomp policy file and its compilation; runs as any user.

#include "sandbox/detail/seccomp_filter.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace nimbus::sandbox::detail {
namespace {

TEST(SeccompPolicyTest, EmbeddedPolicyParsesAndEveryRuleSaysWhy) {
  auto rules = parse_seccomp_policy(embedded_seccomp_policy());
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  std::set<std::string> names;
  for (const SeccompRule& rule : *rules) {
    EXPECT_FALSE(rule.why.empty()) << rule.syscall;
    names.insert(rule.syscall);
  }
  // What the design requires to be denied.
  for (const char* required :
       {"mount", "umount2", "pivot_root", "chroot", "swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "ptrace", "process_vm_readv",
        "process_vm_writev", "keyctl", "add_key", "request_key", "unshare", "setns", "clone", "open_by_handle_at",
        "name_to_handle_at", "iopl", "ioperm", "acct", "settimeofday", "clock_settime", "adjtimex", "quotactl",
        "lookup_dcookie", "userfaultfd", "fanotify_init", "syslog", "vhangup", "personality", "kcmp",
        "mount_setattr", "move_mount", "open_tree", "fsopen", "fsmount", "fspick"}) {
    EXPECT_TRUE(names.count(required)) << required << " is not in seccomp.policy";
  }
}

TEST(SeccompPolicyTest, RejectsMalformedPolicies) {
  EXPECT_FALSE(parse_seccomp_policy("mount\n").ok());                                 // no why
  EXPECT_FALSE(parse_seccomp_policy("mount EACCES # why\n").ok());                    // unknown errno
  EXPECT_FALSE(parse_seccomp_policy("mount namespace-flags # why\n").ok());           // wrong call
  EXPECT_FALSE(parse_seccomp_policy("mount # a\nmount # b\n").ok());                  // twice
  EXPECT_FALSE(parse_seccomp_policy("Mount! # why\n").ok());                          // not a name
  const auto error = parse_seccomp_policy("# comment\n\nptrace # ok\nbpf\n");
  ASSERT_FALSE(error.ok());
  EXPECT_NE(error.error().message.find("line 4"), std::string::npos) << error.error().message;
  EXPECT_FALSE(parse_seccomp_policy("read allow ENOSYS # why\n").ok());                // allow takes nothing else
  auto fine = parse_seccomp_policy("clone3 ENOSYS # fallback\nclone namespace-flags # ns\nread allow # io\n");
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ((*fine)[0].error, ENOSYS);
  EXPECT_EQ((*fine)[1].condition, RuleCondition::kNamespaceFlags);
  EXPECT_EQ((*fine)[2].action, RuleAction::kAllow);
}

TEST(SeccompPolicyTest, ForkTemplateConditionBelongsToUnshare) {
  auto rules = parse_seccomp_policy("unshare fork-template # forks\n");
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  EXPECT_EQ((*rules)[0].condition, RuleCondition::kForkTemplate);
  auto misplaced = parse_seccomp_policy("clone fork-template # no\n");
  ASSERT_FALSE(misplaced.ok());
  EXPECT_NE(misplaced.error().message.find("fork-template applies to unshare only"), std::string::npos);
}

// A fork template's filter differs from an instance's in one call only:
// unshare with exactly kForkNamespaceFlags or exactly CLONE_NEWPID passes,
// any other flags do not.
// Compiles the embedded policy as `variant`, loads it in a forked child and
// runs `checks` there; the child's exit status (0: every check held).
template <typename Checks>
int exit_status_under_filter(FilterVariant variant, Checks checks) {
  auto rules = parse_seccomp_policy(embedded_seccomp_policy());
  if (!rules.ok()) return 100;
  auto program = compile_seccomp_filter(*rules, variant);
  if (!program.ok()) return 101;
  sock_fprog prog{static_cast<unsigned short>(program->size()), program->data()};
  const pid_t pid = ::fork();
  if (pid < 0) return 102;
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) ::_exit(11);
    ::_exit(checks());
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 103;
  return WEXITSTATUS(status);
}

TEST(SeccompPolicyTest, ForkTemplateFilterAllowsExactlyTheForkNamespaces) {
  EXPECT_EQ(exit_status_under_filter(FilterVariant::kForkTemplate, [] {
    if (::syscall(SYS_unshare, 0) != -1 || errno != EPERM) return 12;
    if (::syscall(SYS_unshare, CLONE_NEWUSER) != -1 || errno != EPERM) return 13;
    if (::syscall(SYS_unshare, kForkNamespaceFlags | CLONE_NEWNET) != -1 || errno != EPERM) return 14;
    if (::syscall(SYS_unshare, kForkNamespaceFlags | CLONE_NEWPID) != -1 || errno != EPERM) return 15;
    if (::syscall(SYS_unshare, CLONE_NEWPID | CLONE_NEWNET) != -1 || errno != EPERM) return 19;
    if (::syscall(SYS_setns, -1, 0) != -1 || errno != EPERM) return 16;
    if (::syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr) != -1 || errno != EPERM) return 17;
    // The filter passes these flags: as root the kernel then makes the
    // namespaces (another user may be refused by the kernel itself).
    if (::geteuid() == 0 && ::syscall(SYS_unshare, kForkNamespaceFlags) != 0) return 18;
    if (::geteuid() == 0 && ::syscall(SYS_unshare, CLONE_NEWPID) != 0) return 20;
    return 0;
  }), 0);
}

TEST(SeccompPolicyTest, UnknownSyscallFailsCompilation) {
  auto rules = parse_seccomp_policy("no_such_syscall_at_all # why\n");
  ASSERT_TRUE(rules.ok());
  const auto program = compile_seccomp_filter(*rules);
  ASSERT_FALSE(program.ok());
  EXPECT_NE(program.error().message.find("no_such_syscall_at_all"), std::string::npos);
}

// Loads the compiled filter in a child process and checks its effect.
TEST(SeccompPolicyTest, CompiledFilterAllowsListedCallsOnly) {
  EXPECT_EQ(exit_status_under_filter(FilterVariant::kInstance, [] {
    if (::syscall(SYS_unshare, 0) != -1 || errno != EPERM) return 12;
    if (::syscall(SYS_personality, 0xffffffffUL) == -1) return 13;   // the query
    if (::syscall(SYS_personality, 0x0040000UL) != -1 || errno != EPERM) return 14;  // ADDR_NO_RANDOMIZE
    if (::syscall(SYS_personality, 0x80040000UL) != -1 || errno != EPERM) return 15;
    if (::syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 16;
    if (::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr) != -1 || errno != EPERM) return 17;
    const pid_t child = ::fork();  // plain clone still works
    if (child == 0) return 0;
    if (child < 0) return 18;
    int st = 0;
    ::waitpid(child, &st, 0);
    if (::getpid() <= 0) return 19;
    // Not on the allow-list: denied by default, as is a number no kernel has yet.
    if (::syscall(SYS_modify_ldt, 0, nullptr, 0) != -1 || errno != EPERM) return 20;
    if (::syscall(1000, 0) != -1 || errno != EPERM) return 21;
    if (::syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr) != -1 || errno != EPERM) return 22;
    return 0;
  }), 0);
}

}  // namespace
}  // namespace nimbus::sandbox::detail
