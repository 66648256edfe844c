#include "unimem/resource/expandable_pool.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "resource/expandable_model.hpp"
#include "resource/pool_test_support.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/coalescing_pool.hpp"

namespace unimem::test {
namespace {

constexpr std::size_t kGranule = SimulatedBackend::kGranule;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class ExpandablePoolTest : public ::testing::Test {
 protected:
  // 0: a large unbacked device; 1: sim:64MiB; 2: a backed device for data round trips.
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 16 * GiB, .backed = false},
                         SimulatedDeviceSpec{.capacity_bytes = 64 * MiB, .backed = false},
                         SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = true}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
  BackendResource small_{sim_, 1, MemoryKind::Device};
  BackendResource backed_{sim_, 2, MemoryKind::Device};
};

// --- the randomized model (expandable_model.hpp) ---

// Seeded random allocations over sizes 256 B..16 MiB and alignments up to 4 KiB, frees, trims and misuse.
void run_model(ExpandableModel& model, int operations, unsigned seed) {
  std::mt19937_64 rng(seed);
  for (int op = 0; op < operations; ++op) {
    const auto dice = static_cast<unsigned>(rng() % 100);
    std::string error;
    if (dice < 2) {
      error = model.trim();
    } else if (dice < 4) {
      error = model.free_again(rng());
    } else if (dice < 6) {
      error = model.free_forged(rng(), static_cast<unsigned>(rng()));
    } else if (model.live_count() < 48 && (dice < 58 || model.live_count() == 0)) {
      const auto magnitude = static_cast<unsigned>(8 + rng() % 17);
      const std::size_t bytes = std::max<std::size_t>(256, 1 + rng() % (std::size_t{1} << magnitude));
      constexpr std::size_t kAlignments[] = {1, 256, 256, 256, 512, 1024, 2048, 4096};
      error = model.allocate(bytes, kAlignments[rng() % 8]);
    } else {
      error = model.free(rng());
    }
    ASSERT_EQ(error, "") << "operation " << op;
  }
  ASSERT_EQ(model.finish(), "");
}

TEST_F(ExpandablePoolTest, RandomizedModelOnAnUnbackedDevice) {
  ExpandableModel model(device_);
  run_model(model, 4000, 11);
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

TEST_F(ExpandablePoolTest, RandomizedModelWithSmallRangesAndALargerGranule) {
  ExpandableModel model(device_, {.granule = 4 * MiB, .reservation = 32 * MiB});
  run_model(model, 3000, 5);
  EXPECT_GT(model.pool().usage().upstream_allocations, 1U) << "the ranges were never used up";
}

TEST_F(ExpandablePoolTest, RandomizedModelNearlyFillingSim64MiB) {
  ExpandableModel model(small_);
  run_model(model, 3000, 17);
  EXPECT_GT(model.failed_allocations(), 0U) << "the device never filled up";
  EXPECT_EQ(sim_.live_bytes(1), 0U);
}

TEST_F(ExpandablePoolTest, RandomizedModelWritesEveryLiveByteOnABackedDevice) {
  ExpandableModel model(backed_, {}, true);
  run_model(model, 1500, 23);
}

// Placement's hints (free ranges known to hold no wholly mapped position) only spare it work: the same
// random sequence on two pools, one with hints and one without, must place every allocation at the same
// offset and make the same map and unmap calls. Sizes of up to a few granules keep the pool past its peak,
// mapping and unmapping often, so hints go stale and must be dropped.
TEST_F(ExpandablePoolTest, PlacementHintsNeverChangeWherePlacementGoes) {
  const ExpandablePoolOptions options{.granule = kGranule, .reservation = GiB};
  ExpandablePool hinted(device_, options);
  ExpandablePoolOptions without = options;
  without.placement_hints = false;
  ExpandablePool walking(device_, without);
  std::mt19937_64 rng(31);
  std::vector<std::pair<Allocation, Allocation>> live;
  for (int op = 0; op < 20000; ++op) {
    const auto dice = static_cast<unsigned>(rng() % 100);
    if (dice == 0) {
      ASSERT_EQ(hinted.trim(), walking.trim()) << "operation " << op;
    } else if (live.size() < 40 && (dice < 55 || live.empty())) {
      const std::size_t bytes = 1 + rng() % (6 * kGranule);
      const Allocation a = hinted.allocate(bytes);
      const Allocation b = walking.allocate(bytes);
      ASSERT_EQ(a.offset, b.offset) << "operation " << op << ", " << bytes << " bytes";
      live.emplace_back(a, b);
    } else {
      const std::size_t pick = rng() % live.size();
      hinted.deallocate(live[pick].first);
      walking.deallocate(live[pick].second);
      live[pick] = live.back();
      live.pop_back();
    }
    ASSERT_EQ(hinted.usage().map_calls, walking.usage().map_calls) << "operation " << op;
    ASSERT_EQ(hinted.usage().unmap_calls, walking.usage().unmap_calls) << "operation " << op;
  }
  EXPECT_GT(hinted.usage().unmap_calls, 100U) << "the sequence never unmapped enough to test stale hints";
  for (const auto& [a, b] : live) {
    hinted.deallocate(a);
    walking.deallocate(b);
  }
}

// --- mapping ---

// The host-order model above never frees on a stream. Here four streams allocate and free (mostly on their
// own stream, sometimes on another's), so placement and reuse go through every stream's free list: live
// ranges never overlap, and everything comes back.
TEST_F(ExpandablePoolTest, RandomizedStreamsNeverOverlapAndGiveEverythingBack) {
  ExpandablePool pool(device_);
  std::vector<std::unique_ptr<Stream>> streams;
  streams.reserve(4);
  for (int i = 0; i < 4; ++i) streams.push_back(sim_.create_stream(0));
  struct Live {
    Allocation allocation;
    Stream* stream;
  };
  std::vector<Live> live;
  std::mt19937_64 rng(20261203);
  const auto overlaps = [&](const Allocation& a) {
    return std::any_of(live.begin(), live.end(), [&](const Live& l) {
      return l.allocation.segment == a.segment && a.offset < l.allocation.offset + l.allocation.size &&
             l.allocation.offset < a.offset + a.size;
    });
  };
  for (int op = 0; op < 20000; ++op) {
    if (live.size() < 64 && (rng() % 100 < 55 || live.empty())) {
      Stream* stream = streams[rng() % streams.size()].get();
      const std::size_t bytes = std::max<std::size_t>(256, rng() % (std::size_t{1} << (12 + rng() % 13)));
      const Allocation a = pool.allocate(bytes, stream);
      ASSERT_FALSE(overlaps(a)) << "operation " << op << ": " << bytes << " bytes at " << a.offset;
      live.push_back({a, stream});
    } else {
      const std::size_t k = rng() % live.size();
      Stream* order = rng() % 8 == 0 ? streams[rng() % streams.size()].get() : live[k].stream;
      ASSERT_TRUE(pool.deallocate(live[k].allocation, order)) << "operation " << op;
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (const Live& l : live) EXPECT_TRUE(pool.deallocate(l.allocation, l.stream));
  for (const auto& stream : streams) stream->synchronize();
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
  (void)pool.trim();
  EXPECT_EQ(pool.usage().reserved_bytes, 0U);
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

TEST_F(ExpandablePoolTest, AFreedHoleGivesItsGranulesToTheNextGrowthInsteadOfAddingToThem) {
  ExpandablePool pool(device_);
  const Allocation a = pool.allocate(100 * MiB);
  const Allocation b = pool.allocate(100 * MiB);
  pool.deallocate(a);
  const Allocation c = pool.allocate(150 * MiB);
  EXPECT_EQ(c.segment, b.segment);
  EXPECT_EQ(c.offset, 200 * MiB) << "150 MiB does not fit A's hole: it goes past B";
  const ResourceUsage u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 250 * MiB) << "A's 50 idle granules went back before C's 75 were mapped";
  EXPECT_EQ(u.map_calls, 3U);
  EXPECT_EQ(u.unmap_calls, 1U) << "A's hole is one contiguous run";

  // A and B in one segment of the coalescing pool: A's hole stays held, and C takes a segment of its own.
  CoalescingPool coalescing(device_, {.initial_size = 200 * MiB});
  const Allocation ca = coalescing.allocate(100 * MiB);
  const Allocation cb = coalescing.allocate(100 * MiB);
  coalescing.deallocate(ca);
  const Allocation cc = coalescing.allocate(150 * MiB);
  EXPECT_GE(coalescing.usage().reserved_bytes, 350 * MiB) << "A's hole stays held by the coalescing pool";
  coalescing.deallocate(cb);
  coalescing.deallocate(cc);
  pool.deallocate(b);
  pool.deallocate(c);
}

TEST_F(ExpandablePoolTest, FreeNeighboursCoalesceAndAreReusedWithoutMapping) {
  ExpandablePool pool(device_);
  const Allocation a = pool.allocate(100 * MiB);
  const Allocation b = pool.allocate(100 * MiB);
  pool.deallocate(a);
  pool.deallocate(b);
  const ResourceUsage before = pool.usage();
  const Allocation whole = pool.allocate(200 * MiB);
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(whole.segment, a.segment);
  EXPECT_EQ(whole.offset, a.offset);
  EXPECT_EQ(after.map_calls, before.map_calls);
  EXPECT_EQ(after.unmap_calls, before.unmap_calls);
  EXPECT_EQ(after.reserved_bytes, 200 * MiB);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  pool.deallocate(whole);
}

TEST_F(ExpandablePoolTest, IdleGranulesGoBackBeforeMappingPastThePeak) {
  const std::size_t g = kGranule;
  ExpandablePool pool(device_);
  const Allocation a = pool.allocate(4 * g);  // granules 0..3
  const Allocation b = pool.allocate(4 * g);  // 4..7
  const Allocation c = pool.allocate(2 * g);  // 8..9
  EXPECT_EQ(pool.usage().reserved_bytes, 10 * g);
  pool.deallocate(a);
  pool.deallocate(c);
  // 6 granules: the free range before the frontier (c's) grows to 8..13; four more are needed, and the four
  // idle granules of a's hole go first: the peak of 10 touched granules holds.
  const Allocation d = pool.allocate(6 * g);
  EXPECT_EQ(d.offset, 8 * g);
  ResourceUsage u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 10 * g);
  EXPECT_EQ(u.map_calls, 4U);
  EXPECT_EQ(u.unmap_calls, 1U);
  EXPECT_EQ(sim_.mapped_bytes(*a.segment), 10 * g);
  // 3 granules into a's unmapped hole: 13 touched, a new peak, nothing to unmap.
  const Allocation e = pool.allocate(3 * g);
  EXPECT_EQ(e.offset, 0U);
  u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 13 * g);
  EXPECT_EQ(u.map_calls, 5U);
  EXPECT_EQ(u.unmap_calls, 1U);
  // d's hole is mapped: 2 granules of it are reused without a map call.
  pool.deallocate(d);
  const Allocation f = pool.allocate(2 * g);
  EXPECT_EQ(f.offset, 8 * g);
  u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 13 * g);
  EXPECT_EQ(u.map_calls, 5U);
  // trim: the rest of d's hole (10..13) goes; granule 3 (a's hole) was never mapped again.
  EXPECT_EQ(pool.trim(), 4 * g);
  EXPECT_EQ(pool.usage().reserved_bytes, 9 * g);
  EXPECT_EQ(sim_.live_bytes(0), 9 * g);
  for (const Allocation& x : {b, e, f}) pool.deallocate(x);
  EXPECT_EQ(pool.trim(), 9 * g);
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

// Past the peak, best fit's unmapped hole would take idle granules from a mapped free range, and the next
// request for that range would want them back: the request goes where the granules are mapped instead.
TEST_F(ExpandablePoolTest, ARequestGoesToMappedGranulesRatherThanMovingThem) {
  const std::size_t g = kGranule;
  ExpandablePool pool(device_);
  const Allocation a = pool.allocate(4 * g);  // granules 0..3
  const Allocation b = pool.allocate(g);      // 4
  const Allocation c = pool.allocate(6 * g);  // 5..10: a peak of 11 touched
  pool.deallocate(a);
  const Allocation d = pool.allocate(6 * g);  // past the frontier, 11..16: a's 4 idle granules go first
  EXPECT_EQ(d.offset, 11 * g);
  pool.deallocate(c);  // 5..10 idle and mapped
  const ResourceUsage before = pool.usage();
  EXPECT_EQ(before.reserved_bytes, 13 * g);
  // Best fit is a's 4-granule hole, unmapped; mapping 3 granules there would pass the peak of 13 and unmap
  // 3 of c's.
  const Allocation e = pool.allocate(3 * g);
  EXPECT_GE(e.offset, 5 * g);
  EXPECT_LE(e.offset, 8 * g) << "inside c's mapped hole";
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.map_calls, before.map_calls);
  EXPECT_EQ(after.unmap_calls, before.unmap_calls);
  EXPECT_EQ(after.reserved_bytes, 13 * g);
  for (const Allocation& x : {b, d, e}) pool.deallocate(x);
}

// A hole whose low granules are unmapped and high ones mapped: the request goes on the mapped ones.
TEST_F(ExpandablePoolTest, ARequestInAPartlyMappedHoleGoesOnItsMappedGranules) {
  const std::size_t g = kGranule;
  ExpandablePool pool(device_);
  const Allocation a = pool.allocate(2 * g);  // 0..1
  const Allocation b = pool.allocate(2 * g);  // 2..3
  const Allocation c = pool.allocate(g);      // 4
  pool.deallocate(a);
  const Allocation e = pool.allocate(3 * g);  // 5..7, past the peak of 5: a's granules 0..1 go first
  EXPECT_EQ(e.offset, 5 * g);
  pool.deallocate(b);  // hole 0..3: 0..1 unmapped, 2..3 mapped
  const ResourceUsage before = pool.usage();
  EXPECT_EQ(before.reserved_bytes, 6 * g);
  const Allocation f = pool.allocate(2 * g);
  EXPECT_EQ(f.offset, 2 * g) << "the hole's mapped top, not its unmapped low end";
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.map_calls, before.map_calls);
  EXPECT_EQ(after.unmap_calls, before.unmap_calls);
  for (const Allocation& x : {c, e, f}) pool.deallocate(x);
}

TEST_F(ExpandablePoolTest, SmallRequestsShareAGranule) {
  ExpandablePool pool(device_);
  std::vector<Allocation> live;
  live.reserve(8);
  for (int i = 0; i < 8; ++i) live.push_back(pool.allocate(256 * KiB));
  EXPECT_EQ(pool.usage().reserved_bytes, kGranule);
  EXPECT_EQ(pool.usage().map_calls, 1U);
  pool.deallocate(live[3]);
  EXPECT_EQ(pool.trim(), 0U) << "the granule still holds live ranges";
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (i != 3) pool.deallocate(live[i]);
  }
  EXPECT_EQ(pool.trim(), kGranule);
}

// --- out of memory ---

TEST_F(ExpandablePoolTest, OutOfMemoryNamesTheRequestTheMappedBytesAndTheDevice) {
  ExpandablePool pool(small_);
  std::vector<Allocation> fill;
  fill.reserve(4);
  for (int i = 0; i < 4; ++i) fill.push_back(pool.allocate(16 * MiB));
  const ResourceUsage before = pool.usage();
  try {
    (void)pool.allocate(3 * MiB);
    FAIL() << "the device is full";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 3 * MiB);
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "request of 3145728 bytes")) << message;
    EXPECT_TRUE(contains(message, "67108864 bytes mapped")) << message;
    EXPECT_TRUE(contains(message, "device memory 67108864 bytes")) << message;
  }
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.map_calls, before.map_calls);
  EXPECT_EQ(sim_.live_bytes(1), 64 * MiB);
  // The pool goes on working: a freed hole serves requests, idle granules move to the frontier.
  pool.deallocate(fill[1]);
  pool.deallocate(fill[2]);
  const Allocation hole = pool.allocate(3 * MiB);
  const Allocation past = pool.allocate(26 * MiB);
  EXPECT_LE(pool.usage().reserved_bytes, 64 * MiB);
  EXPECT_EQ(pool.usage().in_use_bytes, 61 * MiB);
  for (const Allocation& a : {fill[0], fill[3], hole, past}) pool.deallocate(a);
  (void)pool.trim();
  EXPECT_EQ(sim_.live_bytes(1), 0U);
}

TEST_F(ExpandablePoolTest, AFailedMapOfSeveralRunsLeavesNothingMapped) {
  // Capacity for 5 granules: the pool maps 0..4, trims 1 and 3 away, and something else takes one granule.
  SimulatedBackend tiny({SimulatedDeviceSpec{.capacity_bytes = 5 * kGranule, .backed = false}});
  BackendResource upstream(tiny, 0, MemoryKind::Device);
  ExpandablePool pool(upstream);
  std::vector<Allocation> a;
  a.reserve(5);
  for (int i = 0; i < 5; ++i) a.push_back(pool.allocate(kGranule));
  pool.deallocate(a[1]);
  pool.deallocate(a[3]);
  EXPECT_EQ(pool.trim(), 2 * kGranule);
  const Segment other = tiny.allocate(0, MemoryKind::Device, kGranule);
  for (const int i : {0, 2, 4}) pool.deallocate(a[static_cast<std::size_t>(i)]);
  const std::size_t live_before = tiny.live_bytes(0);
  const ResourceUsage before = pool.usage();
  ASSERT_EQ(live_before, 4 * kGranule);
  // All 5 granules: runs 1 and 3 are missing; 1 maps, 3 does not fit.
  EXPECT_THROW((void)pool.allocate(5 * kGranule), OutOfMemory);
  EXPECT_EQ(tiny.live_bytes(0), live_before) << "the run mapped before the failure stayed mapped";
  EXPECT_EQ(tiny.mapped_bytes(*a[0].segment), 3 * kGranule);
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.in_use_bytes, 0U);
  EXPECT_EQ(after.map_calls, before.map_calls + 1);
  EXPECT_EQ(after.unmap_calls, before.unmap_calls + 1);
  tiny.deallocate(other);
  const Allocation whole = pool.allocate(5 * kGranule);  // fits now
  EXPECT_EQ(whole.offset, 0U);
  EXPECT_EQ(pool.usage().reserved_bytes, 5 * kGranule);
  pool.deallocate(whole);
}

TEST_F(ExpandablePoolTest, AFailedAllocationDoesNotRaiseThePeak) {
  SimulatedBackend tiny({SimulatedDeviceSpec{.capacity_bytes = 5 * kGranule, .backed = false}});
  BackendResource upstream(tiny, 0, MemoryKind::Device);
  ExpandablePool pool(upstream, {.reservation = 4 * kGranule});
  const Allocation a = pool.allocate(kGranule);   // granule 0
  const Allocation a2 = pool.allocate(kGranule);  // granule 1
  const Segment other = tiny.allocate(0, MemoryKind::Device, 3 * kGranule);
  EXPECT_THROW((void)pool.allocate(2 * kGranule), OutOfMemory);  // granules 2..3: the device is full
  tiny.deallocate(other);
  pool.deallocate(a);  // granule 0 idle
  // Granules 2..3 again: live ranges touch 3 granules at most, so granule 0 goes before they are mapped.
  const Allocation c = pool.allocate(2 * kGranule);
  EXPECT_EQ(c.offset, 2 * kGranule);
  EXPECT_EQ(pool.usage().reserved_bytes, 3 * kGranule) << "the failed request counted towards the peak";
  pool.deallocate(a2);
  pool.deallocate(c);
}

TEST_F(ExpandablePoolTest, ADeviceTooSmallForTheMapIsOutOfMemoryAndLeavesNoTrace) {
  ExpandablePool pool(small_, {.reservation = 256 * MiB});
  EXPECT_THROW((void)pool.allocate(65 * MiB), OutOfMemory);
  const ResourceUsage u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 0U);
  EXPECT_EQ(u.in_use_bytes, 0U);
  EXPECT_EQ(sim_.live_bytes(1), 0U);
  const Allocation a = pool.allocate(64 * MiB);
  pool.deallocate(a);
}

TEST_F(ExpandablePoolTest, ARequestAboveTheReservationIsOutOfMemory) {
  ExpandablePool pool(device_, {.reservation = 8 * MiB});
  EXPECT_EQ(pool.reservation(), 8 * MiB);
  try {
    (void)pool.allocate(9 * MiB);
    FAIL() << "9 MiB exceed a reserved range";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 9 * MiB);
    EXPECT_TRUE(contains(e.what(), "8388608")) << e.what();
  }
  EXPECT_EQ(pool.usage().reserved_bytes, 0U);
}

TEST_F(ExpandablePoolTest, AStreamWhoseRangeIsUsedUpGetsAnother) {
  ExpandablePool pool(device_, {.reservation = 8 * MiB});
  const Allocation a = pool.allocate(6 * MiB);
  const Allocation b = pool.allocate(6 * MiB);
  EXPECT_NE(a.segment, b.segment);
  EXPECT_EQ(b.offset, 0U);
  const Allocation c = pool.allocate(2 * MiB);
  EXPECT_EQ(c.segment, b.segment) << "the newest range still has room";
  EXPECT_EQ(pool.usage().upstream_allocations, 2U);
  EXPECT_EQ(pool.snapshot().segments.size(), 2U);
  EXPECT_EQ(pool.usage().reserved_bytes, 14 * MiB);
  for (const Allocation& x : {a, b, c}) pool.deallocate(x);
  (void)pool.trim();
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

// --- misuse and options ---

TEST_F(ExpandablePoolTest, MisuseIsReportedAndChangesNothing) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  ExpandablePool pool(device_);
  ExpandablePool other(device_);
  const Allocation mine = pool.allocate(5 * MiB);
  const Allocation theirs = other.allocate(5 * MiB);
  const Allocation freed = pool.allocate(3 * MiB);
  pool.deallocate(freed);
  const ResourceUsage before = pool.usage();
  EXPECT_FALSE(pool.deallocate(freed));   // double
  EXPECT_FALSE(pool.deallocate(theirs));  // foreign
  EXPECT_FALSE(
      pool.deallocate(Allocation{mine.segment, mine.offset + 256, mine.size, mine.cookie}));         // moved
  EXPECT_FALSE(pool.deallocate(Allocation{mine.segment, mine.offset, mine.size - 1, mine.cookie}));  // size
  EXPECT_FALSE(pool.deallocate(Allocation{mine.segment, mine.offset, mine.size, ~mine.cookie}));     // cookie
  ASSERT_EQ(reports.size(), 5U);
  for (const std::string& r : reports) EXPECT_TRUE(contains(r, "not live here")) << r;
  const ResourceUsage after = pool.usage();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_TRUE(pool.deallocate(mine));
  EXPECT_TRUE(other.deallocate(theirs));
  EXPECT_EQ(reports.size(), 5U);
}

TEST_F(ExpandablePoolTest, DestroyedWithLiveAllocationsReportsAndReleasesEverything) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  {
    ExpandablePool pool(device_, {.reservation = 8 * MiB});
    (void)pool.allocate(1000);
    (void)pool.allocate(8 * MiB);  // a second range
    EXPECT_EQ(sim_.live_segment_count(), 2U);
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_TRUE(contains(reports[0], "destroyed with 2 live allocation(s) of 8389632 bytes")) << reports[0];
  EXPECT_EQ(sim_.live_bytes(0), 0U);
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST_F(ExpandablePoolTest, RejectsBadOptionsNamingTheValue) {
  const auto expect_invalid = [&](ExpandablePoolOptions options, const std::string& value) {
    try {
      ExpandablePool pool(device_, options);
      ADD_FAILURE() << "accepted granule " << options.granule << ", reservation " << options.reservation;
    } catch (const InvalidArgument& e) {
      EXPECT_TRUE(contains(e.what(), value)) << e.what();
    }
  };
  expect_invalid({.granule = 3 * kGranule}, "6291456");
  expect_invalid({.granule = MiB}, "1048576");  // a power of two, but half the device's granule
  expect_invalid({.granule = 4 * MiB, .reservation = 2 * MiB}, "2097152");
  const ExpandablePool fine(device_, {.granule = 4 * MiB, .reservation = 9 * MiB});
  EXPECT_EQ(fine.granule(), 4 * MiB);
  EXPECT_EQ(fine.reservation(), 12 * MiB) << "rounded up to the granule";
  const ExpandablePool defaults(device_);
  EXPECT_EQ(defaults.granule(), kGranule);
  EXPECT_EQ(defaults.reservation(), 16 * GiB) << "the device's memory";
}

TEST_F(ExpandablePoolTest, NeedsDeviceMemoryWithVirtualMemory) {
  HostBackend host;
  BackendResource pinned(host, 0, MemoryKind::Host);
  EXPECT_THROW(ExpandablePool{pinned}, NotSupported);
  ManualBackend plain(GiB);
  BackendResource no_vm(plain, 0, MemoryKind::Device);
  try {
    ExpandablePool pool(no_vm);
    ADD_FAILURE() << "a device without virtual memory was accepted";
  } catch (const NotSupported& e) {
    EXPECT_TRUE(contains(e.what(), "virtual memory")) << e.what();
  }
}

TEST(ExpandablePoolOpenCL, ADeviceWithoutVirtualMemoryIsNotSupported) {
  std::string why;
  Backend* opencl = backend_with_devices(BackendKind::OpenCL, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  if (opencl->device_info(0).capabilities.virtual_memory) GTEST_SKIP() << "this OpenCL device maps memory";
  BackendResource device(*opencl, 0, MemoryKind::Device);
  EXPECT_THROW(ExpandablePool{device}, NotSupported);
}

// --- the host backend ---

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  std::size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

TEST(ExpandablePoolHost, WrittenMemoryLeavesTheProcessAfterFreeAndTrim) {
  HostBackend host;
  if (!host.device_info(0).capabilities.virtual_memory) GTEST_SKIP() << "host virtual memory unavailable";
  BackendResource device(host, 0, MemoryKind::Device);
  ExpandablePool pool(device, {.reservation = 256 * MiB});
  const std::size_t baseline = resident_bytes();
  const Allocation a = pool.allocate(64 * MiB);
  host.memset(*a.segment, a.offset, 0x5A, a.size);
  const std::size_t written = resident_bytes();
  EXPECT_GE(written, baseline + 60 * MiB) << "writing 64 MiB did not make it resident";
  pool.deallocate(a);
  EXPECT_EQ(pool.trim(), 64 * MiB);
  EXPECT_LE(resident_bytes(), written - 60 * MiB) << "the trimmed memory stayed resident";
  EXPECT_EQ(host.live_bytes(0), 0U);
}

// --- streams ---

TEST_F(ExpandablePoolTest, StreamsShareOneRangeAndEachReusesItsFreesAtOnce) {
  ExpandablePool pool(device_);
  const auto s1 = sim_.create_stream(0);
  const auto s2 = sim_.create_stream(0);
  const Allocation a = pool.allocate(3 * MiB, s1.get());
  const Allocation b = pool.allocate(3 * MiB, s2.get());
  EXPECT_EQ(a.segment, b.segment) << "one range for every stream";
  EXPECT_EQ(b.offset, a.offset + 3 * MiB) << "side by side, sharing granule 1";
  EXPECT_EQ(pool.usage().reserved_bytes, 3 * kGranule);
  pool.deallocate(a, s1.get());
  const Allocation again = pool.allocate(3 * MiB, s1.get());
  EXPECT_EQ(again.segment, a.segment);
  EXPECT_EQ(again.offset, a.offset);
  pool.deallocate(again, s1.get());
  pool.deallocate(b, s2.get());
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
}

TEST_F(ExpandablePoolTest, SmallAllocationsOfFourStreamsShareOneGranule) {
  // With a range per stream each stream would map a granule of its own: four times the memory.
  ExpandablePool pool(device_);
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<Allocation> live;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(sim_.create_stream(0));
    live.push_back(pool.allocate(256 * KiB, streams.back().get()));
  }
  EXPECT_EQ(pool.usage().reserved_bytes, kGranule);
  EXPECT_EQ(sim_.live_bytes(0), kGranule);
  for (int i = 0; i < 4; ++i)
    pool.deallocate(live[static_cast<std::size_t>(i)], streams[static_cast<std::size_t>(i)].get());
}

TEST_F(ExpandablePoolTest, FourThreadsWithTheirOwnStreamsShareThePool) {
  ExpandablePool pool(device_);
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<Stream>> streams;
  streams.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) streams.push_back(sim_.create_stream(0));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(100 + t));
      Stream* stream = streams[static_cast<std::size_t>(t)].get();
      std::vector<Allocation> live;
      for (int i = 0; i < 300; ++i) {
        if (live.size() < 10 && rng() % 3 != 0) {
          live.push_back(pool.allocate(1 + rng() % (std::size_t{1} << (8 + rng() % 15)), stream));
        } else if (!live.empty()) {
          const std::size_t pick = rng() % live.size();
          if (!pool.deallocate(live[pick], stream)) ++failures;
          live[pick] = live.back();
          live.pop_back();
        }
      }
      for (const Allocation& a : live) {
        if (!pool.deallocate(a, stream)) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ResourceUsage u = pool.usage();
  EXPECT_EQ(u.in_use_bytes, 0U);
  EXPECT_EQ(u.reserved_bytes, sim_.live_bytes(0));
  (void)pool.trim();
  u = pool.usage();
  EXPECT_EQ(u.reserved_bytes, 0U);
  EXPECT_EQ(sim_.live_bytes(0), 0U);
}

// --- stream order on streams that complete only when the test says so ---

class ExpandableStreamOrder : public ::testing::Test {
 protected:
  ManualBackend manual_{24 * MiB, kGranule};
  BackendResource upstream_{manual_, 0, MemoryKind::Device};
  std::unique_ptr<Stream> a_ = manual_.create_stream(0);
  std::unique_ptr<Stream> b_ = manual_.create_stream(0);
  ManualStream& stream_a_ = dynamic_cast<ManualStream&>(*a_);
  ManualStream& stream_b_ = dynamic_cast<ManualStream&>(*b_);

  // Granules 0..1 unmapped and free (a's hole), 2 live (b), 3..5 mapped and free on stream A (c's hole,
  // pending while A has queued work), 6..8 live (d): the pool at its peak, so mapping a's hole would unmap
  // c's granules. Returns b and d.
  std::pair<Allocation, Allocation> peak_beside_an_unmapped_hole(ExpandablePool& pool) {
    const std::size_t g = kGranule;
    const Allocation a = pool.allocate(2 * g);
    const Allocation b = pool.allocate(g);
    const Allocation c = pool.allocate(3 * g);  // a peak of 6
    pool.deallocate(a);
    const Allocation d = pool.allocate(3 * g);  // past the peak: a's 2 idle granules go first
    EXPECT_EQ(d.offset, 6 * g);
    EXPECT_EQ(pool.usage().reserved_bytes, 7 * g);
    pool.deallocate(c, a_.get());
    return {b, d};
  }
};

TEST_F(ExpandableStreamOrder, AFullDeviceWaitsForPendingFreesBeforeGivingUp) {
  ExpandablePool pool(upstream_);
  const Allocation x = pool.allocate(8 * MiB, a_.get());
  const Allocation y = pool.allocate(8 * MiB);
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());  // pending on A
  pool.deallocate(y);
  // 20 MiB fit no free range; the 16 mapped MiB are pending on A, so the first map finds the device full.
  const Allocation z = pool.allocate(20 * MiB, b_.get());
  EXPECT_EQ(stream_a_.completed(), stream_a_.submitted()) << "the idle granules went only after A's free";
  EXPECT_EQ(pool.usage().reserved_bytes, 20 * MiB);
  EXPECT_EQ(manual_.live_bytes(0), 20 * MiB);
  pool.deallocate(z, b_.get());
}

TEST_F(ExpandableStreamOrder, TrimUnmapsAPendingFreeOnlyAfterItCompletes) {
  ExpandablePool pool(upstream_);
  const Allocation x = pool.allocate(3000, a_.get());
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  EXPECT_EQ(pool.trim(), kGranule);
  EXPECT_EQ(stream_a_.completed(), stream_a_.submitted()) << "unmapped while stream A may still use it";
  EXPECT_EQ(manual_.live_bytes(0), 0U);
}

TEST_F(ExpandableStreamOrder, GrowthNeverUnmapsAGranuleOfAPendingFree) {
  ExpandablePool pool(upstream_);
  const Allocation x = pool.allocate(kGranule, a_.get());  // granule 0
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  // Past the peak of one granule: the allocation wants one idle granule unmapped, and the only one is x's,
  // whose free is pending on A (so B cannot take it either, and y goes to granules 1 and 2).
  const Allocation y = pool.allocate(2 * kGranule, b_.get());
  EXPECT_EQ(stream_a_.completed(), 0U) << "the allocation path blocked the host";
  EXPECT_EQ(y.offset, kGranule);
  EXPECT_EQ(manual_.mapped_bytes(*x.segment), 3 * kGranule) << "A's pending free lost its memory";
  pool.deallocate(y, b_.get());
  stream_a_.complete();
  (void)pool.trim();
  EXPECT_EQ(manual_.live_bytes(0), 0U);
}

// Granules a pending free held when the pool grew past its peak do not raise the limit: once the free
// completes they are idle, and the next growth unmaps them rather than keeping them on top of the peak.
TEST_F(ExpandableStreamOrder, GranulesOfAPendingFreeDoNotRaiseTheMappingLimit) {
  ExpandablePool pool(upstream_);
  const std::size_t g = kGranule;
  const Allocation w0 = pool.allocate(g);               // granule 0
  const Allocation x = pool.allocate(2 * g, a_.get());  // granules 1 and 2
  const Allocation w3 = pool.allocate(g);               // granule 3: a peak of 4
  stream_a_.enqueue();
  pool.deallocate(x, a_.get());
  // x's hole is too small and pending on A: y grows to granules 4..6 with x's granules still mapped, 5 of the
  // 7 mapped granules touched.
  const Allocation y = pool.allocate(3 * g, b_.get());
  EXPECT_EQ(y.offset, 4 * g);
  EXPECT_EQ(pool.usage().reserved_bytes, 7 * g);
  stream_a_.complete();
  pool.deallocate(y, b_.get());
  // u fits no hole and grows y's into granule 7; the mapped granules may reach the peak of 6 touched (w0, w3
  // and u), so both of x's idle granules go, not just the one the new granule replaces.
  const Allocation u = pool.allocate(4 * g);
  EXPECT_EQ(u.offset, 4 * g);
  EXPECT_EQ(pool.usage().reserved_bytes, 6 * g) << "x's granules stayed mapped past the peak";
  EXPECT_EQ(manual_.live_bytes(0), 6 * g);
  for (const Allocation& live : {w0, w3, u}) pool.deallocate(live);
}

// Placement on mapped granules only looks at free ranges the stream may use now: another stream's pending
// free keeps its hole to itself, and the request maps memory of its own instead.
TEST_F(ExpandableStreamOrder, PlacementOnMappedGranulesSkipsAnotherStreamsPendingFree) {
  const std::size_t g = kGranule;
  ExpandablePool pool(upstream_);
  stream_a_.enqueue();
  const auto [b, d] = peak_beside_an_unmapped_hole(pool);  // c's mapped hole pending on A
  // Best fit for B is a's unmapped hole; c's mapped hole would need none mapped, but its free is pending.
  const Allocation e = pool.allocate(2 * g, b_.get());
  EXPECT_EQ(e.offset, 0U);
  EXPECT_EQ(stream_a_.completed(), 0U) << "the allocation path blocked the host";
  EXPECT_EQ(pool.usage().reserved_bytes, 9 * g) << "A's pending free kept its granules";
  pool.deallocate(e, b_.get());
  for (const Allocation& x : {b, d}) pool.deallocate(x);
  stream_a_.complete();
  (void)pool.trim();
  EXPECT_EQ(manual_.live_bytes(0), 0U);
}

// The mapped range a request moves to may sit on a stream's own free list: it leaves that list, and the
// pool's lists stay whole (the next requests on the stream neither overlap it nor lose a range).
TEST_F(ExpandableStreamOrder, PlacementOnMappedGranulesTakesARangeOffItsStreamsList) {
  const std::size_t g = kGranule;
  ExpandablePool pool(upstream_);
  const auto [b, d] = peak_beside_an_unmapped_hole(pool);  // c's mapped hole on A's list
  const ResourceUsage before = pool.usage();
  // Best fit is a's unmapped hole; c's mapped hole is A's own, so A's request moves there.
  const Allocation e = pool.allocate(2 * g, a_.get());
  EXPECT_GE(e.offset, 3 * g);
  EXPECT_LE(e.offset, 4 * g);
  EXPECT_EQ(pool.usage().map_calls, before.map_calls);
  // What is left of c's hole and a's hole are still found, and never overlap e.
  const Allocation f = pool.allocate(g, a_.get());
  const Allocation h = pool.allocate(2 * g, a_.get());
  for (const Allocation* x : {&f, &h}) {
    EXPECT_TRUE(x->offset + x->size <= e.offset || x->offset >= e.offset + e.size) << x->offset;
  }
  EXPECT_TRUE(f.offset + f.size <= h.offset || f.offset >= h.offset + h.size);
  for (const Allocation& x : {e, f, h}) pool.deallocate(x, a_.get());
  for (const Allocation& x : {b, d}) pool.deallocate(x);
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
  (void)pool.trim();
  EXPECT_EQ(manual_.live_bytes(0), 0U);
  const Allocation whole = pool.allocate(9 * g);
  EXPECT_EQ(whole.offset, 0U) << "every free range merged back into one";
  pool.deallocate(whole);
}

TEST_F(ExpandableStreamOrder, AGranuleSharedWithAPendingFreeNeighbourStaysMapped) {
  ExpandablePool pool(upstream_);
  // x covers granule 0 and half of 1, y the other half of 1, z granule 2.
  const Allocation x = pool.allocate(3 * MiB, a_.get());
  const Allocation y = pool.allocate(MiB, a_.get());
  const Allocation z = pool.allocate(2 * MiB, a_.get());
  stream_a_.enqueue();
  stream_b_.enqueue();
  pool.deallocate(x, a_.get());
  pool.deallocate(y, b_.get());  // both pending on different streams: they stay apart
  stream_a_.complete();          // x's free completed, y's has not
  // 4 MiB on B fit no free range (x's 3 MiB and y's 1 MiB stay apart), so they go past z, to granules 3 and
  // 4, past the peak of 3 granules: idle granules go first. Granule 0 (x's alone, settled) goes; granule 1
  // holds y, which stream B may still use, and stays: 4 granules mapped, not 3.
  const Allocation w = pool.allocate(4 * MiB, b_.get());
  EXPECT_EQ(stream_b_.completed(), 0U) << "the allocation path blocked the host";
  EXPECT_EQ(w.segment, x.segment);
  EXPECT_EQ(w.offset, 3 * kGranule);
  EXPECT_EQ(manual_.mapped_bytes(*x.segment), 4 * kGranule) << "granule 1 went while y's free is pending";
  pool.deallocate(w, b_.get());
  pool.deallocate(z, a_.get());
  stream_b_.complete();
  (void)pool.trim();
  EXPECT_EQ(manual_.live_bytes(0), 0U);
}

TEST_F(ExpandableStreamOrder, TrimUnmapsAGranuleSplitBetweenTwoPendingFrees) {
  ExpandablePool pool(upstream_);
  const Allocation x = pool.allocate(MiB, a_.get());
  const Allocation y = pool.allocate(MiB, a_.get());
  const Allocation z = pool.allocate(2 * MiB, a_.get());  // granule 1
  stream_a_.enqueue();
  stream_b_.enqueue();
  pool.deallocate(x, a_.get());
  pool.deallocate(y, b_.get());  // x and y stay apart: both pending, on different streams
  EXPECT_EQ(pool.trim(), kGranule) << "granule 0 is wholly free once both frees complete";
  EXPECT_EQ(stream_a_.completed(), stream_a_.submitted());
  EXPECT_EQ(stream_b_.completed(), stream_b_.submitted());
  EXPECT_EQ(manual_.live_bytes(0), kGranule);
  pool.deallocate(z, a_.get());
}

}  // namespace
}  // namespace unimem::test
