#pragma once
// The seccomp allow-list of function instances (internal to the sandbox
// part): the policy text (src/sandbox/seccomp.policy, embedded at build
// time), its parser, and its compilation into a BPF program with libseccomp.
// The launcher compiles once at start; the child installs the program with
// prctl(PR_SET_SECCOMP), which is async-signal-safe. Pure functions, any thread.

#include <linux/filter.h>
#include <sched.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace nimbus::sandbox::detail {

// The text of src/sandbox/seccomp.policy as built into the binary.
[[nodiscard]] std::string_view embedded_seccomp_policy();

enum class RuleAction {
  kDeny,   // fails with `error` (EPERM is also what every unlisted call gets)
  kAllow,
};

// A condition on a denied call: it is denied only then, and allowed otherwise.
enum class RuleCondition {
  kAlways,
  kNamespaceFlags,  // clone: denied when the flags hold a CLONE_NEW* bit
  kUnusual,         // personality: denied but for the usual personas and the query
  kForkTemplate,    // unshare: denied, but in FilterVariant::kForkTemplate allowed with
                    // exactly kForkNamespaceFlags or exactly CLONE_NEWPID
};

// The namespaces a forked instance enters, made by itself right after the
// fork of its template (docs/isolation.md, "Fork of an initialised
// instance"); then, in its new user namespace, a PID namespace (a call of
// its own: the user namespace must exist first to own it).
inline constexpr unsigned long kForkNamespaceFlags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;

// Which program compile_seccomp_filter builds: the one every instance gets,
// or the one of a fork template, which differs by kForkTemplate rules only.
enum class FilterVariant { kInstance, kForkTemplate };

struct SeccompRule {
  std::string syscall;
  RuleAction action = RuleAction::kDeny;
  int error = 0;  // errno returned (EPERM, ENOSYS)
  RuleCondition condition = RuleCondition::kAlways;
  std::string why;
  int line = 0;
};

// Parses the policy. kInvalidParameterValue naming the line for an unknown
// errno or condition, a condition on the wrong call, a missing "# why", a
// syscall given twice.
[[nodiscard]] base::Result<std::vector<SeccompRule>> parse_seccomp_policy(std::string_view text);

// Compiles the rules for the native architecture: allowed calls pass, every
// other call fails with EPERM (or the errno its deny rule names), conditional
// rules allow the calls outside their condition, other architectures' ABIs
// (e.g. i386 on x86_64) kill the process. kService when libseccomp does not
// know a name.
[[nodiscard]] base::Result<std::vector<sock_filter>> compile_seccomp_filter(
    const std::vector<SeccompRule>& rules, FilterVariant variant = FilterVariant::kInstance);

}  // namespace nimbus::sandbox::detail
