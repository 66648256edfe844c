#include "unimem/core/cache_aligned.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace unimem {
namespace {

struct BlockPayload {
  std::uint64_t offset;
  std::uint64_t size;
  std::uint32_t next;
  std::uint32_t prev;
};

static_assert(sizeof(CacheAligned<std::atomic<std::uint64_t>>) == kCacheLine);
static_assert(alignof(CacheAligned<char>) == kCacheLine);
static_assert(sizeof(ControlBlock64<BlockPayload>) == 64);
static_assert(sizeof(ControlBlock128<BlockPayload>) == 128);
static_assert(alignof(ControlBlock128<BlockPayload>) == 128);

TEST(CacheAligned, AdjacentElementsSitOnSeparateLines) {
  std::vector<CacheAligned<std::uint64_t>> counters(4);
  for (std::size_t i = 0; i + 1 < counters.size(); ++i) {
    const auto a = reinterpret_cast<std::uintptr_t>(&*counters[i]);
    const auto b = reinterpret_cast<std::uintptr_t>(&*counters[i + 1]);
    EXPECT_EQ(b - a, kCacheLine);
    EXPECT_EQ(a % kCacheLine, 0U);
  }
  CacheAligned<std::uint64_t> v(std::in_place, 42U);
  EXPECT_EQ(*v, 42U);
}

TEST(ControlBlock, HoldsItsPayload) {
  ControlBlock64<BlockPayload> block;
  block.data = BlockPayload{1, 2, 3, 4};
  EXPECT_EQ(block.data.size, 2U);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&block) % 64, 0U);
}

}  // namespace
}  // namespace unimem
