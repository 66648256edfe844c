#pragma once
// CoalescingPool: best-fit over address-ordered free ranges inside a few large upstream allocations
// (segments), splitting ranges on allocation and merging free neighbours on deallocation. Ranges never merge
// across segments: each segment is one upstream allocation and goes back upstream whole.
//
// Growth: the first segment is max(initial_size, request); each later one is the larger of the request and
// reserved * (growth_factor - 1) capped at max_growth_step; nothing grows past maximum_size (OutOfMemory
// naming the request, the bytes reserved and the maximum). Before growing, wholly free segments are given
// back (release_before_growth), which in effect merges them into the new segment; on the default settings
// this keeps peak reserved within 1% of peak live bytes on the shared training traces. When the upstream
// is out of memory, wholly free segments are given back and the growth is retried, then retried at the bare
// request.
//
// Stream order: a range freed on stream A is reused by A at once. Another stream B (or the host, with a null
// stream) takes it only once the event recorded on A at the free has completed; when nothing that B may use
// at once fits, B is made to wait for that event (Event::make_wait: the host is not blocked; a null stream
// blocks the host) rather than growing the pool. Free ranges of different streams merge only once one side's
// event has completed; a range ready for every stream merges into its neighbour's stream.
//
// Thread-safe: one mutex (spinning briefly before it blocks) guards everything, upstream calls included
// (growth is rare, and serialising it keeps two threads from growing the pool at once).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "unimem/resource/memory_resource.hpp"
#include "unimem/resource/pool_snapshot.hpp"

namespace unimem {

struct CoalescingPoolOptions {
  std::size_t initial_size = 0;  // first segment (0: the first request's size)
  double growth_factor = 2.0;    // each new segment >= reserved * (growth_factor - 1); at least 1
  std::size_t maximum_size = std::numeric_limits<std::size_t>::max();  // cap on reserved bytes
  bool release_free_segments = true;  // give wholly free segments back on trim()
  // Give wholly free segments back before growing: they are too small for the request (or it would have
  // fitted), so keeping them only raises reserved; their bytes come back as part of the new segment.
  bool release_before_growth = true;
  // Cap on the geometric step (0: none); a segment is still at least the request. Geometric growth keeps the
  // segment count low while the pool is small; for a pool of GiBs a geometric step is mostly idle memory.
  std::size_t max_growth_step = std::size_t{8} << 20U;
};

struct FragmentationFigures {
  std::size_t free_bytes = 0;          // reserved and not handed out
  std::size_t largest_free_range = 0;  // the largest request the pool serves without growing
  double fragmentation = 0.0;          // 1 - largest_free_range / free_bytes; 0 without free bytes
  std::size_t segment_count = 0;       // upstream allocations held
  std::size_t free_range_count = 0;
};

class CoalescingPool final : public MemoryResource {
 public:
  // Throws InvalidArgument for a growth factor below 1 (or not finite), or an initial size above the maximum.
  explicit CoalescingPool(MemoryResource& upstream, CoalescingPoolOptions options = {});
  // Reports live allocations (report_misuse) and gives every segment back upstream.
  ~CoalescingPool() override;
  CoalescingPool(const CoalescingPool&) = delete;
  CoalescingPool& operator=(const CoalescingPool&) = delete;
  CoalescingPool(CoalescingPool&&) = delete;
  CoalescingPool& operator=(CoalescingPool&&) = delete;

  [[nodiscard]] FragmentationFigures fragmentation() const;
  // Every segment and every range in it, free or handed out (pool_snapshot.hpp).
  [[nodiscard]] PoolSnapshot snapshot() const;
  [[nodiscard]] const CoalescingPoolOptions& options() const noexcept { return options_; }
  [[nodiscard]] MemoryResource& upstream() const noexcept { return upstream_; }

  // Sizes handed out are multiples of this (the request rounded up); ranges start at least this aligned.
  static constexpr std::size_t kGranularity = kDefaultAlignment;

 private:
  struct State;

  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  // Gives wholly free segments back (when options().release_free_segments); the bytes released.
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  MemoryResource& upstream_;
  CoalescingPoolOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace unimem
