// Transfer engine bandwidth per strategy on OpenCL device 0 (and 1), next to this machine's memcpy and a
// plain unpipelined staged copy (the same engine with one staging buffer per transfer), 4 KiB to 256 MiB; and
// the double-buffered download loop against synchronous downloads.
//
//   POCL_DEVICES="pthread pthread" build/bin/unimem_transfer_bench --benchmark_min_time=0.3
//
// Every benchmark reports bytes_per_second; BM_DownloadLoop reports seconds per step.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/core/aligned_buffer.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/transfer/double_buffered_download.hpp"
#include "unimem/transfer/transfer_engine.hpp"

namespace {

using unimem::Backend;
using unimem::MemoryKind;
using unimem::MiB;
using unimem::Segment;
using unimem::TransferEndpoint;
using unimem::TransferStrategy;

constexpr std::size_t kLargest = 256 * MiB;

Backend* opencl() {
  static unimem::BackendRegistry registry;
  Backend* backend = registry.find(unimem::BackendKind::OpenCL);
  return backend != nullptr && backend->device_count() > 0 ? backend : nullptr;
}

unimem::TransferEngineOptions with_depth(std::size_t depth) {
  unimem::TransferEngineOptions options;
  options.pipeline_depth = depth;
  return options;
}

unimem::TransferEngine& engine(std::size_t depth) {
  static unimem::TransferEngine pipelined(with_depth(2));
  static unimem::TransferEngine unpipelined(with_depth(1));
  return depth == 1 ? unpipelined : pipelined;
}

// A segment of the largest size, written once so that no page fault is timed.
struct OwnedSegment {
  OwnedSegment(Backend& b, int device, MemoryKind kind)
      : backend(b), segment(b.allocate(device, kind, kLargest)) {
    backend.memset(segment, 0, 1, kLargest);
  }
  ~OwnedSegment() { backend.deallocate(segment); }
  OwnedSegment(const OwnedSegment&) = delete;
  OwnedSegment& operator=(const OwnedSegment&) = delete;
  OwnedSegment(OwnedSegment&&) = delete;
  OwnedSegment& operator=(OwnedSegment&&) = delete;

  Backend& backend;
  Segment segment;
};

unimem::AlignedBuffer& pageable(int which) {
  static unimem::AlignedBuffer buffers[2] = {unimem::AlignedBuffer(kLargest),
                                             unimem::AlignedBuffer(kLargest)};
  static const bool written = [] {
    for (auto& b : buffers) std::memset(b.data(), 2, kLargest);
    return true;
  }();
  (void)written;
  return buffers[which];
}

void BM_Memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::byte* to = pageable(0).data();
  const std::byte* from = pageable(1).data();
  for (auto _ : state) {
    std::memcpy(to, from, bytes);
    benchmark::DoNotOptimize(to);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

enum class Route {
  PageableToDevice,
  DeviceToPageable,
  PinnedToDevice,
  DeviceToPinned,
  DeviceToDevice,
  DeviceToOtherDevice
};

// range(0): bytes; range(1): forced strategy (Auto = engine's choice); range(2): pipeline depth (1 or 2).
// Device memory on both devices and pinned memory, shared by every route.
struct DeviceMemory {
  explicit DeviceMemory(Backend& backend)
      : device(backend, 0, MemoryKind::Device),
        second(backend, backend.device_count() > 1 ? 1 : 0, MemoryKind::Device),
        pinned(backend, 0, MemoryKind::PinnedHost) {}
  OwnedSegment device;
  OwnedSegment second;
  OwnedSegment pinned;
};

DeviceMemory& device_memory(Backend& backend) {
  static DeviceMemory memory(backend);
  return memory;
}

template <Route route>
void BM_Transfer(benchmark::State& state) {
  Backend* backend = opencl();
  if (backend == nullptr) {
    state.SkipWithError("no OpenCL device");
    return;
  }
  if (route == Route::DeviceToOtherDevice && backend->device_count() < 2) {
    state.SkipWithError("one OpenCL device; set POCL_DEVICES=\"pthread pthread\"");
    return;
  }
  DeviceMemory& memory = device_memory(*backend);
  const OwnedSegment& device = memory.device;
  const OwnedSegment& second = memory.second;
  const OwnedSegment& pinned = memory.pinned;
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const TransferEndpoint host_in =
      TransferEndpoint::host_bytes(static_cast<const void*>(pageable(1).data()), kLargest);
  const TransferEndpoint host_out = TransferEndpoint::host_bytes(pageable(0).data(), kLargest);
  TransferEndpoint dst;
  TransferEndpoint src;
  switch (route) {
    case Route::PageableToDevice:
      dst = TransferEndpoint::from(device.segment);
      src = host_in;
      break;
    case Route::DeviceToPageable:
      dst = host_out;
      src = TransferEndpoint::from(device.segment);
      break;
    case Route::PinnedToDevice:
      dst = TransferEndpoint::from(device.segment);
      src = TransferEndpoint::from(pinned.segment);
      break;
    case Route::DeviceToPinned:
      dst = TransferEndpoint::from(pinned.segment);
      src = TransferEndpoint::from(device.segment);
      break;
    case Route::DeviceToDevice:
      // Two halves of one buffer, so that the copy is device-local without overlapping itself.
      if (bytes > kLargest / 2) {
        state.SkipWithError("larger than half the device buffer");
        return;
      }
      dst = TransferEndpoint::from(device.segment, kLargest / 2);
      src = TransferEndpoint::from(device.segment);
      break;
    case Route::DeviceToOtherDevice:
      dst = TransferEndpoint::from(second.segment);
      src = TransferEndpoint::from(device.segment);
      break;
  }
  const unimem::TransferOptions options{static_cast<TransferStrategy>(state.range(1))};
  unimem::TransferEngine& e = engine(static_cast<std::size_t>(state.range(2)));
  for (auto _ : state) e.copy(dst, src, bytes, options);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(options.strategy == TransferStrategy::Auto
                     ? std::string(unimem::to_string(e.choose_strategy(dst, src)))
                     : "forced " + std::string(unimem::to_string(options.strategy)));
}

void sizes(benchmark::internal::Benchmark* b, TransferStrategy strategy, int depth) {
  for (std::int64_t size = 4 * 1024; size <= static_cast<std::int64_t>(kLargest); size *= 4) {
    b->Args({size, static_cast<std::int64_t>(strategy), depth});
  }
  b->ArgNames({"bytes", "strategy", "depth"})->UseRealTime();
}

void memcpy_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t size = 4 * 1024; size <= static_cast<std::int64_t>(kLargest); size *= 4) b->Arg(size);
  b->ArgName("bytes")->UseRealTime();
}

constexpr auto kAuto = TransferStrategy::Auto;
constexpr auto kDirect = TransferStrategy::Direct;
constexpr auto kStaged = TransferStrategy::PinnedStaging;

BENCHMARK(BM_Memcpy)->Apply(memcpy_sizes);
// Pageable host memory: pipelined pinned staging (the engine's choice for a device with its own memory), the
// same unpipelined, and the backend's own copy from pageable memory (the choice for PoCL's host-RAM devices).
BENCHMARK(BM_Transfer<Route::PageableToDevice>)->Apply([](auto* b) { sizes(b, kStaged, 2); });
BENCHMARK(BM_Transfer<Route::PageableToDevice>)->Apply([](auto* b) { sizes(b, kStaged, 1); });
BENCHMARK(BM_Transfer<Route::PageableToDevice>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
BENCHMARK(BM_Transfer<Route::DeviceToPageable>)->Apply([](auto* b) { sizes(b, kStaged, 2); });
BENCHMARK(BM_Transfer<Route::DeviceToPageable>)->Apply([](auto* b) { sizes(b, kStaged, 1); });
BENCHMARK(BM_Transfer<Route::DeviceToPageable>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
// Pinned memory: one direct copy.
BENCHMARK(BM_Transfer<Route::PinnedToDevice>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
BENCHMARK(BM_Transfer<Route::DeviceToPinned>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
// On the device, and between two devices (staged through the host: no peer access on OpenCL).
BENCHMARK(BM_Transfer<Route::DeviceToDevice>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
BENCHMARK(BM_Transfer<Route::DeviceToOtherDevice>)->Apply([](auto* b) { sizes(b, kAuto, 2); });
BENCHMARK(BM_Transfer<Route::DeviceToOtherDevice>)->Apply([](auto* b) { sizes(b, kAuto, 1); });
BENCHMARK(BM_Transfer<Route::DeviceToOtherDevice>)->Apply([](auto* b) { sizes(b, kDirect, 2); });

// The plain staged copy the pipeline is measured against: all of the pageable memory into pinned memory with
// one memcpy, then one copy from there to the device (or the reverse).
template <bool upload>
void BM_PlainStaged(benchmark::State& state) {
  Backend* backend = opencl();
  if (backend == nullptr) {
    state.SkipWithError("no OpenCL device");
    return;
  }
  const OwnedSegment& device = device_memory(*backend).device;
  const OwnedSegment& pinned = device_memory(*backend).pinned;
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    if (upload) {
      std::memcpy(pinned.segment.host_ptr, pageable(1).data(), bytes);
      backend->copy(device.segment, 0, pinned.segment, 0, bytes);
    } else {
      backend->copy(pinned.segment, 0, device.segment, 0, bytes);
      std::memcpy(pageable(0).data(), pinned.segment.host_ptr, bytes);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_PlainStaged<true>)->Apply(memcpy_sizes);
BENCHMARK(BM_PlainStaged<false>)->Apply(memcpy_sizes);

// Staging chunk size and pipeline depth for pageable -> device through pinned staging (forced: on PoCL's
// host-RAM devices the engine's own choice is the direct copy), 64 MiB: range(0) is the chunk, range(1) the
// depth.
void BM_StagingChunk(benchmark::State& state) {
  Backend* backend = opencl();
  if (backend == nullptr) {
    state.SkipWithError("no OpenCL device");
    return;
  }
  const OwnedSegment& device = device_memory(*backend).device;
  unimem::TransferEngineOptions options;
  options.chunk_bytes = static_cast<std::size_t>(state.range(0));
  options.pipeline_depth = static_cast<std::size_t>(state.range(1));
  unimem::TransferEngine e(options);
  constexpr std::size_t kBytes = 64 * MiB;
  const TransferEndpoint src =
      TransferEndpoint::host_bytes(static_cast<const void*>(pageable(1).data()), kBytes);
  for (auto _ : state) e.copy(TransferEndpoint::from(device.segment), src, kBytes, {kStaged});
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBytes));
}
BENCHMARK(BM_StagingChunk)
    ->ArgsProduct({{256 * 1024, 1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024}, {1, 2, 3}})
    ->ArgNames({"chunk", "depth"})
    ->UseRealTime();

// A loop of steps: the device produces a result (a fill, queued on the download's stream), the host downloads
// it and consumes it (sums its words). Synchronously (range(1) == 0), each step waits for its own download;
// double buffered (1), step n's download runs while the host consumes step n - 1. range(0): result bytes.
void BM_DownloadLoop(benchmark::State& state) {
  Backend* backend = opencl();
  if (backend == nullptr) {
    state.SkipWithError("no OpenCL device");
    return;
  }
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const bool double_buffered = state.range(1) != 0;
  constexpr int kSteps = 16;
  unimem::BackendResource pinned(*backend, 0, MemoryKind::PinnedHost);
  OwnedSegment results[2] = {OwnedSegment(*backend, 0, MemoryKind::Device),
                             OwnedSegment(*backend, 0, MemoryKind::Device)};
  unimem::DoubleBufferedDownload download(*backend, 0, pinned, bytes);
  Segment host = backend->allocate(0, MemoryKind::PinnedHost, bytes);
  std::uint64_t checksum = 0;
  const auto consume = [&](std::span<const std::uint64_t> words) {
    checksum += std::accumulate(words.begin(), words.end(), std::uint64_t{0});
  };
  for (auto _ : state) {
    for (int step = 0; step < kSteps; ++step) {
      const Segment& result = results[step % 2].segment;
      backend->memset(result, 0, static_cast<std::uint8_t>(step), bytes, &download.stream());  // produce
      if (double_buffered) {
        download.start_async_download(TransferEndpoint::from(result), bytes);
        if (step > 0) consume(download.wait_for_download<std::uint64_t>());
      } else {
        backend->copy(host, 0, result, 0, bytes, &download.stream());
        download.stream().synchronize();
        consume({reinterpret_cast<const std::uint64_t*>(host.host_ptr), bytes / sizeof(std::uint64_t)});
      }
    }
    if (double_buffered) consume(download.wait_for_download<std::uint64_t>());
  }
  backend->deallocate(host);
  benchmark::DoNotOptimize(checksum);
  state.counters["seconds_per_step"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kSteps),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kSteps * state.range(0));
}
BENCHMARK(BM_DownloadLoop)
    ->ArgsProduct({{1024 * 1024, 4 * 1024 * 1024, 32 * 1024 * 1024}, {0, 1}})
    ->ArgNames({"bytes", "double_buffered"})
    ->UseRealTime();

// The three parts of one BM_DownloadLoop step, each timed alone, for the overlap model in
// docs/architecture.md: part 0 produces (a fill on the device's stream), 1 downloads into pinned memory, 2
// consumes on the host.
void BM_DownloadStepPart(benchmark::State& state) {
  Backend* backend = opencl();
  if (backend == nullptr) {
    state.SkipWithError("no OpenCL device");
    return;
  }
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto part = state.range(1);
  OwnedSegment result(*backend, 0, MemoryKind::Device);
  const std::unique_ptr<unimem::Stream> stream = backend->create_stream(0);
  Segment host = backend->allocate(0, MemoryKind::PinnedHost, bytes);
  std::memset(host.host_ptr, 1, bytes);
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    if (part == 0) {
      backend->memset(result.segment, 0, 7, bytes, stream.get());
      stream->synchronize();
    } else if (part == 1) {
      backend->copy(host, 0, result.segment, 0, bytes, stream.get());
      stream->synchronize();
    } else {
      const auto* words = reinterpret_cast<const std::uint64_t*>(host.host_ptr);
      checksum += std::accumulate(words, words + bytes / sizeof(std::uint64_t), std::uint64_t{0});
    }
  }
  backend->deallocate(host);
  benchmark::DoNotOptimize(checksum);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DownloadStepPart)
    ->ArgsProduct({{1024 * 1024, 4 * 1024 * 1024, 32 * 1024 * 1024}, {0, 1, 2}})
    ->ArgNames({"bytes", "part"})
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
