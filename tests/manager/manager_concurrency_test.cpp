// The manager from several threads at once: named and unnamed buffers, pressure transitions. Run under TSan.

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem {
namespace {

using test::kHost;
using test::kSim0;
using test::manager_options;
using test::whole_device_config;

constexpr int kThreads = 8;

template <typename Work>
void run_threads(Work work) {
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  for (std::thread& thread : threads) thread.join();
}

TEST(ManagerConcurrency, NamedBuffersFromEightThreads) {
  MemoryManager manager(manager_options(whole_device_config()));
  constexpr int kPerThread = 40;
  std::atomic<int> mismatches{0};
  run_threads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string name = "t" + std::to_string(t) + "_" + std::to_string(i);
      const std::vector<int> values(32, t * 1000 + i);
      manager.named().create<int>(name, 32).copy_from_host(values);
      const BufferView<int> grown = manager.named().grow<int>(name, 40);
      std::vector<int> back(32);
      grown.copy_to_host(back);
      if (back != values || manager.named().get<int>(name).size() != 48) mismatches.fetch_add(1);
      if (i % 2 == 0) manager.named().free(name);
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(manager.named().count(), static_cast<std::size_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(manager.named().allocation_count(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(manager.named().resize_count(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(manager.named().bytes(), manager.named().count() * 48 * sizeof(int));
  EXPECT_EQ(manager.check_leaks().named.size(), manager.named().count());
  EXPECT_TRUE(manager.check_leaks().unnamed.empty());
  test::free_named_buffers(manager);
}

TEST(ManagerConcurrency, OneNameTakenByExactlyOneOfEightThreads) {
  MemoryManager manager(manager_options(whole_device_config()));
  std::atomic<int> winners{0};
  std::atomic<int> refused{0};
  run_threads([&](int) {
    try {
      (void)manager.named().create<float>("shared", 64);
      winners.fetch_add(1);
    } catch (const InvalidArgument&) {
      refused.fetch_add(1);
    }
  });
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(manager.named().count(), 1U);
  test::free_named_buffers(manager);
}

TEST(ManagerConcurrency, UnnamedBuffersFromEightThreads) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:1GiB"}));
  constexpr int kPerThread = 200;
  run_threads([&](int t) {
    std::vector<Buffer<std::byte>> held;
    for (int i = 0; i < kPerThread; ++i) {
      const auto bytes = static_cast<std::size_t>(64 + ((i * 37 + t * 11) % 64) * 256);
      held.push_back(manager.allocate<std::byte>(bytes, AllocationMode::Pooled, i % 2 == 0 ? kHost : kSim0));
      if (held.size() > 8) held.erase(held.begin());
    }
  });
  const MemoryStats all = manager.stats();
  EXPECT_EQ(all.allocation_count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(all.free_count, all.allocation_count);
  EXPECT_EQ(all.in_use_bytes, 0U);
  EXPECT_TRUE(manager.check_leaks().clean());
}

TEST(ManagerConcurrency, PressureTransitionsFromEightThreadsEndWhereTheBytesAre) {
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:1GiB"}));
  std::mutex mutex;
  std::vector<PressureLevel> seen;
  (void)manager.on_pressure_change([&](DeviceId device, PressureLevel, PressureLevel current) {
    if (device != kSim0) return;
    const std::lock_guard lock(mutex);
    seen.push_back(current);
  });
  run_threads([&](int) {
    for (int i = 0; i < 20; ++i) {
      // Eight threads holding 100 MiB each reach Medium (60%) and above.
      const Buffer<std::byte> chunk = manager.allocate<std::byte>(100 * MiB, AllocationMode::Pooled, kSim0);
      const Buffer<std::byte> small = manager.allocate<std::byte>(4 * KiB, AllocationMode::Pooled, kSim0);
    }
  });
  // Transitions caused by different threads may be delivered in any order, so only the end state is fixed.
  EXPECT_EQ(manager.pressure(kSim0), PressureLevel::Low);
  EXPECT_EQ(manager.stats(kSim0).in_use_bytes, 0U);
  const std::lock_guard lock(mutex);
  for (const PressureLevel level : seen) EXPECT_LE(level, PressureLevel::Critical);
}

}  // namespace
}  // namespace unimem
