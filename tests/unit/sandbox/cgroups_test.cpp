// Finding the launcher's own cgroups from /proc files, and the CPU arithmetic;
// pure functions, runs as any user.

#include "sandbox/detail/cgroups.h"

#include <gtest/gtest.h>

#include "sandbox/detail/protocol.h"

namespace nimbus::sandbox::detail {
namespace {

constexpr std::string_view kHybridMountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr std::string_view kHybridSelf =
    "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e13e\n2:cpuacct:/\n1:cpu:/\n0::/\n";

TEST(CgroupLayoutTest, FindsNestedV1Groups) {
  const auto mounts = parse_cgroup_mounts(kHybridMountinfo);
  ASSERT_EQ(mounts.size(), 6u);
  const OwnGroups own = locate_own_groups(mounts, kHybridSelf);
  ASSERT_TRUE(own.v1_memory);
  EXPECT_EQ(*own.v1_memory, "/sys/fs/cgroup/memory/process_api/e13e");
  ASSERT_TRUE(own.v1_cpu);
  EXPECT_EQ(*own.v1_cpu, "/sys/fs/cgroup/cpu/");
  ASSERT_TRUE(own.v1_pids);
  EXPECT_EQ(*own.v1_pids, "/sys/fs/cgroup/pids/");
  ASSERT_TRUE(own.v2);
  EXPECT_EQ(*own.v2, "/sys/fs/cgroup/unified/");
}

TEST(CgroupLayoutTest, FindsCoMountedCpuAndCpuacct) {
  const auto mounts = parse_cgroup_mounts(
      "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  const OwnGroups own = locate_own_groups(mounts, "3:cpu,cpuacct:/a/b\n2:memory:/a/b\n");
  ASSERT_TRUE(own.v1_cpu);
  EXPECT_EQ(*own.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct/a/b");
  ASSERT_TRUE(own.v1_memory);
  EXPECT_FALSE(own.v1_pids);
  EXPECT_FALSE(own.v2);
}

TEST(CgroupLayoutTest, FindsPureV2Group) {
  const auto mounts = parse_cgroup_mounts(
      "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n");
  const OwnGroups own = locate_own_groups(mounts, "0::/system.slice/nimbus.service\n");
  EXPECT_FALSE(own.v1_memory);
  ASSERT_TRUE(own.v2);
  EXPECT_EQ(*own.v2, "/sys/fs/cgroup/system.slice/nimbus.service");
}

TEST(CgroupLayoutTest, MapsPathsUnderABindMountedSubtree) {
  // A container that sees only its own subtree, mounted at /sys/fs/cgroup/memory.
  const auto mounts = parse_cgroup_mounts(
      "40 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n");
  const OwnGroups own = locate_own_groups(mounts, "4:memory:/docker/abc/inner\n");
  ASSERT_TRUE(own.v1_memory);
  EXPECT_EQ(*own.v1_memory, "/sys/fs/cgroup/memory/inner");
  EXPECT_FALSE(locate_own_groups(mounts, "4:memory:/elsewhere\n").v1_memory);
}

TEST(CgroupLayoutTest, UnescapesMountPoints) {
  const auto mounts = parse_cgroup_mounts("40 30 0:31 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].mount_point, "/mnt/my cgroups");
}

TEST(CgroupLayoutTest, CpuSharesFollowMemoryLikeLambda) {
  EXPECT_EQ(cpu_shares_for(1769ull << 20), 1024u);
  EXPECT_EQ(cpu_shares_for(128ull << 20), 74u);
  EXPECT_EQ(cpu_shares_for(1ull << 20), 2u);
  EXPECT_EQ(cpu_shares_for(10240ull << 20), 5927u);
  EXPECT_EQ(cpu_weight_for_shares(1024), 100u);
  EXPECT_EQ(cpu_weight_for_shares(2), 1u);
  EXPECT_EQ(cpu_weight_for_shares(262144), 10000u);
}

TEST(SpecValidationTest, ChecksIdArgvAndSizes) {
  InstanceSpec spec;
  spec.instance_id = "fn-1";
  spec.argv = {"/bin/true"};
  spec.code_dir = "/tmp";
  EXPECT_TRUE(validate_spec(spec).ok());
  spec.instance_id = "../x";
  EXPECT_FALSE(validate_spec(spec).ok());
  spec.instance_id = std::string(65, 'a');
  EXPECT_FALSE(validate_spec(spec).ok());
  spec.instance_id = "ok";
  spec.env = {"NOEQUALS"};
  EXPECT_FALSE(validate_spec(spec).ok());
  spec.env = {};
  spec.code_dir = "relative";
  EXPECT_FALSE(validate_spec(spec).ok());
  spec.code_dir = "/tmp";
  spec.memory_bytes = 1024;
  EXPECT_FALSE(validate_spec(spec).ok());
}

TEST(ProtocolTest, SpecRoundTripsThroughJson) {
  InstanceSpec spec;
  spec.instance_id = "abc";
  spec.argv = {"/var/runtime/bootstrap", "x y"};
  spec.env = {"A=1"};
  spec.code_dir = "/data/code/1";
  spec.runtime_dir = "/data/runtimes/python";
  spec.memory_bytes = 256ull << 20;
  spec.network = NetworkMode::kNone;
  spec.output_fd = 7;
  spec.inherit_fds = {8, 9};
  auto back = spec_from_json(spec_to_json(spec), {17, 18, 19});
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->argv, spec.argv);
  EXPECT_EQ(back->runtime_dir, spec.runtime_dir);
  EXPECT_EQ(back->memory_bytes, spec.memory_bytes);
  EXPECT_EQ(back->network, NetworkMode::kNone);
  EXPECT_EQ(back->output_fd, 17);
  EXPECT_EQ(back->inherit_fds, (std::vector<int>{18, 19}));
  EXPECT_FALSE(spec_from_json(spec_to_json(spec), {17}).ok());  // descriptors missing
}

}  // namespace
}  // namespace nimbus::sandbox::detail
