#include "unimem/report_command.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/report_page.hpp"

namespace unimem::cli {
namespace {

std::filesystem::path temporary_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         (name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".json");
}

// An OOM snapshot written by the manager on a simulated device, read back by the report.
TEST(ReportCommand, OomSnapshotRoundTrip) {
  const std::filesystem::path path = temporary_path("unimem_report_oom");
  std::filesystem::remove(path);
  MemoryManager manager(test::manager_options(test::whole_device_config()
                                                  .with_cpu_fallback(false)
                                                  .with_pool_growth(64 * MiB, 2.0, 0)
                                                  .with_large_pool(LargePoolKind::Coalescing)
                                                  .with_oom_snapshot(path.string()),
                                              {"sim:64MiB"}));
  const std::vector<Buffer<std::byte>> pieces = test::shatter_pool(manager, test::kSim0);
  EXPECT_THROW((void)manager.allocate<std::byte>(16 * MiB, AllocationMode::Pooled, test::kSim0), OutOfMemory);
  ASSERT_TRUE(std::filesystem::exists(path));

  const DeviceSelection selection({"sim:80GiB"});
  const nlohmann::json data = report_data({path.string()}, selection.front(), {});
  EXPECT_EQ(data.at("kind"), "snapshots");
  ASSERT_EQ(data.at("failed_requests").size(), 1U);
  EXPECT_EQ(data.at("failed_requests").at(0).at("bytes"), 16 * MiB);
  bool found = false;
  for (const nlohmann::json& stack : data.at("stacks")) {
    if (stack.at("pool").at("device").at("name") != "sim:0" || stack.at("pool").at("stack") != "pooled")
      continue;
    found = true;
    ASSERT_EQ(stack.at("pool").at("segments").size(), 1U);
    EXPECT_EQ(stack.at("pool").at("segments").at(0).at("ranges").size(), 8U);
    EXPECT_EQ(stack.at("summary").at("largest_free_range_at_map"), 8 * MiB);
    ASSERT_EQ(stack.at("largest").size(), 4U);
    EXPECT_EQ(stack.at("largest").at(0).at("size"), 8 * MiB);
  }
  EXPECT_TRUE(found);

  const std::string page = report_page(data);
  EXPECT_NE(page.find("Content-Security-Policy"), std::string::npos);
  EXPECT_NE(page.find("\"kind\":\"snapshots\""), std::string::npos);
  std::filesystem::remove(path);
}

TEST(ReportCommand, PageEscapesTheEndOfItsScript) {
  const std::string page = report_page({{"sources", {"</script><b>x"}}});
  EXPECT_EQ(page.find("</script><b>"), std::string::npos);
  EXPECT_NE(page.find("<\\/script><b>x"), std::string::npos);
}

}  // namespace
}  // namespace unimem::cli
