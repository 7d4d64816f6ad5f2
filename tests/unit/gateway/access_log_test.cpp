#include "gateway/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace nimbus::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nimbus-access-log-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = dir_ / "logs" / "gateway-access.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  [[nodiscard]] std::vector<nlohmann::json> lines() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static AccessRecord record(int i) {
    AccessRecord r;
    r.request_id = "req-" + std::to_string(i);
    r.method = "GET";
    r.path = "/p/" + std::to_string(i);
    r.status = 200;
    return r;
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(AccessLogTest, LinesReachTheFileInTheBackgroundInOrder) {
  AccessLog log;
  ASSERT_TRUE(log.open(path_).ok());
  for (int i = 0; i < 3; ++i) log.write(record(i));
  // Not closed: the flusher writes them within its interval.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (lines().size() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  const auto got = lines();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i]["requestId"], "req-" + std::to_string(i));
}

TEST_F(AccessLogTest, ClosingWritesWhatIsBufferedAndAppends) {
  {
    AccessLog log;
    ASSERT_TRUE(log.open(path_).ok());
    log.write(record(0));
  }
  {
    AccessLog log;
    ASSERT_TRUE(log.open(path_).ok());
    EXPECT_FALSE(log.open(path_).ok());  // once only
    for (int i = 1; i < 2000; ++i) log.write(record(i));  // past kFlushBytes: flushed early too
  }
  const auto got = lines();
  ASSERT_EQ(got.size(), 2000u);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(got[i]["path"], "/p/" + std::to_string(i));
}

TEST(AccessRecordFormat, EveryFieldAsJsonEvenFromHostileText) {
  AccessRecord r;
  r.request_id = "abc=";
  r.source_ip = "127.0.0.1";
  r.time_ms = 1795430774925;
  r.method = "GET";
  r.path = "/a\"b\\c";
  r.protocol = "HTTP/1.1";
  r.status = 502;
  r.response_length = 35;
  r.latency_ms = 1.25;
  r.integration_latency_ms = 0.5;
  r.function = "fn";
  r.user_agent = std::string("ua\x01\n\xff\xfe", 6);  // control bytes and invalid UTF-8
  r.error = "function error: \u00e9";
  r.api_key_id = "k1";
  const auto j = nlohmann::json::parse(format_access_record(r));
  EXPECT_EQ(j["requestId"], "abc=");
  EXPECT_EQ(j["ip"], "127.0.0.1");
  EXPECT_EQ(j["requestTime"], "23/Nov/2026:10:46:14 +0000");
  EXPECT_EQ(j["requestTimeEpoch"], 1795430774925);
  EXPECT_EQ(j["path"], "/a\"b\\c");
  EXPECT_EQ(j["routeKey"], "-");
  EXPECT_EQ(j["status"], 502);
  EXPECT_EQ(j["responseLength"], 35);
  EXPECT_DOUBLE_EQ(j["responseLatency"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(j["integrationLatency"].get<double>(), 0.5);
  EXPECT_EQ(j["functionName"], "fn");
  EXPECT_EQ(j["userAgent"], "ua\x01\n\xef\xbf\xbd\xef\xbf\xbd");  // each bad byte becomes U+FFFD
  EXPECT_EQ(j["error"], "function error: \u00e9");
  EXPECT_EQ(j["apiKeyId"], "k1");
  EXPECT_EQ(j.size(), 16u);

  AccessRecord bare;  // not invoked, no key, no error
  bare.status = 404;
  const auto b = nlohmann::json::parse(format_access_record(bare));
  EXPECT_FALSE(b.contains("integrationLatency"));
  EXPECT_FALSE(b.contains("functionName"));
  EXPECT_FALSE(b.contains("error"));
  EXPECT_FALSE(b.contains("apiKeyId"));
  EXPECT_EQ(b["status"], 404);
}

TEST_F(AccessLogTest, WithoutOpenWritingDoesNothing) {
  AccessLog log;
  log.write(record(0));
  EXPECT_FALSE(fs::exists(path_));
}

}  // namespace
}  // namespace nimbus::gateway
