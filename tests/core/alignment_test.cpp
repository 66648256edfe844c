#include "unimem/core/alignment.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace unimem {
namespace {

TEST(Alignment, PowerOfTwo) {
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_TRUE(is_power_of_two(1));
  EXPECT_TRUE(is_power_of_two(256));
  EXPECT_FALSE(is_power_of_two(384));
  EXPECT_THROW((void)align_up(1, 0), InvalidArgument);
  EXPECT_THROW((void)align_up(1, 48), InvalidArgument);
  EXPECT_NO_THROW((void)align_up(1, 4096));
}

TEST(Alignment, UpAndDown) {
  EXPECT_EQ(align_up(0, 256), 0U);
  EXPECT_EQ(align_up(1, 256), 256U);
  EXPECT_EQ(align_up(256, 256), 256U);
  EXPECT_EQ(align_up(257, 64), 320U);
  EXPECT_EQ(align_down(257, 64), 256U);
  EXPECT_TRUE(is_aligned(std::size_t{512}, 256));
  EXPECT_FALSE(is_aligned(std::size_t{520}, 256));
}

TEST(Alignment, UpOverflowsLoudly) {
  EXPECT_THROW((void)align_up(std::numeric_limits<std::size_t>::max() - 3, 256), InvalidArgument);
  EXPECT_THROW((void)align_up(10, 3), InvalidArgument);
}

}  // namespace
}  // namespace unimem
