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
  FilterContext() : ctx_(seccomp_init(SCMP_ACT_ALLOW)) {}
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
      if (w[i] == "EPERM") {
        rule.error = EPERM;
      } else if (w[i] == "ENOSYS") {
        rule.error = ENOSYS;
      } else if (w[i] == "namespace-flags") {
        if (rule.syscall != "clone") return bad("namespace-flags applies to clone only");
        rule.condition = RuleCondition::kNamespaceFlags;
      } else if (w[i] == "unusual") {
        if (rule.syscall != "personality") return bad("unusual applies to personality only");
        rule.condition = RuleCondition::kUnusual;
      } else {
        return bad(fmt::format("unknown word '{}'", w[i]));
      }
    }
    for (const char c : rule.syscall) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return bad("not a syscall name");
    }
    if (!seen.insert(rule.syscall).second) return bad("syscall listed twice");
    rules.push_back(std::move(rule));
  }
  return rules;
}

base::Result<std::vector<sock_filter>> compile_seccomp_filter(const std::vector<SeccompRule>& rules) {
  FilterContext ctx;
  if (ctx.get() == nullptr) return make_error(ErrorCode::kService, "seccomp: seccomp_init failed");
  // Calls through another ABI (int 0x80 on x86_64) would dodge the rules.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return seccomp_error("bad-architecture action", rc);
  }
  for (const SeccompRule& rule : rules) {
    const int nr = seccomp_syscall_resolve_name(rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return make_error(ErrorCode::kService,
                        fmt::format("seccomp.policy line {}: libseccomp does not know syscall '{}'", rule.line,
                                    rule.syscall));
    }
    if (nr < 0) continue;  // not a syscall of this architecture
    const std::uint32_t action = SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.error));
    const auto add = [&](unsigned count, const scmp_arg_cmp* cmp) -> base::Status {
      const int rc = seccomp_rule_add_array(ctx.get(), action, nr, count, cmp);
      if (rc < 0) return seccomp_error(fmt::format("rule for {}", rule.syscall), rc);
      return base::Ok{};
    };
    switch (rule.condition) {
      case RuleCondition::kAlways:
        NIMBUS_TRY(add(0, nullptr));
        break;
      case RuleCondition::kNamespaceFlags: {
        for (const std::uint64_t flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                         CLONE_NEWPID, CLONE_NEWNET}) {
          const scmp_arg_cmp cmp = arg0_masked_eq(flag, flag);
          NIMBUS_TRY(add(1, &cmp));
        }
        break;
      }
      case RuleCondition::kUnusual: {
        // Allowed: 0 (PER_LINUX), 0x8 (PER_LINUX32), 0x20000 (UNAME26),
        // 0x20008 and the query 0xffffffff (Docker's set). The kernel reads
        // 32 bits. With bit 31 clear, every bit but 3 and 17 is denied; with
        // bit 31 set, any clear bit is (only the query has all 32 set).
        constexpr std::uint64_t kTop = 0x80000000u;
        for (unsigned bit = 0; bit < 31; ++bit) {
          const std::uint64_t b = std::uint64_t{1} << bit;
          if (bit != 3 && bit != 17) {
            const scmp_arg_cmp set_without_top = arg0_masked_eq(b | kTop, b);
            NIMBUS_TRY(add(1, &set_without_top));
          }
          const scmp_arg_cmp clear_with_top = arg0_masked_eq(b | kTop, kTop);
          NIMBUS_TRY(add(1, &clear_with_top));
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
