#include "unimem/resource/limiting_adaptor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LimitingAdaptor, RequestPastTheLimitNamesRequestLimitAndInUse) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  const std::size_t limit = MiB;
  LimitingAdaptor limited(upstream, limit);
  EXPECT_EQ(limited.device(), upstream.device());
  EXPECT_EQ(limited.kind(), upstream.kind());
  EXPECT_EQ(&limited.backend(), &upstream.backend());

  const std::size_t held = 600 * KiB;
  const std::size_t request = 500 * KiB;
  const Allocation a = limited.allocate(held);
  EXPECT_EQ(limited.in_use_bytes(), held);
  try {
    (void)limited.allocate(request);
    FAIL() << "a request past the limit must throw";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), request);
    EXPECT_EQ(e.total_bytes(), limit);
    EXPECT_EQ(e.free_bytes(), limit - held);
    EXPECT_EQ(e.device(), to_string(upstream.device()));
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, std::to_string(request))) << message;
    EXPECT_TRUE(contains(message, "limit " + std::to_string(limit))) << message;
    EXPECT_TRUE(contains(message, std::to_string(held) + " bytes in use")) << message;
  }
  EXPECT_EQ(upstream.usage().upstream_allocations, 1U) << "a refused request must not reach the upstream";
  EXPECT_EQ(limited.in_use_bytes(), held);

  limited.deallocate(a);
  EXPECT_EQ(limited.in_use_bytes(), 0U);
  const Allocation whole = limited.allocate(limit);  // the limit itself is allowed
  EXPECT_THROW((void)limited.allocate(1), OutOfMemory);
  limited.deallocate(whole);
  EXPECT_EQ(sim.live_segment_count(), 0U);
}

TEST(LimitingAdaptor, RejectsAZeroLimit) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  EXPECT_THROW(LimitingAdaptor(upstream, 0), InvalidArgument);
}

TEST(LimitingAdaptor, UpstreamFailureReleasesTheReservation) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  LimitingAdaptor limited(upstream, GiB);
  EXPECT_THROW((void)limited.allocate(2 * MiB), OutOfMemory);  // the device's own limit
  EXPECT_EQ(limited.in_use_bytes(), 0U);
  const Allocation a = limited.allocate(MiB);
  EXPECT_EQ(limited.in_use_bytes(), MiB);
  limited.deallocate(a);
}

TEST(LimitingAdaptor, ARejectedDoubleFreeIsReportedOnceAndCountsNothing) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  LimitingAdaptor limited(upstream, MiB);
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation a = limited.allocate(4096);
  limited.deallocate(a);
  const Allocation b = limited.allocate(8192);
  EXPECT_FALSE(limited.deallocate(a));  // double free: the upstream reports it, the adaptor counts nothing
  EXPECT_EQ(limited.in_use_bytes(), 8192U);
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_TRUE(contains(reports[0], "BackendResource::deallocate")) << reports[0];
  EXPECT_TRUE(limited.deallocate(b));
  EXPECT_EQ(limited.in_use_bytes(), 0U);
}

TEST(LimitingAdaptor, ConcurrentRequestsNeverPassTheLimit) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  const std::size_t chunk = 64 * KiB;
  const std::size_t limit = 10 * chunk;  // 8 threads holding 2 chunks each would need 16
  LimitingAdaptor limited(upstream, limit);
  std::atomic<std::size_t> refused{0};
  std::atomic<std::size_t> over_limit{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        std::vector<Allocation> held;
        for (int j = 0; j < 2; ++j) {
          try {
            held.push_back(limited.allocate(chunk));
          } catch (const OutOfMemory&) {
            refused.fetch_add(1);
          }
          if (limited.in_use_bytes() > limit) over_limit.fetch_add(1);
          if (upstream.usage().in_use_bytes > limit) over_limit.fetch_add(1);
        }
        for (const Allocation& a : held) limited.deallocate(a);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(over_limit.load(), 0U);
  EXPECT_EQ(limited.in_use_bytes(), 0U);
  EXPECT_EQ(sim.live_segment_count(), 0U);
  EXPECT_EQ(upstream.usage().upstream_allocations + refused.load(), 8U * 200U * 2U);
}

}  // namespace
}  // namespace unimem
