#include "unimem/overlap_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <latch>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <thread>

#include "unimem/backend/host_backend.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/config.hpp"
#include "unimem/core/aligned_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/owned_segment.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/timing.hpp"
#include "unimem/transfer/double_buffered_download.hpp"

namespace unimem::cli {

namespace {

constexpr std::size_t kSmallest = MiB;
constexpr std::size_t kLargest = 64 * MiB;
constexpr std::size_t kSizeStep = 4;
constexpr int kMaxSteps = 1 << 20;

// Seconds per call of `call`, over `calls` calls.
template <typename Call>
double seconds_per_call(int calls, const Call& call) {
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < calls; ++i) call();
  return seconds(Clock::now() - start) / calls;
}

// Two threads' memcpy bandwidth together over one thread's, `bytes` per copy, each thread between buffers of
// its own; `calls` copies per thread.
double memory_concurrency(std::size_t bytes, int calls, std::span<AlignedBuffer, 4> buffers) {
  const auto copies = [&](std::size_t pair) {
    for (int i = 0; i < calls; ++i) {
      std::memcpy(buffers[2 * pair].data(), buffers[2 * pair + 1].data(), bytes);
      keep(buffers[2 * pair].data());
    }
  };
  const Clock::time_point alone = Clock::now();
  copies(0);
  const double one = seconds(Clock::now() - alone);
  std::latch start(2);
  Clock::time_point second_start;
  Clock::time_point second_end;
  std::thread other([&] {
    start.arrive_and_wait();
    second_start = Clock::now();
    copies(1);
    second_end = Clock::now();
  });
  start.arrive_and_wait();
  const Clock::time_point first_start = Clock::now();
  copies(0);
  const Clock::time_point first_end = Clock::now();
  other.join();
  const double both = seconds(std::max(first_end, second_end) - std::min(first_start, second_start));
  return 2.0 * one / both;
}

// The host's consume: sums the words of a downloaded result and checks the sum against the byte `value` the
// device filled it with, so that a download read before it completed shows as an error, not as a fast step.
void consume(std::span<const std::byte> bytes, std::uint8_t value) {
  const auto* words = reinterpret_cast<const std::uint64_t*>(bytes.data());
  const std::size_t count = bytes.size() / sizeof(std::uint64_t);
  const std::uint64_t sum = std::accumulate(words, words + count, std::uint64_t{0});
  const std::uint64_t expected = count * (value * 0x0101010101010101ULL);  // modulo 2^64, as the sum
  if (sum != expected) {
    throw Error("bench overlap: a downloaded result of " + std::to_string(bytes.size()) +
                " bytes does not hold the bytes the device wrote (" +
                std::to_string(static_cast<int>(value)) + " each)");
  }
}

OverlapBenchRow measure(const SelectedDevice& device, std::size_t bytes, const OverlapBenchOptions& options,
                        MemoryResource& host_memory, std::span<AlignedBuffer, 4> scratch) {
  Backend& backend = *device.backend;
  const OwnedSegment results[2] = {OwnedSegment(backend, device.index, MemoryKind::Device, bytes),
                                   OwnedSegment(backend, device.index, MemoryKind::Device, bytes)};
  const RawBuffer host(host_memory, element_type_of<std::byte>(), bytes);
  const Allocation& into = host.allocation();
  const std::span<const std::byte> host_bytes{host.view().host_data(), bytes};
  DoubleBufferedDownload download(backend, device.index, host_memory, bytes);
  Stream& stream = download.stream();
  std::uint8_t value = 0;                // the byte of the latest fill
  std::array<std::uint8_t, 2> filled{};  // the byte each result holds

  const auto produce = [&](std::size_t result) {
    filled[result] = ++value;
    backend.memset(results[result].get(), 0, value, bytes, &stream);
  };
  const auto part_produce = [&] {
    produce(0);
    stream.synchronize();
  };
  const auto queue_download = [&] {
    backend.copy(*into.segment, into.offset, results[0].get(), 0, bytes, &stream);
  };
  const auto part_download = [&] {
    queue_download();
    stream.synchronize();
  };
  const auto part_consume = [&] { consume(host_bytes, filled[0]); };
  const auto handoff = [&] {
    backend.memset(results[0].get(), 0, filled[0], sizeof(std::uint64_t), &stream);
    stream.synchronize();
  };
  // Seconds the host spends queueing one step's fill and download; the waits are not timed.
  const auto issue = [&] {
    double spent = 0.0;
    for (int step = 0; step < options.steps; ++step) {
      const Clock::time_point start = Clock::now();
      produce(0);
      queue_download();
      spent += seconds(Clock::now() - start);
      stream.synchronize();
    }
    return spent / options.steps;
  };
  const auto synchronous_step = [&] {
    part_produce();
    part_download();
    part_consume();
  };
  // One call is a whole loop of `steps` steps (the pipeline fills and drains once per loop, as a user's
  // would).
  const auto double_buffered_loop = [&] {
    for (int step = 0; step < options.steps; ++step) {
      const std::size_t result = static_cast<std::size_t>(step) % 2;
      produce(result);
      download.start_async_download(TransferEndpoint::from(results[result].get()), bytes);
      if (step > 0) consume(download.wait_for_download(), filled[1 - result]);
    }
    consume(download.wait_for_download(), filled[static_cast<std::size_t>(options.steps - 1) % 2]);
  };

  // Everything once untimed: first touches and first uses are not what is measured.
  synchronous_step();
  double_buffered_loop();
  (void)memory_concurrency(bytes, 1, scratch);

  std::vector<double> produce_s, download_s, consume_s, handoff_s, issue_s, synchronous_s, double_buffered_s,
      concurrency;
  for (int r = 0; r < options.repeat; ++r) {
    produce_s.push_back(seconds_per_call(options.steps, part_produce));
    download_s.push_back(seconds_per_call(options.steps, part_download));
    consume_s.push_back(seconds_per_call(options.steps, part_consume));
    handoff_s.push_back(seconds_per_call(options.steps, handoff));
    issue_s.push_back(issue());
    synchronous_s.push_back(seconds_per_call(options.steps, synchronous_step));
    double_buffered_s.push_back(seconds_per_call(1, double_buffered_loop) / options.steps);
    concurrency.push_back(memory_concurrency(bytes, options.steps, scratch));
  }
  OverlapBenchRow row;
  row.device = to_string(device.info().id);
  row.size = bytes;
  row.produce = median(produce_s);
  row.download = median(download_s);
  row.consume = median(consume_s);
  row.handoff = median(handoff_s);
  row.issue = median(issue_s);
  row.synchronous = median(synchronous_s);
  row.double_buffered = median(double_buffered_s);
  row.memory_concurrency = median(concurrency);
  return row;
}

}  // namespace

double OverlapBenchRow::device_work() const noexcept {
  return std::max(0.0, produce + download - 2.0 * handoff);
}

double OverlapBenchRow::separate_engines_bound() const noexcept {
  return std::max(device_work(), host_work());
}

double OverlapBenchRow::shared_memory_bound() const noexcept {
  return (device_work() + consume) / memory_concurrency;
}

double OverlapBenchRow::model() const noexcept {
  return std::max(separate_engines_bound(), shared_memory_bound());
}

const char* OverlapBenchRow::binding_bound() const noexcept {
  return shared_memory_bound() > separate_engines_bound() ? "memory" : "engines";
}

std::vector<OverlapBenchRow> bench_overlap(const std::vector<SelectedDevice>& devices,
                                           const OverlapBenchOptions& options) {
  std::vector<std::size_t> sizes = options.sizes;
  if (sizes.empty()) {
    for (std::size_t size = kSmallest; size <= kLargest; size *= kSizeStep) sizes.push_back(size);
  }
  for (const std::size_t size : sizes) {
    if (size < sizeof(std::uint64_t) || size % sizeof(std::uint64_t) != 0) {
      throw InvalidArgument("bench overlap: a size of " + std::to_string(size) +
                            " bytes; the host consumes whole 8-byte words, at least one");
    }
  }
  if (options.steps < 2 || options.steps > kMaxSteps) {
    throw InvalidArgument("bench overlap: " + std::to_string(options.steps) +
                          " steps per loop; a loop has 2 to " + std::to_string(kMaxSteps));
  }
  if (options.repeat < 1) {
    throw InvalidArgument("bench overlap: repeat count " + std::to_string(options.repeat) + " is below 1");
  }
  const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
  std::array<AlignedBuffer, 4> scratch;
  for (AlignedBuffer& buffer : scratch) {
    buffer = AlignedBuffer(largest);
    std::memset(buffer.data(), 1, largest);
  }
  HostBackend host;
  std::vector<OverlapBenchRow> rows;
  for (const SelectedDevice& device : devices) {
    Backend& backend = *device.backend;
    // Pinned memory where the device has it (the fastest downloads), else the host's own memory.
    const bool pinned = backend.supports(device.index, MemoryKind::PinnedHost);
    BackendResource host_memory = pinned ? BackendResource(backend, device.index, MemoryKind::PinnedHost)
                                         : BackendResource(host, 0, MemoryKind::Device);
    for (const std::size_t size : sizes) rows.push_back(measure(device, size, options, host_memory, scratch));
  }
  return rows;
}

nlohmann::json overlap_bench_json(const std::vector<SelectedDevice>& devices,
                                  const OverlapBenchOptions& options,
                                  const std::vector<OverlapBenchRow>& rows) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& row : rows) {
    results.push_back({{"device", row.device},
                       {"size", row.size},
                       {"produce_seconds", row.produce},
                       {"download_seconds", row.download},
                       {"consume_seconds", row.consume},
                       {"handoff_seconds", row.handoff},
                       {"issue_seconds", row.issue},
                       {"device_work_seconds", row.device_work()},
                       {"host_work_seconds", row.host_work()},
                       {"synchronous_seconds", row.synchronous},
                       {"double_buffered_seconds", row.double_buffered},
                       {"memory_concurrency", row.memory_concurrency},
                       {"separate_engines_bound_seconds", row.separate_engines_bound()},
                       {"shared_memory_bound_seconds", row.shared_memory_bound()},
                       {"model_seconds", row.model()},
                       {"binding_bound", row.binding_bound()},
                       {"measured_speedup", row.measured_speedup()},
                       {"model_speedup", row.model_speedup()}});
  }
  return {{"unimem_version", UNIMEM_VERSION},
          {"benchmark", "overlap"},
          {"devices", selected_devices_json(devices)},
          {"steps", options.steps},
          {"repeat", options.repeat},
          {"results", results}};
}

std::string overlap_bench_table(const std::vector<OverlapBenchRow>& rows) {
  std::string out =
      "Double-buffered downloads against synchronous ones: microseconds per step, medians of the repeats. "
      "The "
      "parts measured alone (produce, download, consume; hand-off: a wait's cost beyond the work; issue: the "
      "host's time to queue a step), the memory concurrency m, and the model: device work d = produce + "
      "download - 2 hand-offs, bounds max(d, issue + consume) with separate engines and (d + consume) / m "
      "with shared memory; model speedup = sync / the larger bound\n\n";
  out += fmt::format(
      "{:<10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
      "device", "size", "produce", "download", "consume", "hand-off", "issue", "sync", "double", "m",
      "engines", "memory", "bound", "speedup", "model");
  const auto us = [](double s) { return s * 1e6; };
  for (const auto& row : rows) {
    out += fmt::format(
        "{:<10} {:>10} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>5.2f} {:>8.1f} "
        "{:>8.1f} "
        "{:>8} {:>7.2f}x {:>7.2f}x\n",
        row.device, format_bytes(row.size), us(row.produce), us(row.download), us(row.consume),
        us(row.handoff), us(row.issue), us(row.synchronous), us(row.double_buffered), row.memory_concurrency,
        us(row.separate_engines_bound()), us(row.shared_memory_bound()), row.binding_bound(),
        row.measured_speedup(), row.model_speedup());
  }
  return out;
}

}  // namespace unimem::cli
