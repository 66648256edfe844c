// The contract every backend keeps, run over every backend present (host, simulated, OpenCL, CUDA): a backend
// without a device reports SKIPPED with the reason.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

// Names the parameter in gtest's and ctest's output ("opencl" rather than a byte dump).
void PrintTo(BackendKind kind, std::ostream* os) {
  *os << to_string(kind);
}

namespace {

std::vector<std::uint8_t> pattern(std::size_t bytes, std::uint32_t seed) {
  std::vector<std::uint8_t> v(bytes);
  std::uint32_t x = seed * 2654435761U + 1U;
  for (auto& b : v) {
    x ^= x << 13U;
    x ^= x >> 17U;
    x ^= x << 5U;
    b = static_cast<std::uint8_t>(x);
  }
  return v;
}

class BackendConformance : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    backend_ = test::backend_with_devices(GetParam(), why);
    if (backend_ == nullptr) GTEST_SKIP() << why;
    baseline_segments_ = backend_->live_segment_count();
  }

  void TearDown() override {
    if (backend_ != nullptr) {
      EXPECT_EQ(backend_->live_segment_count(), baseline_segments_) << "segments leaked";
    }
  }

  // Devices whose memory holds bytes (an unbacked simulated device has only address ranges).
  [[nodiscard]] std::vector<int> data_devices() const {
    std::vector<int> devices;
    const auto* sim = dynamic_cast<const SimulatedBackend*>(backend_);
    for (int d = 0; d < backend_->device_count(); ++d) {
      if (sim == nullptr || sim->spec(d).backed) devices.push_back(d);
    }
    return devices;
  }

  [[nodiscard]] std::vector<MemoryKind> kinds(int device) const {
    std::vector<MemoryKind> supported;
    for (MemoryKind kind : kAllMemoryKinds) {
      if (backend_->supports(device, kind)) supported.push_back(kind);
    }
    return supported;
  }

  [[nodiscard]] std::vector<std::uint8_t> read_back(const Segment& s, std::size_t offset, std::size_t bytes) {
    std::vector<std::uint8_t> out(bytes);
    backend_->copy(Segment::host_view(out.data(), out.size()), 0, s, offset, bytes);
    return out;
  }

  void write(const Segment& s, std::size_t offset, const std::vector<std::uint8_t>& bytes) {
    backend_->copy(s, offset, Segment::host_view(bytes.data(), bytes.size()), 0, bytes.size());
  }

  Backend* backend_ = nullptr;
  std::size_t baseline_segments_ = 0;
};

std::string kind_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return std::string(to_string(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendConformance, ::testing::ValuesIn(kAllBackendKinds), kind_name);

TEST_P(BackendConformance, MemoryInfoIsConsistent) {
  for (int d = 0; d < backend_->device_count(); ++d) {
    const DeviceInfo info = backend_->device_info(d);
    EXPECT_EQ(info.id, (DeviceId{GetParam(), d}));
    EXPECT_FALSE(info.name.empty());
    EXPECT_GT(info.memory.total_bytes, 0U);
    EXPECT_LE(info.memory.free_bytes, info.memory.total_bytes);
    EXPECT_GT(info.max_allocation_bytes, 0U);
    EXPECT_TRUE(info.capabilities.device_memory) << "every device serves device memory";
    const MemoryInfo now = backend_->memory_info(d);
    EXPECT_EQ(now.total_bytes, info.memory.total_bytes);
  }
}

TEST_P(BackendConformance, AllocatesAndFreesEachKind) {
  for (int d = 0; d < backend_->device_count(); ++d) {
    for (MemoryKind kind : kAllMemoryKinds) {
      SCOPED_TRACE(std::string(to_string(kind)) + " on device " + std::to_string(d));
      if (!backend_->supports(d, kind)) {
        EXPECT_THROW((void)backend_->allocate(d, kind, 4096), NotSupported);
        continue;
      }
      const std::size_t before = backend_->live_segment_count();
      const Segment s = backend_->allocate(d, kind, 4096);
      EXPECT_TRUE(s);
      EXPECT_EQ(s.size, 4096U);
      EXPECT_EQ(s.kind, kind);
      EXPECT_EQ(s.device, (DeviceId{GetParam(), d}));
      EXPECT_EQ(s.owner, backend_);
      EXPECT_TRUE(backend_->owns(s));
      if (s.host_visible()) {
        EXPECT_TRUE(is_aligned(s.host_ptr, kDefaultAlignment));
      }
      // native addresses byte 0 everywhere but OpenCL's cl_mem objects and SVM pointers (aligned inside).
      EXPECT_EQ(s.native_is_address, GetParam() != BackendKind::OpenCL || kind == MemoryKind::Host);
      if (s.native_is_address && s.host_visible()) {
        EXPECT_EQ(s.native, static_cast<void*>(s.host_ptr));
      }
      EXPECT_EQ(backend_->live_segment_count(), before + 1);
      backend_->deallocate(s);
      EXPECT_FALSE(backend_->owns(s));
      EXPECT_EQ(backend_->live_segment_count(), before);
    }
  }
}

TEST_P(BackendConformance, RoundTripsOddCountsAndOffsetsExactly) {
  constexpr std::uint8_t kGuard = 0xAB;
  for (int d : data_devices()) {
    for (MemoryKind kind : kinds(d)) {
      for (std::size_t count : {1U, 3U, 5U, 7U, 1023U, 4097U}) {
        for (std::size_t offset : {0U, 1U, 13U, 259U}) {
          SCOPED_TRACE(std::string(to_string(kind)) + " device " + std::to_string(d) + " count " +
                       std::to_string(count) + " offset " + std::to_string(offset));
          const std::size_t bytes = count * sizeof(float);
          const std::size_t total = offset + bytes + 17;
          const Segment s = backend_->allocate(d, kind, total);
          backend_->memset(s, 0, kGuard, total);
          const auto data = pattern(bytes, static_cast<std::uint32_t>(count + offset));
          write(s, offset, data);
          const auto whole = read_back(s, 0, total);
          EXPECT_TRUE(std::all_of(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(offset),
                                  [](std::uint8_t b) { return b == kGuard; }))
              << "bytes before the range were overwritten";
          EXPECT_TRUE(
              std::equal(data.begin(), data.end(), whole.begin() + static_cast<std::ptrdiff_t>(offset)));
          EXPECT_TRUE(std::all_of(whole.begin() + static_cast<std::ptrdiff_t>(offset + bytes), whole.end(),
                                  [](std::uint8_t b) { return b == kGuard; }))
              << "bytes after the range were overwritten";
          EXPECT_EQ(read_back(s, offset, bytes), data);
          backend_->deallocate(s);
        }
      }
    }
  }
}

TEST_P(BackendConformance, CopiesBetweenEveryPairOfKindsOnADevice) {
  for (int d : data_devices()) {
    for (MemoryKind from : kinds(d)) {
      for (MemoryKind to : kinds(d)) {
        SCOPED_TRACE(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
        const std::size_t bytes = 1023 * 3;
        const Segment src = backend_->allocate(d, from, bytes + 64);
        const Segment dst = backend_->allocate(d, to, bytes + 64);
        const auto data = pattern(bytes, 7);
        write(src, 5, data);
        backend_->memset(dst, 0, 0, bytes + 64);
        backend_->copy(dst, 33, src, 5, bytes);
        EXPECT_EQ(read_back(dst, 33, bytes), data);
        EXPECT_EQ(read_back(dst, 0, 33), std::vector<std::uint8_t>(33, 0));
        backend_->deallocate(src);
        backend_->deallocate(dst);
      }
    }
  }
}

TEST_P(BackendConformance, CopiesDeviceMemoryBetweenDevices) {
  const std::vector<int> devices = data_devices();
  if (devices.size() < 2)
    GTEST_SKIP() << "needs two devices with memory; this backend has " << devices.size();
  const std::size_t bytes = 1023 * 4 + 1;
  for (auto [a, b] : {std::pair{devices[0], devices[1]}, std::pair{devices[1], devices[0]}}) {
    SCOPED_TRACE("device " + std::to_string(a) + " -> device " + std::to_string(b));
    const Segment src = backend_->allocate(a, MemoryKind::Device, bytes + 3);
    const Segment dst = backend_->allocate(b, MemoryKind::Device, bytes + 7);
    const auto data = pattern(bytes, static_cast<std::uint32_t>(a * 10 + b));
    write(src, 3, data);
    backend_->copy(dst, 7, src, 3, bytes);
    EXPECT_EQ(read_back(dst, 7, bytes), data);
    backend_->deallocate(src);
    backend_->deallocate(dst);
  }
}

TEST_P(BackendConformance, RoundTrips100MBThroughDeviceMemory) {
  constexpr std::size_t kBytes = 100'000'000;
  for (int d : data_devices()) {
    if (backend_->device_info(d).max_allocation_bytes < kBytes) continue;
    const Segment s = backend_->allocate(d, MemoryKind::Device, kBytes);
    const auto data = pattern(kBytes, 100);
    write(s, 0, data);
    EXPECT_TRUE(read_back(s, 0, kBytes) == data) << "100 MB round trip differs on device " << d;
    backend_->deallocate(s);
  }
}

TEST_P(BackendConformance, AllocatesNearTheLargestSingleAllocation) {
  // The host's largest allocation is all of RAM; touching that much is not a unit test, so it is capped.
  constexpr std::size_t kCap = 4 * GiB;
  for (int d = 0; d < backend_->device_count(); ++d) {
    const DeviceInfo info = backend_->device_info(d);
    const std::size_t limit = std::min({info.max_allocation_bytes, info.memory.free_bytes, kCap});
    const std::size_t bytes = limit - std::min(limit / 2, std::size_t{MiB});
    SCOPED_TRACE("device " + std::to_string(d) + ": " + std::to_string(bytes) + " bytes");
    const Segment s = backend_->allocate(d, MemoryKind::Device, bytes);
    EXPECT_EQ(s.size, bytes);
    const auto data_devs = data_devices();
    if (std::find(data_devs.begin(), data_devs.end(), d) != data_devs.end()) {
      const auto head = pattern(4096, 1);
      const auto tail = pattern(4096, 2);
      write(s, 0, head);
      write(s, bytes - tail.size(), tail);
      EXPECT_EQ(read_back(s, 0, head.size()), head);
      EXPECT_EQ(read_back(s, bytes - tail.size(), tail.size()), tail);
    }
    backend_->deallocate(s);
  }
}

template <typename T>
std::vector<T> special_values() {
  using L = std::numeric_limits<T>;
  return {L::quiet_NaN(),  -L::quiet_NaN(),  L::signaling_NaN(), L::infinity(), -L::infinity(),
          L::denorm_min(), -L::denorm_min(), L::min() / 2,       T(0),          -T(0),
          L::min(),        L::max(),         L::lowest(),        L::epsilon(),  T(1) / T(3)};
}

template <typename T>
void expect_bit_exact_round_trip(Backend& backend, int device, MemoryKind kind) {
  const std::vector<T> values = special_values<T>();
  const std::size_t bytes = values.size() * sizeof(T);
  const Segment a = backend.allocate(device, kind, bytes);
  const Segment b = backend.allocate(device, MemoryKind::Device, bytes + sizeof(T));
  backend.copy(a, 0, Segment::host_view(values.data(), bytes), 0, bytes);
  backend.copy(b, sizeof(T), a, 0, bytes);
  std::vector<T> out(values.size());
  backend.copy(Segment::host_view(out.data(), bytes), 0, b, sizeof(T), bytes);
  EXPECT_EQ(std::memcmp(out.data(), values.data(), bytes), 0) << "special values changed bits";
  EXPECT_TRUE(std::isnan(out[0]) && std::isinf(out[3]) && std::signbit(out[9]));
  backend.deallocate(a);
  backend.deallocate(b);
}

TEST_P(BackendConformance, PreservesSpecialFloatsBitForBit) {
  for (int d : data_devices()) {
    for (MemoryKind kind : kinds(d)) {
      SCOPED_TRACE(std::string(to_string(kind)) + " device " + std::to_string(d));
      expect_bit_exact_round_trip<float>(*backend_, d, kind);
      expect_bit_exact_round_trip<double>(*backend_, d, kind);
    }
  }
}

TEST_P(BackendConformance, StreamOrdersCopiesAndEventsMarkProgress) {
  for (int d : data_devices()) {
    auto stream = backend_->create_stream(d);
    auto start = backend_->create_event(d);
    auto end = backend_->create_event(d);
    EXPECT_TRUE(end->query()) << "an event never recorded counts as complete";
    EXPECT_THROW((void)end->elapsed_ms_since(*start), InvalidArgument);
    constexpr std::size_t kBytes = 8 * MiB + 5;
    const auto data = pattern(kBytes, 42);
    std::vector<std::uint8_t> out(kBytes, 0);
    const Segment s = backend_->allocate(d, MemoryKind::Device, kBytes, stream.get());
    start->record(*stream);
    backend_->memset(s, 0, 0x11, kBytes, stream.get());
    backend_->copy(s, 0, Segment::host_view(data.data(), kBytes), 0, kBytes - 1, stream.get());
    backend_->copy(Segment::host_view(out.data(), kBytes), 0, s, 0, kBytes, stream.get());
    end->record(*stream);
    end->synchronize();
    EXPECT_TRUE(end->query());
    EXPECT_TRUE(start->query());
    EXPECT_TRUE(std::equal(data.begin(), data.end() - 1, out.begin())) << "stream did not keep copy order";
    EXPECT_EQ(out.back(), 0x11) << "the memset before the copies was not ordered first";
    EXPECT_GE(end->elapsed_ms_since(*start), 0.0);
    stream->synchronize();
    EXPECT_TRUE(stream->query());

    // A second stream waits for an event of the first.
    auto other = backend_->create_stream(d);
    auto mark = backend_->create_event(d);
    backend_->memset(s, 0, 0x22, kBytes, stream.get());
    mark->record(*stream);
    mark->make_wait(*other);
    backend_->copy(Segment::host_view(out.data(), kBytes), 0, s, 0, kBytes, other.get());
    other->synchronize();
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0x22; }));
    backend_->deallocate(s, stream.get());
    stream->synchronize();
  }
}

TEST_P(BackendConformance, WrapsAForeignQueueOrSaysItCannot) {
  EXPECT_THROW((void)backend_->wrap_native_stream(-1, nullptr), InvalidArgument);
  if (GetParam() == BackendKind::OpenCL) {
    EXPECT_THROW((void)backend_->wrap_native_stream(0, nullptr), NotSupported);
    return;
  }
  // nullptr is CUDA's legacy default stream; the synchronous backends take any handle.
  for (int d : data_devices()) {
    auto foreign = backend_->wrap_native_stream(d, nullptr);
    EXPECT_EQ(foreign->device(), (DeviceId{GetParam(), d}));
    constexpr std::size_t kBytes = 64 * KiB + 3;
    const auto data = pattern(kBytes, 7);
    std::vector<std::uint8_t> out(kBytes, 0);
    const Segment s = backend_->allocate(d, MemoryKind::Device, kBytes, foreign.get());
    backend_->copy(s, 0, Segment::host_view(data.data(), kBytes), 0, kBytes, foreign.get());
    backend_->copy(Segment::host_view(out.data(), kBytes), 0, s, 0, kBytes, foreign.get());
    auto done = backend_->create_event(d);
    done->record(*foreign);
    done->synchronize();
    EXPECT_EQ(out, data) << "the wrapped queue did not order the copies";
    backend_->deallocate(s, foreign.get());
    foreign->synchronize();
    EXPECT_TRUE(foreign->query());
  }
}

TEST_P(BackendConformance, RejectsBadInputsWithTypedErrors) {
  const int d = 0;
  EXPECT_THROW((void)backend_->allocate(d, MemoryKind::Device, 0), InvalidArgument);
  EXPECT_THROW((void)backend_->allocate(d, MemoryKind::Device, std::numeric_limits<std::size_t>::max()),
               OutOfMemory);
  EXPECT_THROW((void)backend_->allocate(-1, MemoryKind::Device, 64), InvalidArgument);
  EXPECT_THROW((void)backend_->allocate(backend_->device_count(), MemoryKind::Device, 64), InvalidArgument);
  EXPECT_THROW((void)backend_->device_info(backend_->device_count()), InvalidArgument);
  EXPECT_THROW((void)backend_->create_stream(-1), InvalidArgument);

  const Segment s = backend_->allocate(d, MemoryKind::Device, 1024);
  std::vector<std::uint8_t> host(2048);
  const Segment view = Segment::host_view(host.data(), host.size());
  EXPECT_THROW(backend_->copy(view, 0, s, 1, 1024), InvalidArgument) << "copy past the source's end";
  EXPECT_THROW(backend_->copy(s, 1000, view, 0, 25), InvalidArgument) << "copy past the destination's end";
  EXPECT_THROW(backend_->copy(s, std::numeric_limits<std::size_t>::max(), view, 0, 2), InvalidArgument)
      << "offset + bytes overflows";
  EXPECT_THROW(backend_->memset(s, 1020, 0, 5, nullptr), InvalidArgument);
  EXPECT_THROW((void)backend_->live_bytes(backend_->device_count()), InvalidArgument);
  if (backend_->device_count() > 1) {
    auto other_device = backend_->create_stream(1);
    EXPECT_THROW(backend_->memset(s, 0, 0, 16, other_device.get()), InvalidArgument)
        << "a stream of another device cannot order a memset";
  }

  // A handle from another backend that the host cannot reach, and a stream of another backend.
  SimulatedBackend other({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  const Segment foreign = other.allocate(0, MemoryKind::Device, 1024);
  auto foreign_stream = other.create_stream(0);
  EXPECT_THROW(backend_->deallocate(foreign), InvalidArgument);
  EXPECT_THROW(backend_->copy(s, 0, foreign, 0, 16), InvalidArgument);
  EXPECT_THROW(backend_->copy(view, 0, s, 0, 16, foreign_stream.get()), InvalidArgument);
  EXPECT_THROW(backend_->deallocate(view), InvalidArgument) << "a host view is not an allocation";
  other.deallocate(foreign);

  // A forged handle (right id, wrong size) and a double free.
  Segment forged = s;
  forged.size = 2048;
  EXPECT_THROW(backend_->deallocate(forged), InvalidArgument);
  backend_->deallocate(s);
  try {
    backend_->deallocate(s);
    FAIL() << "double free was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("not live"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backend_->copy(view, 0, s, 0, 16), InvalidArgument) << "copy from a freed segment";
}

}  // namespace
}  // namespace unimem
