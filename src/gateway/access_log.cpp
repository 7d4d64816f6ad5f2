#include "gateway/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <string_view>

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

namespace {
// Appends `"name":` and `text` as a JSON string. Printable ASCII (every
// field, nearly always) is copied as it is; anything else goes through the
// JSON library, which escapes and replaces invalid UTF-8.
void append_string(std::string& out, std::string_view name, std::string_view text) {
  out += '"';
  out += name;
  out += "\":";
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += ',';
}

template <typename Number>
void append_number(std::string& out, std::string_view name, Number value) {
  fmt::format_to(std::back_inserter(out), "\"{}\":{},", name, value);
}
}  // namespace

std::string format_access_record(const AccessRecord& r) {
  // The fields in the order of API Gateway's documented access-log example.
  std::string out = "{";
  out.reserve(320);
  append_string(out, "requestId", r.request_id);
  append_string(out, "ip", r.source_ip);
  append_string(out, "requestTime", format_clf_time(r.time_ms));
  append_number(out, "requestTimeEpoch", r.time_ms);
  append_string(out, "httpMethod", r.method);
  append_string(out, "path", r.path);
  append_string(out, "protocol", r.protocol);
  append_string(out, "routeKey", r.route_key.empty() ? "-" : r.route_key);
  append_number(out, "status", r.status);
  append_number(out, "responseLength", r.response_length);
  append_number(out, "responseLatency", r.latency_ms);
  if (r.integration_latency_ms >= 0) append_number(out, "integrationLatency", r.integration_latency_ms);
  if (!r.function.empty()) append_string(out, "functionName", r.function);
  append_string(out, "userAgent", r.user_agent);
  if (!r.error.empty()) append_string(out, "error", r.error);
  if (!r.api_key_id.empty()) append_string(out, "apiKeyId", r.api_key_id);
  out.back() = '}';  // the last field's comma
  return out;
}

}  // namespace nimbus::gateway
