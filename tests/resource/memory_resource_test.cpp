#include "unimem/resource/memory_resource.hpp"

#include <gtest/gtest.h>

namespace unimem {
namespace {

TEST(ResourceUsage, FragmentationIsOneMinusLargestOverFree) {
  ResourceUsage usage;
  usage.reserved_bytes = 1000;
  usage.in_use_bytes = 600;
  usage.largest_free_range = 100;
  EXPECT_EQ(usage.free_bytes(), 400U);
  EXPECT_DOUBLE_EQ(usage.fragmentation(), 0.75);
  usage.largest_free_range = 400;
  EXPECT_DOUBLE_EQ(usage.fragmentation(), 0.0) << "one free range";
  usage.in_use_bytes = 1000;
  usage.largest_free_range = 0;
  EXPECT_DOUBLE_EQ(usage.fragmentation(), 0.0) << "no free bytes";
}

TEST(ResourceUsage, PlusEqualsSumsCountersAndKeepsTheLargerFreeRange) {
  ResourceUsage sum{1000, 100, 300, 4, 5, 6, 7, 8};
  const ResourceUsage part{20000, 2000, 200, 40, 50, 60, 70, 80};
  sum += part;
  EXPECT_EQ(sum.reserved_bytes, 21000U);
  EXPECT_EQ(sum.in_use_bytes, 2100U);
  EXPECT_EQ(sum.largest_free_range, 300U) << "no request spans two resources";
  EXPECT_EQ(sum.upstream_allocations, 44U);
  EXPECT_EQ(sum.upstream_deallocations, 55U);
  EXPECT_EQ(sum.cache_hits, 66U);
  EXPECT_EQ(sum.cache_misses, 77U);
  EXPECT_EQ(sum.fallbacks, 88U);
  ResourceUsage smaller{10, 0, 5, 0, 0, 0, 0, 0};
  smaller += part;
  EXPECT_EQ(smaller.largest_free_range, 200U);
}

}  // namespace
}  // namespace unimem
