#include "unimem/resource/size_class_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "resource/pool_test_support.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {
namespace {

class SizeClassPoolTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 16 * GiB, .backed = false},
                         SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
};

TEST_F(SizeClassPoolTest, RejectsClassesThatAreNotPowersOfTwo) {
  EXPECT_THROW(SizeClassPool(device_, {.min_block = 300}), InvalidArgument);
  EXPECT_THROW(SizeClassPool(device_, {.max_block = 3 * MiB}), InvalidArgument);
  EXPECT_THROW(SizeClassPool(device_, {.min_block = 4096, .max_block = 1024}), InvalidArgument);
  EXPECT_THROW(SizeClassPool(device_, {.min_block = 0}), InvalidArgument);
  // Below the default alignment, blocks side by side in a chunk would start misaligned.
  EXPECT_THROW(SizeClassPool(device_, {.min_block = 1}), InvalidArgument);
  EXPECT_THROW(SizeClassPool(device_, {.min_block = kDefaultAlignment / 2}), InvalidArgument);
  try {
    SizeClassPool pool(device_, {.min_block = 8});
    ADD_FAILURE() << "min_block 8 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("min_block 8"), std::string::npos) << e.what();
  }
  SizeClassPool smallest(device_, {.min_block = kDefaultAlignment});
  const Allocation a = smallest.allocate(1);
  const Allocation b = smallest.allocate(1);
  const Allocation c = smallest.allocate(1);
  for (const Allocation& x : {a, b, c}) EXPECT_EQ(x.offset % kDefaultAlignment, 0U) << x.offset;
  for (const Allocation& x : {a, b, c}) smallest.deallocate(x);
  EXPECT_THROW(SizeClassPool(device_, {.chunk_size = 3 * MiB}), InvalidArgument);
  EXPECT_THROW(SizeClassPool(device_, {.chunk_size = 128}), InvalidArgument);
  try {
    SizeClassPool pool(device_, {.chunk_size = 3 * MiB});
    ADD_FAILURE() << "chunk_size 3 MiB was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(3 * MiB)), std::string::npos) << e.what();
  }
}

TEST_F(SizeClassPoolTest, RequestsTakeTheirPowerOfTwoClass) {
  SizeClassPool pool(device_, {.min_block = 256, .max_block = MiB});
  EXPECT_EQ(pool.class_count(), 13U);
  EXPECT_EQ(pool.block_size(1), 256U);
  EXPECT_EQ(pool.block_size(256), 256U);
  EXPECT_EQ(pool.block_size(257), 512U);
  EXPECT_EQ(pool.block_size(MiB), MiB);
  EXPECT_EQ(pool.block_size(MiB + 1), 0U) << "above max_block: straight to upstream";
  EXPECT_EQ(pool.block_size(100, 4096), 4096U) << "room to align inside the block";
  const Allocation a = pool.allocate(3000);
  EXPECT_EQ(pool.usage().in_use_bytes, 4096U);
  EXPECT_EQ(pool.usage().reserved_bytes, 4096U) << "a class's first chunk is one block";
  EXPECT_EQ(a.size, 3000U);
  pool.deallocate(a);
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
}

TEST_F(SizeClassPoolTest, CountsHitsMissesReturnsAndReleases) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 1, .per_thread_cache = false});
  const Allocation a = pool.allocate(1000);  // miss: the class's first chunk, one 1 KiB block
  const Allocation b = pool.allocate(1000);  // miss: a chunk of two blocks
  const Allocation c = pool.allocate(1000);  // hit: that chunk's second block
  EXPECT_EQ(c.segment, b.segment);
  EXPECT_EQ(c.offset, b.offset + KiB) << "blocks are carved in order from the chunk";
  pool.deallocate(a);                       // cached
  pool.deallocate(b);                       // the bucket is full: back to its chunk
  const Allocation d = pool.allocate(700);  // hit: the cached block (same 1 KiB class)
  EXPECT_EQ(d.segment, a.segment);
  EXPECT_EQ(d.offset, a.offset) << "the cached block is handed out again";
  pool.deallocate(d);  // cached
  pool.deallocate(c);  // back to its chunk, which is then wholly free: upstream at once
  const SizeClassPoolStats stats = pool.stats();
  EXPECT_EQ(stats.cache_misses, 2U);
  EXPECT_EQ(stats.cache_hits, 2U);
  EXPECT_EQ(stats.returns, 4U);
  EXPECT_EQ(stats.releases, 2U);
  EXPECT_EQ(stats.cached_blocks, 1U);
  EXPECT_EQ(stats.free_blocks, 0U);
  EXPECT_EQ(stats.chunks, 1U);
  EXPECT_EQ(stats.free_bytes, KiB);
  const SizeClassStats& kib = stats.classes[2];
  EXPECT_EQ(kib.block_size, KiB);
  EXPECT_EQ(kib.cache_hits, 2U);
  EXPECT_EQ(kib.cache_misses, 2U);
  EXPECT_EQ(stats.classes[0].cache_misses, 0U);
  const ResourceUsage usage = pool.usage();
  EXPECT_EQ(usage.cache_hits, 2U);
  EXPECT_EQ(usage.cache_misses, 2U);
  EXPECT_EQ(usage.upstream_allocations, 2U);
  EXPECT_EQ(usage.upstream_deallocations, 1U) << "the two-block chunk went back once wholly free";
  EXPECT_EQ(usage.largest_free_range, KiB);
}

TEST_F(SizeClassPoolTest, EachCacheHoldsAtMostItsBound) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 4});
  std::vector<Allocation> live;
  live.reserve(20);
  for (int i = 0; i < 20; ++i) live.push_back(pool.allocate(5000));
  EXPECT_EQ(pool.usage().upstream_allocations, 5U) << "chunks of 1, 2, 4, 8 and 16 blocks of 8 KiB";
  for (const Allocation& a : live) pool.deallocate(a);
  // This thread's cache and the central list hold at most 4 each; the rest went back to their chunks.
  const SizeClassPoolStats stats = pool.stats();
  EXPECT_LE(stats.cached_blocks, 8U);
  EXPECT_GE(stats.cached_blocks, 4U);
  EXPECT_EQ(pool.usage().reserved_bytes, stats.free_bytes) << "every byte held is a cached or free block";
  EXPECT_EQ(device_.live_allocations(), stats.chunks) << "wholly free chunks went back";
}

TEST_F(SizeClassPoolTest, AMillionSmallBlocksCostAFewUpstreamAllocations) {
  SizeClassPool pool(device_);
  std::vector<Allocation> live(1'000'000);
  for (Allocation& a : live) a = pool.allocate(256);
  const ResourceUsage usage = pool.usage();
  EXPECT_LE(usage.upstream_allocations, 1000U);
  EXPECT_EQ(usage.upstream_allocations, 14U + 121U)
      << "chunks of 1, 2, ..., 8192 blocks, then 2 MiB chunks of 8192 blocks of 256 bytes";
  EXPECT_EQ(usage.in_use_bytes, 256U * 1'000'000U);
  for (const Allocation& a : live) ASSERT_TRUE(pool.deallocate(a));
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.in_use_bytes, 0U);
  EXPECT_LE(after.upstream_allocations - after.upstream_deallocations, pool.stats().cached_blocks)
      << "chunks wholly back went upstream at once; only a cached block keeps one";
  EXPECT_LE(pool.stats().cached_blocks, 2 * pool.options().max_pooled_per_bucket);
  EXPECT_EQ(pool.trim(), after.reserved_bytes);
  EXPECT_EQ(device_.live_allocations(), 0U);
}

TEST_F(SizeClassPoolTest, TrimGivesWhollyFreeChunksBack) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 8, .per_thread_cache = false});
  std::vector<Allocation> live;
  live.reserve(9);
  for (int i = 0; i < 6; ++i) live.push_back(pool.allocate(300));   // 512 B class: chunks of 1, 2, 4 blocks
  for (int i = 0; i < 3; ++i) live.push_back(pool.allocate(5000));  // 8 KiB class: chunks of 1 and 2 blocks
  const Allocation keeper = pool.allocate(5000);                    // the first block of a chunk of 4
  for (const Allocation& a : live) pool.deallocate(a);
  EXPECT_EQ(device_.live_allocations(), 6U);
  EXPECT_EQ(pool.trim(), std::size_t{7} * 512 + std::size_t{3} * 8 * KiB)
      << "every chunk but the one holding `keeper`";
  EXPECT_EQ(device_.live_allocations(), 1U);
  EXPECT_EQ(pool.stats().cached_blocks, 0U);
  pool.deallocate(keeper);
  EXPECT_EQ(pool.trim(), std::size_t{4} * 8 * KiB);
  EXPECT_EQ(device_.live_allocations(), 0U);
  EXPECT_EQ(pool.usage().reserved_bytes, 0U);
  EXPECT_EQ(pool.trim(), 0U) << "nothing left to give back";
}

TEST_F(SizeClassPoolTest, AChunkWhollyBackGoesUpstreamAtOnce) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 1, .chunk_size = 4 * KiB, .per_thread_cache = false});
  const Allocation a = pool.allocate(2000);  // a chunk of one 2 KiB block
  const Allocation b = pool.allocate(2000);  // a chunk of two, one of them not carved yet
  EXPECT_EQ(device_.live_allocations(), 2U);
  pool.deallocate(a);  // cached
  pool.deallocate(b);  // the list is full: back to its chunk, which is then wholly free
  EXPECT_EQ(device_.live_allocations(), 1U);
  EXPECT_EQ(pool.trim(), 2 * KiB) << "the cached block's chunk";
  EXPECT_EQ(device_.live_allocations(), 0U);
}

TEST_F(SizeClassPoolTest, ChunksGrowByDoublingUpToChunkSize) {
  SizeClassPool pool(device_, {.chunk_size = 8 * KiB, .per_thread_cache = false});
  std::vector<Allocation> live;
  live.reserve(1 + 2 + 4 + 8 + 8);
  for (int i = 0; i < 1 + 2 + 4 + 8 + 8; ++i) live.push_back(pool.allocate(1000));
  const PoolSnapshot s = pool.snapshot();
  std::vector<std::size_t> sizes;
  for (const SegmentSnapshot& segment : s.segments) sizes.push_back(segment.size);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{KiB, 2 * KiB, 4 * KiB, 8 * KiB, 8 * KiB}))
      << "each chunk twice the last, up to chunk_size: idle blocks never exceed the blocks in use";
  for (const Allocation& a : live) pool.deallocate(a);
  (void)pool.trim();
  EXPECT_EQ(device_.live_allocations(), 0U);
}

TEST_F(SizeClassPoolTest, OversizedRequestsGoStraightUpstream) {
  SizeClassPool pool(device_, {.max_block = 64 * KiB});
  const Allocation a = pool.allocate(100 * KiB);
  EXPECT_EQ(device_.live_allocations(), 1U);
  EXPECT_EQ(pool.usage().in_use_bytes, 100 * KiB);
  pool.deallocate(a);
  EXPECT_EQ(device_.live_allocations(), 0U) << "oversized blocks are never cached";
  const SizeClassPoolStats stats = pool.stats();
  EXPECT_EQ(stats.oversized, 1U);
  EXPECT_EQ(stats.cache_misses, 1U);
  EXPECT_EQ(stats.cached_blocks, 0U);
}

TEST_F(SizeClassPoolTest, UpstreamOutOfMemoryGivesCachedBlocksBackAndRetries) {
  SimulatedBackend small({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(small, 0, MemoryKind::Device);
  SizeClassPool pool(upstream, {.max_block = MiB, .chunk_size = MiB});
  pool.deallocate(pool.allocate(600 * KiB));  // a cached 1 MiB block (its own chunk) fills the device
  const Allocation a = pool.allocate(200 * KiB);
  EXPECT_EQ(pool.stats().classes[12].cached_blocks, 0U) << "the cached 1 MiB block was given back";
  EXPECT_THROW((void)pool.allocate(900 * KiB), OutOfMemory);
  pool.deallocate(a);
}

TEST_F(SizeClassPoolTest, FailingUpstreamLeavesNoTrace) {
  TestUpstream failing(device_, /*fail_every=*/2);
  SizeClassPool pool(failing, {.chunk_size = kDefaultAlignment});  // a chunk is one block
  const Allocation a = pool.allocate(1000);
  EXPECT_THROW((void)pool.allocate(1000), OutOfMemory);
  EXPECT_EQ(pool.usage().in_use_bytes, KiB);
  EXPECT_EQ(pool.stats().cache_misses, 1U);
  pool.deallocate(a);
  (void)pool.trim();
  EXPECT_EQ(failing.live_count(), 0U);
}

TEST_F(SizeClassPoolTest, ThreadExitHandsItsCacheToTheCentralLists) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 4});
  std::size_t cached_by_worker = 0;
  std::thread worker([&] {
    std::vector<Allocation> live;
    live.reserve(3);
    for (int i = 0; i < 3; ++i) live.push_back(pool.allocate(2000));
    for (const Allocation& a : live) pool.deallocate(a);
    EXPECT_EQ(pool.stats().thread_caches, 1U);
    cached_by_worker = pool.stats().cached_blocks;
  });
  worker.join();
  const SizeClassPoolStats stats = pool.stats();
  EXPECT_EQ(stats.thread_caches, 0U);
  EXPECT_GE(cached_by_worker, 3U) << "the three frees, and what refills brought from the chunk";
  EXPECT_EQ(stats.cached_blocks, cached_by_worker) << "the exited thread's blocks stay cached, centrally";
  EXPECT_EQ(stats.returns, 3U) << "counts survive the thread";
  const Allocation again = pool.allocate(2000);
  EXPECT_EQ(pool.stats().cache_hits, stats.cache_hits + 1);
  EXPECT_EQ(pool.stats().cache_misses, stats.cache_misses) << "served from the central list";
  pool.deallocate(again);
  (void)pool.trim();
  EXPECT_EQ(device_.live_allocations(), 0U);
}

TEST_F(SizeClassPoolTest, PoolDestroyedWhileAThreadHoldsACache) {
  auto pool = std::make_unique<SizeClassPool>(device_);
  std::mutex mutex;
  std::condition_variable changed;
  int stage = 0;
  std::thread worker([&] {
    pool->deallocate(pool->allocate(4000));  // leaves a block in this thread's cache
    std::unique_lock lock(mutex);
    stage = 1;
    changed.notify_all();
    changed.wait(lock, [&] { return stage == 2; });
    // The pool is gone: this thread's cache of it must be forgotten, not handed back, when it exits.
  });
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return stage == 1; });
  }
  EXPECT_EQ(pool->stats().thread_caches, 1U);
  pool.reset();
  EXPECT_EQ(device_.live_allocations(), 0U) << "the thread's cached block went back with the pool";
  {
    const std::lock_guard lock(mutex);
    stage = 2;
  }
  changed.notify_all();
  worker.join();
  SizeClassPool next(device_);  // a new pool, maybe at the same address, starts with no stale caches
  next.deallocate(next.allocate(4000));
  EXPECT_EQ(next.stats().cache_hits, 0U);
}

TEST_F(SizeClassPoolTest, TwoThreadsFreeEachOthersBlocks) {
  SizeClassPool pool(device_, {.max_pooled_per_bucket = 4});
  std::vector<Allocation> made(400);
  for (Allocation& a : made) a = pool.allocate(777);
  std::thread other([&] {
    for (std::size_t i = 0; i < made.size(); i += 2) pool.deallocate(made[i]);
  });
  for (std::size_t i = 1; i < made.size(); i += 2) pool.deallocate(made[i]);
  other.join();
  const ResourceUsage usage = pool.usage();
  EXPECT_EQ(usage.in_use_bytes, 0U);
  EXPECT_EQ(usage.reserved_bytes, pool.stats().free_bytes);
}

TEST_F(SizeClassPoolTest, ABlockFreedOnAStreamWaitsForItsEventBeforeAnotherStreamTakesIt) {
  ManualBackend manual(GiB);
  BackendResource upstream(manual, 0, MemoryKind::Device);
  const auto a = manual.create_stream(0);
  const auto b = manual.create_stream(0);
  auto& stream_a = dynamic_cast<ManualStream&>(*a);
  auto& stream_b = dynamic_cast<ManualStream&>(*b);
  {
    SizeClassPool pool(upstream);
    const Allocation first = pool.allocate(1000, a.get());
    stream_a.enqueue();  // a kernel still using `first` when it is freed
    pool.deallocate(first, a.get());
    const Allocation same_stream = pool.allocate(1000, a.get());
    EXPECT_EQ(same_stream.segment, first.segment) << "the freeing stream reuses it at once";
    EXPECT_EQ(stream_a.waits(), 0);
    pool.deallocate(same_stream, a.get());
    const Allocation other_stream = pool.allocate(1000, b.get());
    EXPECT_EQ(other_stream.segment, first.segment);
    EXPECT_EQ(stream_b.waits(), 1) << "stream B must wait for A's free before using the block";
    EXPECT_EQ(stream_a.completed(), 0U) << "waiting on a stream must not block the host";
    stream_b.enqueue();
    pool.deallocate(other_stream, b.get());
    const Allocation host = pool.allocate(1000);
    EXPECT_EQ(host.segment, first.segment);
    EXPECT_EQ(stream_b.completed(), stream_b.submitted()) << "a host-order allocation waits for B's free";
    pool.deallocate(host);
    const Allocation after_host_free = pool.allocate(1000, a.get());
    EXPECT_EQ(stream_a.waits(), 0) << "a block freed in host order is ready for every stream";
    pool.deallocate(after_host_free, a.get());
  }
  EXPECT_GE(manual.events_created(), 1);
  EXPECT_EQ(manual.live_segment_count(), 0U);
}

// A block's state steps at every hand-out and every free, and the cookie carries the hand-out's (odd) value.
// A freed allocation whose cookie was stepped once names the free block's state exactly; it must still be
// refused, not turn the free block live.
TEST_F(SizeClassPoolTest, AFreedAllocationWithItsGenerationSteppedIsRejected) {
  SizeClassPool pool(device_);
  const Allocation a = pool.allocate(1000);
  ASSERT_TRUE(pool.deallocate(a));
  Allocation stepped = a;
  stepped.cookie += std::uint64_t{1} << 32U;
  std::vector<std::string> reports;
  {
    const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
    EXPECT_FALSE(pool.deallocate(stepped));
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("is not live here"), std::string::npos) << reports[0];
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
  const Allocation again = pool.allocate(1000);
  EXPECT_EQ(again.offset, a.offset) << "the block is free and cached, handed out once more";
  EXPECT_TRUE(pool.deallocate(again));
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
}

TEST_F(SizeClassPoolTest, AFreeOrderedOnAnotherDevicesStreamIsReportedAndDoneInHostOrder) {
  SizeClassPool pool(device_);
  const auto other = sim_.create_stream(1);
  expect_foreign_device_free_reported(pool, *other);
}

}  // namespace
}  // namespace unimem::test
