#include "unimem/resource/coalescing_pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "resource/free_ranges.hpp"
#include "resource/pool_support.hpp"
#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

using detail::kNoRange;

struct CoalescingPool::State {
  State(CoalescingPool& owner, MemoryResource& upstream_resource, const CoalescingPoolOptions& pool_options)
      : pool(owner), upstream(upstream_resource), options(pool_options), ranges(owner, "CoalescingPool") {}

  CoalescingPool& pool;
  MemoryResource& upstream;
  const CoalescingPoolOptions& options;
  detail::FreeRanges ranges;

  detail::PoolMutex mutex;
  std::vector<Allocation> segments;  // upstream allocations; an empty one is an unused slot
  std::vector<std::uint32_t> unused_segments;

  std::size_t reserved = 0;
  std::size_t segment_count = 0;
  std::uint64_t upstream_allocations = 0;
  std::uint64_t upstream_deallocations = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;

  [[nodiscard]] bool is_live(std::uint32_t index, const Allocation& allocation) const noexcept {
    return ranges.is_live(index, detail::cookie_generation(allocation.cookie), allocation.offset,
                          allocation.size) &&
           segments[ranges[index].segment].segment == allocation.segment;
  }

  [[nodiscard]] std::size_t growth_target(std::size_t search) const {
    std::size_t step = options.initial_size;
    if (reserved != 0) {
      const double geometric = static_cast<double>(reserved) * (options.growth_factor - 1.0);
      step = geometric >= static_cast<double>(std::numeric_limits<std::size_t>::max())
                 ? std::numeric_limits<std::size_t>::max()
                 : static_cast<std::size_t>(geometric);
      if (options.max_growth_step != 0) step = std::min(step, options.max_growth_step);
    }
    const std::size_t room = align_down(options.maximum_size - reserved, kGranularity);
    return std::min(std::max(search, align_down(step, kGranularity)), room);
  }

  Allocation allocate_segment(std::size_t target, std::size_t search) {
    try {
      return upstream.allocate(target);
    } catch (const OutOfMemory&) {
      if (release_free_segments() == 0 && target == search) throw;
    }
    if (target != search) {
      try {
        return upstream.allocate(target);
      } catch (const OutOfMemory&) {
        // Fall through to the bare request.
      }
    }
    return upstream.allocate(search);
  }

  // Adds a segment that fits `search` bytes and returns its one free range (in no list).
  std::uint32_t grow(std::size_t search, std::size_t requested) {
    // A wholly free segment here is smaller than the request (or it would have been taken): holding it while
    // growing only raises reserved, and giving it back first lets its bytes return inside the new segment.
    if (options.release_before_growth || search > options.maximum_size - reserved) release_free_segments();
    if (search > options.maximum_size - reserved) {
      throw OutOfMemory(requested, to_string(pool.device()), options.maximum_size - reserved,
                        options.maximum_size,
                        "CoalescingPool: " + std::to_string(reserved) + " bytes reserved of a maximum of " +
                            std::to_string(options.maximum_size) + ", largest free range " +
                            std::to_string(ranges.largest_free()) + " bytes");
    }
    const std::size_t target = growth_target(search);
    segments.reserve(segments.size() + 1);  // nothing can fail once the upstream allocation is made
    const Allocation segment = allocate_segment(target, search);
    std::uint32_t slot = 0;
    if (unused_segments.empty()) {
      segments.push_back(segment);
      slot = static_cast<std::uint32_t>(segments.size() - 1);
    } else {
      slot = unused_segments.back();
      unused_segments.pop_back();
      segments[slot] = segment;
    }
    std::uint32_t index = kNoRange;
    try {
      index = ranges.add(slot, segment.offset, segment.size, kNoRange, kNoRange);
    } catch (...) {
      segments[slot] = Allocation{};
      unused_segments.push_back(slot);
      upstream.deallocate(segment);
      throw;
    }
    reserved += segment.size;
    ++segment_count;
    ++upstream_allocations;
    return index;
  }

  // Gives every wholly free segment back upstream, in host order; the bytes released.
  std::size_t release_free_segments() {
    std::vector<std::uint32_t> whole;
    ranges.for_each_free([&](std::uint32_t index) {
      const detail::FreeRanges::Range& r = ranges[index];
      if (r.prev == kNoRange && r.next == kNoRange) whole.push_back(index);
    });
    std::size_t released = 0;
    for (const std::uint32_t index : whole) {
      detail::FreeRanges::Range& r = ranges[index];
      ranges.erase_free(index);  // before the fence goes: the fence's stream names the list
      ranges.order().settle(r.fence, nullptr);
      const std::uint32_t slot = r.segment;
      upstream.deallocate(segments[slot]);
      released += segments[slot].size;
      reserved -= segments[slot].size;
      segments[slot] = Allocation{};
      unused_segments.push_back(slot);
      --segment_count;
      ++upstream_deallocations;
      ranges.remove(index);
    }
    return released;
  }
};

CoalescingPool::CoalescingPool(MemoryResource& upstream, CoalescingPoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()),
      upstream_(upstream),
      options_(options) {
  if (!std::isfinite(options_.growth_factor) || options_.growth_factor < 1.0) {
    throw InvalidArgument("CoalescingPool: growth factor " + std::to_string(options_.growth_factor) +
                          " is not a finite number of at least 1");
  }
  if (options_.initial_size > options_.maximum_size) {
    throw InvalidArgument("CoalescingPool: initial size " + std::to_string(options_.initial_size) +
                          " is above the maximum size " + std::to_string(options_.maximum_size));
  }
  state_ = std::make_unique<State>(*this, upstream_, options_);
}

CoalescingPool::~CoalescingPool() {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  if (s.ranges.in_use() != 0) {
    report_misuse("CoalescingPool on " + to_string(device()) + " destroyed with " +
                  std::to_string(s.ranges.live_count()) + " live allocation(s) of " +
                  std::to_string(s.ranges.in_use()) + " bytes; returning its segments upstream");
  }
  s.ranges.settle_all();
  for (const Allocation& segment : s.segments) {
    if (segment) upstream_.deallocate(segment);
  }
}

Allocation CoalescingPool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  detail::check_pool_stream(*this, stream, "CoalescingPool");
  const std::size_t size = align_up(bytes, kGranularity);
  const std::size_t search = checked_add(size, detail::alignment_slack(alignment));
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  std::uint32_t index = s.ranges.take_fit(search, stream);
  if (index == kNoRange) {
    index = s.grow(search, bytes);
    ++s.misses;
  } else {
    ++s.hits;
  }
  index = s.ranges.carve(index, *s.segments[s.ranges[index].segment].segment, size, alignment, bytes);
  const detail::FreeRanges::Range& r = s.ranges[index];
  return Allocation{s.segments[r.segment].segment, r.offset, bytes, detail::make_cookie(index, r.generation)};
}

bool CoalescingPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  const std::uint32_t index = detail::cookie_index(allocation.cookie);
  return detail::checked_free(*this, "CoalescingPool", allocation, s.is_live(index, allocation), stream,
                              [&](Stream* order) { s.ranges.free_range(index, order); });
}

std::size_t CoalescingPool::do_trim() {
  if (!options_.release_free_segments) return 0;
  const std::lock_guard lock(state_->mutex);
  return state_->release_free_segments();
}

ResourceUsage CoalescingPool::do_usage() const {
  const State& s = *state_;
  const std::lock_guard lock(state_->mutex);
  ResourceUsage usage;
  usage.reserved_bytes = s.reserved;
  usage.in_use_bytes = s.ranges.in_use();
  usage.largest_free_range = s.ranges.largest_free();
  usage.upstream_allocations = s.upstream_allocations;
  usage.upstream_deallocations = s.upstream_deallocations;
  usage.cache_hits = s.hits;
  usage.cache_misses = s.misses;
  return usage;
}

FragmentationFigures CoalescingPool::fragmentation() const {
  const State& s = *state_;
  const std::lock_guard lock(state_->mutex);
  FragmentationFigures figures;
  figures.free_bytes = s.reserved - s.ranges.in_use();
  figures.largest_free_range = s.ranges.largest_free();
  figures.fragmentation = ResourceUsage{.reserved_bytes = s.reserved,
                                        .in_use_bytes = s.ranges.in_use(),
                                        .largest_free_range = figures.largest_free_range}
                              .fragmentation();  // the one definition
  figures.segment_count = s.segment_count;
  figures.free_range_count = s.ranges.free_range_count();
  return figures;
}

}  // namespace unimem

namespace unimem {

PoolSnapshot CoalescingPool::snapshot() const {
  PoolSnapshot snapshot;
  snapshot.device = device();
  snapshot.kind = kind();
  snapshot.usage = usage();
  const State& s = *state_;
  const std::lock_guard lock(state_->mutex);
  // Segment slots may be empty (given back); map each held slot to its place in the snapshot.
  std::vector<std::size_t> place(s.segments.size(), s.segments.size());
  for (std::size_t slot = 0; slot < s.segments.size(); ++slot) {
    const Allocation& held = s.segments[slot];
    if (!held) continue;
    place[slot] = snapshot.segments.size();
    snapshot.segments.push_back(SegmentSnapshot{held.segment->id,
                                                reinterpret_cast<std::uintptr_t>(held.native_plus_offset()),
                                                held.size,
                                                held.kind(),
                                                "coalescing",
                                                {}});
  }
  for (const detail::FreeRanges::Range& r : s.ranges.records()) {
    if (r.segment == kNoRange) continue;  // an unused record
    const Allocation& held = s.segments[r.segment];
    RangeSnapshot range;
    range.offset = r.offset - held.offset;
    range.size = r.size;
    range.allocated = !r.free;
    range.requested = r.free ? 0 : r.requested;
    range.stream = r.free ? reinterpret_cast<std::uintptr_t>(r.fence.stream) : 0;
    snapshot.segments[place[r.segment]].ranges.push_back(std::move(range));
  }
  for (SegmentSnapshot& segment : snapshot.segments) {
    std::sort(segment.ranges.begin(), segment.ranges.end(),
              [](const RangeSnapshot& a, const RangeSnapshot& b) { return a.offset < b.offset; });
  }
  std::sort(snapshot.segments.begin(), snapshot.segments.end(),
            [](const SegmentSnapshot& a, const SegmentSnapshot& b) { return a.id < b.id; });
  return snapshot;
}

}  // namespace unimem
