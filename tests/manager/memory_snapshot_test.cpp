#include "unimem/manager/memory_snapshot.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem::test {
namespace {

const StackSnapshot& pooled_stack(const MemorySnapshot& s, DeviceId device) {
  for (const StackSnapshot& stack : s.stacks) {
    if (stack.pool.device == device && stack.name == "pooled") return stack;
  }
  throw InvalidArgument("no pooled stack for " + to_string(device));
}

std::filesystem::path temporary_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         (name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".json");
}

TEST(MemorySnapshot, ShowsEveryStackWithTagsAndPressure) {
  MemoryManager manager(manager_options(whole_device_config()
                                            .with_tracking(true)
                                            .with_pool_growth(8 * MiB, 2.0, 0)
                                            .with_large_pool(LargePoolKind::Coalescing),
                                        {"sim:64MiB"}));
  BufferConfig on_sim;
  on_sim.device = kSim0;
  manager.named().create<std::byte>("weights", 2 * MiB, on_sim);
  const MemorySnapshot s = manager.snapshot();
  const StackSnapshot& sim = pooled_stack(s, kSim0);
  EXPECT_EQ(sim.limit_bytes, 64 * MiB);
  EXPECT_EQ(sim.pressure, PressureLevel::Low);
  EXPECT_EQ(sim.stats.in_use_bytes, 2 * MiB);
  ASSERT_EQ(sim.pool.segments.size(), 1U);
  const SegmentSnapshot& segment = sim.pool.segments[0];
  EXPECT_EQ(segment.size, 8 * MiB);
  ASSERT_EQ(segment.ranges.size(), 2U);
  EXPECT_TRUE(segment.ranges[0].allocated);
  EXPECT_EQ(segment.ranges[0].tag, "weights");
  EXPECT_NE(segment.ranges[0].allocation_id, 0U);
  EXPECT_FALSE(segment.ranges[1].allocated);
  EXPECT_EQ(segment.ranges[1].size, 6 * MiB);
  EXPECT_FALSE(s.failed_request.has_value());

  const nlohmann::json j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j.at("schema"), "unimem.snapshot");
  EXPECT_EQ(j.at("schema_version"), kSnapshotSchemaVersion);
  EXPECT_TRUE(j.at("failed_request").is_null());
  bool found = false;
  for (const nlohmann::json& stack : j.at("stacks")) {
    for (const char* key :
         {"stack", "device", "kind", "limit_bytes", "pressure", "stats", "usage", "segments"})
      EXPECT_TRUE(stack.contains(key)) << key;
    if (stack.at("device").at("name") == "sim:0") {
      found = true;
      EXPECT_EQ(stack.at("pressure"), "low");
      EXPECT_EQ(stack.at("segments").at(0).at("ranges").at(0).at("tag"), "weights");
    }
  }
  EXPECT_TRUE(found);
  manager.named().free("weights");
}

TEST(MemorySnapshot, OutOfMemoryWritesTheSnapshotAndNamesIt) {
  const std::filesystem::path path = temporary_path("unimem_oom_snapshot");
  std::filesystem::remove(path);
  MemoryManager manager(manager_options(whole_device_config()
                                            .with_cpu_fallback(false)
                                            .with_pool_growth(64 * MiB, 2.0, 0)
                                            .with_large_pool(LargePoolKind::Coalescing)
                                            .with_oom_snapshot(path.string()),
                                        {"sim:64MiB"}));
  const std::vector<Buffer<std::byte>> pieces = test::shatter_pool(manager, kSim0);
  try {
    (void)manager.allocate<std::byte>(16 * MiB, AllocationMode::Pooled, kSim0);
    FAIL() << "a 16 MiB range was found among 8 MiB holes";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("snapshot written to " + path.string()), std::string::npos)
        << e.what();
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const nlohmann::json j = nlohmann::json::parse(in);
  const nlohmann::json& failed = j.at("failed_request");
  EXPECT_EQ(failed.at("bytes"), 16 * MiB);
  EXPECT_EQ(failed.at("device").at("name"), "sim:0");
  EXPECT_EQ(failed.at("stack"), "pooled");
  for (const nlohmann::json& stack : j.at("stacks")) {
    if (stack.at("device").at("name") != "sim:0") continue;
    EXPECT_EQ(stack.at("usage").at("largest_free_range"), 8 * MiB);
    ASSERT_EQ(stack.at("segments").size(), 1U);
    EXPECT_EQ(stack.at("segments").at(0).at("ranges").size(), 8U);
  }
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  std::filesystem::remove(path);
}

TEST(MemorySnapshot, AnUnwritableSnapshotIsNamedInTheOutOfMemory) {
  MemoryManager manager(manager_options(
      whole_device_config().with_cpu_fallback(false).with_oom_snapshot("/nonexistent/dir/oom.json"),
      {"sim:16MiB"}));
  const std::string what = message_of<OutOfMemory>(
      [&] { (void)manager.allocate<std::byte>(64 * MiB, AllocationMode::Pooled, kSim0); });
  EXPECT_NE(what.find("no snapshot written: write_snapshot: cannot write '/nonexistent/dir/oom.json'"),
            std::string::npos)
      << what;
}

TEST(MemorySnapshot, ConfigKeyAndValidation) {
  EXPECT_EQ(MemoryConfig::parse("oom_snapshot=/tmp/x.json").oom_snapshot_path, "/tmp/x.json");
  EXPECT_THROW((void)MemoryConfig::parse("oom_snapshot="), InvalidArgument);
  EXPECT_THROW((void)MemoryConfig::defaults().with_oom_snapshot(""), InvalidArgument);
  EXPECT_THROW(write_snapshot(MemorySnapshot{}, ""), InvalidArgument);
}

}  // namespace
}  // namespace unimem::test
