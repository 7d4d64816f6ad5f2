#include "gateway/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/event.h"

namespace nimbus::gateway {

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (fd_ >= 0) ::close(fd_);
}

base::Status AccessLog::open(const std::filesystem::path& path) {
  if (fd_ >= 0) return base::make_error(base::ErrorCode::kService, "gateway access log: already open");
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return base::make_error(base::ErrorCode::kService,
                            fmt::format("open gateway access log {}: {}", path.string(), std::strerror(errno)));
  }
  fd_ = fd;
  flusher_ = std::thread([this] { flush_loop(); });
  return base::Ok{};
}

void AccessLog::write(const AccessRecord& record) {
  if (fd_ < 0) return;
  std::string line = format_access_record(record);
  line.push_back('\n');
  bool full = false;
  {
    std::lock_guard lock(mu_);
    pending_ += line;
    full = pending_.size() >= kFlushBytes;
  }
  if (full) wake_.notify_one();
}

void AccessLog::flush_loop() {
  std::string batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, kFlushInterval, [this] { return stopping_ || pending_.size() >= kFlushBytes; });
    batch.swap(pending_);
    const bool last = stopping_;
    lock.unlock();
    // Whole lines only: a failed write loses the batch, never half a line.
    std::size_t done = 0;
    while (done < batch.size()) {
      const ssize_t n = ::write(fd_, batch.data() + done, batch.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        spdlog::warn("gateway: access log write failed: {}", std::strerror(errno));
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    batch.clear();
    if (last) return;
    lock.lock();
  }
}

std::string format_access_record(const AccessRecord& r) {
  nlohmann::json line = {
      {"requestId", r.request_id},
      {"ip", r.source_ip},
      {"requestTime", format_clf_time(r.time_ms)},
      {"requestTimeEpoch", r.time_ms},
      {"httpMethod", r.method},
      {"path", r.path},
      {"protocol", r.protocol},
      {"routeKey", r.route_key.empty() ? "-" : r.route_key},
      {"status", r.status},
      {"responseLength", r.response_length},
      {"responseLatency", r.latency_ms},
      {"userAgent", r.user_agent},
  };
  if (!r.function.empty()) line["functionName"] = r.function;
  if (r.integration_latency_ms >= 0) line["integrationLatency"] = r.integration_latency_ms;
  if (!r.error.empty()) line["error"] = r.error;
  if (!r.api_key_id.empty()) line["apiKeyId"] = r.api_key_id;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace nimbus::gateway
