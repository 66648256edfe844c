#include "unimem/resource/hybrid_pool.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/limiting_adaptor.hpp"

namespace unimem {
namespace {

class HybridPoolTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 16 * GiB, .backed = false}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
};

TEST_F(HybridPoolTest, ThresholdFollowsTheLargePoolUnlessGiven) {
  const HybridPool automatic(device_);
  EXPECT_EQ(automatic.large_kind(), LargePoolKind::Expandable);  // the simulated device has virtual memory
  EXPECT_EQ(automatic.options().small_threshold, kExpandableSmallThreshold);
  const HybridPool coalescing(device_, {.large_kind = LargePoolKind::Coalescing});
  EXPECT_EQ(coalescing.options().small_threshold, kCoalescingSmallThreshold);
  const HybridPool given(device_, {.small_threshold = 4 * KiB});
  EXPECT_EQ(given.options().small_threshold, 4 * KiB);
}

TEST_F(HybridPoolTest, AnExpandableLargePoolNeedsTheBackendAsUpstream) {
  LimitingAdaptor limited(device_, GiB);
  EXPECT_EQ(HybridPool(limited).large_kind(), LargePoolKind::Coalescing);
  try {
    const HybridPool pool(limited, {.large_kind = LargePoolKind::Expandable});
    FAIL() << "an expandable pool over an adaptor was built";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("BackendResource"), std::string::npos) << e.what();
  }
}

TEST_F(HybridPoolTest, RejectsAThresholdOutsideTheSizeClasses) {
  EXPECT_THROW(HybridPool(device_, {.small_threshold = 2 * MiB, .small = {.max_block = MiB}}),
               InvalidArgument);
  EXPECT_NO_THROW(HybridPool(device_, {.small_threshold = 2 * MiB, .small = {.max_block = 2 * MiB}}));
}

TEST_F(HybridPoolTest, RoutesBySizeAndFreesToThePoolThatServed) {
  HybridPool pool(device_, {.small_threshold = 64 * KiB});
  const Allocation small = pool.allocate(64 * KiB);
  const Allocation large = pool.allocate(64 * KiB + 1);
  EXPECT_EQ(pool.small_pool().usage().in_use_bytes, 64 * KiB);
  EXPECT_EQ(pool.large_pool().usage().in_use_bytes, 64 * KiB + 256);
  pool.deallocate(small);
  pool.deallocate(large);
  EXPECT_EQ(pool.small_pool().usage().in_use_bytes, 0U);
  EXPECT_EQ(pool.large_pool().usage().in_use_bytes, 0U);
  EXPECT_EQ(pool.small_pool().stats().returns, 1U);
}

TEST_F(HybridPoolTest, UsageSumsBothPools) {
  HybridPool pool(device_, {.small_threshold = 64 * KiB, .large_kind = LargePoolKind::Coalescing});
  std::vector<Allocation> live;
  for (const std::size_t bytes : {std::size_t{100}, 3 * KiB, 200 * KiB, 5 * MiB})
    live.push_back(pool.allocate(bytes));
  pool.deallocate(live[1]);
  pool.deallocate(live[2]);
  const ResourceUsage small = pool.small_pool().usage();
  const ResourceUsage large = pool.large_pool().usage();
  const ResourceUsage both = pool.usage();
  EXPECT_EQ(both.reserved_bytes, small.reserved_bytes + large.reserved_bytes);
  EXPECT_EQ(both.in_use_bytes, small.in_use_bytes + large.in_use_bytes);
  EXPECT_EQ(both.largest_free_range, std::max(small.largest_free_range, large.largest_free_range));
  EXPECT_EQ(both.upstream_allocations, small.upstream_allocations + large.upstream_allocations);
  EXPECT_EQ(both.cache_misses, 4U);
  EXPECT_EQ(both.reserved_bytes, device_.usage().reserved_bytes);
  pool.deallocate(live[0]);
  pool.deallocate(live[3]);
  EXPECT_EQ(pool.trim(), both.reserved_bytes);
  EXPECT_EQ(device_.live_allocations(), 0U);
}

TEST_F(HybridPoolTest, MisuseIsReportedByThePoolItIsRoutedTo) {
  for (const LargePoolKind kind : {LargePoolKind::Coalescing, LargePoolKind::Expandable}) {
    HybridPool pool(device_, {.small_threshold = 64 * KiB, .large_kind = kind});
    std::vector<std::string> reports;
    const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
    const Allocation small = pool.allocate(100);
    const Allocation large = pool.allocate(MiB);
    pool.deallocate(small);
    pool.deallocate(small);
    pool.deallocate(large);
    pool.deallocate(large);
    ASSERT_EQ(reports.size(), 2U);
    EXPECT_NE(reports[0].find("SizeClassPool"), std::string::npos) << reports[0];
    const std::string large_name = kind == LargePoolKind::Coalescing ? "CoalescingPool" : "ExpandablePool";
    EXPECT_NE(reports[1].find(large_name), std::string::npos) << reports[1];
  }
}

}  // namespace
}  // namespace unimem
