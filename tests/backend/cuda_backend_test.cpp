// CUDA-specific behaviour beyond the conformance suite. Without the backend compiled in, one test reports
// SKIPPED; compiled in without a device, only the no-device test runs and the rest report SKIPPED with the
// reason the backend gives.

#include <gtest/gtest.h>

#include "unimem/config.hpp"

#if !UNIMEM_HAS_CUDA

TEST(CudaBackend, NotCompiledIn) {
  GTEST_SKIP() << "CUDA backend not compiled in";
}

#else

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

std::vector<std::uint8_t> pattern(std::size_t bytes, std::uint8_t seed) {
  std::vector<std::uint8_t> v(bytes);
  for (std::size_t i = 0; i < bytes; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 31U);
  return v;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    cuda_ = test::backend_with_devices(BackendKind::Cuda, why);
    if (cuda_ == nullptr) GTEST_SKIP() << why;
    baseline_segments_ = cuda_->live_segment_count();
  }

  void TearDown() override {
    if (cuda_ != nullptr) {
      EXPECT_EQ(cuda_->live_segment_count(), baseline_segments_) << "segments leaked";
    }
  }

  void write(const Segment& s, std::size_t offset, const std::vector<std::uint8_t>& bytes) {
    cuda_->copy(s, offset, Segment::host_view(bytes.data(), bytes.size()), 0, bytes.size());
  }

  [[nodiscard]] std::vector<std::uint8_t> read(const Segment& s, std::size_t offset, std::size_t bytes) {
    std::vector<std::uint8_t> out(bytes);
    cuda_->copy(Segment::host_view(out.data(), out.size()), 0, s, offset, bytes);
    return out;
  }

  Backend* cuda_ = nullptr;
  std::size_t baseline_segments_ = 0;
};

// Runs with or without a device: the backend is always present once compiled in.
TEST(CudaBackend, ReportsDevicesOrWhyThereAreNone) {
  Backend* cuda = test::shared_registry().find(BackendKind::Cuda);
  ASSERT_NE(cuda, nullptr) << "compiled in, so the registry must hold it";
  const BackendStatus status = cuda->status();
  EXPECT_TRUE(status.compiled_in);
  ASSERT_FALSE(status.detail.empty());
  if (cuda->device_count() == 0) {
    EXPECT_FALSE(status.available) << status.detail;
    EXPECT_NE(lowercase(status.detail).find("cuda"), std::string::npos) << status.detail;
    EXPECT_THROW((void)cuda->allocate(0, MemoryKind::Device, 1), InvalidArgument);
    EXPECT_THROW((void)cuda->device_info(0), InvalidArgument);
    EXPECT_THROW((void)cuda->create_stream(0), InvalidArgument);
    EXPECT_EQ(cuda->live_segment_count(), 0U);
  } else {
    EXPECT_TRUE(status.available) << status.detail;
    EXPECT_NE(status.detail.find("device"), std::string::npos) << status.detail;
    EXPECT_THROW((void)cuda->device_info(cuda->device_count()), InvalidArgument);
  }
}

TEST_F(CudaBackendTest, DescribesEachDevice) {
  for (int d = 0; d < cuda_->device_count(); ++d) {
    const DeviceInfo info = cuda_->device_info(d);
    EXPECT_EQ(info.id, (DeviceId{BackendKind::Cuda, d}));
    EXPECT_FALSE(info.name.empty());
    EXPECT_EQ(info.vendor, "NVIDIA");
    EXPECT_NE(info.driver.find("runtime"), std::string::npos) << info.driver;
    EXPECT_FALSE(info.memory.estimated) << "cudaMemGetInfo is exact";
    EXPECT_GT(info.memory.total_bytes, 0U);
    EXPECT_LE(info.memory.free_bytes, info.memory.total_bytes);
    EXPECT_EQ(info.max_allocation_bytes, info.memory.total_bytes);
    EXPECT_TRUE(info.capabilities.device_memory);
    EXPECT_TRUE(info.capabilities.pinned_host);
    EXPECT_EQ(std::count(info.peers.begin(), info.peers.end(), d), 0) << "a device is not its own peer";
    for (int peer : info.peers) {
      EXPECT_GE(peer, 0);
      EXPECT_LT(peer, cuda_->device_count());
    }
  }
}

TEST_F(CudaBackendTest, AllocatesAndFreesEachKind) {
  for (MemoryKind kind : kAllMemoryKinds) {
    SCOPED_TRACE(std::string(to_string(kind)));
    if (!cuda_->supports(0, kind)) {
      EXPECT_THROW((void)cuda_->allocate(0, kind, 4096), NotSupported);
      continue;
    }
    const std::size_t live_before = cuda_->live_bytes(0);
    const Segment s = cuda_->allocate(0, kind, 4097);
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_aligned(s.native, kDefaultAlignment));
    EXPECT_EQ(s.host_visible(), kind != MemoryKind::Device)
        << "only device memory is out of the host's reach";
    if (s.host_visible()) {
      EXPECT_EQ(s.host_ptr, s.native);
    }
    EXPECT_EQ(cuda_->live_bytes(0), live_before + 4097);
    cuda_->deallocate(s);
    EXPECT_THROW(cuda_->deallocate(s), InvalidArgument) << "double free";
  }
}

TEST_F(CudaBackendTest, RoundTripsOddCountsAndOffsetsThroughDeviceMemory) {
  for (std::size_t count : {1U, 3U, 1023U}) {
    for (std::size_t offset : {0U, 1U, 7U, 255U}) {
      SCOPED_TRACE("count " + std::to_string(count) + " offset " + std::to_string(offset));
      const std::size_t total = offset + count + 9;
      const Segment dev = cuda_->allocate(0, MemoryKind::Device, total);
      cuda_->memset(dev, 0, 0xEE, total);
      const auto data = pattern(count, static_cast<std::uint8_t>(count + offset));
      write(dev, offset, data);
      cuda_->memset(dev, offset + count, 0x5C, 1);  // one byte right after the data
      const auto whole = read(dev, 0, total);
      const auto at = whole.begin() + static_cast<std::ptrdiff_t>(offset);
      EXPECT_TRUE(std::all_of(whole.begin(), at, [](std::uint8_t b) { return b == 0xEE; }));
      EXPECT_TRUE(std::equal(data.begin(), data.end(), at));
      EXPECT_EQ(whole[offset + count], 0x5C);
      EXPECT_TRUE(std::all_of(at + static_cast<std::ptrdiff_t>(count) + 1, whole.end(),
                              [](std::uint8_t b) { return b == 0xEE; }));
      cuda_->deallocate(dev);
    }
  }
}

TEST_F(CudaBackendTest, OverlappingCopyWithinDeviceMemoryIsAMove) {
  constexpr std::size_t kBytes = 1000;
  const Segment dev = cuda_->allocate(0, MemoryKind::Device, kBytes + 3);
  const auto data = pattern(kBytes, 9);
  // Down by 3, then up by 3: both directions of an overlap.
  for (std::size_t from : {std::size_t{3}, std::size_t{0}}) {
    const std::size_t to = 3 - from;
    SCOPED_TRACE("from offset " + std::to_string(from) + " to offset " + std::to_string(to));
    write(dev, from, data);
    cuda_->copy(dev, to, dev, from, kBytes);
    EXPECT_EQ(read(dev, to, kBytes), data);
  }
  cuda_->deallocate(dev);
}

TEST_F(CudaBackendTest, StreamOrderedAllocationCopyAndFree) {
  auto stream = cuda_->create_stream(0);
  constexpr std::size_t kBytes = 3 * MiB + 1;
  const auto data = pattern(kBytes, 3);
  std::vector<std::uint8_t> out(kBytes, 0);
  const Segment dev = cuda_->allocate(0, MemoryKind::Device, kBytes, stream.get());
  cuda_->memset(dev, 0, 0x77, kBytes, stream.get());
  // The source must outlive the asynchronous copy, so it is `data` itself, not a temporary.
  cuda_->copy(dev, 1, Segment::host_view(data.data(), kBytes - 1), 0, kBytes - 1, stream.get());
  cuda_->copy(Segment::host_view(out.data(), kBytes), 0, dev, 0, kBytes, stream.get());
  cuda_->deallocate(dev, stream.get());
  stream->synchronize();
  EXPECT_TRUE(stream->query());
  EXPECT_EQ(out[0], 0x77) << "memset was not ordered before the copy";
  EXPECT_TRUE(std::equal(data.begin(), data.end() - 1, out.begin() + 1));
}

TEST_F(CudaBackendTest, PinnedAndManagedMemoryAreReachableThroughHostPtr) {
  for (MemoryKind kind : {MemoryKind::PinnedHost, MemoryKind::Unified}) {
    SCOPED_TRACE(std::string(to_string(kind)));
    if (!cuda_->supports(0, kind)) continue;
    constexpr std::size_t kBytes = 4099;
    const Segment s = cuda_->allocate(0, kind, kBytes);
    ASSERT_NE(s.host_ptr, nullptr);
    const auto data = pattern(kBytes, 5);
    std::copy(data.begin(), data.end(), reinterpret_cast<std::uint8_t*>(s.host_ptr));
    const Segment dev = cuda_->allocate(0, MemoryKind::Device, kBytes);
    cuda_->copy(dev, 0, s, 0, kBytes);
    EXPECT_EQ(read(dev, 0, kBytes), data) << "the device did not see what the host wrote";
    cuda_->memset(dev, 0, 0x42, kBytes);
    cuda_->copy(s, 0, dev, 0, kBytes);
    EXPECT_TRUE(std::all_of(s.host_ptr, s.host_ptr + kBytes, [](std::byte b) {
      return b == std::byte{0x42};
    })) << "the host did not see what the device wrote";
    cuda_->memset(s, 1, 0x13, 2);
    EXPECT_EQ(s.host_ptr[0], std::byte{0x42});
    EXPECT_EQ(s.host_ptr[1], std::byte{0x13});
    EXPECT_EQ(s.host_ptr[2], std::byte{0x13});
    EXPECT_EQ(s.host_ptr[3], std::byte{0x42});
    cuda_->deallocate(dev);
    cuda_->deallocate(s);
  }
}

TEST_F(CudaBackendTest, CopiesFromAnotherBackendsHostVisibleMemory) {
  Backend& host = test::shared_registry().host();
  constexpr std::size_t kBytes = 1023;
  const Segment h = host.allocate(0, MemoryKind::Device, kBytes);
  const auto data = pattern(kBytes, 11);
  std::copy(data.begin(), data.end(), reinterpret_cast<std::uint8_t*>(h.host_ptr));
  const Segment dev = cuda_->allocate(0, MemoryKind::Device, kBytes);
  cuda_->copy(dev, 0, h, 0, kBytes);
  EXPECT_EQ(read(dev, 0, kBytes), data);
  cuda_->memset(h, 0, 0, kBytes);
  cuda_->copy(h, 0, dev, 0, kBytes);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), reinterpret_cast<const std::uint8_t*>(h.host_ptr)));
  cuda_->deallocate(dev);
  host.deallocate(h);
}

TEST_F(CudaBackendTest, EventsTimeAndOrderStreams) {
  auto first = cuda_->create_stream(0);
  auto second = cuda_->create_stream(0);
  auto start = cuda_->create_event(0);
  auto end = cuda_->create_event(0);
  constexpr std::size_t kBytes = 256 * MiB;
  const Segment dev = cuda_->allocate(0, MemoryKind::Device, kBytes);
  std::vector<std::uint8_t> out(kBytes, 0);
  cuda_->memset(dev, 0, 0, kBytes);
  start->record(*first);
  cuda_->memset(dev, 0, 0x3D, kBytes, first.get());
  end->record(*first);
  // The second stream reads only after the first stream's memset, which only the event orders.
  end->make_wait(*second);
  cuda_->copy(Segment::host_view(out.data(), kBytes), 0, dev, 0, kBytes, second.get());
  second->synchronize();
  EXPECT_TRUE(end->query());
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0x3D; }));
  const double ms = end->elapsed_ms_since(*start);
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 60'000.0);
  cuda_->deallocate(dev);
}

TEST_F(CudaBackendTest, FreeMemoryDropsAfterALargeAllocation) {
  const MemoryInfo before = cuda_->memory_info(0);
  const std::size_t bytes = std::min<std::size_t>(512 * MiB, before.free_bytes / 2);
  const Segment dev = cuda_->allocate(0, MemoryKind::Device, bytes);
  const MemoryInfo during = cuda_->memory_info(0);
  EXPECT_EQ(during.total_bytes, before.total_bytes);
  EXPECT_LE(during.free_bytes + bytes / 2, before.free_bytes) << "allocating " << bytes << " bytes";
  cuda_->deallocate(dev);
  EXPECT_GE(cuda_->memory_info(0).free_bytes, during.free_bytes + bytes / 2) << "freeing returned nothing";
}

TEST_F(CudaBackendTest, CopiesBetweenTwoDevices) {
  if (cuda_->device_count() < 2) {
    GTEST_SKIP() << "needs two CUDA devices; this machine has " << cuda_->device_count();
  }
  constexpr std::size_t kBytes = 1023 * 1023;
  const auto data = pattern(kBytes, 17);
  const Segment a = cuda_->allocate(0, MemoryKind::Device, kBytes);
  const Segment b = cuda_->allocate(1, MemoryKind::Device, kBytes + 1);
  write(a, 0, data);
  cuda_->copy(b, 1, a, 0, kBytes);
  EXPECT_EQ(read(b, 1, kBytes), data);
  cuda_->memset(a, 0, 0, kBytes);
  auto stream = cuda_->create_stream(1);
  cuda_->copy(a, 0, b, 1, kBytes, stream.get());
  stream->synchronize();
  EXPECT_EQ(read(a, 0, kBytes), data);
  cuda_->deallocate(a);
  cuda_->deallocate(b);
}

TEST_F(CudaBackendTest, ReportsOutOfMemoryWithTheRequest) {
  const MemoryInfo memory = cuda_->memory_info(0);
  // More than is free but no more than the device holds, so the request reaches cudaMalloc and fails there.
  const std::size_t request = memory.free_bytes + (memory.total_bytes - memory.free_bytes) / 2 + 1;
  ASSERT_LE(request, cuda_->device_info(0).max_allocation_bytes);
  try {
    const Segment s = cuda_->allocate(0, MemoryKind::Device, request);
    cuda_->deallocate(s);
    FAIL() << "allocating " << request << " bytes with " << memory.free_bytes << " free succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), request);
    EXPECT_EQ(e.device(), "cuda:0");
    EXPECT_EQ(e.total_bytes(), memory.total_bytes);
    EXPECT_NE(std::string(e.what()).find("cudaMalloc"), std::string::npos) << e.what();
  }
  // The failure left nothing behind: the next allocation works.
  const Segment small = cuda_->allocate(0, MemoryKind::Device, 64);
  cuda_->deallocate(small);
}

TEST_F(CudaBackendTest, RejectsStreamsOfOtherBackends) {
  auto host_stream = test::shared_registry().host().create_stream(0);
  EXPECT_THROW((void)cuda_->allocate(0, MemoryKind::Device, 64, host_stream.get()), InvalidArgument);
  auto event = cuda_->create_event(0);
  EXPECT_THROW(event->record(*host_stream), InvalidArgument);
}

}  // namespace
}  // namespace unimem

#endif
