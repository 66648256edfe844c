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
  stats.cache_hits = 5;
  stats.cache_misses = 6;
  stats.fallbacks = 7;
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
                                   {"cache_hits", 5},
                                   {"cache_misses", 6},
                                   {"fallbacks", 7},
                                   {"active_buffers", 8},
                                   {"allocation_count", 9},
                                   {"free_count", 10},
                                   {"upstream_allocations", 11},
                                   {"upstream_deallocations", 12}};
  EXPECT_EQ(json, expected);
}

TEST(MemoryStats, PlusEqualsAddsEveryField) {
  const MemoryStats first{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const MemoryStats second{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200};
  MemoryStats sum = first;
  sum += second;
  // Compared through JSON, which names every field, so that a field += forgets shows up here.
  const nlohmann::json got = nlohmann::json::parse(to_json(sum));
  const nlohmann::json a = nlohmann::json::parse(to_json(first));
  const nlohmann::json b = nlohmann::json::parse(to_json(second));
  ASSERT_EQ(got.size(), 12U);
  for (const auto& [name, value] : got.items()) {
    EXPECT_EQ(value.get<std::uint64_t>(), a.at(name).get<std::uint64_t>() + b.at(name).get<std::uint64_t>())
        << name;
  }
}

}  // namespace
}  // namespace unimem
