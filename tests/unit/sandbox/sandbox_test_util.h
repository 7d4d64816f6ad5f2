#pragma once
// Helpers for the sandbox tests: temporary directories, output pipes,
// bounded waits for exit events, and a scan of /proc for a uid's processes.

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "sandbox/launcher.h"

namespace nimbus::sandbox::test_support {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A directory under /tmp (mode 0755, as code directories are), removed at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nimbus-sandbox-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    ::chmod((path_ / name).c_str(), 0644);
  }

 private:
  fs::path path_;
};

// A pipe whose write end goes to an instance; the test reads the rest.
class OutputPipe {
 public:
  OutputPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read_ = fds[0];
      write_ = fds[1];
    }
  }
  ~OutputPipe() {
    close_write();
    if (read_ >= 0) ::close(read_);
  }
  OutputPipe(const OutputPipe&) = delete;
  OutputPipe& operator=(const OutputPipe&) = delete;
  [[nodiscard]] int write_fd() const { return write_; }
  // Reads from `fd` (which this pipe now owns) instead of its own read end.
  void adopt_read_end(int fd) {
    if (read_ >= 0) ::close(read_);
    read_ = fd;
  }
  void close_write() {
    if (write_ >= 0) ::close(write_);
    write_ = -1;
  }
  // Everything until EOF (every holder of the write end is gone) or the deadline.
  std::string read_all(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    close_write();
    std::string out;
    const auto deadline = Clock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{read_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::read(read_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  // Reads until `marker` appears (or the deadline); returns what was read.
  std::string read_until(const std::string& marker, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = Clock::now() + limit;
    while (buffer_.find(marker) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{read_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::read(read_, buf, sizeof buf);
      if (n <= 0) break;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
    return buffer_;
  }

 private:
  int read_ = -1;
  int write_ = -1;
  std::string buffer_;
};

// Exit events of one launcher, kept by pid until a test asks for them.
class ExitEvents {
 public:
  explicit ExitEvents(Launcher& launcher) : launcher_(launcher) {}
  std::optional<ExitEvent> wait(int pid, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      while (auto event = launcher_.read_exit_event()) seen_[event->pid] = *event;
      if (const auto it = seen_.find(pid); it != seen_.end()) {
        ExitEvent e = it->second;
        seen_.erase(it);
        return e;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{launcher_.exit_event_fd(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    }
  }

 private:
  Launcher& launcher_;
  std::map<int, ExitEvent> seen_;
};

// Live (non-zombie) processes whose real uid is `uid`.
inline std::vector<int> processes_of_uid(unsigned uid) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "status");
    std::string line;
    bool zombie = false;
    std::optional<unsigned> real;
    while (std::getline(in, line)) {
      if (line.rfind("State:", 0) == 0) zombie = line.find('Z') != std::string::npos;
      if (line.rfind("Uid:", 0) == 0) {
        std::istringstream fields(line.substr(4));
        unsigned r;
        if (fields >> r) real = r;
      }
    }
    if (real && *real == uid && !zombie) pids.push_back(std::stoi(name));
  }
  return pids;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace nimbus::sandbox::test_support
