#pragma once
// MemoryStats: one snapshot of what a stack has done and holds, in the shape users of caching allocators know
// (bytes in use and pooled, peak, hit rate, fallbacks). StatisticsAdaptor fills it; the manager aggregates
// it.

#include <cstddef>
#include <cstdint>
#include <string>

namespace unimem {

struct MemoryStats {
  std::size_t total_allocated_bytes = 0;  // bytes handed out since the start (frees do not subtract)
  std::size_t in_use_bytes = 0;           // bytes handed out and not yet freed
  std::size_t pooled_bytes = 0;           // held from the backend but not handed out (cached by pools)
  std::size_t peak_bytes = 0;             // the most bytes in use at once since the start or reset_peak()
  std::uint64_t cache_hits = 0;           // allocations served from memory already held
  std::uint64_t cache_misses = 0;         // allocations that needed new memory from upstream
  std::uint64_t fallbacks = 0;            // allocations served by a fallback resource
  std::uint64_t active_buffers = 0;       // allocations live now
  std::uint64_t allocation_count = 0;
  std::uint64_t free_count = 0;
  std::uint64_t upstream_allocations = 0;    // segments obtained from the backend
  std::uint64_t upstream_deallocations = 0;  // segments returned to the backend

  // cache_hits / (cache_hits + cache_misses); 0 before any allocation.
  [[nodiscard]] double hit_rate() const noexcept {
    const std::uint64_t lookups = cache_hits + cache_misses;
    return lookups == 0 ? 0.0 : static_cast<double>(cache_hits) / static_cast<double>(lookups);
  }

  // Adds another stack's figures field by field; the peak becomes the sum of the peaks, an upper bound on the
  // combined peak (the stacks need not have peaked at once).
  MemoryStats& operator+=(const MemoryStats& other) noexcept {
    total_allocated_bytes += other.total_allocated_bytes;
    in_use_bytes += other.in_use_bytes;
    pooled_bytes += other.pooled_bytes;
    peak_bytes += other.peak_bytes;
    cache_hits += other.cache_hits;
    cache_misses += other.cache_misses;
    fallbacks += other.fallbacks;
    active_buffers += other.active_buffers;
    allocation_count += other.allocation_count;
    free_count += other.free_count;
    upstream_allocations += other.upstream_allocations;
    upstream_deallocations += other.upstream_deallocations;
    return *this;
  }
};

// The fields above as a JSON object with the same names (docs/snapshot.md, "stats").
[[nodiscard]] std::string to_json(const MemoryStats& stats);

}  // namespace unimem
