// LogStore's bounds: memory is bounded in bytes per function and over all
// functions, a noisy function only pushes out its own lines, and what cannot
// reach the file in time is counted and marked there.

#include "telemetry/logs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace nimbus::telemetry {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(LogStoreTest, HugeLinesKeepMemoryWithinTheFunctionsBound) {
  LogStoreConfig config;
  config.bytes_per_function = 4u << 20;
  LogStore logs(config);
  logs.append("quiet", 1, "hello\n");
  const std::string line(3u << 20, 'x');
  for (int i = 0; i < 500; ++i) logs.append("noisy", 2 + i, line + "\n");
  EXPECT_LE(logs.bytes_in_memory(), (4u << 20) + 5);
  // The newest line is kept, and the quiet function's line is untouched.
  const auto noisy = logs.read("noisy", 0, 0, 1000);
  ASSERT_EQ(noisy.size(), 1u);
  EXPECT_EQ(noisy.back().seq, 500u);
  const auto quiet = logs.read("quiet", 0, 0, 10);
  ASSERT_EQ(quiet.size(), 1u);
  EXPECT_EQ(quiet[0].text, "hello");
}

TEST(LogStoreTest, TheTotalBoundOnlyEvictsTheWritersOwnLines) {
  LogStoreConfig config;
  config.bytes_per_function = 1000;
  config.bytes_total = 1500;
  LogStore logs(config);
  for (int i = 0; i < 9; ++i) logs.append("first", i, std::string(100, 'a') + "\n");  // 900 bytes
  for (int i = 0; i < 50; ++i) logs.append("second", i, std::string(100, 'b') + "\n");
  EXPECT_LE(logs.bytes_in_memory(), 1500u);
  EXPECT_EQ(logs.read("first", 0, 0, 100).size(), 9u);
  EXPECT_EQ(logs.read("second", 0, 0, 100).size(), 6u);  // what the total leaves it
  logs.remove("first");
  EXPECT_EQ(logs.bytes_in_memory(), 600u);
}

TEST(LogStoreTest, OutputFasterThanTheFlusherIsDroppedCountedAndMarked) {
  const auto dir = std::filesystem::temp_directory_path() / ("nimbus-logs-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  LogStoreConfig config;
  config.dir = dir;
  config.pending_bytes_per_function = 1000;
  {
    LogStore logs(config);  // not started: nothing is flushed until stop()
    for (int i = 0; i < 20; ++i) logs.append("f", 1000 + i, std::string(99, 'z') + "\n");
    EXPECT_EQ(logs.bytes_not_written(), 1300u);  // 7 entries of 28 + 1 + 99 + 1 bytes fit; 13 lines of 100 did not
    logs.start();
    logs.stop();
  }
  const std::string text = read_file(dir / "f.log");
  EXPECT_NE(text.find("[nimbus: 1300 bytes of log not written"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nimbus::telemetry
