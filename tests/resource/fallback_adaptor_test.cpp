#include "unimem/resource/fallback_adaptor.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "resource/adaptor_test_doubles.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/fault_injection_adaptor.hpp"

namespace unimem {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class FallbackAdaptorTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}}};
  HostBackend host_;
  BackendResource device_{sim_, 0, MemoryKind::Device};
  BackendResource host_memory_{host_, 0, MemoryKind::Host};
};

TEST_F(FallbackAdaptorTest, AllocationPastCapacityLandsOnTheSecondary) {
  FallbackAdaptor fallback(device_, host_memory_);
  EXPECT_EQ(fallback.device(), device_.device());
  EXPECT_EQ(fallback.kind(), MemoryKind::Device);
  EXPECT_EQ(&fallback.backend(), &sim_);

  const Allocation on_device = fallback.allocate(768 * KiB);
  EXPECT_FALSE(fallback.is_fallback(on_device));
  EXPECT_EQ(on_device.backend(), &sim_);
  EXPECT_EQ(fallback.fallback_count(), 0U);

  const Allocation on_host = fallback.allocate(512 * KiB);  // 1.25 MiB would not fit the 1 MiB device
  EXPECT_TRUE(fallback.is_fallback(on_host));
  EXPECT_EQ(on_host.backend(), &host_);
  EXPECT_EQ(on_host.kind(), MemoryKind::Host);
  ASSERT_NE(on_host.host_ptr(), nullptr);
  std::memset(on_host.host_ptr(), 0x5a, on_host.size);
  EXPECT_EQ(fallback.fallback_count(), 1U);

  const ResourceUsage usage = fallback.usage();
  EXPECT_EQ(usage.fallbacks, 1U);
  EXPECT_EQ(usage.in_use_bytes, device_.usage().in_use_bytes + host_memory_.usage().in_use_bytes);
  EXPECT_EQ(usage.upstream_allocations, 2U);

  fallback.deallocate(on_host);
  EXPECT_EQ(host_.live_segment_count(), 0U) << "the fallback allocation goes back to the host";
  EXPECT_EQ(sim_.live_segment_count(), 1U);
  fallback.deallocate(on_device);
  EXPECT_EQ(sim_.live_segment_count(), 0U);

  const Allocation again = fallback.allocate(MiB);  // the device has room again
  EXPECT_FALSE(fallback.is_fallback(again));
  EXPECT_EQ(fallback.fallback_count(), 1U);
  fallback.deallocate(again);
}

TEST_F(FallbackAdaptorTest, FreeOnAForeignStreamWaitsThenFreesOnTheHost) {
  FallbackAdaptor fallback(device_, host_memory_);
  const auto stream = sim_.create_stream(0);
  const Allocation filler = fallback.allocate(MiB, stream.get());
  const Allocation on_host = fallback.allocate(4096, stream.get());  // the sim stream is not the host's
  EXPECT_TRUE(fallback.is_fallback(on_host));
  fallback.deallocate(on_host, stream.get());
  EXPECT_EQ(host_.live_segment_count(), 0U);
  fallback.deallocate(filler, stream.get());
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST_F(FallbackAdaptorTest, BothSidesFullNamesBoth) {
  SimulatedBackend small_other({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource secondary(small_other, 0, MemoryKind::Device);
  FallbackAdaptor fallback(device_, secondary);
  try {
    (void)fallback.allocate(2 * MiB);
    FAIL() << "neither side can serve 2 MiB";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 2 * MiB);
    EXPECT_EQ(e.device(), to_string(device_.device()));
    EXPECT_TRUE(contains(e.what(), "fallback to " + to_string(secondary.device()))) << e.what();
  }
  EXPECT_EQ(fallback.fallback_count(), 0U);
}

TEST_F(FallbackAdaptorTest, OnlyOutOfMemoryFallsBack) {
  FaultInjectionAdaptor failing_driver(
      device_, FaultInjectionOptions{.fail_every_nth = 1, .fault = InjectedFault::BackendError});
  FallbackAdaptor fallback(failing_driver, host_memory_);
  EXPECT_THROW((void)fallback.allocate(64), BackendError);
  EXPECT_EQ(fallback.fallback_count(), 0U);
  EXPECT_EQ(host_.live_segment_count(), 0U);

  FaultInjectionAdaptor full_device(device_, FaultInjectionOptions{.fail_every_nth = 1});
  FallbackAdaptor falls_back(full_device, host_memory_);
  const Allocation a = falls_back.allocate(64);
  EXPECT_TRUE(falls_back.is_fallback(a));
  falls_back.deallocate(a);
  EXPECT_EQ(host_.live_segment_count(), 0U);
}

TEST_F(FallbackAdaptorTest, RejectsTwoSidesThatCannotBeToldApart) {
  BackendResource same_device(sim_, 0, MemoryKind::Device);
  EXPECT_THROW(FallbackAdaptor(device_, same_device), InvalidArgument);
  EXPECT_THROW(FallbackAdaptor(device_, device_), InvalidArgument);
}

TEST_F(FallbackAdaptorTest, ForeignAllocationsAreReportedOnce) {
  FallbackAdaptor fallback(device_, host_memory_);
  SimulatedBackend elsewhere({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource other(elsewhere, 0, MemoryKind::Device);
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation foreign = other.allocate(100);
  EXPECT_FALSE(fallback.deallocate(foreign));
  ASSERT_EQ(reports.size(), 1U);  // by the primary, which did not hand it out
  EXPECT_TRUE(contains(reports[0], "is not live here")) << reports[0];
  EXPECT_EQ(elsewhere.live_segment_count(), 1U);
  other.deallocate(foreign);
}

TEST_F(FallbackAdaptorTest, TrimReachesBothSides) {
  constexpr std::size_t kDevicePool = 256 * KiB;
  constexpr std::size_t kHostPool = 64 * KiB;
  test::BumpResource device_pool(sim_, 0, MemoryKind::Device, kDevicePool);
  test::BumpResource host_pool(host_, 0, MemoryKind::Host, kHostPool);
  FallbackAdaptor fallback(device_pool, host_pool);
  const Allocation on_device = fallback.allocate(200 * KiB);
  const Allocation spilled = fallback.allocate(60 * KiB);  // 260 KiB in all: past the device pool
  ASSERT_TRUE(fallback.is_fallback(spilled));
  fallback.deallocate(spilled);
  fallback.deallocate(on_device);
  EXPECT_EQ(fallback.usage().reserved_bytes, kDevicePool + kHostPool);
  EXPECT_EQ(fallback.trim(), kDevicePool + kHostPool);
  EXPECT_EQ(device_pool.trim_calls(), 1U);
  EXPECT_EQ(host_pool.trim_calls(), 1U);
  EXPECT_EQ(fallback.usage().reserved_bytes, 0U);
}

}  // namespace
}  // namespace unimem
