#pragma once
// `unimem bench alloc` and `unimem bench transfer`: the microbenchmarks behind the README's figures.
//
// alloc: allocate+free pairs of one size, back to back, on each resource stack (resource_spec.hpp) and with
// malloc/free, from 1 and from 2 threads sharing the stack. Median over repeats.
//
// transfer: Backend::copy bandwidth host->device, device->host (from and to pageable host memory through a
// host view, and from and to pinned host memory where the device has it), device->device on one device and
// between two devices of one backend, and the TransferEngine's staged strategies beside the unpipelined
// staged copies they are measured against, next to this machine's memcpy bandwidth for the same size measured
// in alternation with it. Best, median and worst of the repeats; each repeat copies the size enough times to
// take a measurable time.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "unimem/device_option.hpp"

namespace unimem::cli {

struct AllocBenchOptions {
  std::vector<std::string> resources{"upstream", "size-class", "coalescing", "hybrid"};
  std::vector<std::size_t> sizes;  // empty: 256 B to 1 MiB in steps of 4x
  std::vector<int> threads{1, 2};
  std::size_t pairs = 20000;  // per thread and repeat
  int repeat = 3;
};

struct AllocBenchRow {
  std::string resource;  // a spec, or "malloc"
  std::size_t size = 0;
  int threads = 0;
  double ns_per_pair = 0.0;               // wall time / the pairs one thread did
  double million_pairs_per_second = 0.0;  // all threads together
};

// Throws InvalidArgument for bad options or specs.
[[nodiscard]] std::vector<AllocBenchRow> bench_alloc(const SelectedDevice& device,
                                                     const AllocBenchOptions& options);
[[nodiscard]] nlohmann::json alloc_bench_json(const SelectedDevice& device, const AllocBenchOptions& options,
                                              const std::vector<AllocBenchRow>& rows);
[[nodiscard]] std::string alloc_bench_table(const SelectedDevice& device, const AllocBenchOptions& options,
                                            const std::vector<AllocBenchRow>& rows);

struct TransferBenchOptions {
  std::vector<std::size_t> sizes;  // empty: 1 MiB to 1 GiB in steps of 4x
  int repeat = 5;
};

// Bandwidth over the repeats of one copy: the best, the median and the worst repeat.
struct BandwidthSpread {
  double best = 0.0;  // GiB/s
  double median = 0.0;
  double worst = 0.0;
};

struct TransferBenchRow {
  std::string device;     // "opencl:0"
  std::string direction;  // h2d-pageable, ..., peer, h2d-staged, ..., peer-staged-plain (docs/cli.md)
  std::size_t size = 0;
  double seconds = 0.0;  // best of the repeats, for one copy
  BandwidthSpread gib_per_second;
  BandwidthSpread memcpy_gib_per_second;  // memcpy of the same size between two pageable host buffers, timed
                                          // in alternation with this row's copies
};

// Every device in `devices` must have copyable memory (an unbacked simulated device throws NotSupported).
[[nodiscard]] std::vector<TransferBenchRow> bench_transfer(const std::vector<SelectedDevice>& devices,
                                                           const TransferBenchOptions& options);
[[nodiscard]] nlohmann::json transfer_bench_json(const std::vector<SelectedDevice>& devices,
                                                 const TransferBenchOptions& options,
                                                 const std::vector<TransferBenchRow>& rows);
[[nodiscard]] std::string transfer_bench_table(const std::vector<SelectedDevice>& devices,
                                               const std::vector<TransferBenchRow>& rows);

}  // namespace unimem::cli
