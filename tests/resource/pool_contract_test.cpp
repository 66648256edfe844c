// The contract every pool keeps, on every backend present (host, backed and unbacked simulated devices,
// OpenCL and CUDA device memory): a backend without a device reports SKIPPED with the reason. Each pool runs
// with its default options over a BackendResource. The expandable pool maps device memory itself rather than
// allocating from the upstream: what it holds is the backend's live bytes on the device, and it SKIPs where
// the device has no virtual memory.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "resource/pool_model.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {

struct BackendCase {
  const char* name;
  BackendKind kind;
  int device;
};

void PrintTo(const BackendCase& c, std::ostream* os) {
  *os << c.name;
}

namespace {

// Device 2 of the shared registry's simulated backend is the unbacked one.
constexpr BackendCase kBackendCases[] = {{"host", BackendKind::Host, 0},
                                         {"sim_backed", BackendKind::Simulated, 0},
                                         {"sim_unbacked", BackendKind::Simulated, 2},
                                         {"opencl", BackendKind::OpenCL, 0},
                                         {"cuda", BackendKind::Cuda, 0}};

// Where the allocation's alignment is measured (the rule of pool_support.hpp): the host address, else the
// native address, else (a handle that is no address, OpenCL's cl_mem) the offset alone.
std::uintptr_t alignment_base(const Allocation& a) {
  if (a.segment->host_ptr != nullptr) return reinterpret_cast<std::uintptr_t>(a.host_ptr());
  if (!a.segment->native_is_address) return a.offset;
  return reinterpret_cast<std::uintptr_t>(a.address());
}

class PoolContract : public ::testing::TestWithParam<std::tuple<PoolKind, BackendCase>> {
 protected:
  void SetUp() override {
    const BackendCase& c = std::get<1>(GetParam());
    std::string why;
    backend_ = backend_with_devices(c.kind, why);
    if (backend_ == nullptr) GTEST_SKIP() << why;
    if (c.device >= backend_->device_count()) GTEST_SKIP() << c.name << ": no device " << c.device;
    const auto* sim = dynamic_cast<const SimulatedBackend*>(backend_);
    holds_data_ = sim == nullptr || sim->spec(c.device).backed;
    upstream_ = std::make_unique<BackendResource>(*backend_, c.device, MemoryKind::Device);
    if (std::get<0>(GetParam()) == PoolKind::Expandable &&
        !backend_->device_info(c.device).capabilities.virtual_memory)
      GTEST_SKIP() << c.name << ": no virtual memory for the expandable pool";
    device_bytes_before_ = backend_->live_bytes(c.device);
    pool_ = make_pool(std::get<0>(GetParam()), *upstream_);
  }

  // The expandable pool, and the hybrid pool whose large half is one (over a device with virtual memory).
  [[nodiscard]] bool maps_itself() const {
    if (std::get<0>(GetParam()) == PoolKind::Expandable) return true;
    const auto* hybrid = dynamic_cast<const HybridPool*>(pool_.get());
    return hybrid != nullptr && hybrid->large_kind() == LargePoolKind::Expandable;
  }
  // What the pool holds of the device: upstream allocations, or for a pool that maps memory itself, the
  // bytes it added to the backend's live bytes.
  [[nodiscard]] std::size_t held() const {
    if (!maps_itself()) return upstream_->live_allocations();
    return backend_->live_bytes(pool_ != nullptr ? pool_->device().index : 0) - device_bytes_before_;
  }

  void TearDown() override {
    if (pool_ == nullptr) return;
    EXPECT_EQ(pool_->usage().in_use_bytes, 0U) << "the test leaked allocations";
    const int device = pool_->device().index;
    pool_.reset();
    EXPECT_EQ(upstream_->live_allocations(), 0U) << "the pool did not give everything back";
    EXPECT_EQ(backend_->live_bytes(device), device_bytes_before_) << "the device holds memory for the pool";
  }

  // Fills the range with a pattern derived from `seed`, through the host or the backend.
  void write(const Allocation& a, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(a.size);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 7);
    if (a.host_ptr() != nullptr) {
      std::memcpy(a.host_ptr(), bytes.data(), bytes.size());
    } else {
      backend_->copy(*a.segment, a.offset, Segment::host_view(bytes.data(), bytes.size()), 0, bytes.size());
    }
  }

  [[nodiscard]] bool holds_pattern(const Allocation& a, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(a.size);
    if (a.host_ptr() != nullptr) {
      std::memcpy(bytes.data(), a.host_ptr(), bytes.size());
    } else {
      backend_->copy(Segment::host_view(bytes.data(), bytes.size()), 0, *a.segment, a.offset, bytes.size());
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] != static_cast<std::uint8_t>(seed + i * 7)) return false;
    }
    return true;
  }

  Backend* backend_ = nullptr;
  std::size_t device_bytes_before_ = 0;
  bool holds_data_ = false;
  std::unique_ptr<BackendResource> upstream_;
  std::unique_ptr<MemoryResource> pool_;
};

TEST_P(PoolContract, HonoursAlignmentsAndStaysInsideItsSegment) {
  std::vector<Allocation> live;
  for (const std::size_t alignment :
       {std::size_t{1}, std::size_t{64}, std::size_t{256}, std::size_t{512}, std::size_t{4096}}) {
    for (const std::size_t bytes : {std::size_t{1}, std::size_t{255}, std::size_t{257}, std::size_t{4096},
                                    std::size_t{100000}, 3 * MiB}) {
      const Allocation a = pool_->allocate(bytes, nullptr, alignment);
      ASSERT_TRUE(a);
      EXPECT_EQ(a.size, bytes);
      EXPECT_EQ(a.backend(), backend_);
      EXPECT_EQ(a.device(), pool_->device());
      EXPECT_TRUE(is_aligned(alignment_base(a), std::max(alignment, kDefaultAlignment)))
          << bytes << " bytes aligned to " << alignment << " at offset " << a.offset;
      EXPECT_LE(a.offset + a.size, a.segment->size);
      live.push_back(a);
    }
  }
  for (const Allocation& a : live) pool_->deallocate(a);
}

TEST_P(PoolContract, RejectsZeroBadAlignmentsAndHugeRequests) {
  EXPECT_THROW((void)pool_->allocate(0), InvalidArgument);
  EXPECT_THROW((void)pool_->allocate(64, nullptr, 3), InvalidArgument);
  EXPECT_THROW((void)pool_->allocate(64, nullptr, 2 * MemoryResource::kMaxAlignment), InvalidArgument);
  EXPECT_THROW((void)pool_->allocate(std::size_t{1} << 50U), OutOfMemory);
  EXPECT_THROW((void)pool_->allocate(SIZE_MAX - 10), Error);
  EXPECT_EQ(pool_->usage().in_use_bytes, 0U);
  const Allocation a = pool_->allocate(1000);  // still works
  pool_->deallocate(a);
}

TEST_P(PoolContract, ManySizesNeverOverlapAndKeepTheirBytes) {
  std::mt19937 rng(7);
  std::vector<Allocation> live;
  for (int i = 0; i < 120; ++i) live.push_back(pool_->allocate(1 + rng() % (std::size_t{1} << (rng() % 21))));
  std::vector<Allocation> sorted = live;
  std::sort(sorted.begin(), sorted.end(), [](const Allocation& x, const Allocation& y) {
    return x.segment != y.segment ? x.segment->id < y.segment->id : x.offset < y.offset;
  });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].segment == sorted[i - 1].segment) {
      EXPECT_LE(sorted[i - 1].offset + sorted[i - 1].size, sorted[i].offset) << "ranges overlap";
    }
  }
  if (holds_data_) {
    for (std::size_t i = 0; i < live.size(); ++i) write(live[i], static_cast<std::uint8_t>(i));
    for (std::size_t i = 0; i < live.size(); ++i) {
      EXPECT_TRUE(holds_pattern(live[i], static_cast<std::uint8_t>(i)))
          << "allocation " << i << " was overwritten";
    }
  }
  for (const Allocation& a : live) pool_->deallocate(a);
}

TEST_P(PoolContract, FreedMemoryIsHandedOutAgain) {
  // The size-class pool caches up to its largest class only.
  const std::size_t large = std::get<0>(GetParam()) == PoolKind::SizeClass ? 512 * KiB : 2 * MiB;
  for (const std::size_t bytes : {std::size_t{3000}, large}) {
    const Allocation first = pool_->allocate(bytes);
    pool_->deallocate(first);
    const ResourceUsage before = pool_->usage();
    const Allocation again = pool_->allocate(bytes);
    const ResourceUsage after = pool_->usage();
    EXPECT_EQ(after.cache_hits, before.cache_hits + 1) << bytes;
    EXPECT_EQ(after.upstream_allocations, before.upstream_allocations) << bytes;
    EXPECT_EQ(again.segment, first.segment);
    EXPECT_EQ(again.offset, first.offset);
    pool_->deallocate(again);
  }
}

TEST_P(PoolContract, TrimGivesCachedMemoryBack) {
  std::vector<Allocation> live;
  for (const std::size_t bytes : {std::size_t{512}, std::size_t{70000}, 5 * MiB, std::size_t{512}}) {
    live.push_back(pool_->allocate(bytes));
  }
  for (const Allocation& a : live) pool_->deallocate(a);
  EXPECT_GT(held(), 0U) << "nothing cached: the test shows nothing";
  const std::size_t reserved = pool_->usage().reserved_bytes;
  EXPECT_EQ(pool_->trim(), reserved);
  EXPECT_EQ(held(), 0U);
  const ResourceUsage after = pool_->usage();
  EXPECT_EQ(after.reserved_bytes, 0U);
  // The expandable pool keeps its address ranges (no memory behind them) until it is destroyed.
  if (!maps_itself()) {
    EXPECT_EQ(after.upstream_allocations, after.upstream_deallocations);
  }
}

TEST_P(PoolContract, MisuseIsReportedAndChangesNothing) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const auto other = make_pool(std::get<0>(GetParam()), *upstream_);
  const Allocation mine = pool_->allocate(4000);
  const Allocation theirs = other->allocate(4000);
  const Allocation big = pool_->allocate(2 * MiB);
  pool_->deallocate(big);
  const ResourceUsage before = pool_->usage();

  pool_->deallocate(big);                                                                  // double free
  pool_->deallocate(theirs);                                                               // another pool's
  pool_->deallocate(Allocation{mine.segment, mine.offset + 256, mine.size, mine.cookie});  // moved
  pool_->deallocate(Allocation{mine.segment, mine.offset, mine.size, ~mine.cookie});       // forged cookie
  ASSERT_EQ(reports.size(), 4U);
  for (const std::string& report : reports)
    EXPECT_NE(report.find("not live here"), std::string::npos) << report;
  const ResourceUsage after = pool_->usage();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);

  pool_->deallocate(mine);
  other->deallocate(theirs);
  EXPECT_EQ(reports.size(), 4U) << "the real frees were reported: " << reports.back();
}

TEST_P(PoolContract, StreamOrderedUseOnTheDevicesStreams) {
  const auto a = backend_->create_stream(pool_->device().index);
  const auto b = backend_->create_stream(pool_->device().index);
  const Allocation first = pool_->allocate(5000, a.get());
  pool_->deallocate(first, a.get());
  const Allocation same_stream = pool_->allocate(5000, a.get());
  EXPECT_EQ(same_stream.offset, first.offset);
  EXPECT_EQ(same_stream.segment, first.segment);
  pool_->deallocate(same_stream, a.get());
  // Another stream (and the host) may take it once the free has completed, or after waiting for it.
  const Allocation other_stream = pool_->allocate(5000, b.get());
  pool_->deallocate(other_stream, b.get());
  const Allocation host_order = pool_->allocate(5000);
  pool_->deallocate(host_order);
  if (backend_->device_count() > 1) {
    const int other = pool_->device().index == 0 ? 1 : 0;
    const auto foreign = backend_->create_stream(other);
    EXPECT_THROW((void)pool_->allocate(64, foreign.get()), InvalidArgument);
  }
  a->synchronize();
  b->synchronize();
}

TEST_P(PoolContract, EightThreadsShareThePool) {
  constexpr int kThreads = 8;
  constexpr int kOperations = 400;
  std::atomic<int> corrupted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<std::pair<Allocation, std::uint8_t>> live;
      for (int i = 0; i < kOperations; ++i) {
        if (live.size() < 12 && rng() % 3 != 0) {
          const Allocation a = pool_->allocate(1 + rng() % (std::size_t{1} << (rng() % 19)));
          const auto seed = static_cast<std::uint8_t>(t * 31 + i);
          if (a.host_ptr() != nullptr) std::memset(a.host_ptr(), seed, a.size);
          live.emplace_back(a, seed);
        } else if (!live.empty()) {
          const std::size_t pick = rng() % live.size();
          const auto [a, seed] = live[pick];
          if (a.host_ptr() != nullptr) {
            for (std::size_t k = 0; k < a.size; ++k) {
              if (static_cast<std::uint8_t>(a.host_ptr()[k]) != seed) {
                ++corrupted;
                break;
              }
            }
          }
          pool_->deallocate(a);
          live[pick] = live.back();
          live.pop_back();
        }
      }
      for (const auto& [a, seed] : live) pool_->deallocate(a);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(corrupted.load(), 0) << "a live allocation was overwritten by another thread's";
  const ResourceUsage usage = pool_->usage();
  EXPECT_EQ(usage.in_use_bytes, 0U);
  if (maps_itself()) {
    EXPECT_EQ(usage.reserved_bytes, held());
  } else {
    EXPECT_EQ(usage.upstream_allocations - usage.upstream_deallocations, upstream_->live_allocations());
  }
}

TEST_P(PoolContract, DestroyedWithLiveAllocationsReportsAndGivesEverythingBack) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  (void)pool_->allocate(1000);
  (void)pool_->allocate(3 * MiB);
  pool_.reset();
  ASSERT_EQ(reports.size(), std::get<0>(GetParam()) == PoolKind::Hybrid ? 2U : 1U);
  EXPECT_NE(reports[0].find("live allocation(s)"), std::string::npos) << reports[0];
  EXPECT_EQ(upstream_->live_allocations(), 0U);
  EXPECT_EQ(backend_->live_bytes(std::get<1>(GetParam()).device), device_bytes_before_);
}

INSTANTIATE_TEST_SUITE_P(Pools, PoolContract,
                         ::testing::Combine(::testing::Values(PoolKind::SizeClass, PoolKind::Coalescing,
                                                              PoolKind::Hybrid, PoolKind::Expandable),
                                            ::testing::ValuesIn(kBackendCases)),
                         [](const auto& param_info) {
                           return std::string(to_string(std::get<0>(param_info.param))) + "_" +
                                  std::get<1>(param_info.param).name;
                         });

}  // namespace
}  // namespace unimem::test
