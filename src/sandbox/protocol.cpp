#include "sandbox/detail/protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::sandbox::detail {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

base::Error sock_error(std::string_view step, int err) {
  return make_error(ErrorCode::kService, fmt::format("sandbox {}: {}", step, std::strerror(err)));
}

bool valid_id_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

}  // namespace

base::Status send_message(int fd, const json& message, const std::vector<int>& fds, int* errno_out) {
  const std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxMessageBytes) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("sandbox message of {} bytes exceeds the limit of {}", text.size(),
                                  kMaxMessageBytes));
  }
  if (fds.size() > kMaxMessageFds) {
    return make_error(ErrorCode::kInvalidParameterValue, "sandbox message carries too many descriptors");
  }
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) return base::Ok{};
    if (errno == EINTR) continue;
    if (errno_out != nullptr) *errno_out = errno;
    return sock_error("send", errno);
  }
}

Received receive_message(int fd, std::chrono::milliseconds timeout) {
  Received out;
  if (timeout.count() >= 0) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
      const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        out.outcome = ReceiveOutcome::kError;
        out.error = fmt::format("poll: {}", std::strerror(errno));
        return out;
      }
      if (r == 0) {
        out.outcome = timeout.count() == 0 ? ReceiveOutcome::kWouldBlock : ReceiveOutcome::kTimeout;
        return out;
      }
      break;
    }
  }
  // One buffer per thread: messages are read by one or two threads, and
  // allocating the maximum size per call would cost more than the call.
  thread_local std::vector<char> buffer(kMaxMessageBytes);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageFds)];
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  for (;;) {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (timeout.count() >= 0 ? MSG_DONTWAIT : 0));
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.outcome = timeout.count() == 0 ? ReceiveOutcome::kWouldBlock : ReceiveOutcome::kTimeout;
      return out;
    }
    out.outcome = errno == ECONNRESET ? ReceiveOutcome::kClosed : ReceiveOutcome::kError;
    out.error = fmt::format("recvmsg: {}", std::strerror(errno));
    return out;
  }
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        out.fds.push_back(received);
      }
    }
  }
  if (n == 0 && out.fds.empty()) {
    out.outcome = ReceiveOutcome::kClosed;
    return out;
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    for (const int f : out.fds) ::close(f);
    out.fds.clear();
    out.outcome = ReceiveOutcome::kError;
    out.error = "message truncated";
    return out;
  }
  out.message = json::parse(buffer.data(), buffer.data() + n, nullptr, /*allow_exceptions=*/false);
  if (out.message.is_discarded() || !out.message.is_object()) {
    for (const int f : out.fds) ::close(f);
    out.fds.clear();
    out.outcome = ReceiveOutcome::kError;
    out.error = "message is not a JSON object";
    return out;
  }
  out.outcome = ReceiveOutcome::kMessage;
  return out;
}

json spec_to_json(const InstanceSpec& spec) {
  return json{{"id", spec.instance_id},
              {"argv", spec.argv},
              {"env", spec.env},
              {"code_dir", spec.code_dir.string()},
              {"runtime_dir", spec.runtime_dir.string()},
              {"memory", spec.memory_bytes},
              {"tmp", spec.tmp_bytes},
              {"cpu_weight", spec.cpu_weight},
              {"cpu_limit", spec.cpu_limit_millicores},
              {"pids_max", spec.pids_max},
              {"uid", spec.uid},
              {"gid", spec.gid},
              {"network", spec.network == NetworkMode::kNone ? "none" : "host"},
              {"has_output", spec.output_fd >= 0},
              {"inherit", spec.inherit_fds.size()},
              {"primed", spec.primed_id},
              {"fork_key", spec.fork_key}};
}

base::Result<InstanceSpec> spec_from_json(const json& j, const std::vector<int>& fds) {
  InstanceSpec spec;
  const auto bad = [](std::string_view what) {
    return make_error(ErrorCode::kService, fmt::format("sandbox request: bad field '{}'", what));
  };
  try {
    spec.instance_id = j.at("id").get<std::string>();
    spec.argv = j.at("argv").get<std::vector<std::string>>();
    spec.env = j.at("env").get<std::vector<std::string>>();
    spec.code_dir = j.at("code_dir").get<std::string>();
    spec.runtime_dir = j.at("runtime_dir").get<std::string>();
    spec.memory_bytes = j.at("memory").get<std::uint64_t>();
    spec.tmp_bytes = j.at("tmp").get<std::uint64_t>();
    spec.cpu_weight = j.at("cpu_weight").get<unsigned>();
    spec.cpu_limit_millicores = j.value("cpu_limit", 0u);
    spec.pids_max = j.at("pids_max").get<unsigned>();
    spec.uid = j.at("uid").get<unsigned>();
    spec.gid = j.at("gid").get<unsigned>();
    spec.primed_id = j.value("primed", std::uint64_t{0});
    spec.fork_key = j.value("fork_key", std::string());
    const std::string network = j.at("network").get<std::string>();
    if (network != "host" && network != "none") return bad("network");
    spec.network = network == "none" ? NetworkMode::kNone : NetworkMode::kHost;
    const bool has_output = j.at("has_output").get<bool>();
    const std::size_t inherit = j.at("inherit").get<std::size_t>();
    if (fds.size() != inherit + (has_output ? 1 : 0)) return bad("descriptors");
    std::size_t next = 0;
    if (has_output) spec.output_fd = fds[next++];
    while (next < fds.size()) spec.inherit_fds.push_back(fds[next++]);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kService, fmt::format("sandbox request: {}", e.what()));
  }
  return spec;
}

json template_to_json(const RuntimeTemplate& runtime) {
  return json{{"argv", runtime.argv}, {"env", runtime.env}, {"runtime_dir", runtime.runtime_dir.string()}};
}

base::Result<RuntimeTemplate> template_from_json(const json& j) {
  RuntimeTemplate runtime;
  try {
    runtime.argv = j.at("argv").get<std::vector<std::string>>();
    runtime.env = j.at("env").get<std::vector<std::string>>();
    runtime.runtime_dir = j.at("runtime_dir").get<std::string>();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kService, fmt::format("sandbox request: runtime template: {}", e.what()));
  }
  const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  if (runtime.argv.empty() || runtime.argv[0].empty() || runtime.argv[0][0] != '/') {
    return make_error(ErrorCode::kInvalidParameterValue, "sandbox: a runtime template's argv[0] must be an absolute path");
  }
  for (const auto& a : runtime.argv) {
    if (has_nul(a)) return make_error(ErrorCode::kInvalidParameterValue, "sandbox: argv contains a NUL byte");
  }
  for (const auto& e : runtime.env) {
    if (has_nul(e) || e.find('=') == std::string::npos) {
      return make_error(ErrorCode::kInvalidParameterValue, fmt::format("sandbox: bad environment entry '{}'", e));
    }
  }
  if (!runtime.runtime_dir.empty() && !runtime.runtime_dir.is_absolute()) {
    return make_error(ErrorCode::kInvalidParameterValue, "sandbox: runtime_dir must be an absolute path");
  }
  return runtime;
}

json report_to_json(const IsolationReport& r) {
  return json{{"root", r.root},
              {"namespaces", r.namespaces},
              {"network_namespace", r.network_namespace},
              {"cgroups", r.cgroups},
              {"cgroup_version", static_cast<int>(r.cgroup_version)},
              {"seccomp", r.seccomp},
              {"uid_switch", r.uid_switch},
              {"fork", r.fork},
              {"lost", r.lost}};
}

IsolationReport report_from_json(const json& j) {
  IsolationReport r;
  r.root = j.value("root", false);
  r.namespaces = j.value("namespaces", false);
  r.network_namespace = j.value("network_namespace", false);
  r.cgroups = j.value("cgroups", false);
  const int version = j.value("cgroup_version", 0);
  r.cgroup_version = version == 1 ? CgroupVersion::kV1 : version == 2 ? CgroupVersion::kV2 : CgroupVersion::kNone;
  r.seccomp = j.value("seccomp", false);
  r.uid_switch = j.value("uid_switch", false);
  r.fork = j.value("fork", false);
  if (j.contains("lost") && j["lost"].is_array()) {
    for (const auto& s : j["lost"]) {
      if (s.is_string()) r.lost.push_back(s.get<std::string>());
    }
  }
  return r;
}

json event_to_json(const ExitEvent& e) {
  return json{{"pid", e.pid}, {"status", e.wait_status}, {"oom", e.oom_killed}, {"id", e.instance_id},
              {"peak", e.peak_memory_bytes}};
}

std::optional<ExitEvent> event_from_json(const json& j) {
  try {
    ExitEvent e;
    e.pid = j.at("pid").get<int>();
    e.wait_status = j.at("status").get<int>();
    e.oom_killed = j.at("oom").get<bool>();
    e.instance_id = j.at("id").get<std::string>();
    e.peak_memory_bytes = j.value("peak", std::uint64_t{0});
    return e;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

base::Status validate_instance_id(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return make_error(ErrorCode::kInvalidParameterValue, "sandbox: instance_id must be 1 to 64 characters");
  }
  for (const char c : id) {
    if (!valid_id_char(c)) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("sandbox: instance_id '{}' must match [a-z0-9-]+", id));
    }
  }
  return base::Ok{};
}

base::Status validate_spec(const InstanceSpec& spec) {
  const auto bad = [](std::string message) {
    return make_error(ErrorCode::kInvalidParameterValue, std::move(message));
  };
  NIMBUS_TRY(validate_instance_id(spec.instance_id));
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return bad("sandbox: argv[0] must be an absolute path");
  }
  const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  for (const auto& a : spec.argv) {
    if (has_nul(a)) return bad("sandbox: argv contains a NUL byte");
  }
  for (const auto& e : spec.env) {
    if (has_nul(e) || e.find('=') == std::string::npos) return bad(fmt::format("sandbox: bad environment entry '{}'", e));
  }
  if (spec.code_dir.empty() || !spec.code_dir.is_absolute()) return bad("sandbox: code_dir must be an absolute path");
  if (!spec.runtime_dir.empty() && !spec.runtime_dir.is_absolute()) {
    return bad("sandbox: runtime_dir must be an absolute path");
  }
  if (spec.memory_bytes < (4ull << 20)) return bad("sandbox: memory_bytes must be at least 4 MiB");
  if (spec.tmp_bytes < 4096) return bad("sandbox: tmp_bytes must be at least 4096");
  if (spec.pids_max == 0) return bad("sandbox: pids_max must be positive");
  if (spec.inherit_fds.size() + 1 > kMaxMessageFds) return bad("sandbox: at most 64 inherited descriptors");
  if ((spec.uid == 0) != (spec.gid == 0) && spec.uid == 0) return bad("sandbox: gid given without uid");
  for (const int fd : spec.inherit_fds) {
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) return bad(fmt::format("sandbox: inherited descriptor {} is not open", fd));
  }
  if (spec.output_fd >= 0 && ::fcntl(spec.output_fd, F_GETFD) < 0) {
    return bad(fmt::format("sandbox: output descriptor {} is not open", spec.output_fd));
  }
  return base::Ok{};
}

}  // namespace nimbus::sandbox::detail
