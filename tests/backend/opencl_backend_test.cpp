// OpenCL-specific behaviour of the OpenCL backend; the generic contract is in backend_conformance_test.cpp.
// ctest runs these with POCL_DEVICES="pthread pthread", so PoCL offers two devices in separate contexts.

#include "unimem/backend/opencl_backend.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace {

using unimem::Backend;
using unimem::MemoryKind;
using unimem::Segment;

// Deterministic bytes that differ from one seed to the next.
std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> bytes(n);
  std::uint32_t x = seed * 2654435761U + 1U;
  for (auto& b : bytes) {
    x = x * 1664525U + 1013904223U;
    b = static_cast<std::uint8_t>(x >> 24U);
  }
  return bytes;
}

std::vector<std::uint8_t> read_back(Backend& backend, const Segment& segment, std::size_t offset,
                                    std::size_t n) {
  std::vector<std::uint8_t> out(n);
  backend.copy(Segment::host_view(out.data(), n), 0, segment, offset, n);
  return out;
}

void write(Backend& backend, const Segment& segment, std::size_t offset,
           const std::vector<std::uint8_t>& bytes) {
  backend.copy(segment, offset, Segment::host_view(bytes.data(), bytes.size()), 0, bytes.size());
}

// What the host sees at host_ptr + offset.
std::vector<std::uint8_t> host_bytes(const Segment& segment, std::size_t offset, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  std::memcpy(out.data(), segment.host_ptr + offset, n);
  return out;
}

// Frees the segment at the end of the test, whatever happens.
struct Owned {
  Backend& backend;
  Segment segment;
  Owned(Backend& b, int device, MemoryKind kind, std::size_t bytes)
      : backend(b), segment(b.allocate(device, kind, bytes)) {}
  ~Owned() { backend.deallocate(segment); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Owned(Owned&&) = delete;
  Owned& operator=(Owned&&) = delete;
};

class OpenCLBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    backend_ = unimem::test::backend_with_devices(unimem::BackendKind::OpenCL, why);
    if (backend_ == nullptr) GTEST_SKIP() << why;
  }

  // Use as: if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  [[nodiscard]] bool two_devices() const { return backend_->device_count() >= 2; }
  static constexpr const char* kNeedsTwoDevices =
      "needs two OpenCL devices (PoCL offers them with POCL_DEVICES=\"pthread pthread\")";

  Backend* backend_ = nullptr;
};

TEST(OpenCLBackendDiscovery, MissingIcdGivesZeroDevicesAndAReason) {
  // A fresh process, so that the ICD loader reads OCL_ICD_VENDORS before anything else has loaded it.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("OCL_ICD_VENDORS", "/nonexistent/unimem-test-no-icd", 1);
        const unimem::OpenCLBackend backend;
        const unimem::BackendStatus status = backend.status();
        std::fprintf(stderr, "devices=%d available=%d compiled_in=%d detail=%s\n", backend.device_count(),
                     status.available ? 1 : 0, status.compiled_in ? 1 : 0, status.detail.c_str());
        std::exit(backend.device_count() == 0 && !status.available && status.compiled_in ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "devices=0 available=0 compiled_in=1 detail=no OpenCL platform");
}

TEST_F(OpenCLBackendTest, StatusCountsDevicesAndNamesThePlatform) {
  const unimem::BackendStatus status = backend_->status();
  EXPECT_TRUE(status.compiled_in);
  EXPECT_TRUE(status.available);
  const int n = backend_->device_count();
  const std::string expected = std::to_string(n) + (n == 1 ? " device on " : " devices on ");
  EXPECT_EQ(status.detail.rfind(expected, 0), 0U) << status.detail;
  EXPECT_NE(status.detail.find("(OpenCL "), std::string::npos) << status.detail;
}

TEST_F(OpenCLBackendTest, DeviceInfoReportsOpenCLFields) {
  for (int d = 0; d < backend_->device_count(); ++d) {
    const unimem::DeviceInfo info = backend_->device_info(d);
    EXPECT_EQ(info.id, (unimem::DeviceId{unimem::BackendKind::OpenCL, d}));
    EXPECT_FALSE(info.name.empty());
    EXPECT_FALSE(info.vendor.empty());
    EXPECT_NE(info.driver.find("OpenCL"), std::string::npos) << info.driver;
    EXPECT_TRUE(info.memory.estimated);
    EXPECT_GT(info.memory.total_bytes, 0U);
    EXPECT_LE(info.memory.free_bytes, info.memory.total_bytes);
    EXPECT_GT(info.max_allocation_bytes, 0U);
    EXPECT_TRUE(info.capabilities.device_memory);
    EXPECT_TRUE(info.capabilities.pinned_host);
    EXPECT_FALSE(info.capabilities.host_visible_device);
    EXPECT_TRUE(info.peers.empty()) << "devices sit in separate contexts";
    EXPECT_EQ(backend_->supports(d, MemoryKind::Unified), info.capabilities.unified);
    // PoCL's CPU devices keep buffers in host RAM and say so (CL_DEVICE_HOST_UNIFIED_MEMORY).
    if (info.name.rfind("pthread", 0) == 0 || info.name.rfind("cpu", 0) == 0) {
      EXPECT_TRUE(info.capabilities.host_unified_memory) << info.name;
    }
  }
}

TEST_F(OpenCLBackendTest, FreeMemoryIsEstimatedFromWhatUnimemAllocated) {
  std::vector<MemoryKind> counted = {MemoryKind::Device, MemoryKind::PinnedHost};
  if (backend_->supports(0, MemoryKind::Unified)) counted.push_back(MemoryKind::Unified);
  const std::size_t bytes = 3 * unimem::MiB + 123;
  for (const MemoryKind kind : counted) {
    const unimem::MemoryInfo before = backend_->memory_info(0);
    const Segment s = backend_->allocate(0, kind, bytes);
    const unimem::MemoryInfo during = backend_->memory_info(0);
    backend_->deallocate(s);
    const unimem::MemoryInfo after = backend_->memory_info(0);
    EXPECT_TRUE(during.estimated);
    EXPECT_EQ(during.total_bytes, before.total_bytes);
    EXPECT_EQ(before.free_bytes - during.free_bytes, bytes) << unimem::to_string(kind);
    EXPECT_EQ(after.free_bytes, before.free_bytes) << unimem::to_string(kind);
  }
  // Ordinary host memory does not come from the device.
  const unimem::MemoryInfo before = backend_->memory_info(0);
  const Owned host(*backend_, 0, MemoryKind::Host, bytes);
  EXPECT_EQ(backend_->memory_info(0).free_bytes, before.free_bytes);
  EXPECT_EQ(backend_->device_info(0).memory.free_bytes, before.free_bytes);
}

TEST_F(OpenCLBackendTest, PinnedSegmentIsMappedForTheHost) {
  const std::size_t n = 64 * unimem::KiB + 37;
  const Owned pinned(*backend_, 0, MemoryKind::PinnedHost, n);
  const Owned device(*backend_, 0, MemoryKind::Device, n);
  const Segment& p = pinned.segment;
  ASSERT_TRUE(p.host_visible());
  EXPECT_NE(static_cast<void*>(p.host_ptr), p.native) << "native is the cl_mem, host_ptr the mapping";
  // PoCL maps at 128-byte boundaries; the backend aligns inside a padded mapping.
  for (int i = 0; i < 8; ++i) {
    const Owned small(*backend_, i % backend_->device_count(), MemoryKind::PinnedHost, 100 + 37 * i);
    EXPECT_TRUE(unimem::is_aligned(small.segment.host_ptr, unimem::kDefaultAlignment)) << i;
  }

  // The host writes through host_ptr; copies see it.
  const auto data = pattern(n, 1);
  std::memcpy(p.host_ptr, data.data(), n);
  backend_->copy(device.segment, 0, p, 0, n);
  EXPECT_EQ(read_back(*backend_, device.segment, 0, n), data);

  // Copies and memsets land where the host reads.
  const auto other = pattern(n - 11, 2);
  write(*backend_, device.segment, 0, other);
  backend_->copy(p, 11, device.segment, 0, n - 11);
  EXPECT_EQ(host_bytes(p, 11, n - 11), other);
  EXPECT_EQ(host_bytes(p, 0, 11), std::vector<std::uint8_t>(data.begin(), data.begin() + 11));
  backend_->memset(p, 5, 0xA5, 100);
  EXPECT_EQ(host_bytes(p, 5, 100), std::vector<std::uint8_t>(100, 0xA5));
}

TEST_F(OpenCLBackendTest, UnifiedSegmentIsHostVisibleWhenSupported) {
  if (!backend_->supports(0, MemoryKind::Unified)) {
    EXPECT_THROW((void)backend_->allocate(0, MemoryKind::Unified, 4096), unimem::NotSupported);
    GTEST_SKIP() << backend_->device_info(0).name << " has no fine-grained SVM";
  }
  const std::size_t n = 1 * unimem::MiB + 5;
  const Owned unified(*backend_, 0, MemoryKind::Unified, n);
  const Owned device(*backend_, 0, MemoryKind::Device, n);
  const Segment& u = unified.segment;
  ASSERT_TRUE(u.host_visible());
  EXPECT_TRUE(unimem::is_aligned(u.host_ptr, unimem::kDefaultAlignment));

  const auto data = pattern(n, 3);
  std::memcpy(u.host_ptr, data.data(), n);
  backend_->copy(device.segment, 0, u, 0, n);
  EXPECT_EQ(read_back(*backend_, device.segment, 0, n), data);

  // Ordered on a stream: device -> SVM copy, then a host-side memset of part of it.
  auto stream = backend_->create_stream(0);
  const auto other = pattern(n, 4);
  write(*backend_, device.segment, 0, other);
  backend_->copy(u, 0, device.segment, 0, n, stream.get());
  backend_->memset(u, 0, 0x3C, 64, stream.get());
  stream->synchronize();
  EXPECT_EQ(host_bytes(u, 0, 64), std::vector<std::uint8_t>(64, 0x3C));
  EXPECT_EQ(host_bytes(u, 64, n - 64), std::vector<std::uint8_t>(other.begin() + 64, other.end()));
}

TEST_F(OpenCLBackendTest, DeviceMemoryCopiesBetweenTwoDevicesBothWays) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  // More than one staging chunk, odd sizes and offsets.
  const std::size_t n = 9 * unimem::MiB + 77;
  const std::size_t size = n + 100;
  const Owned a(*backend_, 0, MemoryKind::Device, size);
  const Owned b(*backend_, 1, MemoryKind::Device, size);

  const auto forward = pattern(n, 5);
  write(*backend_, a.segment, 13, forward);
  backend_->memset(b.segment, 0, 0xEE, size);
  backend_->copy(b.segment, 29, a.segment, 13, n);
  EXPECT_EQ(read_back(*backend_, b.segment, 29, n), forward);
  EXPECT_EQ(read_back(*backend_, b.segment, 0, 29), std::vector<std::uint8_t>(29, 0xEE));
  EXPECT_EQ(read_back(*backend_, b.segment, 29 + n, size - 29 - n),
            std::vector<std::uint8_t>(size - 29 - n, 0xEE));

  // Back, on a stream of the destination device.
  const auto backward = pattern(n - 3, 6);
  write(*backend_, b.segment, 1, backward);
  auto stream = backend_->create_stream(0);
  backend_->copy(a.segment, 97, b.segment, 1, n - 3, stream.get());
  stream->synchronize();
  EXPECT_EQ(read_back(*backend_, a.segment, 97, n - 3), backward);
  EXPECT_EQ(read_back(*backend_, a.segment, 13, 84),
            std::vector<std::uint8_t>(forward.begin(), forward.begin() + 84));
}

TEST_F(OpenCLBackendTest, CopiesBetweenDevicesOfEverySizeAroundTheStagingChunk) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  constexpr std::size_t kChunk = 4 * unimem::MiB;  // the backend's staging chunk
  const std::size_t sizes[] = {1, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk, 3 * kChunk + 5};
  const std::size_t size = 3 * kChunk + 64;
  const Owned a(*backend_, 0, MemoryKind::Device, size);
  const Owned b(*backend_, 1, MemoryKind::Device, size);
  std::uint32_t seed = 40;
  for (const std::size_t n : sizes) {
    const auto data = pattern(n, ++seed);
    write(*backend_, a.segment, 7, data);
    backend_->memset(b.segment, 0, 0xC3, size);
    backend_->copy(b.segment, 3, a.segment, 7, n);
    EXPECT_EQ(read_back(*backend_, b.segment, 3, n), data) << n << " bytes";
    EXPECT_EQ(read_back(*backend_, b.segment, 3 + n, 1), std::vector<std::uint8_t>(1, 0xC3)) << n << " bytes";
    EXPECT_EQ(read_back(*backend_, b.segment, 0, 3), std::vector<std::uint8_t>(3, 0xC3)) << n << " bytes";
  }
}

TEST_F(OpenCLBackendTest, CopiesBetweenDevicesRejectRangesPastTheSegmentAndSkipZeroBytes) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  const Owned a(*backend_, 0, MemoryKind::Device, 1024);
  const Owned b(*backend_, 1, MemoryKind::Device, 1024);
  write(*backend_, a.segment, 0, pattern(1024, 3));
  backend_->memset(b.segment, 0, 0x11, 1024);
  backend_->copy(b.segment, 0, a.segment, 0, 0);  // validated, then nothing to do
  EXPECT_EQ(read_back(*backend_, b.segment, 0, 1024), std::vector<std::uint8_t>(1024, 0x11));
  EXPECT_THROW(backend_->copy(b.segment, 1025, a.segment, 0, 0), unimem::InvalidArgument);
  EXPECT_THROW(backend_->copy(b.segment, 0, a.segment, 1, 1024), unimem::InvalidArgument);
  EXPECT_THROW(backend_->copy(b.segment, 1000, a.segment, 0, 25), unimem::InvalidArgument);
}

TEST_F(OpenCLBackendTest, AnEventPolledWithoutWaitingCompletes) {
  // record() leaves the marker unflushed; query() must issue it, or a polling loop would spin for ever.
  const std::size_t n = unimem::MiB;
  const Owned s(*backend_, 0, MemoryKind::Device, n);
  const auto data = pattern(n, 9);
  auto stream = backend_->create_stream(0);
  auto done = backend_->create_event(0);
  backend_->copy(s.segment, 0, Segment::host_view(data.data(), n), 0, n, stream.get());
  done->record(*stream);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done->query() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(done->query());
  EXPECT_EQ(read_back(*backend_, s.segment, 0, n), data);
}

TEST_F(OpenCLBackendTest, OverlappingCopyWithinOneBufferBehavesLikeMemmove) {
  const std::size_t n = 256 * unimem::KiB + 3;
  const Owned s(*backend_, 0, MemoryKind::Device, n);
  auto expected = pattern(n, 7);
  write(*backend_, s.segment, 0, expected);

  backend_->copy(s.segment, 1000, s.segment, 0, n - 1000);  // forward overlap
  std::memmove(expected.data() + 1000, expected.data(), n - 1000);
  EXPECT_EQ(read_back(*backend_, s.segment, 0, n), expected);

  auto stream = backend_->create_stream(0);
  backend_->copy(s.segment, 0, s.segment, 17, n - 17, stream.get());  // backward overlap, on a stream
  stream->synchronize();
  std::memmove(expected.data(), expected.data() + 17, n - 17);
  EXPECT_EQ(read_back(*backend_, s.segment, 0, n), expected);
}

TEST_F(OpenCLBackendTest, StreamOrdersAsyncCopiesAndEventsMarkThem) {
  const std::size_t n = 16 * unimem::MiB + 9;
  const Owned s(*backend_, 0, MemoryKind::Device, n);
  const auto data = pattern(n, 8);
  std::vector<std::uint8_t> out(n, 0);
  auto stream = backend_->create_stream(0);
  auto start = backend_->create_event(0);
  auto end = backend_->create_event(0);
  EXPECT_TRUE(end->query()) << "an event never recorded counts as complete";

  start->record(*stream);
  backend_->copy(s.segment, 0, Segment::host_view(data.data(), n), 0, n, stream.get());
  backend_->memset(s.segment, 100, 0x5A, 1000, stream.get());
  backend_->copy(Segment::host_view(out.data(), n), 0, s.segment, 0, n, stream.get());
  end->record(*stream);
  end->synchronize();
  EXPECT_TRUE(end->query());
  EXPECT_TRUE(start->query());
  EXPECT_TRUE(stream->query());

  auto expected = data;
  std::fill(expected.begin() + 100, expected.begin() + 1100, std::uint8_t{0x5A});
  EXPECT_EQ(out, expected);
  const double ms = end->elapsed_ms_since(*start);
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 60'000.0);

  // Recording again moves the mark: the new end is after the old one.
  auto later = backend_->create_event(0);
  backend_->memset(s.segment, 0, 1, n, stream.get());
  later->record(*stream);
  stream->synchronize();
  EXPECT_TRUE(later->query());
  EXPECT_GE(later->elapsed_ms_since(*end), 0.0);
}

TEST_F(OpenCLBackendTest, MakeWaitOrdersTwoStreamsOfOneDevice) {
  // The streams meet only in host memory: PoCL orders commands on one buffer across queues by itself, but it
  // cannot know that the consumer reads what the producer writes into `relay`.
  const std::size_t n = 32 * unimem::MiB;
  const Owned source(*backend_, 0, MemoryKind::Device, n);
  const Owned target(*backend_, 0, MemoryKind::Device, n);
  std::vector<std::uint8_t> relay(n, 0);
  backend_->memset(target.segment, 0, 0, n);
  auto producer = backend_->create_stream(0);
  auto consumer = backend_->create_stream(0);
  auto ready = backend_->create_event(0);

  // Enough work on the producer that the consumer would overtake it without the wait.
  for (std::uint8_t round = 1; round <= 8; ++round)
    backend_->memset(source.segment, 0, round, n, producer.get());
  backend_->copy(Segment::host_view(relay.data(), n), 0, source.segment, 0, n, producer.get());
  ready->record(*producer);
  ready->make_wait(*consumer);
  backend_->copy(target.segment, 0, Segment::host_view(relay.data(), n), 0, n, consumer.get());
  consumer->synchronize();
  EXPECT_TRUE(ready->query());
  EXPECT_EQ(read_back(*backend_, target.segment, 0, n), std::vector<std::uint8_t>(n, 8));
}

TEST_F(OpenCLBackendTest, MakeWaitOnAnotherDeviceWaitsOnTheHost) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  const std::size_t n = 32 * unimem::MiB;
  const Owned s(*backend_, 0, MemoryKind::Device, n);
  auto producer = backend_->create_stream(0);
  auto other = backend_->create_stream(1);
  auto ready = backend_->create_event(0);
  for (std::uint8_t round = 1; round <= 4; ++round) backend_->memset(s.segment, 0, round, n, producer.get());
  ready->record(*producer);
  ready->make_wait(*other);
  EXPECT_TRUE(ready->query()) << "events cannot cross contexts, so make_wait blocks until the mark";
}

TEST_F(OpenCLBackendTest, StreamOfAnotherDeviceIsRejected) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  const Owned a(*backend_, 0, MemoryKind::Device, 4096);
  const Owned b(*backend_, 0, MemoryKind::Device, 4096);
  auto stream = backend_->create_stream(1);
  EXPECT_THROW(backend_->copy(a.segment, 0, b.segment, 0, 4096, stream.get()), unimem::InvalidArgument);
  EXPECT_THROW(backend_->memset(a.segment, 0, 0, 4096, stream.get()), unimem::InvalidArgument);
  auto event = backend_->create_event(0);
  EXPECT_THROW(event->record(*stream), unimem::InvalidArgument);
}

TEST_F(OpenCLBackendTest, HostVisibleMemoryOfOneDeviceWorksWithAnotherDevicesBuffer) {
  if (!two_devices()) GTEST_SKIP() << kNeedsTwoDevices;
  // Device 1's stream reads its buffer into its pinned segment, then that segment feeds a buffer of device 0.
  // Device 0's queue cannot take device 1's stream, so the second copy must wait for the first on the host.
  const std::size_t n = 16 * unimem::MiB + 1;
  const Owned source(*backend_, 1, MemoryKind::Device, n);
  const Owned pinned(*backend_, 1, MemoryKind::PinnedHost, n);
  const Owned target(*backend_, 0, MemoryKind::Device, n);
  const auto data = pattern(n, 9);
  backend_->memset(pinned.segment, 0, 0, n);
  auto stream = backend_->create_stream(1);
  // Work ahead of the read, so that copying from the pinned segment too early would see stale bytes.
  for (std::uint8_t round = 1; round <= 8; ++round)
    backend_->memset(source.segment, 0, round, n, stream.get());
  backend_->copy(source.segment, 0, Segment::host_view(data.data(), n), 0, n, stream.get());
  backend_->copy(pinned.segment, 0, source.segment, 0, n, stream.get());
  backend_->copy(target.segment, 0, pinned.segment, 0, n, stream.get());
  stream->synchronize();
  EXPECT_EQ(read_back(*backend_, target.segment, 0, n), data);
}

TEST_F(OpenCLBackendTest, DeallocateOnAStreamWaitsForItsWork) {
  const std::size_t n = 16 * unimem::MiB;
  const Owned buffer(*backend_, 0, MemoryKind::Device, n);
  backend_->memset(buffer.segment, 0, 0x77, n);
  auto stream = backend_->create_stream(0);
  for (const MemoryKind kind : {MemoryKind::Host, MemoryKind::PinnedHost}) {
    const Segment target = backend_->allocate(0, kind, n);
    backend_->copy(target, 0, buffer.segment, 0, n, stream.get());
    // Freed while the copy may still be writing it; the backend drains the stream first (ASan would object).
    backend_->deallocate(target, stream.get());
    EXPECT_TRUE(stream->query()) << unimem::to_string(kind);
  }
}

TEST_F(OpenCLBackendTest, ThreadsShareDevicesAndTheirDefaultQueues) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 10;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int device = t % backend_->device_count();
      for (int round = 0; round < kRounds; ++round) {
        const std::size_t n = 256 * unimem::KiB + static_cast<std::size_t>(t * 31 + round);
        const auto data = pattern(n, static_cast<std::uint32_t>(100 + t * kRounds + round));
        const Owned s(*backend_, device, round % 2 == 0 ? MemoryKind::Device : MemoryKind::PinnedHost, n);
        write(*backend_, s.segment, 0, data);
        if (read_back(*backend_, s.segment, 0, n) != data) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
