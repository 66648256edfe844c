#include "unimem/resource/memory_stats.hpp"

#include "resource/snapshot_json.hpp"

namespace unimem {

namespace detail {

nlohmann::json memory_stats_json(const MemoryStats& stats) {
  return {{"total_allocated_bytes", stats.total_allocated_bytes},
          {"in_use_bytes", stats.in_use_bytes},
          {"pooled_bytes", stats.pooled_bytes},
          {"peak_bytes", stats.peak_bytes},
          {"cache_hits", stats.cache_hits},
          {"cache_misses", stats.cache_misses},
          {"fallbacks", stats.fallbacks},
          {"active_buffers", stats.active_buffers},
          {"allocation_count", stats.allocation_count},
          {"free_count", stats.free_count},
          {"upstream_allocations", stats.upstream_allocations},
          {"upstream_deallocations", stats.upstream_deallocations}};
}

}  // namespace detail

std::string to_json(const MemoryStats& stats) {
  return detail::memory_stats_json(stats).dump();
}

}  // namespace unimem
