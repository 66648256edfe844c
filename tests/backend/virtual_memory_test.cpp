// Backend virtual memory (reserve_address_range, map, unmap, mapped_bytes) on every device that has it: the
// host, simulated devices with and without memory behind them, and CUDA where a device is present (SKIPPED
// with the backend's reason otherwise). OpenCL has none and says so.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

// Runs `body`, which must throw E with every one of `parts` in its message.
template <typename E>
void expect_error(const std::function<void()>& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "no exception; expected one naming " << (parts.empty() ? "" : parts.front());
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& part : parts)
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' in: " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

std::vector<std::uint8_t> pattern(std::size_t bytes, std::uint8_t seed) {
  std::vector<std::uint8_t> v(bytes);
  for (std::size_t i = 0; i < bytes; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 131U);
  return v;
}

// The devices under test: each case makes its own backend (so that live_bytes starts at zero) except CUDA,
// which comes from the registry all backend tests share.
struct VmCase {
  std::string name;
  bool holds_bytes;  // copy() and memset() reach mapped bytes
};

class VirtualMemoryTest : public ::testing::TestWithParam<VmCase> {
 protected:
  void SetUp() override {
    const std::string& name = GetParam().name;
    if (name == "host") {
      owned_ = std::make_unique<HostBackend>();
    } else if (name == "sim_unbacked" || name == "sim_backed") {
      owned_ = std::make_unique<SimulatedBackend>(std::vector<SimulatedDeviceSpec>{
          SimulatedDeviceSpec{.capacity_bytes = 64 * MiB, .backed = name == "sim_backed"}});
    } else {
      std::string why;
      backend_ = test::backend_with_devices(BackendKind::Cuda, why);
      if (backend_ == nullptr) GTEST_SKIP() << why;
      if (!backend_->device_info(0).capabilities.virtual_memory) {
        GTEST_SKIP() << backend_->device_info(0).name << " has no virtual memory management";
      }
    }
    if (owned_ != nullptr) backend_ = owned_.get();
    granule_ = backend_->device_info(0).virtual_memory_granule;
    baseline_segments_ = backend_->live_segment_count();
    baseline_bytes_ = backend_->live_bytes(0);
  }

  void TearDown() override {
    if (backend_ == nullptr) return;
    EXPECT_EQ(backend_->live_segment_count(), baseline_segments_) << "segments leaked";
    EXPECT_EQ(backend_->live_bytes(0), baseline_bytes_) << "mapped bytes leaked";
  }

  // live_bytes(0) above what the test started with.
  [[nodiscard]] std::size_t live() const { return backend_->live_bytes(0) - baseline_bytes_; }

  std::unique_ptr<Backend> owned_;
  Backend* backend_ = nullptr;
  std::size_t granule_ = 0;
  std::size_t baseline_segments_ = 0;
  std::size_t baseline_bytes_ = 0;
};

TEST_P(VirtualMemoryTest, ReportsTheCapabilityAndAPowerOfTwoGranule) {
  const DeviceInfo info = backend_->device_info(0);
  EXPECT_TRUE(info.capabilities.virtual_memory);
  ASSERT_GT(granule_, 0U);
  EXPECT_EQ(granule_ & (granule_ - 1), 0U) << granule_ << " is not a power of two";
}

TEST_P(VirtualMemoryTest, ReserveMapUnmapDeallocateRoundTrip) {
  const Segment range = backend_->reserve_address_range(0, 8 * granule_);
  EXPECT_EQ(range.size, 8 * granule_);
  EXPECT_EQ(range.kind, MemoryKind::Device);
  EXPECT_EQ(range.device, (DeviceId{backend_->kind(), 0}));
  EXPECT_TRUE(range.native_is_address);
  EXPECT_NE(range.native, nullptr);
  EXPECT_TRUE(backend_->owns(range));
  EXPECT_EQ(backend_->live_segment_count(), baseline_segments_ + 1);
  EXPECT_EQ(backend_->mapped_bytes(range), 0U);
  EXPECT_EQ(live(), 0U) << "a reservation alone holds no memory";

  backend_->map(range, granule_, 2 * granule_);
  EXPECT_EQ(backend_->mapped_bytes(range), 2 * granule_);
  EXPECT_EQ(live(), 2 * granule_);
  backend_->map(range, 5 * granule_, granule_);
  backend_->map(range, 0, granule_);
  EXPECT_EQ(backend_->mapped_bytes(range), 4 * granule_);
  EXPECT_EQ(live(), 4 * granule_);

  // Any granule of a multi-granule map can go alone.
  backend_->unmap(range, 2 * granule_, granule_);
  EXPECT_EQ(backend_->mapped_bytes(range), 3 * granule_);
  EXPECT_EQ(live(), 3 * granule_);
  backend_->unmap(range, granule_, granule_);
  backend_->unmap(range, 0, granule_);
  backend_->unmap(range, 5 * granule_, granule_);
  EXPECT_EQ(backend_->mapped_bytes(range), 0U);
  EXPECT_EQ(live(), 0U);

  // Unmapped granules map again.
  backend_->map(range, 0, 8 * granule_);
  EXPECT_EQ(live(), 8 * granule_);
  backend_->unmap(range, 0, 8 * granule_);
  backend_->deallocate(range);
  EXPECT_FALSE(backend_->owns(range));
}

TEST_P(VirtualMemoryTest, DeallocateReleasesGranulesStillMapped) {
  const Segment range = backend_->reserve_address_range(0, 6 * granule_);
  backend_->map(range, 0, 2 * granule_);
  backend_->map(range, 4 * granule_, granule_);
  EXPECT_EQ(live(), 3 * granule_);
  backend_->deallocate(range);
  EXPECT_EQ(live(), 0U);
  EXPECT_EQ(backend_->live_segment_count(), baseline_segments_);
}

TEST_P(VirtualMemoryTest, CopiesReachMappedBytes) {
  const Segment range = backend_->reserve_address_range(0, 4 * granule_);
  backend_->map(range, granule_, 2 * granule_);
  if (!GetParam().holds_bytes) {
    // Mapped, so past the mapping check, and then refused for want of memory to hold the bytes.
    EXPECT_THROW(backend_->memset(range, granule_, 0, 16), NotSupported);
    backend_->deallocate(range);
    return;
  }
  // Across the boundary of two granules, each with its own memory behind it.
  const std::size_t offset = 2 * granule_ - 100;
  const std::vector<std::uint8_t> in = pattern(1000, 7);
  backend_->copy(range, offset, Segment::host_view(in.data(), in.size()), 0, in.size());
  std::vector<std::uint8_t> out(in.size());
  backend_->copy(Segment::host_view(out.data(), out.size()), 0, range, offset, out.size());
  EXPECT_EQ(out, in);

  backend_->memset(range, offset + 10, 0xAB, 20);
  backend_->copy(Segment::host_view(out.data(), out.size()), 0, range, offset, out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint8_t want = i >= 10 && i < 30 ? 0xAB : in[i];
    ASSERT_EQ(out[i], want) << "byte " << i;
  }
  // Within the reservation, from one granule to the other.
  backend_->copy(range, granule_, range, offset, 100);
  std::vector<std::uint8_t> moved(100);
  backend_->copy(Segment::host_view(moved.data(), moved.size()), 0, range, granule_, moved.size());
  EXPECT_EQ(moved, std::vector<std::uint8_t>(out.begin(), out.begin() + 100));
  backend_->deallocate(range);
}

TEST_P(VirtualMemoryTest, CopyAndMemsetOverAnUnmappedGranuleThrowNamingIt) {
  const Segment range = backend_->reserve_address_range(0, 3 * granule_);
  backend_->map(range, 0, granule_);
  std::vector<std::uint8_t> host(64);
  const Segment view = Segment::host_view(host.data(), host.size());
  const std::string second = "granule at offset " + std::to_string(granule_);
  const std::string third = "granule at offset " + std::to_string(2 * granule_);
  expect_error<InvalidArgument>([&] { backend_->copy(range, granule_ - 32, view, 0, 64); },
                                {"copy destination", second});
  expect_error<InvalidArgument>([&] { backend_->copy(view, 0, range, granule_ - 32, 64); },
                                {"copy source", second});
  expect_error<InvalidArgument>([&] { backend_->memset(range, 2 * granule_, 0, 1); }, {"memset", third});
  expect_error<InvalidArgument>(
      [&] { backend_->prefetch(range, granule_, granule_, PrefetchTarget::Device); }, {"prefetch", second});
  backend_->unmap(range, 0, granule_);
  expect_error<InvalidArgument>([&] { backend_->memset(range, 0, 0, 1); },
                                {"memset", "granule at offset 0 "});
  backend_->deallocate(range);
}

TEST_P(VirtualMemoryTest, RejectsBadReservations) {
  const std::string device = to_string(DeviceId{backend_->kind(), 0});
  expect_error<InvalidArgument>([&] { (void)backend_->reserve_address_range(0, 0); },
                                {"reserve_address_range", "0 bytes", device});
  expect_error<InvalidArgument>([&] { (void)backend_->reserve_address_range(0, granule_ + 1); },
                                {std::to_string(granule_ + 1) + " bytes", std::to_string(granule_)});
  expect_error<InvalidArgument>([&] { (void)backend_->reserve_address_range(7, granule_); },
                                {"reserve_address_range", "7"});
  expect_error<InvalidArgument>([&] { (void)backend_->reserve_address_range(-1, granule_); }, {"-1"});
  EXPECT_EQ(backend_->live_segment_count(), baseline_segments_);
}

TEST_P(VirtualMemoryTest, RejectsBadSpansAndLeavesTheMappingAlone) {
  const Segment range = backend_->reserve_address_range(0, 4 * granule_);
  backend_->map(range, granule_, granule_);
  const std::string half = std::to_string(granule_ / 2);
  for (const bool mapping : {true, false}) {
    const std::string op = mapping ? "map" : "unmap";
    const auto call = [&](std::size_t offset, std::size_t bytes) {
      return [=, this] {
        if (mapping) {
          backend_->map(range, offset, bytes);
        } else {
          backend_->unmap(range, offset, bytes);
        }
      };
    };
    SCOPED_TRACE(op);
    expect_error<InvalidArgument>(call(0, 0), {"::" + op, "zero bytes"});
    expect_error<InvalidArgument>(call(granule_ / 2, granule_), {"offset " + half, "granule"});
    expect_error<InvalidArgument>(call(0, granule_ / 2), {"size " + half, "granule"});
    expect_error<InvalidArgument>(call(3 * granule_, 2 * granule_),
                                  {"range [" + std::to_string(3 * granule_), std::to_string(4 * granule_)});
    // Past the end of the address space: the offset must not wrap around.
    expect_error<InvalidArgument>(call(std::size_t{0} - granule_, 2 * granule_), {"lies outside"});
  }
  // Map takes only unmapped granules, unmap only mapped ones, all or nothing.
  expect_error<InvalidArgument>([&] { backend_->map(range, 0, 2 * granule_); },
                                {"granule at offset " + std::to_string(granule_), "mapped already"});
  expect_error<InvalidArgument>([&] { backend_->unmap(range, granule_, 2 * granule_); },
                                {"granule at offset " + std::to_string(2 * granule_), "is not mapped"});
  expect_error<InvalidArgument>([&] { backend_->unmap(range, 3 * granule_, granule_); },
                                {"granule at offset " + std::to_string(3 * granule_), "is not mapped"});
  EXPECT_EQ(backend_->mapped_bytes(range), granule_);
  EXPECT_EQ(live(), granule_);
  backend_->deallocate(range);
}

TEST_P(VirtualMemoryTest, MapAndUnmapTakeOnlyLiveReservations) {
  const Segment plain = backend_->allocate(0, MemoryKind::Device, granule_);
  for (const char* op : {"map", "unmap"}) {
    SCOPED_TRACE(op);
    const auto call = [&](const Segment& s) {
      return [&, op] {
        if (std::string(op) == "map") {
          backend_->map(s, 0, granule_);
        } else {
          backend_->unmap(s, 0, granule_);
        }
      };
    };
    expect_error<InvalidArgument>(
        call(plain), {std::string("::") + op, "#" + std::to_string(plain.id), "not a live address range"});
    const Segment freed = backend_->reserve_address_range(0, granule_);
    backend_->deallocate(freed);
    expect_error<InvalidArgument>(call(freed), {"#" + std::to_string(freed.id), "not a live address range"});
    expect_error<InvalidArgument>(call(Segment{}), {"not a live address range"});
  }
  expect_error<InvalidArgument>([&] { (void)backend_->mapped_bytes(plain); },
                                {"mapped_bytes", "not a live address range"});
  // A reservation is freed once, like any segment.
  const Segment range = backend_->reserve_address_range(0, granule_);
  backend_->deallocate(range);
  expect_error<InvalidArgument>([&] { backend_->deallocate(range); },
                                {"#" + std::to_string(range.id), "not live"});
  backend_->deallocate(plain);
}

TEST_P(VirtualMemoryTest, ConcurrentMapsAndUnmapsOfDisjointGranules) {
  constexpr std::size_t kThreads = 4;
  constexpr int kRounds = 50;
  const Segment range = backend_->reserve_address_range(0, 2 * kThreads * granule_);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::size_t mine = 2 * t * granule_;
      for (int round = 0; round < kRounds; ++round) {
        backend_->map(range, mine, 2 * granule_);
        backend_->unmap(range, mine + (round % 2 == 0 ? 0 : granule_), granule_);
        (void)backend_->mapped_bytes(range);
        (void)backend_->live_bytes(0);
        backend_->unmap(range, mine + (round % 2 == 0 ? granule_ : 0), granule_);
      }
      backend_->map(range, mine, granule_);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(backend_->mapped_bytes(range), kThreads * granule_);
  EXPECT_EQ(live(), kThreads * granule_);
  backend_->deallocate(range);
}

INSTANTIATE_TEST_SUITE_P(Devices, VirtualMemoryTest,
                         ::testing::Values(VmCase{"host", true}, VmCase{"sim_unbacked", false},
                                           VmCase{"sim_backed", true}, VmCase{"cuda", true}),
                         [](const ::testing::TestParamInfo<VmCase>& test) { return test.param.name; });

// Simulated devices: mapped bytes are capacity, exactly.

class SimulatedVirtualMemory : public ::testing::TestWithParam<bool> {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 64 * MiB, .backed = GetParam()}}};
  static constexpr std::size_t kGranule = SimulatedBackend::kGranule;
};

TEST_P(SimulatedVirtualMemory, MemoryInfoCountsMappedBytes) {
  EXPECT_EQ(sim_.device_info(0).virtual_memory_granule, 2 * MiB);
  const Segment range = sim_.reserve_address_range(0, 256 * MiB);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 64 * MiB) << "reserving more than the capacity costs nothing";
  sim_.map(range, 0, 6 * MiB);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 58 * MiB);
  EXPECT_EQ(sim_.memory_info(0).total_bytes, 64 * MiB);
  EXPECT_EQ(sim_.live_bytes(0), 6 * MiB);
  sim_.unmap(range, 2 * MiB, 2 * MiB);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 60 * MiB);
  sim_.deallocate(range);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 64 * MiB);
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

TEST_P(SimulatedVirtualMemory, MappingPastTheCapacityIsOutOfMemoryAndChangesNothing) {
  const Segment range = sim_.reserve_address_range(0, 128 * MiB);
  sim_.map(range, 0, 60 * MiB);
  try {
    sim_.map(range, 60 * MiB, 8 * MiB);
    FAIL() << "mapping past the capacity succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 8 * MiB);
    EXPECT_EQ(e.free_bytes(), 4 * MiB);
    EXPECT_EQ(e.total_bytes(), 64 * MiB);
    EXPECT_EQ(e.device(), "sim:0");
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(60 * MiB)), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(sim_.mapped_bytes(range), 60 * MiB);
  EXPECT_EQ(sim_.live_bytes(0), 60 * MiB);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 4 * MiB);
  // The failed granules stayed unmapped: mapping part of them now works, and unmapping makes room for the
  // rest.
  sim_.map(range, 60 * MiB, 4 * MiB);
  EXPECT_THROW(sim_.map(range, 64 * MiB, kGranule), OutOfMemory);
  sim_.unmap(range, 0, 8 * MiB);
  sim_.map(range, 64 * MiB, 8 * MiB);
  EXPECT_EQ(sim_.mapped_bytes(range), 64 * MiB);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 0U);
  // Allocations and mappings share the capacity.
  EXPECT_THROW((void)sim_.allocate(0, MemoryKind::Device, 1), OutOfMemory);
  sim_.deallocate(range);
  EXPECT_EQ(sim_.memory_info(0).free_bytes, 64 * MiB) << "deallocate gives the mapped capacity back";
  const Segment plain = sim_.allocate(0, MemoryKind::Device, 60 * MiB);
  const Segment again = sim_.reserve_address_range(0, 8 * MiB);
  EXPECT_THROW(sim_.map(again, 0, 6 * MiB), OutOfMemory);
  EXPECT_EQ(sim_.mapped_bytes(again), 0U);
  sim_.map(again, 0, 4 * MiB);
  sim_.deallocate(again);
  sim_.deallocate(plain);
}

TEST_P(SimulatedVirtualMemory, HugeReservationIsOutOfMemoryNotACrash) {
  const std::size_t huge = std::size_t{1} << 62U;
  EXPECT_THROW((void)sim_.reserve_address_range(0, huge), OutOfMemory);
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST(SimulatedAddressRanges, ReservationsOfUnbackedDevicesStartOnAGranule) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  const Segment odd = sim.allocate(0, MemoryKind::Device, 1000);
  const Segment range = sim.reserve_address_range(0, 4 * SimulatedBackend::kGranule);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(range.native) % SimulatedBackend::kGranule, 0U);
  EXPECT_GE(reinterpret_cast<std::uintptr_t>(range.native),
            reinterpret_cast<std::uintptr_t>(odd.native) + odd.size)
      << "a reservation never overlaps an allocation";
  EXPECT_FALSE(range.host_visible());
  sim.deallocate(range);
  sim.deallocate(odd);
}

INSTANTIATE_TEST_SUITE_P(Backing, SimulatedVirtualMemory, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& test) {
                           return test.param ? "backed" : "unbacked";
                         });

// Host: unmapped pages leave the resident set at once.

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size_pages = 0;
  std::size_t resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

void touch_every_page(std::byte* base, std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (std::size_t at = 0; at < bytes; at += page) {
    *static_cast<volatile std::byte*>(base + at) = std::byte{1};
  }
}

TEST(HostVirtualMemory, UnmappedPagesLeaveTheResidentSet) {
  HostBackend host;
  const Segment range = host.reserve_address_range(0, 256 * MiB);
  ASSERT_TRUE(range.host_visible());
  EXPECT_EQ(range.host_ptr, static_cast<std::byte*>(range.native));
  constexpr std::size_t kMapped = 64 * MiB;
  constexpr std::size_t kEnough = kMapped * 9 / 10;
  const std::size_t before = resident_bytes();
  host.map(range, 32 * MiB, kMapped);
  touch_every_page(range.host_ptr + 32 * MiB, kMapped);
  const std::size_t touched = resident_bytes();
  EXPECT_GE(touched, before + kEnough) << "touching mapped pages makes them resident";
  host.unmap(range, 32 * MiB, kMapped);
  const std::size_t after_unmap = resident_bytes();
  EXPECT_LE(after_unmap + kEnough, touched) << "resident " << touched << " -> " << after_unmap << " bytes";

  // The same again, released by deallocate() with the pages still mapped.
  host.map(range, 0, kMapped);
  touch_every_page(range.host_ptr, kMapped);
  const std::size_t touched_again = resident_bytes();
  EXPECT_GE(touched_again, after_unmap + kEnough);
  host.deallocate(range);
  const std::size_t after_free = resident_bytes();
  EXPECT_LE(after_free + kEnough, touched_again)
      << "resident " << touched_again << " -> " << after_free << " bytes";
}

TEST(HostVirtualMemory, RemappedPagesAreUsableAgain) {
  HostBackend host;
  const std::size_t page = host.device_info(0).virtual_memory_granule;
  EXPECT_EQ(page, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  const Segment range = host.reserve_address_range(0, 4 * page);
  host.map(range, page, page);
  std::memset(range.host_ptr + page, 0x5A, page);
  host.unmap(range, page, page);
  host.map(range, page, page);
  range.host_ptr[page] = std::byte{3};
  EXPECT_EQ(range.host_ptr[page], std::byte{3});
  host.deallocate(range);
}

TEST(HostVirtualMemory, StaleAccessToAnUnmappedPageFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        HostBackend host;
        const std::size_t page = host.device_info(0).virtual_memory_granule;
        const Segment range = host.reserve_address_range(0, 2 * page);
        host.map(range, 0, page);
        host.unmap(range, 0, page);
        *static_cast<volatile std::byte*>(range.host_ptr) = std::byte{1};
      },
      "");
}

// CUDA: physical memory runs out granule by granule.

TEST(CudaVirtualMemory, MapPastFreeMemoryIsOutOfMemoryAndUndone) {
  std::string why;
  Backend* cuda = test::backend_with_devices(BackendKind::Cuda, why);
  if (cuda == nullptr) GTEST_SKIP() << why;
  const DeviceInfo info = cuda->device_info(0);
  if (!info.capabilities.virtual_memory) GTEST_SKIP() << info.name << " has no virtual memory management";
  const std::size_t granule = info.virtual_memory_granule;
  const std::size_t before = cuda->live_bytes(0);
  // More than is free: the map fails part-way, after the driver has handed out many granules.
  const std::size_t bytes = (info.memory.free_bytes / granule + 64) * granule;
  const Segment range = cuda->reserve_address_range(0, bytes);
  try {
    cuda->map(range, 0, bytes);
    ADD_FAILURE() << "mapping " << bytes << " bytes with " << info.memory.free_bytes << " free succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), bytes);
    EXPECT_EQ(e.device(), "cuda:0");
    EXPECT_NE(std::string(e.what()).find("CUDA_ERROR_OUT_OF_MEMORY"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cuda->mapped_bytes(range), 0U);
  EXPECT_EQ(cuda->live_bytes(0), before);
  // What the failed call had mapped went back to the driver: a granule at the end maps now.
  cuda->map(range, bytes - granule, granule);
  const std::vector<std::uint8_t> in = pattern(256, 3);
  std::vector<std::uint8_t> out(in.size());
  cuda->copy(range, bytes - granule, Segment::host_view(in.data(), in.size()), 0, in.size());
  cuda->copy(Segment::host_view(out.data(), out.size()), 0, range, bytes - granule, out.size());
  EXPECT_EQ(out, in);
  cuda->deallocate(range);
  EXPECT_GE(cuda->memory_info(0).free_bytes + 64 * granule, info.memory.free_bytes)
      << "the device's memory came back";
}

// OpenCL has no virtual memory.

TEST(OpenCLVirtualMemory, ReserveIsNotSupportedNamingTheDevice) {
  std::string why;
  Backend* opencl = test::backend_with_devices(BackendKind::OpenCL, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  const DeviceInfo info = opencl->device_info(0);
  EXPECT_FALSE(info.capabilities.virtual_memory);
  EXPECT_EQ(info.virtual_memory_granule, 0U);
  const std::size_t before = opencl->live_segment_count();
  expect_error<NotSupported>(
      [&] { (void)opencl->reserve_address_range(0, 2 * MiB); },
      {"reserve_address_range", to_string(DeviceId{BackendKind::OpenCL, 0}), "no virtual memory"});
  EXPECT_EQ(opencl->live_segment_count(), before);
}

}  // namespace
}  // namespace unimem
