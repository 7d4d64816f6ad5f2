#include "sandbox/detail/seccomp_filter.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>

namespace nimbus::sandbox::detail {

using base::ErrorCode;
using base::make_error;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Closes the libseccomp context on every path.
class FilterContext {
 public:
  // What is not allowed fails with EPERM, as in Docker's default profile.
  FilterContext() : ctx_(seccomp_init(SCMP_ACT_ERRNO(EPERM))) {}
  ~FilterContext() {
    if (ctx_ != nullptr) seccomp_release(ctx_);
  }
  FilterContext(const FilterContext&) = delete;
  FilterContext& operator=(const FilterContext&) = delete;
  [[nodiscard]] scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

// (arg0 & mask) == value; SCMP_A0() would be a C compound literal.
scmp_arg_cmp arg0_masked_eq(std::uint64_t mask, std::uint64_t value) {
  scmp_arg_cmp cmp{};
  cmp.arg = 0;
  cmp.op = SCMP_CMP_MASKED_EQ;
  cmp.datum_a = mask;
  cmp.datum_b = value;
  return cmp;
}

base::Error seccomp_error(std::string_view what, int rc) {
  return make_error(ErrorCode::kService, fmt::format("seccomp: {}: {}", what, std::strerror(-rc)));
}

}  // namespace

base::Result<std::vector<SeccompRule>> parse_seccomp_policy(std::string_view text) {
  std::vector<SeccompRule> rules;
  std::set<std::string, std::less<>> seen;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::size_t hash = line.find('#');
    const std::string_view body = trim(line.substr(0, hash));
    if (body.empty()) continue;
    const auto bad = [&](std::string_view why) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("seccomp.policy line {}: {}: '{}'", line_no, why, trim(line)));
    };
    const std::string_view why = hash == std::string_view::npos ? std::string_view{} : trim(line.substr(hash + 1));
    if (why.empty()) return bad("a rule needs a comment saying why");
    const std::vector<std::string_view> w = words(body);
    SeccompRule rule;
    rule.syscall = std::string(w[0]);
    rule.error = EPERM;
    rule.why = std::string(why);
    rule.line = line_no;
    for (std::size_t i = 1; i < w.size(); ++i) {
      if (w[i] == "allow") {
        rule.action = RuleAction::kAllow;
      } else if (w[i] == "EPERM") {
        rule.error = EPERM;
      } else if (w[i] == "ENOSYS") {
        rule.error = ENOSYS;
      } else if (w[i] == "namespace-flags") {
        if (rule.syscall != "clone") return bad("namespace-flags applies to clone only");
        rule.condition = RuleCondition::kNamespaceFlags;
      } else if (w[i] == "fork-template") {
        if (rule.syscall != "unshare") return bad("fork-template applies to unshare only");
        rule.condition = RuleCondition::kForkTemplate;
      } else if (w[i] == "unusual") {
        if (rule.syscall != "personality") return bad("unusual applies to personality only");
        rule.condition = RuleCondition::kUnusual;
      } else {
        return bad(fmt::format("unknown word '{}'", w[i]));
      }
    }
    if (rule.action == RuleAction::kAllow && (w.size() != 2)) {
      return bad("an allowed call takes no errno or condition (a condition already allows the rest)");
    }
    for (const char c : rule.syscall) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return bad("not a syscall name");
    }
    if (!seen.insert(rule.syscall).second) return bad("syscall listed twice");
    rules.push_back(std::move(rule));
  }
  return rules;
}

base::Result<std::vector<sock_filter>> compile_seccomp_filter(const std::vector<SeccompRule>& rules,
                                                              FilterVariant variant) {
  FilterContext ctx;
  if (ctx.get() == nullptr) return make_error(ErrorCode::kService, "seccomp: seccomp_init failed");
  // Calls through another ABI (int 0x80 on x86_64) would dodge the rules.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return seccomp_error("bad-architecture action", rc);
  }
  // A binary tree over the syscall numbers instead of a linear list: with
  // ~300 allowed calls every call made by an instance would otherwise walk
  // the whole list.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return seccomp_error("binary-tree optimisation", rc);
  }
  for (const SeccompRule& rule : rules) {
    const int nr = seccomp_syscall_resolve_name(rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return make_error(ErrorCode::kService,
                        fmt::format("seccomp.policy line {}: libseccomp does not know syscall '{}'", rule.line,
                                    rule.syscall));
    }
    if (nr < 0) continue;  // not a syscall of this architecture
    const auto add = [&](std::uint32_t action, unsigned count, const scmp_arg_cmp* cmp) -> base::Status {
      const int rc = seccomp_rule_add_array(ctx.get(), action, nr, count, cmp);
      if (rc < 0) return seccomp_error(fmt::format("rule for {}", rule.syscall), rc);
      return base::Ok{};
    };
    switch (rule.condition) {
      case RuleCondition::kAlways:
        if (rule.action == RuleAction::kAllow) {
          NIMBUS_TRY(add(SCMP_ACT_ALLOW, 0, nullptr));
        } else if (rule.error != EPERM) {  // EPERM is the default action already
          NIMBUS_TRY(add(SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.error)), 0, nullptr));
        }
        break;
      case RuleCondition::kNamespaceFlags: {
        // Allowed when the flags hold no CLONE_NEW* bit; denied otherwise.
        const std::uint64_t any_namespace = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                            CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
        const scmp_arg_cmp cmp = arg0_masked_eq(any_namespace, 0);
        NIMBUS_TRY(add(SCMP_ACT_ALLOW, 1, &cmp));
        break;
      }
      case RuleCondition::kForkTemplate: {
        // Denied for instances; a fork template may make exactly the
        // namespaces a forked instance enters (kForkNamespaceFlags, then
        // CLONE_NEWPID), one call each.
        if (variant == FilterVariant::kForkTemplate) {
          for (const std::uint64_t flags : {kForkNamespaceFlags, static_cast<unsigned long>(CLONE_NEWPID)}) {
            const scmp_arg_cmp cmp = arg0_masked_eq(0xffffffffu, flags);
            NIMBUS_TRY(add(SCMP_ACT_ALLOW, 1, &cmp));
          }
        } else if (rule.error != EPERM) {
          NIMBUS_TRY(add(SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.error)), 0, nullptr));
        }
        break;
      }
      case RuleCondition::kUnusual: {
        // Allowed: 0 (PER_LINUX), 0x8 (PER_LINUX32), 0x20000 (UNAME26),
        // 0x20008 and the query 0xffffffff (Docker's set); the kernel reads
        // 32 bits. Anything else is denied.
        for (const std::uint64_t persona : {0x0u, 0x8u, 0x20000u, 0x20008u, 0xffffffffu}) {
          const scmp_arg_cmp cmp = arg0_masked_eq(0xffffffffu, persona);
          NIMBUS_TRY(add(SCMP_ACT_ALLOW, 1, &cmp));
        }
        break;
      }
    }
  }

  // Export the BPF program through a memory file and read it back.
  const int fd = ::memfd_create("nimbus-seccomp", MFD_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kService, fmt::format("seccomp: memfd_create: {}", std::strerror(errno)));
  std::vector<sock_filter> program;
  const int rc = seccomp_export_bpf(ctx.get(), fd);
  struct stat st {};
  if (rc < 0 || ::fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % sizeof(sock_filter) != 0) {
    ::close(fd);
    return seccomp_error("export", rc < 0 ? rc : -EINVAL);
  }
  program.resize(static_cast<std::size_t>(st.st_size) / sizeof(sock_filter));
  const ssize_t n = ::pread(fd, program.data(), static_cast<std::size_t>(st.st_size), 0);
  ::close(fd);
  if (n != st.st_size) return seccomp_error("export read-back", -EIO);
  return program;
}

}  // namespace nimbus::sandbox::detail
