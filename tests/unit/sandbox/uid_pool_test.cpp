#include "sandbox/uid_pool.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace nimbus::sandbox {
namespace {

std::filesystem::path lock_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("nimbus-uids-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(UidPool, LeasesDistinctUidsUntilReleased) {
  const auto dir = lock_dir();
  UidPool pool(dir, 5000, 3);
  std::set<unsigned> got;
  for (int i = 0; i < 3; ++i) {
    auto uid = pool.acquire();
    ASSERT_TRUE(uid.ok());
    got.insert(*uid);
  }
  EXPECT_EQ(got, (std::set<unsigned>{5000, 5001, 5002}));
  auto none = pool.acquire();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, base::ErrorCode::kTooManyRequests);
  pool.release(5001);
  EXPECT_EQ(*pool.acquire(), 5001u);
  std::filesystem::remove_all(dir);
}

TEST(UidPool, AnotherProcessNeverGetsALeasedUid) {
  const auto dir = lock_dir();
  UidPool pool(dir, 6000, 2);
  ASSERT_EQ(*pool.acquire(), 6000u);
  // A second daemon (another process, its own pool over the same directory).
  const pid_t child = ::fork();
  if (child == 0) {
    UidPool other(dir, 6000, 2);
    auto uid = other.acquire();
    ::_exit(uid.ok() && *uid == 6001 && !other.acquire().ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nimbus::sandbox
