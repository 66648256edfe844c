// Misuse conformance over every resource chain the manager builds: double, stale, foreign, forged (cookie,
// offset, size) and after-trim frees. Each is reported exactly once, returns false, and leaves every counter
// of the chain (the pool's usage, the statistics, the limit, the leak check) as it was. Run under ASan by
// scripts/test, so a free that reads memory a trim gave back fails there.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

using test::kHost;
using test::kSim0;
using test::manager_options;
using test::whole_device_config;

// Everything a rejected free must leave alone, read through the manager and the chain itself.
struct ChainFigures {
  ResourceUsage usage;
  MemoryStats stats;
  std::size_t available = 0;
  std::uint64_t unnamed_live = 0;
  std::size_t unnamed_bytes = 0;

  friend bool operator==(const ChainFigures& a, const ChainFigures& b) {
    const auto usage = [](const ResourceUsage& u) {
      return std::tie(u.reserved_bytes, u.in_use_bytes, u.largest_free_range, u.upstream_allocations,
                      u.upstream_deallocations, u.cache_hits, u.cache_misses, u.fallbacks);
    };
    const auto stats = [](const MemoryStats& s) {
      return std::tie(s.in_use_bytes, s.pooled_bytes, s.peak_bytes, s.active_buffers, s.allocation_count,
                      s.free_count, s.fallbacks);
    };
    return usage(a.usage) == usage(b.usage) && stats(a.stats) == stats(b.stats) &&
           a.available == b.available && a.unnamed_live == b.unnamed_live &&
           a.unnamed_bytes == b.unnamed_bytes;
  }
};

std::ostream& operator<<(std::ostream& out, const ChainFigures& f) {
  return out << "{reserved " << f.usage.reserved_bytes << ", in use " << f.usage.in_use_bytes
             << ", stats in use " << f.stats.in_use_bytes << ", active " << f.stats.active_buffers
             << ", frees " << f.stats.free_count << ", available " << f.available << ", unnamed live "
             << f.unnamed_live << "}";
}

// tracking on/off, fallback on/off, pooled/unpooled, on a simulated device or the host.
using ChainParam = std::tuple<bool, bool, AllocationMode, DeviceId>;

class MisuseConformance : public ::testing::TestWithParam<ChainParam> {
 protected:
  MisuseConformance()
      : manager_(manager_options(whole_device_config()
                                     .with_tracking(std::get<0>(GetParam()))
                                     .with_cpu_fallback(std::get<1>(GetParam())),
                                 {"sim:256MiB"}, std::get<3>(GetParam()))),
        chain_(manager_.resource(std::get<2>(GetParam()), std::get<3>(GetParam()))) {}

  [[nodiscard]] ChainFigures figures() const {
    ChainFigures f;
    const DeviceId device = std::get<3>(GetParam());
    f.usage = chain_.usage();
    f.stats = manager_.stats(device);
    // The host's free memory is read from /proc/meminfo and moves with the rest of the machine.
    if (device.backend != BackendKind::Host) f.available = manager_.available_bytes(device);
    for (const UnnamedAllocations& u : manager_.check_leaks().unnamed) {
      if (u.device != device) continue;
      f.unnamed_live = u.count;
      f.unnamed_bytes = u.bytes;
    }
    return f;
  }

  // Frees `bad`, which the chain must reject: exactly one report, false, and no counter changed.
  void expect_rejected(const Allocation& bad, const char* what) {
    const ChainFigures before = figures();
    std::vector<std::string> reports;
    bool accepted = true;
    {
      const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
      accepted = chain_.deallocate(bad);
    }
    EXPECT_FALSE(accepted) << what;
    EXPECT_EQ(reports.size(), 1U) << what << (reports.empty() ? std::string() : ": " + reports.front());
    EXPECT_EQ(figures(), before) << what;
  }

  MemoryManager manager_;
  MemoryResource& chain_;
};

TEST_P(MisuseConformance, DoubleFree) {
  const Allocation keep = chain_.allocate(3000);
  const Allocation a = chain_.allocate(1000);
  ASSERT_TRUE(chain_.deallocate(a));
  expect_rejected(a, "double free");
  // The leak check still sees the buffer that is live, with or without tracking.
  EXPECT_FALSE(manager_.check_leaks().clean());
  EXPECT_TRUE(chain_.deallocate(keep));
  EXPECT_TRUE(manager_.check_leaks().clean()) << manager_.check_leaks().to_string();
}

TEST_P(MisuseConformance, StaleFreeAfterTheMemoryWasTrimmed) {
  for (const std::size_t bytes : {std::size_t{1000}, 3 * MiB}) {
    const Allocation a = chain_.allocate(bytes);
    ASSERT_TRUE(chain_.deallocate(a));
    (void)manager_.trim();
    expect_rejected(a, "stale free after trim");
  }
}

TEST_P(MisuseConformance, StaleFreeOfMemoryHandedOutAgain) {
  const Allocation a = chain_.allocate(1000);
  ASSERT_TRUE(chain_.deallocate(a));
  const Allocation again = chain_.allocate(1000);
  expect_rejected(a, "stale free of reused memory");
  EXPECT_TRUE(chain_.deallocate(again));
}

TEST_P(MisuseConformance, ForeignAllocation) {
  SimulatedBackend elsewhere({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource other(elsewhere, 0, MemoryKind::Device);
  const Allocation foreign = other.allocate(1000);
  expect_rejected(foreign, "foreign free");
  EXPECT_TRUE(other.deallocate(foreign));
}

TEST_P(MisuseConformance, ForgedCookieOffsetAndSize) {
  for (const std::size_t bytes : {std::size_t{1000}, 3 * MiB}) {
    const Allocation a = chain_.allocate(bytes);
    Allocation cookie = a;
    cookie.cookie ^= 0x5a5a5a5a5aULL;
    expect_rejected(cookie, "forged cookie");
    Allocation offset = a;
    offset.offset += 256;
    expect_rejected(offset, "forged offset");
    Allocation size = a;
    size.size += 1;
    expect_rejected(size, "forged size");
    EXPECT_TRUE(chain_.deallocate(a));
  }
}

TEST_P(MisuseConformance, ARejectedFreeDoesNotWidenTheLimit) {
  const DeviceId device = std::get<3>(GetParam());
  const Allocation a = chain_.allocate(MiB);
  ASSERT_TRUE(chain_.deallocate(a));
  // What the limit counts, not available_bytes(): on the host that also reads the system's free memory,
  // which other processes move.
  const std::size_t before = manager_.stats(device).in_use_bytes;
  expect_rejected(a, "double free");
  EXPECT_EQ(manager_.stats(device).in_use_bytes, before);
  // The limit still holds at exactly its size: what was live before the double free is all that is live.
  const Allocation b = chain_.allocate(MiB);
  EXPECT_EQ(manager_.stats(device).in_use_bytes, MiB);
  EXPECT_TRUE(chain_.deallocate(b));
}

std::string chain_name(const ::testing::TestParamInfo<ChainParam>& info) {
  const auto& [tracking, fallback, mode, device] = info.param;
  return std::string(tracking ? "tracked" : "untracked") + "_" + (fallback ? "fallback" : "nofallback") +
         "_" + (mode == AllocationMode::Pooled ? "pooled" : "unpooled") + "_" +
         (device.backend == BackendKind::Host ? "host" : "sim");
}

INSTANTIATE_TEST_SUITE_P(ManagerChains, MisuseConformance,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(AllocationMode::Pooled,
                                                              AllocationMode::Unpooled),
                                            ::testing::Values(kSim0, kHost)),
                         chain_name);

}  // namespace
}  // namespace unimem
