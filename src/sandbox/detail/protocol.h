#pragma once
// The messages between the daemon and the launcher process (internal to the
// sandbox part). Each message is one SOCK_SEQPACKET datagram holding JSON,
// with file descriptors attached as SCM_RIGHTS.
//
//   launcher -> daemon, once at start:  {"op":"hello", "report":{...}, "memory_dir":"..."}
//                                       or {"op":"hello", "error":"..."}
//   daemon -> launcher:  {"op":"spawn", "seq":n, "spec":{...}}  fds: [output_fd?] + inherit_fds
//                        {"op":"kill", "seq":n, "pid":n}
//                        {"op":"claim", "seq":n, "runtime":{"argv":[...], "env":[...], "runtime_dir":"..."}}
//                        {"op":"release", "seq":n, "id":n}
//   launcher -> daemon, the reply (same seq):
//                        {"ok":true, "pid":n, "uid":n} / {"ok":true} / {"ok":false, "error":"...", "code":"..."}
//                        a spawn's reply may add "pooled", "primed", "cgroup", and "output" or
//                        "runtime_listener" with that descriptor attached; a claim's has
//                        "claim":{"id":n, "uid":n} or "claim":null
//   launcher -> daemon on the event socket: {"pid":n, "status":n, "oom":b, "id":"..."}
//
// Functions here are plain blocking/non-blocking socket calls; callable from
// any thread on distinct fds.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "sandbox/launcher.h"

namespace nimbus::sandbox::detail {

// Largest message either side sends or accepts.
inline constexpr std::size_t kMaxMessageBytes = 128 << 10;  // fits the default socket buffer
// Most descriptors one message carries (output fd + inherited fds).
inline constexpr std::size_t kMaxMessageFds = 65;

// Sends one message with `fds` attached (not closed). Retries EINTR; a full
// non-blocking socket yields EAGAIN as an error with errno_out set.
[[nodiscard]] base::Status send_message(int fd, const nlohmann::json& message, const std::vector<int>& fds,
                                        int* errno_out = nullptr);

enum class ReceiveOutcome { kMessage, kWouldBlock, kClosed, kTimeout, kError };

struct Received {
  ReceiveOutcome outcome = ReceiveOutcome::kError;
  nlohmann::json message;
  std::vector<int> fds;  // owned by the caller (close them)
  std::string error;     // for kError
};

// Receives one message. `timeout` < 0: block; 0: do not wait (kWouldBlock).
// Received fds get O_CLOEXEC. A message that is not JSON is kError.
[[nodiscard]] Received receive_message(int fd, std::chrono::milliseconds timeout);

[[nodiscard]] nlohmann::json spec_to_json(const InstanceSpec& spec);
// Rebuilds a spec; fds come from the message's SCM_RIGHTS, in order.
[[nodiscard]] base::Result<InstanceSpec> spec_from_json(const nlohmann::json& j, const std::vector<int>& fds);

[[nodiscard]] nlohmann::json template_to_json(const RuntimeTemplate& runtime);
[[nodiscard]] base::Result<RuntimeTemplate> template_from_json(const nlohmann::json& j);

[[nodiscard]] nlohmann::json report_to_json(const IsolationReport& report);
[[nodiscard]] IsolationReport report_from_json(const nlohmann::json& j);

[[nodiscard]] nlohmann::json event_to_json(const ExitEvent& event);
[[nodiscard]] std::optional<ExitEvent> event_from_json(const nlohmann::json& j);

// instance_id: [a-z0-9-]{1,64} (it names a cgroup directory).
[[nodiscard]] base::Status validate_instance_id(const std::string& id);

// Checks what the launcher relies on: id pattern, argv, sizes, fd count.
[[nodiscard]] base::Status validate_spec(const InstanceSpec& spec);

}  // namespace nimbus::sandbox::detail
