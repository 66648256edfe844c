#include "unimem/resource/memory_resource.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>

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

TEST(Allocation, AddressOnlyWhereTheNativeHandleIsOne) {
  std::array<std::byte, 1024> bytes{};
  Segment segment = Segment::host_view(bytes.data(), bytes.size());
  ASSERT_TRUE(segment.native_is_address) << "a host view is host memory";
  const Allocation allocation{&segment, 256, 100, 0};
  EXPECT_EQ(allocation.address(), static_cast<void*>(bytes.data() + 256));
  EXPECT_EQ(allocation.native_plus_offset(), static_cast<const void*>(bytes.data() + 256));
  segment.native_is_address = false;  // as for an OpenCL cl_mem
  EXPECT_EQ(allocation.address(), nullptr);
  EXPECT_EQ(allocation.native_plus_offset(), static_cast<const void*>(bytes.data() + 256))
      << "still names the range";
  EXPECT_EQ(allocation.host_ptr(), bytes.data() + 256) << "host access does not depend on the handle";
  EXPECT_EQ(Allocation{}.address(), nullptr);
}

}  // namespace
}  // namespace unimem
