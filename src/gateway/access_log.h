#pragma once
// AccessLog: one JSON line per gateway request appended to a file
// (<data-dir>/logs/gateway-access.log), with the fields of API Gateway's
// $context access-log variables. Cheap: one formatted line and one write
// under a mutex; no flush thread.
//
// Threads: write() from any thread. Owned by the Gateway.

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

#include "base/result.h"

namespace nimbus::gateway {

struct AccessRecord {
  std::string request_id;
  std::string source_ip;
  std::int64_t time_ms = 0;
  std::string method;
  std::string path;
  std::string protocol;
  std::string route_key;   // "-" when none matched
  std::string function;    // empty when none was invoked
  unsigned status = 0;
  std::size_t response_length = 0;
  double latency_ms = 0;
  double integration_latency_ms = -1;  // < 0: not invoked
  std::string user_agent;
  std::string error;       // why the gateway answered with an error, if it did
  std::string api_key_id;  // the API key a keyed route admitted
};

class AccessLog {
 public:
  AccessLog() = default;
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Opens (creating directories) for appending; without open() write() is a no-op.
  [[nodiscard]] base::Status open(const std::filesystem::path& path);
  void write(const AccessRecord& record);

 private:
  std::mutex mu_;
  std::FILE* file_ = nullptr;  // GUARDED_BY(mu_)
};

// The JSON line for one record (without the newline).
[[nodiscard]] std::string format_access_record(const AccessRecord& record);

}  // namespace nimbus::gateway
