#include "unimem/resource/thread_safe_adaptor.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "resource/adaptor_test_doubles.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(ThreadSafeAdaptor, SerializesANonThreadSafeUpstream) {
  // BumpResource keeps plain counters and an unordered_map: without the adaptor this test is a data race
  // (TSan reports it) and the counts below come out wrong.
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  test::BumpResource pool(sim, 0, MemoryKind::Device, 64 * MiB);
  ThreadSafeAdaptor safe(pool);
  EXPECT_EQ(safe.device(), pool.device());
  EXPECT_EQ(&safe.backend(), &pool.backend());
  constexpr int kThreads = 8;
  constexpr int kRounds = 250;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const Allocation a = safe.allocate(64 + static_cast<std::size_t>(t));
        const Allocation b = safe.allocate(128);
        EXPECT_NE(a.offset, b.offset);
        if (i % 50 == 0) {
          (void)safe.usage();
          (void)safe.trim();
        }
        safe.deallocate(b);
        safe.deallocate(a);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(pool.allocate_calls(), static_cast<std::uint64_t>(2 * kThreads * kRounds));
  EXPECT_EQ(pool.deallocate_calls(), static_cast<std::uint64_t>(2 * kThreads * kRounds));
  EXPECT_EQ(pool.trim_calls(), static_cast<std::uint64_t>(kThreads * (kRounds / 50)));
  EXPECT_EQ(pool.live_count(), 0U);
  const ResourceUsage usage = safe.usage();
  EXPECT_EQ(usage.in_use_bytes, 0U);
  EXPECT_EQ(usage.cache_hits + usage.cache_misses, pool.allocate_calls());
}

}  // namespace
}  // namespace unimem
