// The engine's choice for pageable memory follows the device's host_unified_memory capability, not the kind
// of its backend: two test backends of one kind, the same but for that capability, get different strategies.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/fault_injection_adaptor.hpp"
#include "unimem/transfer/transfer_engine.hpp"

namespace unimem::test {
namespace {

// Two devices with device memory the host cannot dereference and pinned host memory, like GPUs, without peer
// access; whether their device memory is host RAM (integrated GPUs, CPU devices) is the constructor's choice.
// Counts its copies.
class TestGpuBackend final : public TwoTestDevices {
 public:
  explicit TestGpuBackend(bool host_unified_memory) : host_unified_memory_(host_unified_memory) {}

  [[nodiscard]] BackendStatus status() const override { return {true, true, "two test GPUs"}; }

 private:
  DeviceInfo do_device_info(int device) const override {
    DeviceInfo info;
    info.id = DeviceId{BackendKind::Simulated, device};
    info.name = "test GPU";
    info.memory = do_memory_info(device);
    info.max_allocation_bytes = GiB;
    info.capabilities = Capabilities{.device_memory = true,
                                     .pinned_host = true,
                                     .unified = false,
                                     .host_visible_device = false,
                                     .host_unified_memory = host_unified_memory_};
    return info;
  }

  bool host_unified_memory_;
};

// Staging chunks of 1 KiB, so that the sizes below are several chunks and a remainder.
TransferEngineOptions small_chunks() {
  TransferEngineOptions options;
  options.chunk_bytes = KiB;
  return options;
}

// Copies `bytes` of a pattern host -> device -> host through `engine` (strategy Auto unless forced) and
// returns what came back.
std::vector<std::byte> round_trip(TransferEngine& engine, Backend& backend, std::size_t bytes,
                                  const TransferOptions& options = {}) {
  const std::vector<std::byte> source = pattern(bytes, 7);
  std::vector<std::byte> back(bytes);
  const Segment device = backend.allocate(0, MemoryKind::Device, bytes);
  engine.copy(TransferEndpoint::from(device), TransferEndpoint::host(std::span(source)), bytes, options);
  engine.copy(TransferEndpoint::host(std::span(back)), TransferEndpoint::from(device), bytes, options);
  backend.deallocate(device);
  EXPECT_EQ(first_difference(back, source), -1) << bytes << " bytes with " << to_string(options.strategy);
  return back;
}

TEST(TransferStrategyChoice, PageableMemoryIsStagedForADeviceWithItsOwnMemory) {
  TestGpuBackend gpu(false);
  TransferEngine engine(small_chunks());
  const Segment device = gpu.allocate(0, MemoryKind::Device, 64);
  std::vector<std::byte> host(64);
  const TransferEndpoint pageable = TransferEndpoint::host(std::span(host));
  EXPECT_EQ(engine.choose_strategy(TransferEndpoint::from(device), pageable),
            TransferStrategy::PinnedStaging);
  EXPECT_EQ(engine.choose_strategy(pageable, TransferEndpoint::from(device)),
            TransferStrategy::PinnedStaging);
  gpu.deallocate(device);

  constexpr std::size_t kBytes = 5 * KiB + 3;  // five chunks and three bytes
  (void)round_trip(engine, gpu, kBytes);
  EXPECT_EQ(engine.statistics()[TransferStrategy::PinnedStaging].transfers, 2U);
  EXPECT_EQ(gpu.copies, 2 * 6) << "one device copy per chunk each way";
}

TEST(TransferStrategyChoice, PageableMemoryGoesDirectToADeviceWhoseMemoryIsHostRam) {
  TestGpuBackend gpu(true);
  TransferEngine engine(small_chunks());
  const Segment device = gpu.allocate(0, MemoryKind::Device, 64);
  std::vector<std::byte> host(64);
  const TransferEndpoint pageable = TransferEndpoint::host(std::span(host));
  EXPECT_EQ(engine.choose_strategy(TransferEndpoint::from(device), pageable), TransferStrategy::Direct);
  EXPECT_EQ(engine.choose_strategy(pageable, TransferEndpoint::from(device)), TransferStrategy::Direct);
  gpu.deallocate(device);

  constexpr std::size_t kBytes = 5 * KiB + 3;
  (void)round_trip(engine, gpu, kBytes);
  EXPECT_EQ(engine.statistics()[TransferStrategy::Direct].transfers, 2U);
  EXPECT_EQ(engine.statistics()[TransferStrategy::PinnedStaging].transfers, 0U);
  EXPECT_EQ(gpu.copies, 2) << "one backend copy each way";

  // Forced staging still works there: the host moves both hops, slice by slice through one buffer, a slice
  // being the 1 KiB chunk here (less than a quarter of any L2 cache).
  gpu.copies = 0;
  (void)round_trip(engine, gpu, kBytes, TransferOptions{TransferStrategy::PinnedStaging});
  EXPECT_EQ(gpu.copies, 2 * 6);
}

TEST(TransferStrategyChoice, ASlicedCopyNeverOverrunsAStagingBufferSmallerThanACacheLine) {
  TestGpuBackend gpu(true);
  TransferEngineOptions options;
  options.chunk_bytes = 16;  // below a cache line: each slice is the whole buffer, never more
  TransferEngine engine(options);
  constexpr std::size_t kBytes = 100;
  gpu.copies = 0;
  (void)round_trip(engine, gpu, kBytes, TransferOptions{TransferStrategy::PinnedStaging});
  EXPECT_EQ(gpu.copies, 2 * 7) << "ceil(100 / 16) slices each way";
}

TEST(TransferStrategyChoice, AStagingBufferThatFailsMidPipelineLeaksNothing) {
  TestGpuBackend gpu(false);
  BackendResource pinned(gpu, 0, MemoryKind::PinnedHost);
  FaultInjectionOptions faults;
  faults.fail_every_nth = 2;  // the second staging buffer of the first transfer fails
  FaultInjectionAdaptor failing(pinned, faults);
  TransferEngineOptions options = small_chunks();
  options.staging_resources.push_back(&failing);
  constexpr std::size_t kBytes = 5 * KiB;
  const std::vector<std::byte> source = pattern(kBytes, 8);
  const Segment device = gpu.allocate(0, MemoryKind::Device, kBytes);
  {
    TransferEngine engine(options);
    EXPECT_THROW(
        engine.copy(TransferEndpoint::from(device), TransferEndpoint::host(std::span(source)), kBytes),
        OutOfMemory);
    EXPECT_EQ(engine.staging_buffers_leased(), 0U);
    EXPECT_EQ(failing.injected_faults(), 1U);
    // The pool kept the first buffer; the next transfer takes it and allocates one more (call 3 succeeds).
    (void)round_trip(engine, gpu, kBytes);
    EXPECT_EQ(engine.staging_buffers_leased(), 0U);
    EXPECT_EQ(pinned.live_allocations(), 2U);
  }
  EXPECT_EQ(pinned.live_allocations(), 0U) << "the engine gave its staging buffers back";
  gpu.deallocate(device);
}

TEST(TransferStrategyChoice, TwoDevicesWhoseMemoryIsHostRamCopyDirectlyOthersStage) {
  for (const bool host_ram : {false, true}) {
    TestGpuBackend gpus(host_ram);
    TransferEngine engine(small_chunks());
    constexpr std::size_t kBytes = 4 * KiB + 5;
    const Segment first = gpus.allocate(0, MemoryKind::Device, kBytes);
    const Segment second = gpus.allocate(1, MemoryKind::Device, kBytes);
    const std::vector<std::byte> source = pattern(kBytes, 11);
    gpus.copy(first, 0, Segment::host_view(static_cast<const void*>(source.data()), kBytes), 0, kBytes);
    EXPECT_EQ(engine.choose_strategy(TransferEndpoint::from(second), TransferEndpoint::from(first)),
              host_ram ? TransferStrategy::Direct : TransferStrategy::HostStaged);
    gpus.copies = 0;
    engine.copy(TransferEndpoint::from(second), TransferEndpoint::from(first), kBytes);
    EXPECT_EQ(gpus.copies, host_ram ? 1 : 2 * 5) << "one copy, or two hops of five chunks";
    std::vector<std::byte> back(kBytes);
    gpus.copy(Segment::host_view(back.data(), kBytes), 0, second, 0, kBytes);
    EXPECT_EQ(first_difference(back, source), -1) << (host_ram ? "direct" : "staged");
    gpus.deallocate(first);
    gpus.deallocate(second);
  }
}

TEST(TransferStrategyChoice, OpenCLDevicesFollowWhatTheyReport) {
  std::string why;
  Backend* opencl = backend_serving(BackendKind::OpenCL, 0, MemoryKind::Device, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  const bool host_ram = opencl->device_info(0).capabilities.host_unified_memory;
  TransferEngine engine(small_chunks());
  const Segment device = opencl->allocate(0, MemoryKind::Device, 64);
  std::vector<std::byte> host(64);
  EXPECT_EQ(engine.choose_strategy(TransferEndpoint::from(device), TransferEndpoint::host(std::span(host))),
            host_ram ? TransferStrategy::Direct : TransferStrategy::PinnedStaging);
  opencl->deallocate(device);
  (void)round_trip(engine, *opencl, 3 * KiB + 1);
  (void)round_trip(engine, *opencl, 3 * KiB + 1, TransferOptions{TransferStrategy::PinnedStaging});
}

TEST(TransferStrategyChoice, ZeroBytesAndRangesPastTheWindowAreRefused) {
  TestGpuBackend gpu(true);
  TransferEngine engine(small_chunks());
  const Segment device = gpu.allocate(0, MemoryKind::Device, 64);
  std::vector<std::byte> host(64);
  const TransferEndpoint pageable = TransferEndpoint::host(std::span(host));
  EXPECT_THROW(engine.copy(TransferEndpoint::from(device), pageable, 0), InvalidArgument);
  EXPECT_THROW(engine.copy(TransferEndpoint::from(device), pageable, 65), InvalidArgument);
  EXPECT_EQ(gpu.copies, 0);
  gpu.deallocate(device);
}

}  // namespace
}  // namespace unimem::test
