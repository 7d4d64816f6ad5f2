#include "sandbox/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/files.h"
#include "sandbox/detail/cgroups.h"
#include "sandbox/detail/launcher_process.h"
#include "sandbox/detail/protocol.h"

namespace nimbus::sandbox {

using base::ErrorCode;
using base::make_error;
using detail::ReceiveOutcome;
using nlohmann::json;

namespace {

// Threads of this process, from /proc/self/status; 0 if unknown.
int thread_count() {
  const auto status = base::read_file("/proc/self/status");
  if (!status.ok()) return 0;
  const std::size_t at = status->find("\nThreads:");
  if (at == std::string::npos) return 0;
  return std::atoi(status->c_str() + at + 9);
}

base::Status validate_config(const LauncherConfig& config) {
  const auto bad = [](std::string message) { return make_error(ErrorCode::kInvalidParameterValue, std::move(message)); };
  if (config.cgroup_name.empty() || config.cgroup_name == "." || config.cgroup_name == ".." ||
      config.cgroup_name.size() > 64) {
    return bad("sandbox: cgroup_name must be 1 to 64 characters");
  }
  for (const char c : config.cgroup_name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return bad(fmt::format("sandbox: cgroup_name '{}' must match [A-Za-z0-9._-]+", config.cgroup_name));
  }
  if (config.uid_base == 0 || config.uid_count == 0 || config.uid_base + std::uint64_t{config.uid_count} > 0xfffffffeu) {
    return bad("sandbox: the uid pool must be non-empty and lie within 1..4294967294");
  }
  if (config.lease_uid_base == 0 || config.lease_uid_count == 0 ||
      config.lease_uid_base + std::uint64_t{config.lease_uid_count} > 0xfffffffeu) {
    return bad("sandbox: the leased uid range must be non-empty and lie within 1..4294967294");
  }
  if (config.primed_per_runtime > 16) return bad("sandbox: primed_per_runtime must be 0 to 16");
  if (config.spawn_timeout.count() <= 0) return bad("sandbox: spawn_timeout must be positive");
  return base::Ok{};
}

ErrorCode code_of(const std::string& code) {
  if (code == "conflict") return ErrorCode::kResourceConflict;
  if (code == "throttled") return ErrorCode::kTooManyRequests;
  if (code == "not_found") return ErrorCode::kResourceNotFound;
  return ErrorCode::kService;
}

}  // namespace

base::Result<std::unique_ptr<Launcher>> Launcher::start(LauncherConfig config) {
  NIMBUS_TRY(validate_config(config));
  if (const int threads = thread_count(); threads > 1) {
    spdlog::warn("sandbox: Launcher::start() forks while this process runs {} threads; call it before any "
                 "thread starts",
                 threads);
  }
  int request[2];
  int events[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, request) != 0) {
    return make_error(ErrorCode::kService, base::errno_message("socketpair", "launcher", errno));
  }
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, events) != 0) {
    const int err = errno;
    ::close(request[0]);
    ::close(request[1]);
    return make_error(ErrorCode::kService, base::errno_message("socketpair", "launcher", err));
  }
  const int daemon_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(request[0]);
    ::close(events[0]);
    // Never returns into the daemon's code, whatever happens.
    try {
      detail::LauncherProcess process(config, request[1], events[1], daemon_pid);
      process.run();
    } catch (...) {
    }
    ::_exit(1);
  }
  const int fork_errno = errno;
  ::close(request[1]);
  ::close(events[1]);
  if (pid < 0) {
    ::close(request[0]);
    ::close(events[0]);
    return make_error(ErrorCode::kService, base::errno_message("fork", "launcher", fork_errno));
  }
  const int flags = ::fcntl(events[0], F_GETFL);
  ::fcntl(events[0], F_SETFL, flags | O_NONBLOCK);

  std::unique_ptr<Launcher> launcher(new Launcher(pid, request[0], events[0]));
  launcher->reply_timeout_ = config.spawn_timeout + std::chrono::seconds(5);
  NIMBUS_TRY(launcher->receive_hello(std::chrono::seconds(15)));
  return launcher;
}

Launcher::Launcher(int launcher_pid, int request_fd, int event_fd)
    : launcher_pid_(launcher_pid), request_fd_(request_fd), event_fd_(event_fd), reply_timeout_(15000) {}

base::Status Launcher::receive_hello(std::chrono::milliseconds timeout) {
  detail::Received hello = detail::receive_message(request_fd_, timeout);
  for (const int fd : hello.fds) ::close(fd);
  if (hello.outcome != ReceiveOutcome::kMessage || hello.message.value("op", "") != "hello") {
    alive_ = false;
    return make_error(ErrorCode::kService,
                      fmt::format("sandbox launcher did not start (no greeting within {} ms{})", timeout.count(),
                                  hello.error.empty() ? "" : ": " + hello.error));
  }
  if (hello.message.contains("error")) {
    alive_ = false;
    return make_error(ErrorCode::kService,
                      fmt::format("sandbox launcher failed: {}", hello.message.value("error", "")));
  }
  try {
    report_ = detail::report_from_json(hello.message.at("report"));
    memory_dir_ = hello.message.at("memory_dir").get<std::string>();
  } catch (const std::exception& e) {
    alive_ = false;
    return make_error(ErrorCode::kService, fmt::format("sandbox launcher greeting: {}", e.what()));
  }
  cgroup_version_ = report_.cgroup_version;
  return base::Ok{};
}

Launcher::~Launcher() {
  {
    std::lock_guard groups(groups_mutex_);
    for (auto& [id, group] : group_of_) {
      if (group.peak_fd >= 0) ::close(group.peak_fd);
    }
    group_of_.clear();
  }
  // EOF on its socket makes the launcher kill every instance, remove the
  // cgroups and exit.
  ::close(request_fd_);
  int status = 0;
  bool reaped = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = ::waitpid(launcher_pid_, &status, WNOHANG);
    if (r == launcher_pid_ || (r < 0 && errno == ECHILD)) {
      reaped = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!reaped) {
    spdlog::error("sandbox: the launcher (pid {}) did not stop within 10 s; killing it", launcher_pid_);
    ::kill(launcher_pid_, SIGKILL);
    while (::waitpid(launcher_pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ::close(event_fd_);
}

base::Result<SpawnedInstance> Launcher::spawn(const InstanceSpec& spec) {
  if (auto valid = detail::validate_spec(spec); !valid.ok()) {
    // The launcher never sees this spec, so its claim is handed back here.
    if (spec.primed_id != 0) release_primed(PrimedClaim{spec.primed_id, spec.uid});
    return std::move(valid).error();
  }
  std::vector<int> fds;
  if (spec.output_fd >= 0) fds.push_back(spec.output_fd);
  fds.insert(fds.end(), spec.inherit_fds.begin(), spec.inherit_fds.end());

  std::lock_guard lock(request_mutex_);
  std::vector<int> reply_fds;
  auto reply = round_trip(json{{"op", "spawn"}, {"spec", detail::spec_to_json(spec)}}, fds, &reply_fds);
  const auto close_fds = [&reply_fds] {
    for (const int fd : reply_fds) ::close(fd);
  };
  if (!reply.ok()) {
    close_fds();
    return std::move(reply).error();
  }
  try {
    if (!reply->at("ok").get<bool>()) {
      close_fds();
      return make_error(code_of(reply->value("code", "")), reply->at("error").get<std::string>());
    }
    SpawnedInstance spawned{reply->at("pid").get<int>(), reply->at("uid").get<unsigned>()};
    spawned.pooled = reply->value("pooled", false);
    if (const auto group = reply->find("cgroup"); group != reply->end() && group->is_string()) {
      std::lock_guard groups(groups_mutex_);
      // Its exit event may have been read already (it died at once).
      if (exited_early_.erase(spec.instance_id) == 0) {
        forget_group(spec.instance_id);  // an id is never reused, but never leak its file either
        group_of_[spec.instance_id].dir = group->get<std::string>();
      }
    }
    spawned.primed = reply->value("primed", false);
    spawned.forked = reply->value("forked", false);
    if (reply->value("runtime_listener", false) && reply_fds.size() == 1) {
      spawned.runtime_listener_fd = reply_fds[0];
      reply_fds.clear();
    }
    if (reply->value("output", false) && reply_fds.size() == 1) {
      spawned.output_fd = reply_fds[0];
      reply_fds.clear();
    }
    close_fds();
    return spawned;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kService, fmt::format("sandbox launcher reply: {}", e.what()));
  }
}

std::optional<PrimedClaim> Launcher::claim_primed(const RuntimeTemplate& runtime) {
  std::lock_guard lock(request_mutex_);
  auto reply = round_trip(json{{"op", "claim"}, {"runtime", detail::template_to_json(runtime)}}, {});
  if (!reply.ok()) return std::nullopt;
  try {
    const auto claim = reply->find("claim");
    if (!reply->at("ok").get<bool>() || claim == reply->end() || !claim->is_object()) return std::nullopt;
    return PrimedClaim{claim->at("id").get<std::uint64_t>(), claim->at("uid").get<unsigned>()};
  } catch (const std::exception& e) {
    spdlog::warn("sandbox: bad claim reply from the launcher: {}", e.what());
    return std::nullopt;
  }
}

void Launcher::release_primed(const PrimedClaim& claim) {
  std::lock_guard lock(request_mutex_);
  (void)round_trip(json{{"op", "release"}, {"id", claim.id}}, {});
}

void Launcher::prepare_fork_template(const InstanceSpec& spec) {
  InstanceSpec bare = spec;
  bare.output_fd = -1;
  bare.inherit_fds.clear();
  if (bare.fork_key.empty() || !report_.fork || !detail::validate_spec(bare).ok()) return;
  std::lock_guard lock(request_mutex_);
  (void)round_trip(json{{"op", "prepare_template"}, {"spec", detail::spec_to_json(bare)}}, {});
}

void Launcher::drop_fork_template(const std::string& fork_key) {
  std::lock_guard lock(request_mutex_);
  (void)round_trip(json{{"op", "drop_template"}, {"key", fork_key}}, {});
}

base::Status Launcher::kill(int pid) {
  std::lock_guard lock(request_mutex_);
  auto reply = round_trip(json{{"op", "kill"}, {"pid", pid}}, {});
  if (!reply.ok()) return std::move(reply).error();
  try {
    if (!reply->at("ok").get<bool>()) {
      return make_error(code_of(reply->value("code", "")), reply->at("error").get<std::string>());
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kService, fmt::format("sandbox launcher reply: {}", e.what()));
  }
  return base::Ok{};
}

base::Result<json> Launcher::round_trip(json request, const std::vector<int>& fds, std::vector<int>* reply_fds) {
  if (!alive_) return make_error(ErrorCode::kService, "sandbox launcher is not running");
  const std::uint64_t seq = ++seq_;
  request["seq"] = seq;
  NIMBUS_TRY(detail::send_message(request_fd_, request, fds));
  const auto deadline = std::chrono::steady_clock::now() + reply_timeout_;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return make_error(ErrorCode::kService,
                        fmt::format("sandbox launcher did not answer within {} ms", reply_timeout_.count()));
    }
    detail::Received reply = detail::receive_message(request_fd_, left);
    switch (reply.outcome) {
      case ReceiveOutcome::kMessage: {
        // A late answer to a request that timed out earlier is skipped.
        const auto it = reply.message.find("seq");
        if (it != reply.message.end() && it->is_number_unsigned() && it->get<std::uint64_t>() == seq) {
          if (reply_fds != nullptr) {
            *reply_fds = std::move(reply.fds);
          } else {
            for (const int fd : reply.fds) ::close(fd);
          }
          return std::move(reply.message);
        }
        for (const int fd : reply.fds) ::close(fd);
        continue;
      }
      case ReceiveOutcome::kClosed:
        alive_ = false;
        spdlog::error("sandbox: the launcher process (pid {}) is gone", launcher_pid_);
        return make_error(ErrorCode::kService, "sandbox launcher is gone");
      case ReceiveOutcome::kTimeout:
      case ReceiveOutcome::kWouldBlock:
        continue;
      case ReceiveOutcome::kError:
        return make_error(ErrorCode::kService, fmt::format("sandbox launcher reply: {}", reply.error));
    }
  }
}

std::uint64_t Launcher::peak_memory(const std::string& instance_id) const {
  if (memory_dir_.empty() || detail::validate_instance_id(instance_id).ok() == false) return 0;
  std::lock_guard lock(groups_mutex_);
  const auto it = group_of_.find(instance_id);
  // An instance whose spawn reply named no group is in one named after it.
  if (it == group_of_.end()) return detail::read_peak_memory(memory_dir_ / instance_id, cgroup_version_);
  MemoryGroup& group = it->second;
  if (group.peak_fd < 0) group.peak_fd = detail::open_peak_memory(memory_dir_ / group.dir, cgroup_version_);
  if (group.peak_fd < 0) return 0;
  return detail::read_peak_memory_fd(group.peak_fd).value_or(0);
}

void Launcher::forget_group(const std::string& instance_id) {
  const auto it = group_of_.find(instance_id);
  if (it == group_of_.end()) return;
  if (it->second.peak_fd >= 0) ::close(it->second.peak_fd);
  group_of_.erase(it);
}

std::optional<ExitEvent> Launcher::read_exit_event() {
  std::lock_guard lock(event_mutex_);
  detail::Received received = detail::receive_message(event_fd_, std::chrono::milliseconds(0));
  for (const int fd : received.fds) ::close(fd);
  if (received.outcome == ReceiveOutcome::kClosed) {
    alive_ = false;
    return std::nullopt;
  }
  if (received.outcome != ReceiveOutcome::kMessage) return std::nullopt;
  auto event = detail::event_from_json(received.message);
  if (event) {
    std::lock_guard groups(groups_mutex_);
    if (!group_of_.contains(event->instance_id) && !memory_dir_.empty()) exited_early_.insert(event->instance_id);
    forget_group(event->instance_id);
  }
  return event;
}

bool Launcher::launcher_alive() const { return alive_; }

}  // namespace nimbus::sandbox
