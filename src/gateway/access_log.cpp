#include "gateway/access_log.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gateway/event.h"

namespace nimbus::gateway {

AccessLog::~AccessLog() {
  std::lock_guard lock(mu_);
  if (file_ != nullptr) std::fclose(file_);
}

base::Status AccessLog::open(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) {
    return base::make_error(base::ErrorCode::kService,
                            fmt::format("open gateway access log {}: {}", path.string(), std::strerror(errno)));
  }
  std::lock_guard lock(mu_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = f;
  return base::Ok{};
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

void AccessLog::write(const AccessRecord& record) {
  std::string line = format_access_record(record);
  line.push_back('\n');
  std::lock_guard lock(mu_);
  if (file_ == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);  // one write(2) per line: readable at once, no torn lines
}

}  // namespace nimbus::gateway
