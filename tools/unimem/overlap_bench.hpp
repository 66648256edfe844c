#pragma once
// `unimem bench overlap`: what a double-buffered download loop gains over a synchronous one on a device, and
// a model of what bounds the gain, from the parts of one step measured alone in the same run.
//
// A step of the loop produces a result on the device (a fill queued on the download's stream), downloads it
// into host memory (pinned where the device has it) and consumes it on the host (sums its words). The
// synchronous loop waits for each step's download before consuming it; the double-buffered loop
// (DoubleBufferedDownload) consumes step n - 1 while step n is produced and downloaded.
//
// The model, per step, from medians measured alone in the same run: produce p and download c (each queued and
// waited for), consume k, the hand-off h (an 8-byte fill queued and waited for: what a wait costs beyond the
// work) and the issue time i (what the host spends queueing a step's fill and download without waiting; about
// the whole device work on a backend that runs its streams on the calling thread):
//   synchronous loop:          measured; about p + c + k
//   device work:               d = p + c - 2h
//   host work:                 i + k, what the host does per double-buffered step
//   separate engines bound:    max(d, i + k)   the device's work (fill, then download, on one stream)
//                                              overlapping the host's; what a GPU with its own compute, copy
//                                              engine and memory allows
//   shared memory bound:       (d + k) / m     every part streams through the same memory; m is the memory
//                                              concurrency, two threads' memcpy bandwidth together over one
//                                              thread's at the step's size (1: two streams share one stream's
//                                              bandwidth, 2: each gets a full one)
//   model:                     the larger bound; the speedup it allows is the synchronous step over it.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "unimem/device_option.hpp"

namespace unimem::cli {

struct OverlapBenchOptions {
  std::vector<std::size_t> sizes;  // empty: 1 MiB to 64 MiB in steps of 4x
  int steps = 16;                  // steps per timed loop
  int repeat = 5;                  // medians over this many repeats of every measurement
};

struct OverlapBenchRow {
  std::string device;  // "opencl:0"
  std::size_t size = 0;
  // Seconds per step, medians over the repeats.
  double produce = 0.0;
  double download = 0.0;
  double consume = 0.0;
  double handoff = 0.0;
  double issue = 0.0;
  double synchronous = 0.0;
  double double_buffered = 0.0;
  double memory_concurrency = 0.0;  // in [1, 2] up to noise

  [[nodiscard]] double device_work() const noexcept;
  [[nodiscard]] double host_work() const noexcept { return issue + consume; }
  [[nodiscard]] double separate_engines_bound() const noexcept;
  [[nodiscard]] double shared_memory_bound() const noexcept;
  [[nodiscard]] double model() const noexcept;
  [[nodiscard]] double measured_speedup() const noexcept { return synchronous / double_buffered; }
  [[nodiscard]] double model_speedup() const noexcept { return synchronous / model(); }
  // "engines" or "memory": the bound the model takes.
  [[nodiscard]] const char* binding_bound() const noexcept;
};

// Throws InvalidArgument for bad options; NotSupported for a device whose memory cannot be copied (an
// unbacked simulated device).
[[nodiscard]] std::vector<OverlapBenchRow> bench_overlap(const std::vector<SelectedDevice>& devices,
                                                         const OverlapBenchOptions& options);
[[nodiscard]] nlohmann::json overlap_bench_json(const std::vector<SelectedDevice>& devices,
                                                const OverlapBenchOptions& options,
                                                const std::vector<OverlapBenchRow>& rows);
[[nodiscard]] std::string overlap_bench_table(const std::vector<OverlapBenchRow>& rows);

}  // namespace unimem::cli
