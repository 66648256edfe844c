#include "unimem/core/misuse.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace unimem {
namespace {

TEST(Misuse, ReportsGoToTheInstalledHandlerAndAreCounted) {
  std::vector<std::string> seen;
  const std::uint64_t before = misuse_count();
  {
    const ScopedMisuseHandler capture([&](std::string_view m) { seen.emplace_back(m); });
    report_misuse("double free of segment #7");
  }
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0], "double free of segment #7");
  EXPECT_EQ(misuse_count(), before + 1);
}

TEST(Misuse, AThrowingHandlerDoesNotEscape) {
  const ScopedMisuseHandler throwing([](std::string_view) { throw std::runtime_error("handler failed"); });
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(report_misuse("leak"));
  EXPECT_NE(testing::internal::GetCapturedStderr().find("leak"), std::string::npos);
}

}  // namespace
}  // namespace unimem
