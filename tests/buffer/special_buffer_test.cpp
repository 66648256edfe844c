// PinnedBuffer, UnifiedBuffer (with Backend::prefetch) and FallbackBuffer.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "buffer/buffer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/buffer/fallback_buffer.hpp"
#include "unimem/buffer/pinned_buffer.hpp"
#include "unimem/buffer/unified_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/fallback_adaptor.hpp"

namespace unimem {
namespace {

using test::contains;
using test::MemoryTarget;
using test::message_of;
using test::ramp;

std::vector<MemoryTarget> targets_of_kind(MemoryKind kind) {
  std::vector<MemoryTarget> targets;
  std::copy_if(test::memory_targets().begin(), test::memory_targets().end(), std::back_inserter(targets),
               [kind](const MemoryTarget& t) { return t.kind == kind; });
  return targets;
}

class PinnedBufferOnEveryTarget : public test::OnEveryTarget {};

TEST_P(PinnedBufferOnEveryTarget, HostSpanIsAlwaysThereAndFeedsDeviceCopies) {
  PinnedBuffer<int> pinned(resource(), 1000);
  std::span<int> span = pinned.host_span();
  ASSERT_EQ(span.size(), 1000U);
  const std::vector<int> values = ramp<int>(1000, 42);
  std::copy(values.begin(), values.end(), span.begin());
  EXPECT_EQ(pinned.to_vector(), values);
  EXPECT_EQ(pinned.kind(), MemoryKind::PinnedHost);

  // Pinned memory is the staging side of an asynchronous upload to the device.
  BackendResource device_memory(backend(), GetParam().device, MemoryKind::Device);
  Buffer<int> device(device_memory, 1000);
  TransferFuture upload = device.copy_from_host_async(pinned.host_span());
  upload.wait();
  EXPECT_EQ(device.to_vector(), values);
}

INSTANTIATE_TEST_SUITE_P(Backends, PinnedBufferOnEveryTarget,
                         ::testing::ValuesIn(targets_of_kind(MemoryKind::PinnedHost)), test::target_name);

class UnifiedBufferOnEveryTarget : public test::OnEveryTarget {};

TEST_P(UnifiedBufferOnEveryTarget, PrefetchMovesTheMemoryAndKeepsTheData) {
  UnifiedBuffer<float> unified(resource(), 1 << 16);
  std::span<float> span = unified.host_span();
  const std::vector<float> values = ramp<float>(span.size(), -7.0F);
  std::copy(values.begin(), values.end(), span.begin());

  unified.prefetch_to_device();
  EXPECT_EQ(unified.to_vector(), values);
  unified.prefetch_to_host();
  EXPECT_TRUE(std::equal(values.begin(), values.end(), unified.host_span().begin()));

  std::unique_ptr<Stream> stream = backend().create_stream(GetParam().device);
  unified.prefetch_to_device(stream.get());
  unified.prefetch_to_host(stream.get());
  stream->synchronize();
  EXPECT_TRUE(std::equal(values.begin(), values.end(), unified.host_span().begin()));
}

INSTANTIATE_TEST_SUITE_P(Backends, UnifiedBufferOnEveryTarget,
                         ::testing::ValuesIn(targets_of_kind(MemoryKind::Unified)), test::target_name);

TEST(PinnedBuffer, RefusesMemoryThatIsNotPinned) {
  HostBackend host;
  BackendResource ordinary(host, 0, MemoryKind::Device);
  const std::string message = message_of<NotSupported>([&] { PinnedBuffer<int> p(ordinary, 4); });
  EXPECT_TRUE(contains(message, "PinnedBuffer")) << message;
  EXPECT_TRUE(contains(message, "host:0")) << message;
  EXPECT_TRUE(contains(message, "serves device memory, not pinned memory")) << message;
  EXPECT_EQ(ordinary.live_allocations(), 0U);
}

TEST(UnifiedBuffer, RefusesMemoryThatIsNotUnified) {
  Backend& sim = test::shared_registry().get(BackendKind::Simulated);
  BackendResource device(sim, 0, MemoryKind::Device);
  const std::string message = message_of<NotSupported>([&] { UnifiedBuffer<int> u(device, 4); });
  EXPECT_TRUE(contains(message, "UnifiedBuffer")) << message;
  EXPECT_TRUE(contains(message, "sim:0")) << message;
  EXPECT_TRUE(contains(message, "not unified memory")) << message;
  EXPECT_THROW(UnifiedBuffer<int>().prefetch_to_device(), InvalidArgument);
}

TEST(BackendPrefetch, IsValidatedLikeMemset) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = true},
                        SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = true}});
  const Segment segment = sim.allocate(0, MemoryKind::Device, 4096);
  // Memory that does not migrate: a validated no-op, complete on return.
  EXPECT_NO_THROW(sim.prefetch(segment, 0, 4096, PrefetchTarget::Device));
  EXPECT_NO_THROW(sim.prefetch(segment, 4096, 0, PrefetchTarget::Host));

  std::string message =
      message_of<InvalidArgument>([&] { sim.prefetch(segment, 4000, 100, PrefetchTarget::Device); });
  EXPECT_TRUE(contains(message, "prefetch")) << message;
  EXPECT_TRUE(contains(message, "4096 bytes")) << message;

  std::vector<std::byte> host(64);
  message = message_of<InvalidArgument>(
      [&] { sim.prefetch(Segment::host_view(host.data(), host.size()), 0, 64, PrefetchTarget::Host); });
  EXPECT_TRUE(contains(message, "not a live segment")) << message;

  std::unique_ptr<Stream> other_device = sim.create_stream(1);
  message = message_of<InvalidArgument>(
      [&] { sim.prefetch(segment, 0, 64, PrefetchTarget::Device, other_device.get()); });
  EXPECT_TRUE(contains(message, "sim:1")) << message;

  HostBackend host_backend;
  std::unique_ptr<Stream> foreign = host_backend.create_stream(0);
  EXPECT_THROW(sim.prefetch(segment, 0, 64, PrefetchTarget::Device, foreign.get()), InvalidArgument);

  sim.deallocate(segment);
  EXPECT_THROW(sim.prefetch(segment, 0, 64, PrefetchTarget::Device), InvalidArgument) << "freed";
}

// A 1 MiB backed simulated device that falls back to `secondary`.
struct SmallDeviceWithFallback {
  explicit SmallDeviceWithFallback(MemoryResource& secondary)
      : sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = true}}),
        device(sim, 0, MemoryKind::Device),
        fallback(device, secondary) {}

  SimulatedBackend sim;
  BackendResource device;
  FallbackAdaptor fallback;
};

TEST(FallbackBuffer, LivesOnTheDeviceUntilItIsFullThenOnTheHost) {
  HostBackend host;
  BackendResource host_memory(host, 0, MemoryKind::Device);
  {
    SmallDeviceWithFallback stack(host_memory);
    FallbackBuffer<float> small(stack.fallback, 1000);
    EXPECT_FALSE(small.fell_back());
    EXPECT_EQ(small.location(), BufferLocation::Device);
    EXPECT_FALSE(small.on_host());
    EXPECT_EQ(small.device(), (DeviceId{BackendKind::Simulated, 0}));
    EXPECT_THROW((void)small.host_span(), NotSupported);

    FallbackBuffer<float> large(stack.fallback,
                                std::size_t{512} * 1024);  // 2 MiB: more than the device holds
    EXPECT_TRUE(large.fell_back());
    EXPECT_TRUE(large.on_host());
    EXPECT_EQ(large.device(), (DeviceId{BackendKind::Host, 0}));
    EXPECT_EQ(stack.fallback.fallback_count(), 1U);

    // The same API wherever it landed.
    for (FallbackBuffer<float>* buffer : {&small, &large}) {
      const std::vector<float> values = ramp<float>(buffer->size(), 0.5F);
      buffer->copy_from_host(values);
      EXPECT_EQ(buffer->to_vector(), values);
      buffer->fill(2.0F);
      EXPECT_EQ(buffer->to_vector().back(), 2.0F);
    }
    large.host_span()[7] = -1.0F;
    EXPECT_EQ(large.to_vector()[7], -1.0F);

    // Moving keeps where it lives.
    FallbackBuffer<float> moved(std::move(large));
    EXPECT_TRUE(moved.on_host());
    EXPECT_EQ(stack.device.live_allocations(), 1U);
    EXPECT_EQ(host_memory.live_allocations(), 1U);
  }
  EXPECT_EQ(host_memory.live_allocations(), 0U) << "each buffer went back to the side that gave it";
}

TEST(FallbackBuffer, FallsBackToAnotherBackendsPinnedMemory) {
  std::string why;
  auto pinned = test::make_resource({"opencl_pinned", BackendKind::OpenCL, 0, MemoryKind::PinnedHost}, why);
  if (pinned == nullptr) GTEST_SKIP() << why;
  SmallDeviceWithFallback stack(*pinned);
  FallbackBuffer<std::uint64_t> buffer(stack.fallback, std::size_t{256} * 1024);  // 2 MiB
  EXPECT_TRUE(buffer.fell_back());
  EXPECT_TRUE(buffer.on_host());
  EXPECT_EQ(buffer.kind(), MemoryKind::PinnedHost);
  const std::vector<std::uint64_t> values = ramp<std::uint64_t>(buffer.size(), 9);
  buffer.copy_from_host(values);
  EXPECT_TRUE(std::equal(values.begin(), values.end(), buffer.host_span().begin()));
}

TEST(FallbackBuffer, FallbackToAnotherDeviceIsNotTheHost) {
  SimulatedBackend big({SimulatedDeviceSpec{.capacity_bytes = 64 * MiB, .backed = false}});
  BackendResource other_device(big, 0, MemoryKind::Device);
  SmallDeviceWithFallback stack(other_device);
  FallbackBuffer<char> buffer(stack.fallback, 4 * MiB);
  EXPECT_TRUE(buffer.fell_back());
  EXPECT_EQ(buffer.location(), BufferLocation::Device);

  const std::string message =
      message_of<OutOfMemory>([&] { FallbackBuffer<char> b(stack.fallback, 128 * MiB); });
  EXPECT_TRUE(contains(message, "sim:0")) << message;
  EXPECT_TRUE(contains(message, "failed too")) << message;
}

}  // namespace
}  // namespace unimem
