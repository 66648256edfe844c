#include "unimem/core/aligned_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <utility>

#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"

namespace unimem {
namespace {

TEST(AlignedBuffer, EmptyAndSized) {
  const AlignedBuffer empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data(), nullptr);
  const AlignedBuffer zero(0);
  EXPECT_TRUE(zero.empty());
  const AlignedBuffer b(100);
  EXPECT_EQ(b.size(), 100U);
  EXPECT_GE(b.capacity(), 100U);
  EXPECT_TRUE(is_aligned(b.data(), 64));
}

TEST(AlignedBuffer, GrowPreservesContentsAndAlignment) {
  AlignedBuffer b(10);
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = static_cast<std::byte>(i + 1);
  for (std::size_t target : {11U, 100U, 4097U, 1U << 20U}) {
    b.grow(target);
    ASSERT_EQ(b.size(), target);
    ASSERT_TRUE(is_aligned(b.data(), 64));
    for (std::size_t i = 0; i < 10; ++i) ASSERT_EQ(b.data()[i], static_cast<std::byte>(i + 1)) << "at " << i;
  }
  const std::size_t capacity = b.capacity();
  b.grow(5);  // never shrinks
  EXPECT_EQ(b.size(), 1U << 20U);
  EXPECT_EQ(b.capacity(), capacity);
}

TEST(AlignedBuffer, GrowthIsAmortized) {
  AlignedBuffer b(64);
  const std::byte* first = b.data();
  int reallocations = 0;
  for (std::size_t n = 65; n < 100000; ++n) {
    const std::byte* before = b.data();
    b.grow(n);
    if (b.data() != before) ++reallocations;
  }
  EXPECT_NE(b.data(), first);
  EXPECT_LT(reallocations, 40);
}

TEST(AlignedBuffer, OverflowIsInvalidArgument) {
  EXPECT_THROW(AlignedBuffer(std::numeric_limits<std::size_t>::max()), InvalidArgument);
  AlignedBuffer b(8);
  EXPECT_THROW(b.grow(std::numeric_limits<std::size_t>::max() - 10), InvalidArgument);
  EXPECT_EQ(b.size(), 8U);  // unchanged after the failure
}

TEST(AlignedBuffer, MoveTransfersOwnership) {
  AlignedBuffer a(32);
  std::memset(a.data(), 7, 32);
  AlignedBuffer b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.size(), 32U);
  EXPECT_EQ(b.data()[31], std::byte{7});
  AlignedBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.size(), 32U);
  EXPECT_EQ(c.data()[0], std::byte{7});
}

}  // namespace
}  // namespace unimem
