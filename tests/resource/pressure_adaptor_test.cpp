#include "unimem/resource/pressure_adaptor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "resource/adaptor_test_doubles.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

using Transition = std::pair<PressureLevel, PressureLevel>;
using enum PressureLevel;

// Sizes that walk a 1 MiB device through every level: 50%, 65%, 85%, 97% full.
const std::vector<std::size_t> kClimb = {512 * KiB, 154 * KiB, 205 * KiB, 125 * KiB};

class PressureAdaptorTest : public ::testing::Test {
 protected:
  // Records every delivered transition.
  std::uint64_t record_transitions(PressureAdaptor& pressure) {
    return pressure.on_level_change([this](PressureLevel previous, PressureLevel current) {
      const std::lock_guard lock(mutex_);
      seen_.emplace_back(previous, current);
    });
  }
  std::vector<Transition> seen() {
    const std::lock_guard lock(mutex_);
    return seen_;
  }

  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}}};
  BackendResource upstream_{sim_, 0, MemoryKind::Device};
  std::mutex mutex_;
  std::vector<Transition> seen_;
};

TEST_F(PressureAdaptorTest, ClimbsAndFallsThroughEveryLevelOnce) {
  PressureAdaptor pressure(upstream_);  // capacity from the device: 1 MiB
  EXPECT_EQ(pressure.capacity(), MiB);
  EXPECT_EQ(pressure.level(), Low);
  (void)record_transitions(pressure);

  std::vector<Allocation> held;
  std::vector<PressureLevel> levels;
  for (std::size_t bytes : kClimb) {
    held.push_back(pressure.allocate(bytes));
    levels.push_back(pressure.level());
  }
  EXPECT_EQ(levels, (std::vector<PressureLevel>{Low, Medium, High, Critical}));
  EXPECT_NEAR(pressure.utilization(), static_cast<double>(996 * KiB) / static_cast<double>(MiB), 1e-12);
  while (!held.empty()) {
    pressure.deallocate(held.back());
    held.pop_back();
  }
  EXPECT_EQ(pressure.level(), Low);
  EXPECT_EQ(pressure.in_use_bytes(), 0U);
  const std::vector<Transition> expected = {{Low, Medium},    {Medium, High}, {High, Critical},
                                            {Critical, High}, {High, Medium}, {Medium, Low}};
  EXPECT_EQ(seen(), expected);
}

TEST_F(PressureAdaptorTest, CallsWithinALevelDeliverNothing) {
  PressureAdaptor pressure(upstream_);
  (void)record_transitions(pressure);
  std::vector<Allocation> held(10);
  for (Allocation& a : held) a = pressure.allocate(KiB);
  for (const Allocation& a : held) pressure.deallocate(a);
  EXPECT_TRUE(seen().empty());
}

TEST_F(PressureAdaptorTest, AJumpIsOneTransition) {
  PressureAdaptor pressure(upstream_);
  (void)record_transitions(pressure);
  const Allocation a = pressure.allocate(1000 * KiB);
  EXPECT_EQ(pressure.level(), Critical);
  pressure.deallocate(a);
  EXPECT_EQ(seen(), (std::vector<Transition>{{Low, Critical}, {Critical, Low}}));
}

TEST_F(PressureAdaptorTest, RemovedCallbacksHearNothingMore) {
  PressureAdaptor pressure(upstream_);
  int calls = 0;
  const std::uint64_t id = pressure.on_level_change([&](PressureLevel, PressureLevel) { ++calls; });
  const Allocation a = pressure.allocate(700 * KiB);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(pressure.remove_callback(id));
  EXPECT_FALSE(pressure.remove_callback(id));
  EXPECT_FALSE(pressure.remove_callback(id + 100));
  pressure.deallocate(a);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pressure.level(), Low) << "the level moves with or without subscribers";
  EXPECT_THROW((void)pressure.on_level_change(nullptr), InvalidArgument);
}

TEST_F(PressureAdaptorTest, CallbacksMayAllocateAndFreeThroughTheAdaptor) {
  PressureAdaptor pressure(upstream_);
  (void)record_transitions(pressure);
  // On Critical, a cache "evicts": the callback frees what it holds, which takes the level back down.
  Allocation cache = pressure.allocate(150 * KiB);
  (void)pressure.on_level_change([&](PressureLevel, PressureLevel current) {
    if (current == Critical && cache) {
      pressure.deallocate(cache);
      cache = Allocation{};
    }
  });
  const Allocation big = pressure.allocate(850 * KiB);  // 98% full, 83% once the cache is gone
  EXPECT_FALSE(cache);
  EXPECT_EQ(pressure.level(), High);
  const std::vector<Transition> expected = {{Low, Critical}, {Critical, High}};
  EXPECT_EQ(seen(), expected);
  pressure.deallocate(big);
}

TEST_F(PressureAdaptorTest, TrimsTheUpstreamWhenEnteringHighOrCritical) {
  for (const bool trim_on_high : {false, true}) {
    SCOPED_TRACE(trim_on_high ? "trim_on_high" : "no trim");
    test::BumpResource pool(sim_, 0, MemoryKind::Device, MiB);
    PressureAdaptor pressure(pool, PressureOptions{.capacity_bytes = MiB, .trim_on_high = trim_on_high});
    std::vector<Allocation> held;
    std::vector<std::uint64_t> trims_after_each;
    for (std::size_t bytes : kClimb) {
      held.push_back(pressure.allocate(bytes));
      trims_after_each.push_back(pool.trim_calls());
    }
    const std::vector<std::uint64_t> expected =
        trim_on_high ? std::vector<std::uint64_t>{0, 0, 1, 2} : std::vector<std::uint64_t>{0, 0, 0, 0};
    EXPECT_EQ(trims_after_each, expected);
    for (const Allocation& a : held) pressure.deallocate(a);
    EXPECT_EQ(pool.trim_calls(), expected.back()) << "falling never trims";
  }
}

TEST_F(PressureAdaptorTest, ValidatesOptions) {
  EXPECT_THROW(PressureAdaptor(upstream_, PressureOptions{.medium = 0.9, .high = 0.8}), InvalidArgument);
  EXPECT_THROW(PressureAdaptor(upstream_, PressureOptions{.medium = 0.0}), InvalidArgument);
  EXPECT_THROW(PressureAdaptor(upstream_, PressureOptions{.critical = 1.5}), InvalidArgument);
  EXPECT_THROW(PressureAdaptor(upstream_, PressureOptions{.high = 0.95, .critical = 0.95}), InvalidArgument);
  const PressureAdaptor custom(
      upstream_, PressureOptions{.medium = 0.1, .high = 0.2, .critical = 0.3, .capacity_bytes = 1000});
  EXPECT_EQ(custom.capacity(), 1000U);
  EXPECT_EQ(custom.level_for(99), Low);
  EXPECT_EQ(custom.level_for(100), Medium);
  EXPECT_EQ(custom.level_for(200), High);
  EXPECT_EQ(custom.level_for(300), Critical);
  EXPECT_EQ(custom.level_for(5000), Critical);
}

TEST(PressureLevel, Names) {
  EXPECT_EQ(to_string(Low), "low");
  EXPECT_EQ(to_string(Medium), "medium");
  EXPECT_EQ(to_string(High), "high");
  EXPECT_EQ(to_string(Critical), "critical");
}

TEST_F(PressureAdaptorTest, ConcurrentTransitionsFormOneChain) {
  SimulatedBackend big({SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}});
  BackendResource upstream(big, 0, MemoryKind::Device);
  PressureAdaptor pressure(upstream, PressureOptions{.capacity_bytes = 1536 * KiB});
  std::atomic<int> deliveries{0};
  std::atomic<int> bad{0};
  (void)pressure.on_level_change([&](PressureLevel previous, PressureLevel current) {
    deliveries.fetch_add(1);
    if (previous == current) bad.fetch_add(1);
  });
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        // One thread alone moves the level between Low and Medium; two or more at once reach Critical.
        const Allocation a = pressure.allocate(512 * KiB);
        const Allocation b = pressure.allocate(512 * KiB);
        pressure.deallocate(a);
        pressure.deallocate(b);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(pressure.in_use_bytes(), 0U);
  EXPECT_EQ(pressure.level(), Low) << "the last change must have been delivered";
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(deliveries.load(), 0);
  EXPECT_EQ(big.live_segment_count(), 0U);
}

}  // namespace
}  // namespace unimem
