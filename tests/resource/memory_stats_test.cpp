#include "unimem/resource/memory_stats.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace unimem {
namespace {

TEST(MemoryStats, JsonNamesEveryFieldWithItsValue) {
  MemoryStats stats;
  stats.total_allocated_bytes = 1;
  stats.in_use_bytes = 2;
  stats.pooled_bytes = 3;
  stats.peak_bytes = 4;
  stats.pool_hits = 5;
  stats.pool_misses = 6;
  stats.cpu_fallbacks = 7;
  stats.active_buffers = 8;
  stats.allocation_count = 9;
  stats.free_count = 10;
  stats.upstream_allocations = 11;
  stats.upstream_deallocations = 12;
  const nlohmann::json json = nlohmann::json::parse(to_json(stats));
  const nlohmann::json expected = {{"total_allocated_bytes", 1},
                                   {"in_use_bytes", 2},
                                   {"pooled_bytes", 3},
                                   {"peak_bytes", 4},
                                   {"pool_hits", 5},
                                   {"pool_misses", 6},
                                   {"cpu_fallbacks", 7},
                                   {"active_buffers", 8},
                                   {"allocation_count", 9},
                                   {"free_count", 10},
                                   {"upstream_allocations", 11},
                                   {"upstream_deallocations", 12}};
  EXPECT_EQ(json, expected);
}

}  // namespace
}  // namespace unimem
