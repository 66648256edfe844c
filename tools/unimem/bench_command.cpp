#include "unimem/bench_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <optional>
#include <thread>

#include "unimem/config.hpp"
#include "unimem/core/aligned_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/owned_segment.hpp"
#include "unimem/resource/resource_spec.hpp"
#include "unimem/timing.hpp"
#include "unimem/transfer/transfer_engine.hpp"

namespace unimem::cli {

namespace {

constexpr std::size_t kSmallestAllocation = 256;
constexpr std::size_t kLargestAllocation = MiB;
constexpr std::size_t kSmallestTransfer = MiB;
constexpr std::size_t kLargestTransfer = GiB;
constexpr std::size_t kSizeStep = 4;
constexpr std::size_t kWarmupPairs = 64;
// A transfer repeat copies its size this many bytes' worth of times (at most kMaxCopiesPerRepeat times), so
// that small copies are timed over many calls.
constexpr std::size_t kBytesPerRepeat = 64 * MiB;
constexpr std::size_t kMaxCopiesPerRepeat = 256;

std::vector<std::size_t> geometric_sizes(std::size_t first, std::size_t last) {
  std::vector<std::size_t> sizes;
  for (std::size_t size = first; size <= last; size *= kSizeStep) sizes.push_back(size);
  return sizes;
}

void check_sizes(const std::vector<std::size_t>& sizes, const char* what) {
  for (const std::size_t size : sizes) {
    if (size == 0) throw InvalidArgument(std::string(what) + ": a size of 0 bytes");
  }
}

void check_repeat(int repeat, const char* what) {
  if (repeat < 1)
    throw InvalidArgument(std::string(what) + ": repeat count " + std::to_string(repeat) + " is below 1");
}

// Wall time of `threads` threads each calling `pair` `pairs` times, started together: from the first thread's
// start to the last thread's end, as each thread reads the clock itself (the thread that starts them may not
// run again until they are done).
template <typename Pair>
double run_threads(int threads, std::size_t pairs, const Pair& pair) {
  struct Span {
    Clock::time_point start;
    Clock::time_point end;
  };
  const auto loop = [&](Span& span) {
    span.start = Clock::now();
    for (std::size_t i = 0; i < pairs; ++i) pair();
    span.end = Clock::now();
  };
  std::vector<Span> spans(static_cast<std::size_t>(threads));
  if (threads == 1) {
    loop(spans[0]);
  } else {
    std::latch ready(threads);
    std::vector<std::thread> workers;
    for (Span& span : spans) {
      workers.emplace_back([&] {
        ready.arrive_and_wait();
        loop(span);
      });
    }
    for (auto& worker : workers) worker.join();
  }
  const auto by_start = [](const Span& a, const Span& b) { return a.start < b.start; };
  const auto by_end = [](const Span& a, const Span& b) { return a.end < b.end; };
  return seconds(std::max_element(spans.begin(), spans.end(), by_end)->end -
                 std::min_element(spans.begin(), spans.end(), by_start)->start);
}

template <typename Pair>
AllocBenchRow measure_pairs(std::string resource, std::size_t size, int threads,
                            const AllocBenchOptions& options, const Pair& pair) {
  for (std::size_t i = 0; i < kWarmupPairs; ++i) pair();
  std::vector<double> walls;
  for (int r = 0; r < options.repeat; ++r) walls.push_back(run_threads(threads, options.pairs, pair));
  const double wall = median(walls);
  const double pairs = static_cast<double>(options.pairs);
  return {std::move(resource), size, threads, wall * 1e9 / pairs, pairs * threads / wall / 1e6};
}

struct RepeatSeconds {
  std::vector<double> operation;  // seconds per call, one per repeat
  std::vector<double> baseline;
};

// Seconds per call of `operation` and of `baseline` in each of `repeat` repeats, their repeats alternating so
// that both see the same machine (other load, clock speed, caches). Each repeat times enough calls to be
// measurable.
template <typename Operation, typename Baseline>
RepeatSeconds repeat_seconds(std::size_t size, int repeat, const Operation& operation,
                             const Baseline& baseline) {
  const std::size_t calls = std::clamp<std::size_t>(kBytesPerRepeat / size, 1, kMaxCopiesPerRepeat);
  const auto time = [calls](const auto& call) {
    const Clock::time_point start = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) call();
    return seconds(Clock::now() - start) / static_cast<double>(calls);
  };
  operation();  // first-touch and first-use costs are not bandwidth
  baseline();
  RepeatSeconds times;
  for (int r = 0; r < repeat; ++r) {
    times.operation.push_back(time(operation));
    times.baseline.push_back(time(baseline));
  }
  return times;
}

double gib_per_second(std::size_t bytes, double secs) {
  return static_cast<double>(bytes) / static_cast<double>(GiB) / secs;
}

BandwidthSpread bandwidth_spread(std::size_t bytes, const std::vector<double>& secs) {
  return {gib_per_second(bytes, *std::min_element(secs.begin(), secs.end())),
          gib_per_second(bytes, median(secs)),
          gib_per_second(bytes, *std::max_element(secs.begin(), secs.end()))};
}

}  // namespace

std::vector<AllocBenchRow> bench_alloc(const SelectedDevice& device, const AllocBenchOptions& options) {
  const std::vector<std::size_t> sizes =
      options.sizes.empty() ? geometric_sizes(kSmallestAllocation, kLargestAllocation) : options.sizes;
  check_sizes(sizes, "bench alloc");
  check_repeat(options.repeat, "bench alloc");
  if (options.pairs == 0) throw InvalidArgument("bench alloc: 0 pairs per repeat");
  for (const int threads : options.threads) {
    if (threads < 1)
      throw InvalidArgument("bench alloc: thread count " + std::to_string(threads) + " is below 1");
  }
  std::vector<ResourceSpec> specs;
  for (const auto& text : options.resources) specs.push_back(parse_resource_spec(text));

  std::vector<AllocBenchRow> rows;
  for (const int threads : options.threads) {
    for (const std::size_t size : sizes) {
      rows.push_back(measure_pairs("malloc", size, threads, options, [size] {
        void* p = std::malloc(size);
        keep(p);
        std::free(p);
      }));
      for (const auto& spec : specs) {
        const ResourceStack stack =
            make_resource_stack(spec, *device.backend, device.index, MemoryKind::Device);
        MemoryResource& resource = stack.top();
        rows.push_back(measure_pairs(spec.text, size, threads, options, [&resource, size] {
          const Allocation allocation = resource.allocate(size);
          keep(allocation.segment);
          resource.deallocate(allocation);
        }));
      }
    }
  }
  return rows;
}

nlohmann::json alloc_bench_json(const SelectedDevice& device, const AllocBenchOptions& options,
                                const std::vector<AllocBenchRow>& rows) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& row : rows) {
    results.push_back({{"resource", row.resource},
                       {"size", row.size},
                       {"threads", row.threads},
                       {"ns_per_pair", row.ns_per_pair},
                       {"million_pairs_per_second", row.million_pairs_per_second}});
  }
  return {{"unimem_version", UNIMEM_VERSION},
          {"benchmark", "alloc"},
          {"device", selected_device_json(device)},
          {"pairs_per_thread", options.pairs},
          {"repeat", options.repeat},
          {"results", results}};
}

std::string alloc_bench_table(const SelectedDevice& device, const AllocBenchOptions& options,
                              const std::vector<AllocBenchRow>& rows) {
  std::vector<std::size_t> sizes;
  std::vector<std::pair<std::string, int>> lines;  // (resource, threads), in first-seen order
  for (const auto& row : rows) {
    if (std::find(sizes.begin(), sizes.end(), row.size) == sizes.end()) sizes.push_back(row.size);
    const std::pair<std::string, int> line{row.resource, row.threads};
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }
  std::size_t name_width = 8;
  for (const auto& [resource, threads] : lines) name_width = std::max(name_width, resource.size());
  const DeviceInfo info = device.info();
  std::string out = fmt::format(
      "allocate+free pairs on {} ({}), device memory: ns per pair, median of {} repeats of {} pairs per "
      "thread\n\n",
      to_string(info.id), info.name, options.repeat, options.pairs);
  out += fmt::format("{:<{}} {:>7}", "resource", name_width, "threads");
  for (const std::size_t size : sizes) out += fmt::format(" {:>10}", format_bytes(size));
  out += "\n";
  for (const auto& [resource, threads] : lines) {
    out += fmt::format("{:<{}} {:>7}", resource, name_width, threads);
    for (const std::size_t size : sizes) {
      const auto it = std::find_if(rows.begin(), rows.end(), [&](const AllocBenchRow& row) {
        return row.resource == resource && row.threads == threads && row.size == size;
      });
      out += fmt::format(" {:>10.1f}", it->ns_per_pair);
    }
    out += "\n";
  }
  return out;
}

std::vector<TransferBenchRow> bench_transfer(const std::vector<SelectedDevice>& devices,
                                             const TransferBenchOptions& options) {
  const std::vector<std::size_t> sizes =
      options.sizes.empty() ? geometric_sizes(kSmallestTransfer, kLargestTransfer) : options.sizes;
  check_sizes(sizes, "bench transfer");
  check_repeat(options.repeat, "bench transfer");
  const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());

  // Every buffer is written once before timing (host buffers here, device and pinned ones below), and every
  // copy runs once untimed, so that no first-touch page fault is timed.
  AlignedBuffer source(largest);
  AlignedBuffer destination(largest);
  std::memset(source.data(), 1, largest);
  std::memset(destination.data(), 2, largest);

  std::vector<TransferBenchRow> rows;
  TransferEngine engine;
  for (const auto& device : devices) {
    Backend& backend = *device.backend;
    const DeviceInfo info = device.info();
    const std::size_t capacity = std::min(largest, info.max_allocation_bytes);
    const OwnedSegment first(backend, device.index, MemoryKind::Device, capacity);
    const OwnedSegment second(backend, device.index, MemoryKind::Device, capacity);
    backend.memset(first.get(), 0, 3, capacity);
    backend.memset(second.get(), 0, 4, capacity);
    std::optional<OwnedSegment> pinned;
    if (info.capabilities.pinned_host) {
      pinned.emplace(backend, device.index, MemoryKind::PinnedHost, capacity);
      std::memset(pinned->get().host_ptr, 5, capacity);
    }
    std::optional<OwnedSegment> peer;
    if (backend.device_count() > 1) {
      const int other = (device.index + 1) % backend.device_count();
      peer.emplace(backend, other, MemoryKind::Device,
                   std::min(capacity, backend.device_info(other).max_allocation_bytes));
      backend.memset(peer->get(), 0, 6, peer->get().size);
    }
    const Segment& a = first.get();
    const Segment& b = second.get();
    for (const std::size_t size : sizes) {
      if (size > capacity) continue;
      const auto host_copy = [&] {
        std::memcpy(destination.data(), source.data(), size);
        keep(destination.data());
      };
      const auto add = [&](const char* direction, const auto& copy) {
        const RepeatSeconds times = repeat_seconds(size, options.repeat, copy, host_copy);
        rows.push_back({to_string(info.id), direction, size,
                        *std::min_element(times.operation.begin(), times.operation.end()),
                        bandwidth_spread(size, times.operation), bandwidth_spread(size, times.baseline)});
      };
      const Segment from_host = Segment::host_view(static_cast<const void*>(source.data()), size);
      const Segment to_host = Segment::host_view(destination.data(), size);
      add("h2d-pageable", [&] { backend.copy(a, 0, from_host, 0, size); });
      if (pinned) add("h2d-pinned", [&] { backend.copy(a, 0, pinned->get(), 0, size); });
      add("d2h-pageable", [&] { backend.copy(to_host, 0, a, 0, size); });
      if (pinned) add("d2h-pinned", [&] { backend.copy(pinned->get(), 0, a, 0, size); });
      add("d2d", [&] { backend.copy(b, 0, a, 0, size); });
      if (peer && size <= peer->get().size) add("peer", [&] { backend.copy(peer->get(), 0, a, 0, size); });
      // The transfer engine's strategies, and the unpipelined staged copies they are measured against: the
      // whole buffer into pinned memory, then one copy out of it.
      if (pinned) {
        const TransferOptions staging{TransferStrategy::PinnedStaging};
        add("h2d-staged", [&] {
          engine.copy(TransferEndpoint::from(a), TransferEndpoint::from(from_host), size, staging);
        });
        add("h2d-staged-plain", [&] {
          std::memcpy(pinned->get().host_ptr, source.data(), size);
          backend.copy(a, 0, pinned->get(), 0, size);
        });
        add("d2h-staged",
            [&] { engine.copy(TransferEndpoint::from(to_host), TransferEndpoint::from(a), size, staging); });
      }
      if (peer && size <= peer->get().size) {
        add("peer-staged", [&] {
          engine.copy(TransferEndpoint::from(peer->get()), TransferEndpoint::from(a), size,
                      {TransferStrategy::HostStaged});
        });
        if (pinned) {
          add("peer-staged-plain", [&] {
            backend.copy(pinned->get(), 0, a, 0, size);
            backend.copy(peer->get(), 0, pinned->get(), 0, size);
          });
        }
      }
    }
  }
  return rows;
}

nlohmann::json transfer_bench_json(const std::vector<SelectedDevice>& devices,
                                   const TransferBenchOptions& options,
                                   const std::vector<TransferBenchRow>& rows) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& row : rows) {
    const BandwidthSpread& copy = row.gib_per_second;
    const BandwidthSpread& reference = row.memcpy_gib_per_second;
    results.push_back({{"device", row.device},
                       {"direction", row.direction},
                       {"size", row.size},
                       {"seconds", row.seconds},
                       {"gib_per_second", copy.best},
                       {"median_gib_per_second", copy.median},
                       {"worst_gib_per_second", copy.worst},
                       {"memcpy_gib_per_second", reference.best},
                       {"memcpy_median_gib_per_second", reference.median},
                       {"fraction_of_memcpy", copy.best / reference.best},
                       {"median_fraction_of_memcpy", copy.median / reference.median}});
  }
  return {{"unimem_version", UNIMEM_VERSION},
          {"benchmark", "transfer"},
          {"devices", selected_devices_json(devices)},
          {"repeat", options.repeat},
          {"results", results}};
}

std::string transfer_bench_table(const std::vector<SelectedDevice>& devices,
                                 const std::vector<TransferBenchRow>& rows) {
  static constexpr std::string_view kDirections[] = {
      "h2d-pageable",     "h2d-pinned", "d2h-pageable", "d2h-pinned",       "d2d", "peer", "h2d-staged",
      "h2d-staged-plain", "d2h-staged", "peer-staged",  "peer-staged-plain"};
  std::string out =
      "Copy bandwidth in GiB/s (Backend::copy; *-staged: TransferEngine strategies; *-staged-plain: the "
      "whole "
      "buffer into pinned memory, then one copy): best/median/worst of the repeats, and in brackets the "
      "median "
      "as a percent of the median memcpy of the same size, timed in alternation with each cell (the memcpy "
      "column is the median of those)\n";
  for (const auto& device : devices) {
    const DeviceInfo info = device.info();
    const std::string id = to_string(info.id);
    std::vector<std::string_view> directions;
    std::vector<std::size_t> sizes;
    for (const auto& row : rows) {
      if (row.device != id) continue;
      if (std::find(sizes.begin(), sizes.end(), row.size) == sizes.end()) sizes.push_back(row.size);
    }
    for (const std::string_view direction : kDirections) {
      if (std::any_of(rows.begin(), rows.end(), [&](const TransferBenchRow& row) {
            return row.device == id && row.direction == direction;
          })) {
        directions.push_back(direction);
      }
    }
    out += fmt::format("\n{} ({})\n{:>10} {:>8}", id, info.name, "size", "memcpy");
    for (const auto direction : directions) out += fmt::format(" {:>22}", direction);
    out += "\n";
    for (const std::size_t size : sizes) {
      std::string line;
      double memcpy_rate = 0.0;
      for (const auto direction : directions) {
        const auto it = std::find_if(rows.begin(), rows.end(), [&](const TransferBenchRow& row) {
          return row.device == id && row.direction == direction && row.size == size;
        });
        if (it == rows.end()) {
          line += fmt::format(" {:>22}", "-");
          continue;
        }
        const BandwidthSpread& copy = it->gib_per_second;
        memcpy_rate = std::max(memcpy_rate, it->memcpy_gib_per_second.median);
        line += fmt::format(" {:>22}",
                            fmt::format("{:.1f}/{:.1f}/{:.1f} ({:.0f}%)", copy.best, copy.median, copy.worst,
                                        100.0 * copy.median / it->memcpy_gib_per_second.median));
      }
      out += fmt::format("{:>10} {:>8.2f}{}\n", format_bytes(size), memcpy_rate, line);
    }
  }
  return out;
}

}  // namespace unimem::cli
