#include "telemetry/logs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"

namespace nimbus::telemetry {

LogStore::LogStore(LogStoreConfig config) : config_(std::move(config)) {}

LogStore::~LogStore() { stop(); }

void LogStore::start() {
  if (config_.dir.empty() || flusher_.joinable()) return;
  std::error_code ec;
  std::filesystem::create_directories(config_.dir, ec);
  if (ec) spdlog::warn("logs: create {}: {}", config_.dir.string(), ec.message());
  flusher_ = std::thread([this] { flush_loop(); });
}

void LogStore::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

void LogStore::append(const std::string& function, std::int64_t time_ms, std::string_view text) {
  std::lock_guard lock(mu_);
  Stream& s = streams_[function];
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!config_.dir.empty()) {
      const std::string time = base::format_lambda_time(time_ms);
      if (s.pending.size() + time.size() + line.size() + 2 <= config_.pending_bytes_per_function) {
        s.pending += time;
        s.pending += ' ';
        s.pending += line;
        s.pending += '\n';
      } else {
        s.pending_dropped += line.size() + 1;
        s.pending_dropped_at_ms = time_ms;
        not_written_ += line.size() + 1;
      }
    }
    s.bytes += line.size();
    total_bytes_ += line.size();
    s.lines.push_back(LogLine{s.next_seq++, time_ms, std::move(line)});
    trim(s);
    start = end + 1;
  }
}

void LogStore::trim(Stream& s) {
  const auto over = [&] {
    return s.lines.size() > config_.lines_per_function || s.bytes > config_.bytes_per_function ||
           total_bytes_ > config_.bytes_total;
  };
  while (!s.lines.empty() && over()) {
    s.bytes -= s.lines.front().text.size();
    total_bytes_ -= s.lines.front().text.size();
    s.lines.pop_front();
  }
}

std::size_t LogStore::bytes_in_memory() const {
  std::lock_guard lock(mu_);
  return total_bytes_;
}

std::uint64_t LogStore::bytes_not_written() const {
  std::lock_guard lock(mu_);
  return not_written_;
}

std::vector<LogLine> LogStore::read(const std::string& function, std::uint64_t after_seq, std::int64_t since_ms,
                                    std::size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<LogLine> out;
  const auto it = streams_.find(function);
  if (it == streams_.end()) return out;
  for (const LogLine& line : it->second.lines) {
    if (line.seq <= after_seq || line.time_ms < since_ms) continue;
    out.push_back(line);
    if (out.size() >= limit) break;
  }
  return out;
}

void LogStore::remove(const std::string& function) {
  {
    std::lock_guard lock(mu_);
    if (const auto it = streams_.find(function); it != streams_.end()) {
      total_bytes_ -= it->second.bytes;
      streams_.erase(it);
    }
  }
  if (!config_.dir.empty()) {
    std::error_code ec;
    std::filesystem::remove(config_.dir / (function + ".log"), ec);
    std::filesystem::remove(config_.dir / (function + ".log.1"), ec);
  }
}

void LogStore::flush_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    lock.unlock();
    flush_once();
    lock.lock();
  }
  lock.unlock();
  flush_once();
}

void LogStore::flush_once() {
  std::vector<std::pair<std::string, std::string>> batch;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, s] : streams_) {
      if (s.pending_dropped > 0) {
        s.pending += fmt::format("{} [nimbus: {} bytes of log not written: the function wrote faster than the "
                                 "log is flushed]\n",
                                 base::format_lambda_time(s.pending_dropped_at_ms), s.pending_dropped);
        s.pending_dropped = 0;
      }
      if (!s.pending.empty()) batch.emplace_back(name, std::move(s.pending));
      s.pending.clear();
    }
  }
  for (const auto& [name, text] : batch) {
    const auto path = config_.dir / (name + ".log");
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) > config_.max_file_bytes && !ec) {
      std::filesystem::rename(path, config_.dir / (name + ".log.1"), ec);
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      spdlog::warn("logs: open {}: {}", path.string(), std::strerror(errno));
      continue;
    }
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
}

}  // namespace nimbus::telemetry
