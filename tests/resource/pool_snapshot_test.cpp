#include "unimem/resource/pool_snapshot.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/size_class_pool.hpp"
#include "unimem/resource/statistics_adaptor.hpp"
#include "unimem/resource/tracking_adaptor.hpp"

namespace unimem::test {
namespace {

class PoolSnapshotTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
};

void expect_range(const RangeSnapshot& r, std::size_t offset, std::size_t size, bool allocated,
                  std::size_t requested) {
  EXPECT_EQ(r.offset, offset);
  EXPECT_EQ(r.size, size);
  EXPECT_EQ(r.allocated, allocated);
  EXPECT_EQ(r.requested, requested);
}

TEST_F(PoolSnapshotTest, CoalescingPoolShowsEverySegmentAndHole) {
  CoalescingPool pool(device_, {.initial_size = MiB});
  const Allocation a = pool.allocate(256 * KiB);
  const Allocation b = pool.allocate(256 * KiB);
  const Allocation c = pool.allocate(256 * KiB - 100);
  pool.deallocate(b);
  const Allocation big = pool.allocate(2 * MiB);  // does not fit: a second segment

  const PoolSnapshot s = pool.snapshot();
  EXPECT_EQ(s.device, (DeviceId{BackendKind::Simulated, 0}));
  EXPECT_EQ(s.kind, MemoryKind::Device);
  ASSERT_EQ(s.segments.size(), 2U);
  const SegmentSnapshot& first = s.segments[0];
  EXPECT_EQ(first.size, MiB);
  EXPECT_EQ(first.pool, "coalescing");
  EXPECT_EQ(first.base, reinterpret_cast<std::uintptr_t>(a.segment->native));
  ASSERT_EQ(first.ranges.size(), 4U);
  expect_range(first.ranges[0], 0, 256 * KiB, true, 256 * KiB);
  expect_range(first.ranges[1], 256 * KiB, 256 * KiB, false, 0);
  expect_range(first.ranges[2], 512 * KiB, 256 * KiB, true, 256 * KiB - 100);
  expect_range(first.ranges[3], 768 * KiB, 256 * KiB, false, 0);
  EXPECT_EQ(first.ranges[1].stream, 0U) << "freed in host order: any stream may take it";
  ASSERT_EQ(s.segments[1].ranges.size(), 1U);
  expect_range(s.segments[1].ranges[0], 0, 2 * MiB, true, 2 * MiB);
  EXPECT_EQ(s.usage.reserved_bytes, 3 * MiB);
  EXPECT_EQ(s.usage.largest_free_range, 256 * KiB);
  for (const Allocation& x : {a, c, big}) pool.deallocate(x);
}

TEST_F(PoolSnapshotTest, SizeClassPoolShowsBlocksHandedOutAndCached) {
  SizeClassPool pool(device_, {.chunk_size = 4 * KiB});
  const Allocation small = pool.allocate(300);
  const Allocation second = pool.allocate(300);
  const Allocation other = pool.allocate(1000);
  pool.deallocate(other);
  const PoolSnapshot s = pool.snapshot();
  ASSERT_EQ(s.segments.size(), 3U) << "a chunk of one 512 B block, one of two, one of a 1 KiB block";
  EXPECT_EQ(s.segments[0].pool, "size_class");
  EXPECT_EQ(s.segments[0].size, 512U);
  ASSERT_EQ(s.segments[0].ranges.size(), 1U);
  expect_range(s.segments[0].ranges[0], 0, 512, true, 300);
  EXPECT_EQ(s.segments[1].size, 1024U);
  ASSERT_EQ(s.segments[1].ranges.size(), 2U) << "the live block, then the one not carved yet";
  expect_range(s.segments[1].ranges[0], 0, 512, true, 300);
  expect_range(s.segments[1].ranges[1], 512, 512, false, 0);
  EXPECT_EQ(s.segments[2].size, 1024U);
  ASSERT_EQ(s.segments[2].ranges.size(), 1U);
  expect_range(s.segments[2].ranges[0], 0, 1024, false, 0);
  pool.deallocate(small);
  pool.deallocate(second);
}

TEST_F(PoolSnapshotTest, HybridPoolJoinsBothPools) {
  for (const LargePoolKind kind : {LargePoolKind::Coalescing, LargePoolKind::Expandable}) {
    HybridPool pool(device_, {.large_kind = kind});
    const Allocation small = pool.allocate(4 * KiB);
    const Allocation large = pool.allocate(3 * MiB);
    const PoolSnapshot s = pool.snapshot();
    ASSERT_EQ(s.segments.size(), 2U);
    EXPECT_EQ(s.segments[0].pool, "size_class");
    EXPECT_EQ(s.segments[1].pool, to_string(kind));
    EXPECT_EQ(s.segments[1].ranges.size(), 1U);  // the one live range; the pool holds nothing else yet
    EXPECT_EQ(s.usage.reserved_bytes, pool.usage().reserved_bytes);
    pool.deallocate(small);
    pool.deallocate(large);
  }
}

TEST_F(PoolSnapshotTest, ThroughAdaptorsWithTrackingIdsAndTags) {
  CoalescingPool pool(device_, {.initial_size = MiB});
  StatisticsAdaptor stats(pool);
  TrackingAdaptor tracking(stats);
  const Allocation first = tracking.allocate_tagged(64 * KiB, "weights");
  const Allocation second = tracking.allocate(64 * KiB);
  const PoolSnapshot s = snapshot_of(tracking);
  ASSERT_EQ(s.segments.size(), 1U);
  ASSERT_EQ(s.segments[0].ranges.size(), 3U);
  const RangeSnapshot& r0 = s.segments[0].ranges[0];
  EXPECT_EQ(r0.allocation_id, 1U);
  EXPECT_EQ(r0.tag, "weights");
  ASSERT_TRUE(r0.age_seconds.has_value());
  EXPECT_GE(*r0.age_seconds, 0.0);
  EXPECT_EQ(s.segments[0].ranges[1].allocation_id, 2U);
  EXPECT_FALSE(s.segments[0].ranges[2].age_seconds.has_value()) << "a free range has no allocation";
  EXPECT_FALSE(snapshot_of(stats).segments[0].ranges[0].age_seconds.has_value()) << "no tracking below";
  tracking.deallocate(first);
  tracking.deallocate(second);
}

TEST_F(PoolSnapshotTest, NoPoolUnderTheResourceIsNotSupported) {
  StatisticsAdaptor stats(device_);
  try {
    (void)snapshot_of(stats);
    FAIL() << "a backend resource has no ranges to show";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("sim:0"), std::string::npos) << e.what();
  }
}

TEST_F(PoolSnapshotTest, JsonFollowsTheSchema) {
  CoalescingPool pool(device_, {.initial_size = MiB});
  const Allocation a = pool.allocate(KiB);
  const nlohmann::json j = nlohmann::json::parse(to_json(pool.snapshot()));
  EXPECT_EQ(j.at("device").at("name"), "sim:0");
  EXPECT_EQ(j.at("device").at("backend"), "sim");
  EXPECT_EQ(j.at("kind"), "device");
  EXPECT_EQ(j.at("usage").at("reserved_bytes"), MiB);
  const nlohmann::json& segment = j.at("segments").at(0);
  for (const char* key : {"id", "base", "size", "kind", "pool", "ranges"})
    EXPECT_TRUE(segment.contains(key)) << key;
  const nlohmann::json& range = segment.at("ranges").at(0);
  for (const char* key :
       {"offset", "size", "allocated", "requested", "stream", "allocation_id", "tag", "age_seconds"})
    EXPECT_TRUE(range.contains(key)) << key;
  EXPECT_EQ(range.at("allocated"), true);
  EXPECT_TRUE(range.at("age_seconds").is_null());
  EXPECT_EQ(segment.at("ranges").at(1).at("offset"), KiB);
  pool.deallocate(a);
}

}  // namespace
}  // namespace unimem::test
