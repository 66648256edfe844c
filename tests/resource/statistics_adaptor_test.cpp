#include "unimem/resource/statistics_adaptor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "resource/adaptor_test_doubles.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/fallback_adaptor.hpp"

namespace unimem {
namespace {

// One step of a scripted sequence: allocate `bytes` into slot `slot`, or free that slot (bytes == 0).
struct Step {
  std::size_t slot;
  std::size_t bytes;
};

// Runs `steps` through `stats` and returns what a plain model says the counters must be. `slots` keeps what
// is still live at the end.
MemoryStats run_and_model(StatisticsAdaptor& stats, const std::vector<Step>& steps,
                          std::vector<Allocation>& slots) {
  MemoryStats model;
  for (const Step& step : steps) {
    if (step.bytes != 0) {
      slots[step.slot] = stats.allocate(step.bytes);
      model.total_allocated_bytes += step.bytes;
      model.in_use_bytes += step.bytes;
      ++model.allocation_count;
      model.peak_bytes = std::max(model.peak_bytes, model.in_use_bytes);
    } else {
      model.in_use_bytes -= slots[step.slot].size;
      ++model.free_count;
      stats.deallocate(slots[step.slot]);
      slots[step.slot] = Allocation{};
    }
  }
  model.active_buffers = model.allocation_count - model.free_count;
  return model;
}

void free_live(StatisticsAdaptor& stats, const std::vector<Allocation>& slots) {
  for (const Allocation& a : slots) {
    if (a) stats.deallocate(a);
  }
}

void expect_own_counters(const MemoryStats& got, const MemoryStats& want) {
  EXPECT_EQ(got.total_allocated_bytes, want.total_allocated_bytes);
  EXPECT_EQ(got.in_use_bytes, want.in_use_bytes);
  EXPECT_EQ(got.peak_bytes, want.peak_bytes);
  EXPECT_EQ(got.allocation_count, want.allocation_count);
  EXPECT_EQ(got.free_count, want.free_count);
  EXPECT_EQ(got.active_buffers, want.active_buffers);
}

TEST(StatisticsAdaptor, ExactAfterAKnownSequence) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  test::BumpResource pool(sim, 0, MemoryKind::Device, 16 * MiB);
  StatisticsAdaptor stats(pool);
  const std::vector<Step> steps = {{0, 100}, {1, 2000}, {0, 0}, {2, 30000}, {3, 400}, {1, 0}, {4, 5000}};
  std::vector<Allocation> slots(8);
  const MemoryStats model = run_and_model(stats, steps, slots);
  const MemoryStats got = stats.stats();
  expect_own_counters(got, model);

  const ResourceUsage usage = pool.usage();
  EXPECT_EQ(got.pooled_bytes, usage.reserved_bytes - usage.in_use_bytes);
  EXPECT_EQ(got.cache_hits, usage.cache_hits);
  EXPECT_EQ(got.cache_misses, usage.cache_misses);
  EXPECT_EQ(got.cache_hits + got.cache_misses, model.allocation_count);
  EXPECT_DOUBLE_EQ(got.hit_rate(), static_cast<double>(usage.cache_hits) /
                                       static_cast<double>(usage.cache_hits + usage.cache_misses));
  EXPECT_EQ(got.upstream_allocations, usage.upstream_allocations);
  EXPECT_EQ(got.fallbacks, 0U);
  EXPECT_GT(got.pooled_bytes, 0U);
  free_live(stats, slots);
  EXPECT_EQ(stats.stats().in_use_bytes, 0U);
  EXPECT_EQ(stats.stats().peak_bytes, model.peak_bytes);
}

TEST(StatisticsAdaptor, PeakIsExactAcrossFoldsOfLargeAllocations) {
  // Allocations far above kFoldThreshold make the stripe fold into the shared count on every call.
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  StatisticsAdaptor stats(upstream);
  const std::vector<Step> steps = {{0, 3 * MiB}, {1, 5 * GiB}, {2, 300}, {1, 0},       {3, 7 * MiB},
                                   {4, 2 * GiB}, {0, 0},       {5, 1},   {6, 4 * GiB}, {2, 0}};
  std::vector<Allocation> slots(8);
  const MemoryStats model = run_and_model(stats, steps, slots);
  expect_own_counters(stats.stats(), model);
  EXPECT_EQ(stats.stats().upstream_allocations, model.allocation_count);
  EXPECT_EQ(stats.stats().pooled_bytes, 0U);
  free_live(stats, slots);
}

TEST(StatisticsAdaptor, ResetPeakStartsFromTheBytesInUse) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  StatisticsAdaptor stats(upstream);
  const Allocation a = stats.allocate(1000);
  const Allocation b = stats.allocate(5000);
  stats.deallocate(b);
  EXPECT_EQ(stats.stats().peak_bytes, 6000U);
  stats.reset_peak();
  EXPECT_EQ(stats.stats().peak_bytes, 1000U);
  const Allocation c = stats.allocate(200);
  EXPECT_EQ(stats.stats().peak_bytes, 1200U);
  stats.deallocate(a);
  stats.deallocate(c);
  stats.reset_peak();
  EXPECT_EQ(stats.stats().peak_bytes, 0U);
}

TEST(StatisticsAdaptor, HitRate) {
  EXPECT_EQ(MemoryStats{}.hit_rate(), 0.0);
  MemoryStats stats;
  stats.cache_hits = 3;
  stats.cache_misses = 1;
  EXPECT_DOUBLE_EQ(stats.hit_rate(), 0.75);
  stats.cache_hits = 0;
  EXPECT_EQ(stats.hit_rate(), 0.0);
}

TEST(StatisticsAdaptor, CountsFallbacksReportedUpstream) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  HostBackend host;
  BackendResource device(sim, 0, MemoryKind::Device);
  BackendResource host_memory(host, 0, MemoryKind::Host);
  FallbackAdaptor fallback(device, host_memory);
  StatisticsAdaptor stats(fallback);
  const Allocation a = stats.allocate(MiB);
  const Allocation b = stats.allocate(4096);  // the device is full
  EXPECT_EQ(stats.stats().fallbacks, 1U);
  EXPECT_EQ(stats.stats().upstream_allocations, 2U);
  stats.deallocate(a);
  stats.deallocate(b);
  EXPECT_EQ(stats.stats().upstream_deallocations, 2U);
}

TEST(StatisticsAdaptor, EightThreadsCountExactly) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  StatisticsAdaptor stats(upstream);
  constexpr int kThreads = 8;
  constexpr int kRounds = 300;
  std::vector<std::size_t> bytes_per_thread(kThreads, 0);
  std::vector<std::size_t> max_held_per_thread(kThreads, 0);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Allocation> held;
      std::size_t held_bytes = 0;
      for (int i = 0; i < kRounds; ++i) {
        // Small sizes: no stripe folds, so each thread's peak candidate is exactly its own bytes in use.
        const std::size_t bytes = 64 + static_cast<std::size_t>((t * 131 + i * 17) % 1000);
        held.push_back(stats.allocate(bytes));
        held_bytes += bytes;
        bytes_per_thread[t] += bytes;
        max_held_per_thread[t] = std::max(max_held_per_thread[t], held_bytes);
        if (held.size() == 4) {
          for (const Allocation& a : held) stats.deallocate(a);
          held.clear();
          held_bytes = 0;
        }
      }
      for (const Allocation& a : held) stats.deallocate(a);
    });
  }
  for (auto& thread : threads) thread.join();
  const MemoryStats got = stats.stats();
  std::size_t total = 0;
  std::size_t sum_of_maxima = 0;
  for (int t = 0; t < kThreads; ++t) {
    total += bytes_per_thread[t];
    sum_of_maxima += max_held_per_thread[t];
  }
  EXPECT_EQ(got.allocation_count, static_cast<std::uint64_t>(kThreads * kRounds));
  EXPECT_EQ(got.free_count, static_cast<std::uint64_t>(kThreads * kRounds));
  EXPECT_EQ(got.total_allocated_bytes, total);
  EXPECT_EQ(got.in_use_bytes, 0U);
  EXPECT_EQ(got.active_buffers, 0U);
  EXPECT_GE(got.peak_bytes, *std::max_element(max_held_per_thread.begin(), max_held_per_thread.end()));
  EXPECT_LE(got.peak_bytes, sum_of_maxima);
  EXPECT_EQ(got.upstream_allocations, got.upstream_deallocations);
}

TEST(StatisticsAdaptor, CrossThreadFreesKeepThePeakBounded) {
  // A producer allocates and a consumer frees: each stripe alone drifts without bound, the peak must not.
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  StatisticsAdaptor stats(upstream);
  constexpr std::size_t kChunk = 256 * KiB;
  constexpr std::size_t kQueueLimit = 4;
  constexpr int kItems = 400;  // 100 MiB in all, far past any stripe's fold threshold
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Allocation> queue;
  std::thread producer([&] {
    for (int i = 0; i < kItems; ++i) {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return queue.size() < kQueueLimit; });
      queue.push_back(stats.allocate(kChunk));  // under the lock: at most kQueueLimit live at once
      changed.notify_all();
    }
  });
  std::thread consumer([&] {
    for (int i = 0; i < kItems; ++i) {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return !queue.empty(); });
      stats.deallocate(queue.front());
      queue.pop_front();
      changed.notify_all();
    }
  });
  producer.join();
  consumer.join();
  const MemoryStats got = stats.stats();
  EXPECT_EQ(got.in_use_bytes, 0U);
  EXPECT_EQ(got.total_allocated_bytes, kItems * kChunk);
  const std::size_t true_peak_bound = kQueueLimit * kChunk;
  const auto slack =
      static_cast<std::size_t>(StatisticsAdaptor::kFoldThreshold) * (StatisticsAdaptor::kStripes - 1);
  EXPECT_GE(got.peak_bytes, kChunk);
  EXPECT_LE(got.peak_bytes, true_peak_bound + slack) << "the peak drifted with the stripes";
}

}  // namespace
}  // namespace unimem
