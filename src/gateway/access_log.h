#pragma once
// AccessLog: one JSON line per gateway request appended to a file
// (<data-dir>/logs/gateway-access.log), with the fields of API Gateway's
// $context access-log variables. A request only formats its line and adds
// it to a buffer; a flusher thread appends the buffer to the file every
// kFlushInterval (sooner when it grows past kFlushBytes) and at close, so
// lines reach the file whole, in order, and at most kFlushInterval late.
//
// Threads: write() from any thread; open() once before, the destructor
// after. Owned by the Gateway.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

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
  static constexpr std::chrono::milliseconds kFlushInterval{100};
  static constexpr std::size_t kFlushBytes = 256 * 1024;

  AccessLog() = default;
  ~AccessLog();  // writes what is buffered
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Opens (creating directories) for appending and starts the flusher;
  // without open() write() is a no-op. Once only.
  [[nodiscard]] base::Status open(const std::filesystem::path& path);
  void write(const AccessRecord& record);

 private:
  void flush_loop();

  std::mutex mu_;
  std::condition_variable wake_;
  int fd_ = -1;             // set by open(), before the flusher starts
  std::string pending_;     // GUARDED_BY(mu_): lines not yet in the file
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::thread flusher_;
};

// The JSON line for one record (without the newline).
[[nodiscard]] std::string format_access_record(const AccessRecord& record);

}  // namespace nimbus::gateway
