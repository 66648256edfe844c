#pragma once
// SizeClassPool: power-of-two size classes from min_block to max_block, each block one upstream allocation of
// its class size, freed blocks cached for reuse by their class. Requests above max_block go straight to
// upstream (and back on free).
//
// Thread model: every thread has its own cache of each pool it uses (thread_local, keyed by pool), in front
// of a central free list per class; each list has its own small spin lock, which only its thread takes on the
// hot path, so two threads never contend. A thread's cache moves blocks to and from the central list in
// batches. Each cache, central or per thread, holds at most max_pooled_per_bucket blocks per class; a free
// that finds both its thread's cache and the central list full gives the block back upstream. A thread that
// exits hands its cache to the central lists; a pool destroyed while threads still hold caches of it empties
// them first (those threads must not be inside the pool's functions then, as for any destroyed object).
//
// Stream order: a block freed on stream A carries an event recorded there. Reused on A, or once the event has
// completed, it is handed out at once; otherwise the new stream is made to wait for the event
// (Event::make_wait; with a null stream the host waits).
//
// Alignments above kDefaultAlignment come from a class large enough to move the start forward inside the
// block (a 4096-aligned request of 100 bytes takes a 4 KiB block).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "unimem/resource/memory_resource.hpp"
#include "unimem/resource/pool_snapshot.hpp"

namespace unimem {

namespace detail {
struct SizeClassState;
}  // namespace detail

struct SizeClassPoolOptions {
  std::size_t min_block = 256;                    // smallest class (a power of two)
  std::size_t max_block = std::size_t{1} << 20U;  // largest class; larger requests go straight to upstream
  std::size_t max_pooled_per_bucket = 8;          // cached blocks per class, in each cache
  bool per_thread_cache = true;                   // false: every thread uses the central lists
};

struct SizeClassStats {
  std::size_t block_size = 0;
  std::uint64_t hits = 0;      // allocations served by a cached block
  std::uint64_t misses = 0;    // allocations that took a new block from upstream
  std::uint64_t returns = 0;   // frees kept in a cache
  std::uint64_t releases = 0;  // cached or freed blocks given back upstream
  std::size_t cached_blocks = 0;
};

struct SizeClassPoolStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;  // including oversized requests
  std::uint64_t returns = 0;
  std::uint64_t releases = 0;
  std::uint64_t oversized = 0;  // requests above max_block, served by upstream directly
  std::size_t cached_blocks = 0;
  std::size_t cached_bytes = 0;
  std::size_t thread_caches = 0;  // per-thread caches alive now
  std::vector<SizeClassStats> classes;
};

class SizeClassPool final : public MemoryResource {
 public:
  // Throws InvalidArgument unless min_block and max_block are powers of two with min_block <= max_block.
  explicit SizeClassPool(MemoryResource& upstream, SizeClassPoolOptions options = {});
  // Empties every cache, reports live allocations (report_misuse) and gives every block back upstream.
  ~SizeClassPool() override;
  SizeClassPool(const SizeClassPool&) = delete;
  SizeClassPool& operator=(const SizeClassPool&) = delete;
  SizeClassPool(SizeClassPool&&) = delete;
  SizeClassPool& operator=(SizeClassPool&&) = delete;

  // Gives every cached block back upstream, from every thread's cache: shrink(0).
  void clear();
  // Gives back cached blocks until no cache (central or per thread) holds more than `max_blocks_per_class`
  // of any class; the bytes released. trim() is shrink(0).
  std::size_t shrink(std::size_t max_blocks_per_class);

  [[nodiscard]] SizeClassPoolStats stats() const;
  // Every block as a segment of one range, handed out or cached; take it while no other thread uses the pool.
  [[nodiscard]] PoolSnapshot snapshot() const;
  [[nodiscard]] const SizeClassPoolOptions& options() const noexcept { return options_; }
  [[nodiscard]] MemoryResource& upstream() const noexcept { return upstream_; }

  // The block a request takes: its class size, or 0 when it goes straight to upstream (above max_block).
  [[nodiscard]] std::size_t block_size(std::size_t bytes, std::size_t alignment = kDefaultAlignment) const;
  [[nodiscard]] std::size_t class_count() const noexcept { return class_count_; }

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  std::size_t do_trim() override { return shrink(0); }
  ResourceUsage do_usage() const override;

  MemoryResource& upstream_;
  SizeClassPoolOptions options_;
  unsigned min_shift_;  // log2(min_block)
  std::size_t class_count_;
  std::unique_ptr<detail::SizeClassState> state_;
};

}  // namespace unimem
