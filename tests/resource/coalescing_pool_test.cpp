#include "unimem/resource/coalescing_pool.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "resource/pool_test_support.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {
namespace {

class CoalescingPoolTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 16 * GiB, .backed = false},
                         SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
};

TEST_F(CoalescingPoolTest, RejectsBadOptions) {
  EXPECT_THROW(CoalescingPool(device_, {.growth_factor = 0.5}), InvalidArgument);
  EXPECT_THROW(CoalescingPool(device_, {.growth_factor = std::nan("")}), InvalidArgument);
  EXPECT_THROW(CoalescingPool(device_, {.growth_factor = std::numeric_limits<double>::infinity()}),
               InvalidArgument);
  EXPECT_THROW(CoalescingPool(device_, {.initial_size = 2 * MiB, .maximum_size = MiB}), InvalidArgument);
}

TEST_F(CoalescingPoolTest, BestFitTakesTheSmallestFreeRangeThatFits) {
  CoalescingPool pool(device_, {.initial_size = MiB});
  const std::vector<std::size_t> sizes = {64 * KiB, 128 * KiB, 64 * KiB, 32 * KiB, 64 * KiB};
  std::vector<Allocation> r;
  for (const std::size_t size : sizes) r.push_back(pool.allocate(size));
  pool.deallocate(r[1]);  // 128 KiB hole
  pool.deallocate(r[3]);  // 32 KiB hole; the rest of the segment (672 KiB) is free too
  const Allocation small = pool.allocate(30 * KiB);
  EXPECT_EQ(small.offset, r[3].offset) << "30 KiB fits the 32 KiB hole best";
  const Allocation medium = pool.allocate(100 * KiB);
  EXPECT_EQ(medium.offset, r[1].offset) << "100 KiB fits the 128 KiB hole better than the tail";
  const FragmentationFigures f = pool.fragmentation();
  EXPECT_EQ(f.free_range_count, 3U);  // 2 KiB after `small`, 28 KiB after `medium`, the tail
  EXPECT_EQ(f.free_bytes, MiB - 64 * KiB * 3 - 30 * KiB - 100 * KiB);
  EXPECT_EQ(pool.usage().upstream_allocations, 1U);
  for (const std::size_t i : {0U, 2U, 4U}) pool.deallocate(r[i]);
  pool.deallocate(small);
  pool.deallocate(medium);
  EXPECT_EQ(pool.fragmentation().free_range_count, 1U) << "everything merged back into one range";
}

TEST_F(CoalescingPoolTest, FragmentationFiguresAreExact) {
  CoalescingPool pool(device_, {.initial_size = MiB});
  std::vector<Allocation> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(pool.allocate(64 * KiB));
  FragmentationFigures f = pool.fragmentation();
  EXPECT_EQ(f.free_bytes, 0U);
  EXPECT_EQ(f.fragmentation, 0.0);
  EXPECT_EQ(f.segment_count, 1U);
  for (std::size_t i = 0; i < blocks.size(); i += 2) pool.deallocate(blocks[i]);
  f = pool.fragmentation();
  EXPECT_EQ(f.free_bytes, 512 * KiB);
  EXPECT_EQ(f.largest_free_range, 64 * KiB);
  EXPECT_DOUBLE_EQ(f.fragmentation, 1.0 - 64.0 / 512.0);
  EXPECT_EQ(f.free_range_count, 8U);
  EXPECT_DOUBLE_EQ(pool.usage().fragmentation(), f.fragmentation);
  EXPECT_EQ(pool.usage().largest_free_range, 64 * KiB);
  for (std::size_t i = 1; i < blocks.size(); i += 2) pool.deallocate(blocks[i]);
  f = pool.fragmentation();
  EXPECT_EQ(f.free_bytes, MiB);
  EXPECT_EQ(f.largest_free_range, MiB);
  EXPECT_EQ(f.fragmentation, 0.0);
  EXPECT_EQ(f.free_range_count, 1U);
}

TEST_F(CoalescingPoolTest, RangesNeverMergeAcrossSegments) {
  CoalescingPool pool(device_,
                      {.initial_size = 64 * KiB, .growth_factor = 1.0, .release_before_growth = false});
  const Allocation a = pool.allocate(64 * KiB);
  const Allocation b = pool.allocate(64 * KiB);
  ASSERT_NE(a.segment, b.segment);
  pool.deallocate(a);
  pool.deallocate(b);
  const FragmentationFigures f = pool.fragmentation();
  EXPECT_EQ(f.segment_count, 2U);
  EXPECT_EQ(f.free_range_count, 2U);
  EXPECT_EQ(f.largest_free_range, 64 * KiB) << "two 64 KiB segments are not one 128 KiB range";
  const Allocation c = pool.allocate(128 * KiB);
  EXPECT_EQ(pool.usage().upstream_allocations, 3U);
  pool.deallocate(c);
}

TEST_F(CoalescingPoolTest, GrowsByTheFactorCappedByTheStep) {
  CoalescingPool geometric(device_,
                           {.initial_size = MiB, .release_before_growth = false, .max_growth_step = 0});
  std::vector<Allocation> live;
  live.push_back(geometric.allocate(MiB));
  EXPECT_EQ(geometric.usage().reserved_bytes, MiB);
  live.push_back(geometric.allocate(256));
  EXPECT_EQ(geometric.usage().reserved_bytes, 2 * MiB) << "the new segment is reserved * (2 - 1)";
  live.push_back(geometric.allocate(3 * MiB));
  EXPECT_EQ(geometric.usage().reserved_bytes, 5 * MiB) << "at least the request";
  for (const Allocation& a : live) geometric.deallocate(a);

  CoalescingPool capped(device_, {.initial_size = MiB, .max_growth_step = 512 * KiB});
  const Allocation x = capped.allocate(MiB);
  const Allocation y = capped.allocate(256);
  EXPECT_EQ(capped.usage().reserved_bytes, MiB + 512 * KiB);
  capped.deallocate(x);
  capped.deallocate(y);
}

TEST_F(CoalescingPoolTest, MaximumSizeCapsReservedBytes) {
  CoalescingPool pool(device_, {.growth_factor = 20.0, .maximum_size = MiB, .max_growth_step = 0});
  const Allocation a = pool.allocate(100 * KiB);
  const Allocation b = pool.allocate(10 * KiB);
  EXPECT_EQ(pool.usage().reserved_bytes, MiB) << "growth stops at the maximum";
  try {
    (void)pool.allocate(MiB);
    FAIL() << "a request above the maximum must fail";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), MiB);
    EXPECT_EQ(e.total_bytes(), MiB);
    const std::string message = e.what();
    EXPECT_NE(message.find("1048576 bytes reserved of a maximum of 1048576"), std::string::npos) << message;
  }
  pool.deallocate(a);
  pool.deallocate(b);
}

TEST_F(CoalescingPoolTest, WhollyFreeSegmentsGoBackBeforeTheGrowth) {
  CoalescingPool releasing(device_);
  releasing.deallocate(releasing.allocate(64 * KiB));
  const Allocation a = releasing.allocate(128 * KiB);
  EXPECT_EQ(releasing.usage().upstream_deallocations, 1U);
  EXPECT_EQ(releasing.usage().reserved_bytes, 128 * KiB);
  releasing.deallocate(a);

  CoalescingPool keeping(device_, {.release_before_growth = false});
  keeping.deallocate(keeping.allocate(64 * KiB));
  const Allocation b = keeping.allocate(128 * KiB);
  EXPECT_EQ(keeping.usage().upstream_deallocations, 0U);
  EXPECT_EQ(keeping.usage().reserved_bytes, 64 * KiB + 128 * KiB);
  keeping.deallocate(b);
}

TEST_F(CoalescingPoolTest, TrimGivesBackOnlyWhollyFreeSegments) {
  CoalescingPool pool(device_, {.growth_factor = 1.0, .release_before_growth = false});
  const Allocation a = pool.allocate(64 * KiB);
  const Allocation b = pool.allocate(128 * KiB);
  const Allocation c = pool.allocate(32 * KiB);
  pool.deallocate(b);
  pool.deallocate(c);
  EXPECT_EQ(device_.live_allocations(), 3U);
  EXPECT_EQ(pool.trim(), 128 * KiB + 32 * KiB);
  EXPECT_EQ(device_.live_allocations(), 1U);
  EXPECT_EQ(pool.trim(), 0U);
  pool.deallocate(a);

  CoalescingPool keeping(device_, {.release_free_segments = false});
  keeping.deallocate(keeping.allocate(64 * KiB));
  EXPECT_EQ(keeping.trim(), 0U);
  EXPECT_EQ(keeping.fragmentation().segment_count, 1U);
}

TEST_F(CoalescingPoolTest, UpstreamOutOfMemoryReleasesFreeSegmentsThenTriesTheBareRequest) {
  SimulatedBackend small({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(small, 0, MemoryKind::Device);
  {
    CoalescingPool pool(upstream, {.initial_size = 512 * KiB, .release_before_growth = false});
    pool.deallocate(pool.allocate(512 * KiB));
    const Allocation a = pool.allocate(768 * KiB);  // fits only once the free 512 KiB segment is gone
    EXPECT_EQ(pool.usage().upstream_deallocations, 1U);
    EXPECT_EQ(pool.usage().reserved_bytes, 768 * KiB);
    pool.deallocate(a);
  }
  {
    CoalescingPool pool(upstream, {.release_before_growth = false, .max_growth_step = 0});
    const Allocation a = pool.allocate(600 * KiB);
    const Allocation b = pool.allocate(300 * KiB);  // the 600 KiB growth step does not fit; the request does
    EXPECT_EQ(pool.usage().reserved_bytes, 900 * KiB);
    EXPECT_THROW((void)pool.allocate(200 * KiB), OutOfMemory);
    EXPECT_EQ(pool.usage().in_use_bytes, 900 * KiB);
    pool.deallocate(a);
    pool.deallocate(b);
  }
  EXPECT_EQ(small.live_segment_count(), 0U);
}

TEST_F(CoalescingPoolTest, FailingUpstreamLeavesNoTrace) {
  TestUpstream failing(device_, /*fail_every=*/1);
  CoalescingPool pool(failing);
  EXPECT_THROW((void)pool.allocate(1000), OutOfMemory);
  const FragmentationFigures f = pool.fragmentation();
  EXPECT_EQ(f.segment_count, 0U);
  EXPECT_EQ(pool.usage().reserved_bytes, 0U);
  EXPECT_EQ(pool.usage().cache_misses, 0U);
}

// Stream order, observed through streams whose work completes only when the test says so.
class CoalescingStreamOrder : public ::testing::Test {
 protected:
  ManualBackend manual_{GiB};
  BackendResource upstream_{manual_, 0, MemoryKind::Device};
  std::unique_ptr<Stream> a_ = manual_.create_stream(0);
  std::unique_ptr<Stream> b_ = manual_.create_stream(0);
  ManualStream& stream_a_ = dynamic_cast<ManualStream&>(*a_);
  ManualStream& stream_b_ = dynamic_cast<ManualStream&>(*b_);
};

TEST_F(CoalescingStreamOrder, TheFreeingStreamReusesARangeAtOnce) {
  CoalescingPool pool(upstream_, {.initial_size = 128 * KiB});
  const Allocation x = pool.allocate(64 * KiB, a_.get());
  const Allocation y = pool.allocate(64 * KiB);
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  const Allocation again = pool.allocate(64 * KiB, a_.get());
  EXPECT_EQ(again.offset, x.offset);
  EXPECT_EQ(stream_a_.waits(), 0);
  pool.deallocate(again, a_.get());
  pool.deallocate(y);
}

TEST_F(CoalescingStreamOrder, AnotherStreamTakesReadyMemoryFirstThenWaitsRatherThanGrowing) {
  CoalescingPool pool(upstream_, {.initial_size = 192 * KiB});
  const Allocation x = pool.allocate(64 * KiB, a_.get());
  const Allocation y = pool.allocate(64 * KiB);
  const Allocation z = pool.allocate(64 * KiB);
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());  // pending on A
  pool.deallocate(z);            // ready for everyone
  const Allocation first = pool.allocate(64 * KiB, b_.get());
  EXPECT_EQ(first.offset, z.offset) << "memory B may use at once comes first";
  EXPECT_EQ(stream_b_.waits(), 0);
  const Allocation second = pool.allocate(64 * KiB, b_.get());
  EXPECT_EQ(second.offset, x.offset) << "only A's free fits: B waits for it";
  EXPECT_EQ(stream_b_.waits(), 1);
  EXPECT_EQ(stream_a_.completed(), 0U) << "B waits on the device, the host is not blocked";
  EXPECT_EQ(pool.usage().upstream_allocations, 1U) << "waiting, not growing";
  pool.deallocate(first, b_.get());
  pool.deallocate(second, b_.get());
  pool.deallocate(y);
}

TEST_F(CoalescingStreamOrder, AHostOrderRequestWaitsOnTheHost) {
  CoalescingPool pool(upstream_, {.initial_size = 64 * KiB});
  const Allocation x = pool.allocate(64 * KiB, a_.get());
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  const Allocation host = pool.allocate(64 * KiB);
  EXPECT_EQ(host.offset, x.offset);
  EXPECT_EQ(stream_a_.completed(), stream_a_.submitted()) << "the host waited for A's free";
  pool.deallocate(host);
}

TEST_F(CoalescingStreamOrder, ACompletedFreeIsReadyForEveryStream) {
  CoalescingPool pool(upstream_, {.initial_size = 64 * KiB});
  const Allocation x = pool.allocate(64 * KiB, a_.get());
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  stream_a_.complete();
  const Allocation other = pool.allocate(64 * KiB, b_.get());
  EXPECT_EQ(other.offset, x.offset);
  EXPECT_EQ(stream_b_.waits(), 0);
  pool.deallocate(other, b_.get());
}

TEST_F(CoalescingStreamOrder, PendingFreesOfTwoStreamsMergeOnlyOnceOneHasCompleted) {
  CoalescingPool pool(upstream_, {.initial_size = 256 * KiB});
  const Allocation w = pool.allocate(64 * KiB);
  const Allocation x = pool.allocate(64 * KiB);
  const Allocation y = pool.allocate(64 * KiB);
  const Allocation z = pool.allocate(64 * KiB);
  stream_a_.enqueue();
  stream_b_.enqueue();
  pool.deallocate(w, a_.get());
  pool.deallocate(x, b_.get());
  EXPECT_EQ(pool.fragmentation().free_range_count, 2U) << "A's and B's pending frees stay apart";
  stream_b_.complete();
  pool.deallocate(y, a_.get());  // next to x, whose free on B has completed
  EXPECT_EQ(pool.fragmentation().free_range_count, 1U);
  EXPECT_EQ(pool.fragmentation().largest_free_range, 192 * KiB);
  pool.deallocate(z);
  EXPECT_EQ(pool.fragmentation().largest_free_range, 256 * KiB);
}

TEST_F(CoalescingPoolTest, AFreeOrderedOnAnotherDevicesStreamIsReportedAndDoneInHostOrder) {
  CoalescingPool pool(device_);
  const auto other = sim_.create_stream(1);
  expect_foreign_device_free_reported(pool, *other);
}

}  // namespace
}  // namespace unimem::test
