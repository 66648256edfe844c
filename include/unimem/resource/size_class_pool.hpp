#pragma once
// SizeClassPool: power-of-two size classes from min_block to max_block. Blocks of a class are carved from
// chunks, upstream allocations that double with each chunk the class holds (1, 2, 4, ... blocks) up to
// chunk_size bytes, so that a million small live allocations cost about a hundred upstream calls, not a
// million, while a class never holds more idle blocks in a part-used chunk than it has in use. Blocks are
// carved from a chunk only as they are handed out. Requests above max_block go straight to upstream (and
// back on free).
//
// Thread model: every thread has its own cache of each pool it uses, in front of central lists per class.
// A thread's cache is touched only by its own thread: a hit is a pop from a singly linked list with no lock
// and no read-modify-write atomic (its counters are plain stores that other threads may read). The cache
// moves blocks to and from the central list in batches, under the central lock. Each cache, central or per
// thread, holds at most max_pooled_per_bucket blocks of each class; blocks that fit neither go back to
// their chunk, and a chunk whose blocks are all back is given back upstream at once.
//
// trim() empties the calling thread's cache and the central lists into their chunks and gives every wholly
// free chunk back; other threads' caches are emptied the next time those threads refill or spill one, or
// when they exit (reaching into them would need the lock their hits go without). A pool destroyed while
// threads still hold caches of it gives every chunk back and forgets those caches (those threads must not
// be inside the pool's functions then, as for any destroyed object).
//
// Stream order: through the pools' one StreamOrder (src/resource/stream_order.hpp). A block freed on
// stream A carries a fence; reused on A, or once the fence's event has completed, it is handed out at once,
// otherwise the new stream is made to wait for the event (with a null stream the host waits).
//
// Alignments above kDefaultAlignment come from a class large enough to move the start forward inside the
// block (a 4096-aligned request of 100 bytes takes a 4 KiB block).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "unimem/resource/memory_resource.hpp"
#include "unimem/resource/pool_snapshot.hpp"

namespace unimem {

namespace detail {
struct SizeClassState;
struct BlockRecord;
}  // namespace detail

struct SizeClassPoolOptions {
  std::size_t min_block = 256;                    // smallest class: a power of two, >= kDefaultAlignment
  std::size_t max_block = std::size_t{1} << 20U;  // largest class; larger requests go straight to upstream
  std::size_t max_pooled_per_bucket = 8;          // cached blocks per class, in each cache
  // The largest upstream allocation blocks are carved from (a power of two; a class above it takes one block
  // per chunk). 2 MiB is the large-page size of x86-64 and the CUDA driver's allocation granule.
  std::size_t chunk_size = std::size_t{2} << 20U;
  bool per_thread_cache = true;  // false: every thread uses the central lists
};

struct SizeClassStats {
  std::size_t block_size = 0;
  std::uint64_t cache_hits = 0;    // allocations served by a block the pool held
  std::uint64_t cache_misses = 0;  // allocations that took a new chunk from upstream
  std::uint64_t returns = 0;       // frees accepted
  std::uint64_t releases = 0;      // blocks that left the caches for their chunk
  std::size_t cached_blocks = 0;   // in a cache, central or per thread
  std::size_t free_blocks = 0;     // back in their chunk, neither live nor cached
  std::size_t chunks = 0;          // upstream allocations held for this class
};

struct SizeClassPoolStats {
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;  // including oversized requests
  std::uint64_t returns = 0;
  std::uint64_t releases = 0;
  std::uint64_t oversized = 0;  // requests above max_block, served by upstream directly
  std::size_t cached_blocks = 0;
  std::size_t free_blocks = 0;
  std::size_t free_bytes = 0;  // bytes of the cached and free blocks: reserved - in use
  std::size_t chunks = 0;
  std::size_t thread_caches = 0;  // per-thread caches alive now
  std::vector<SizeClassStats> classes;
};

class SizeClassPool final : public MemoryResource {
 public:
  // Throws InvalidArgument unless min_block and max_block are powers of two with kDefaultAlignment <=
  // min_block <= max_block.
  explicit SizeClassPool(MemoryResource& upstream, SizeClassPoolOptions options = {});
  // Empties every cache, reports live allocations (report_misuse) and gives every block back upstream.
  ~SizeClassPool() override;
  SizeClassPool(const SizeClassPool&) = delete;
  SizeClassPool& operator=(const SizeClassPool&) = delete;
  SizeClassPool(SizeClassPool&&) = delete;
  SizeClassPool& operator=(SizeClassPool&&) = delete;

  [[nodiscard]] SizeClassPoolStats stats() const;
  // Every chunk as a segment, its blocks as ranges (adjacent free blocks as one); take it while no other
  // thread uses the pool.
  [[nodiscard]] PoolSnapshot snapshot() const;
  [[nodiscard]] const SizeClassPoolOptions& options() const noexcept { return options_; }
  [[nodiscard]] MemoryResource& upstream() const noexcept { return upstream_; }

  // The block a request takes: its class size, or 0 when it goes straight to upstream (above max_block).
  [[nodiscard]] std::size_t block_size(std::size_t bytes, std::size_t alignment = kDefaultAlignment) const;
  [[nodiscard]] std::size_t class_count() const noexcept { return class_count_; }

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  // The class of a footprint (1 to max_block bytes): min_block - 1 folds everything up to min_block into 0.
  // Its low bit is set already (min_block >= kDefaultAlignment); setting it again tells the compiler that the
  // value is not 0, so that counting its leading zeros needs no test for 0.
  [[nodiscard]] std::size_t class_of(std::size_t footprint) const noexcept {
    return class_top_ -
           static_cast<unsigned>(std::countl_zero((footprint - 1) | (options_.min_block - 1) | 1U));
  }
  [[gnu::noinline]] Allocation allocate_slow(std::size_t bytes, Stream* stream, std::size_t alignment);
  [[gnu::noinline]] bool deallocate_slow(detail::BlockRecord& record, Stream* stream) noexcept;
  [[gnu::noinline]] bool reject(const Allocation& allocation) const noexcept;
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  MemoryResource& upstream_;
  SizeClassPoolOptions options_;
  unsigned class_top_;  // 64 - log2(min_block): the class of x is class_top_ - countl_zero(x - 1)
  std::size_t class_count_;
  std::unique_ptr<detail::SizeClassState> state_;
};

}  // namespace unimem
