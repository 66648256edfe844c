// GranuleBitmap (src/resource/granule_bitmap.hpp) against a plain vector<bool>: every query over spans that
// start and end inside a word, on a word boundary, or reach across many words, on bitmaps made of runs (as
// mapped granules are) and of scattered bits.
#include "resource/granule_bitmap.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <vector>

namespace unimem::test {
namespace {

using detail::GranuleBitmap;

struct Model {
  std::vector<bool> bits;

  [[nodiscard]] std::size_t count(std::size_t first, std::size_t end) const {
    std::size_t n = 0;
    for (std::size_t g = first; g < end; ++g) n += bits[g] ? 1 : 0;
    return n;
  }
  [[nodiscard]] std::size_t first_with(std::size_t first, std::size_t end, bool value) const {
    for (std::size_t g = first; g < end; ++g) {
      if (bits[g] == value) return g;
    }
    return end;
  }
  [[nodiscard]] std::size_t last_with(std::size_t first, std::size_t end, bool value) const {
    for (std::size_t g = end; g-- > first;) {
      if (bits[g] == value) return g;
    }
    return GranuleBitmap::kNone;
  }
};

void expect_same(const GranuleBitmap& bitmap, const Model& model, std::size_t first, std::size_t end) {
  SCOPED_TRACE(testing::Message() << "span [" << first << ", " << end << ") of " << model.bits.size());
  EXPECT_EQ(bitmap.count(first, end), model.count(first, end));
  EXPECT_EQ(bitmap.count_clear(first, end), (end - first) - model.count(first, end));
  EXPECT_EQ(bitmap.first_with(first, end, true), model.first_with(first, end, true));
  EXPECT_EQ(bitmap.first_with(first, end, false), model.first_with(first, end, false));
  EXPECT_EQ(bitmap.last_with(first, end, true), model.last_with(first, end, true));
  EXPECT_EQ(bitmap.last_with(first, end, false), model.last_with(first, end, false));
  if (first < end) {
    EXPECT_EQ(bitmap.all_set(first, end), model.count(first, end) == end - first);
  }
}

TEST(GranuleBitmapTest, QueriesMatchAPlainBitVectorOnRunsAndScatteredBits) {
  std::mt19937_64 random(20261204);
  for (int round = 0; round < 200; ++round) {
    const std::size_t size = 1 + random() % 400;
    GranuleBitmap bitmap;
    bitmap.resize(size);
    Model model{std::vector<bool>(size, false)};
    const bool runs = round % 2 == 0;
    for (int change = 0; change < 20; ++change) {
      const std::size_t first = random() % size;
      const std::size_t count = runs ? 1 + random() % (size - first) : 1;
      const bool value = random() % 3 != 0;
      if (value) {
        bitmap.set(first, count);
      } else {
        bitmap.clear(first, count);
      }
      for (std::size_t g = first; g < first + count; ++g) model.bits[g] = value;
    }
    for (std::size_t g = 0; g < size; ++g) ASSERT_EQ(bitmap.test(g), model.bits[g]) << "granule " << g;
    // Every span around word edges, then random ones.
    for (const std::size_t edge : {std::size_t{0}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                                   std::size_t{127}, std::size_t{128}, size - 1}) {
      for (const std::size_t end : {edge, edge + 1, size}) {
        if (edge <= end && end <= size && edge < size) expect_same(bitmap, model, edge, end);
      }
    }
    for (int query = 0; query < 50; ++query) {
      const std::size_t first = random() % (size + 1);
      const std::size_t end = first + random() % (size - first + 1);
      expect_same(bitmap, model, first, end);
    }
  }
}

// all_set answers from the length of the wholly set prefix when a span lies inside it: the prefix must
// shrink at a clear below it and grow over every set bit once a gap at its end is filled.
TEST(GranuleBitmapTest, AllSetFollowsTheSetPrefixThroughSetsAndClears) {
  GranuleBitmap bitmap;
  bitmap.resize(300);
  bitmap.set(0, 10);
  bitmap.set(12, 150);  // a gap at 10 and 11
  EXPECT_TRUE(bitmap.all_set(0, 10));
  EXPECT_FALSE(bitmap.all_set(0, 11));
  EXPECT_TRUE(bitmap.all_set(12, 162));
  bitmap.set(10, 2);  // fills the gap: the prefix reaches over the run after it
  EXPECT_TRUE(bitmap.all_set(0, 162));
  EXPECT_FALSE(bitmap.all_set(0, 163));
  bitmap.clear(70, 1);  // a hole inside the prefix
  EXPECT_TRUE(bitmap.all_set(0, 70));
  EXPECT_FALSE(bitmap.all_set(0, 71));
  EXPECT_FALSE(bitmap.all_set(69, 140));
  EXPECT_TRUE(bitmap.all_set(71, 162));
  bitmap.set(70, 1);
  EXPECT_TRUE(bitmap.all_set(0, 162));
  bitmap.resize(100);  // shrinking drops the prefix past the end
  bitmap.resize(300);
  EXPECT_TRUE(bitmap.all_set(0, 100));
  EXPECT_FALSE(bitmap.all_set(0, 101));
}

TEST(GranuleBitmapTest, GrowingKeepsBitsAndClearsTheNewOnes) {
  GranuleBitmap bitmap;
  bitmap.resize(70);
  bitmap.set(60, 10);
  bitmap.resize(200);
  EXPECT_EQ(bitmap.size(), 200U);
  EXPECT_EQ(bitmap.count(0, 200), 10U);
  EXPECT_EQ(bitmap.first_with(60, 200, false), 70U);
  EXPECT_EQ(bitmap.last_with(0, 200, true), 69U);
  EXPECT_EQ(bitmap.last_with(0, 70, false), 59U);
}

}  // namespace
}  // namespace unimem::test
