#include "unimem/resource/backend_resource.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(BackendResource, EachAllocationIsOneSegment) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Host);
  const Allocation a = resource.allocate(1000);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 1000U);
  EXPECT_EQ(a.offset, 0U);
  ASSERT_NE(a.host_ptr(), nullptr);
  std::memset(a.host_ptr(), 1, 1000);
  EXPECT_EQ(a.backend(), &host);
  EXPECT_EQ(resource.usage().upstream_allocations, 1U);
  EXPECT_EQ(resource.usage().in_use_bytes, 1000U);
  EXPECT_EQ(host.live_segment_count(), 1U);
  resource.deallocate(a);
  EXPECT_EQ(host.live_segment_count(), 0U);
  EXPECT_EQ(resource.usage().upstream_deallocations, 1U);
  EXPECT_EQ(resource.live_allocations(), 0U);
}

TEST(BackendResource, HonoursLargeAlignments) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  for (std::size_t alignment : {1U, 64U, 256U, 512U, 4096U}) {
    const Allocation a = resource.allocate(3, nullptr, alignment);
    EXPECT_TRUE(is_aligned(a.host_ptr(), alignment)) << alignment;
    resource.deallocate(a);
  }
  EXPECT_THROW((void)resource.allocate(8, nullptr, 3), InvalidArgument);
  EXPECT_THROW((void)resource.allocate(8, nullptr, 8192), InvalidArgument);
  EXPECT_THROW((void)resource.allocate(0), InvalidArgument);
}

TEST(BackendResource, DoubleAndForeignFreesAreReportedNotActedOn) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  BackendResource a(sim, 0, MemoryKind::Device);
  BackendResource b(sim, 0, MemoryKind::Device);
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation x = a.allocate(4096);
  b.deallocate(x);  // foreign to b
  EXPECT_EQ(sim.live_segment_count(), 1U) << "a foreign free must not release the segment";
  a.deallocate(x);
  a.deallocate(x);  // double free
  a.deallocate(Allocation{});
  ASSERT_EQ(reports.size(), 3U);
  EXPECT_NE(reports[0].find("not live"), std::string::npos) << reports[0];
  EXPECT_NE(reports[1].find("not live"), std::string::npos) << reports[1];
  EXPECT_NE(reports[2].find("empty"), std::string::npos) << reports[2];
  EXPECT_EQ(sim.live_segment_count(), 0U);
}

// Regression: a forged offset freed the whole segment without a report.
TEST(BackendResource, AFreeThatDoesNotMatchWhatWasHandedOutIsRefused) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource resource(sim, 0, MemoryKind::Device);
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation a = resource.allocate(1000);
  Allocation offset = a;
  offset.offset += 256;
  Allocation size = a;
  size.size = 999;
  EXPECT_FALSE(resource.deallocate(offset));
  EXPECT_FALSE(resource.deallocate(size));
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_NE(reports[0].find("does not match"), std::string::npos) << reports[0];
  EXPECT_EQ(resource.live_allocations(), 1U);
  EXPECT_EQ(sim.live_segment_count(), 1U);
  EXPECT_TRUE(resource.deallocate(a));
  EXPECT_EQ(sim.live_segment_count(), 0U);
}

TEST(BackendResource, OutOfMemoryComesFromTheDevice) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource resource(sim, 0, MemoryKind::Device);
  const Allocation a = resource.allocate(MiB);
  EXPECT_THROW((void)resource.allocate(1), OutOfMemory);
  resource.deallocate(a);
  EXPECT_THROW(BackendResource(sim, 0, MemoryKind::PinnedHost), NotSupported);
  EXPECT_THROW(BackendResource(sim, 3, MemoryKind::Device), InvalidArgument);
}

TEST(BackendResource, DestroyedWithLiveAllocationsReportsAndReleases) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  {
    BackendResource resource(sim, 0, MemoryKind::Device);
    (void)resource.allocate(100);
    (void)resource.allocate(200);
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("2 live allocation(s) of 300 bytes"), std::string::npos) << reports[0];
  EXPECT_EQ(sim.live_segment_count(), 0U);
}

}  // namespace
}  // namespace unimem
