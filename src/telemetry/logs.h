#pragma once
// LogStore: every function's log (the START/END/REPORT lines nimbus writes and
// the function's own output), kept as numbered lines in an in-memory ring per
// function, bounded in lines and in bytes (per function and over all), and
// appended to <data-dir>/logs/<function>.log by a background flusher, so the
// invoke path never writes to disk. What a function prints can only push its
// own lines out of memory, never another function's.
//
// Threads: append()/read() from any thread (one mutex, short sections);
// the flusher thread is started by start() and stopped by stop().

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nimbus::telemetry {

struct LogLine {
  std::uint64_t seq = 0;      // increasing per function, never reused while running
  std::int64_t time_ms = 0;
  std::string text;           // one line, no trailing newline
};

struct LogStoreConfig {
  std::filesystem::path dir;                      // empty: memory only
  std::size_t lines_per_function = 10000;         // ring size in memory
  std::size_t bytes_per_function = 4u << 20;      // text kept in memory per function
  std::size_t bytes_total = 256u << 20;           // text kept in memory over all functions
  std::size_t pending_bytes_per_function = 8u << 20;  // written to the file at the next flush; more is dropped
  std::uint64_t max_file_bytes = 8ull << 20;      // then rotate to .1
};

class LogStore {
 public:
  explicit LogStore(LogStoreConfig config);
  ~LogStore();

  void start();
  void stop();  // flushes what is pending

  // Appends `text` (split on '\n'; an empty last piece is dropped).
  void append(const std::string& function, std::int64_t time_ms, std::string_view text);
  // Lines with seq > after_seq and time >= since_ms, at most `limit`.
  [[nodiscard]] std::vector<LogLine> read(const std::string& function, std::uint64_t after_seq,
                                          std::int64_t since_ms, std::size_t limit) const;
  // Forgets a function's lines (on delete); its file is removed.
  void remove(const std::string& function);
  // Text held in memory now (the rings), and text that never reached the
  // file because a function wrote faster than the flusher (a marker line in
  // the file says where).
  [[nodiscard]] std::size_t bytes_in_memory() const;
  [[nodiscard]] std::uint64_t bytes_not_written() const;

 private:
  struct Stream {
    std::deque<LogLine> lines;
    std::size_t bytes = 0;  // text of `lines`
    std::uint64_t next_seq = 1;
    std::string pending;    // text not yet written to the file
    std::uint64_t pending_dropped = 0;  // bytes left out of `pending` since the last flush
    std::int64_t pending_dropped_at_ms = 0;  // the time of the last of them
  };
  // Drops the oldest lines of `s` while it is over its bounds (and the store over its total).
  void trim(Stream& s);
  void flush_loop();
  void flush_once();

  LogStoreConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Stream> streams_;  // GUARDED_BY(mu_)
  std::size_t total_bytes_ = 0;            // GUARDED_BY(mu_): text of every ring
  std::uint64_t not_written_ = 0;          // GUARDED_BY(mu_)
  bool stopping_ = false;                  // GUARDED_BY(mu_)
  std::thread flusher_;
};

}  // namespace nimbus::telemetry
