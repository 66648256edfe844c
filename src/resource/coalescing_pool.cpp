#include "unimem/resource/coalescing_pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "resource/pool_support.hpp"
#include "resource/stream_order.hpp"
#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// Free ranges sort by size, then address: the first one not smaller than a request is its best fit, and among
// equal sizes the lowest address wins.
struct FreeKey {
  std::size_t size = 0;
  std::uint32_t segment = 0;
  std::size_t offset = 0;
  std::uint32_t range = kNone;  // the record the key stands for; not part of the order

  friend bool operator<(const FreeKey& a, const FreeKey& b) noexcept {
    if (a.size != b.size) return a.size < b.size;
    if (a.segment != b.segment) return a.segment < b.segment;
    return a.offset < b.offset;
  }
};
using FreeSet = std::set<FreeKey>;

}  // namespace

struct CoalescingPool::State {
  // One range of a segment, free or handed out. Ranges of a segment form an address-ordered list (prev/next),
  // so a freed range finds its neighbours without a search.
  struct Range {
    std::size_t offset = 0;     // from the segment's start
    std::size_t size = 0;       // a multiple of kGranularity
    std::size_t requested = 0;  // handed out: the caller's byte count
    std::uint32_t segment = kNone;
    std::uint32_t prev = kNone;
    std::uint32_t next = kNone;
    std::uint32_t generation = 0;  // changes each time the record is handed out
    detail::FreeFence fence;       // free: the stream it was freed on and the event marking the free
    bool free = true;              // also true for records not in use
  };

  struct StreamFreeList {
    Stream* stream = nullptr;
    FreeSet ranges;
  };

  State(CoalescingPool& owner, MemoryResource& upstream_resource, const CoalescingPoolOptions& pool_options)
      : pool(owner), upstream(upstream_resource), options(pool_options), order(owner, "CoalescingPool") {
    lists.emplace_back();  // lists[0]: ranges any stream may use at once
  }

  CoalescingPool& pool;
  MemoryResource& upstream;
  const CoalescingPoolOptions& options;
  detail::StreamOrder order;

  detail::PoolMutex mutex;
  std::vector<Range> ranges;
  std::vector<std::uint32_t> unused_ranges;
  std::vector<Allocation> segments;  // upstream allocations; an empty one is an unused slot
  std::vector<std::uint32_t> unused_segments;
  std::vector<StreamFreeList> lists;
  std::vector<FreeSet::node_type> spare_nodes;  // set nodes kept for reuse: no heap call per free range

  std::size_t reserved = 0;
  std::size_t in_use = 0;
  std::size_t segment_count = 0;
  std::size_t free_range_count = 0;
  std::uint64_t upstream_allocations = 0;
  std::uint64_t upstream_deallocations = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;

  // --- records ---

  std::uint32_t new_range() {
    if (!unused_ranges.empty()) {
      const std::uint32_t index = unused_ranges.back();
      unused_ranges.pop_back();
      return index;
    }
    if (ranges.size() >= kNone) throw Error("CoalescingPool: more than 4294967294 ranges");
    ranges.emplace_back();
    return static_cast<std::uint32_t>(ranges.size() - 1);
  }

  void recycle_range(std::uint32_t index) {
    Range& r = ranges[index];
    r.free = true;
    r.prev = r.next = r.segment = kNone;
    order.drop(r.fence);
    unused_ranges.push_back(index);
  }

  [[nodiscard]] bool is_live(std::uint32_t index, const Allocation& allocation) const noexcept {
    if (index >= ranges.size()) return false;
    const Range& r = ranges[index];
    return !r.free && r.generation == detail::cookie_generation(allocation.cookie) &&
           r.offset == allocation.offset && r.requested == allocation.size &&
           segments[r.segment].segment == allocation.segment;
  }

  // --- free lists ---

  [[nodiscard]] std::size_t find_list(const Stream* stream) const noexcept {
    for (std::size_t i = 0; i < lists.size(); ++i) {
      if (lists[i].stream == stream) return i;
    }
    return lists.size();
  }

  void insert_free(std::uint32_t index) {
    const Range& r = ranges[index];
    std::size_t list = find_list(r.fence.stream);
    if (list == lists.size()) lists.push_back(StreamFreeList{r.fence.stream, {}});
    const FreeKey key{r.size, r.segment, r.offset, index};
    if (spare_nodes.empty()) {
      lists[list].ranges.insert(key);
    } else {
      FreeSet::node_type node = std::move(spare_nodes.back());
      spare_nodes.pop_back();
      node.value() = key;
      lists[list].ranges.insert(std::move(node));
    }
    ++free_range_count;
  }

  void erase_free(std::uint32_t index) {
    const Range& r = ranges[index];
    const std::size_t list = find_list(r.fence.stream);
    spare_nodes.push_back(lists[list].ranges.extract(FreeKey{r.size, r.segment, r.offset, index}));
    --free_range_count;
    // A stream's list goes once it is empty, so that looking lists up stays a short scan.
    if (list != 0 && lists[list].ranges.empty()) {
      if (list != lists.size() - 1) lists[list] = std::move(lists.back());
      lists.pop_back();
    }
  }

  [[nodiscard]] std::size_t largest_free() const noexcept {
    std::size_t largest = 0;
    for (const StreamFreeList& list : lists) {
      if (!list.ranges.empty()) largest = std::max(largest, list.ranges.rbegin()->size);
    }
    return largest;
  }

  // --- allocation ---

  // Takes the best-fitting free range of at least `search` bytes that `stream` may use, out of its list.
  // First choice: the stream's own frees and ranges ready for every stream. Then other streams' frees whose
  // event has completed. Then another stream's free after making `stream` wait for its event. kNone if
  // nothing fits.
  std::uint32_t take_fit(std::size_t search, Stream* stream) {
    const FreeKey probe{search, 0, 0, kNone};
    std::uint32_t best = kNone;
    std::size_t best_size = 0;
    const auto consider = [&](const FreeSet& set) {
      const auto it = set.lower_bound(probe);
      if (it != set.end() && (best == kNone || it->size < best_size)) {
        best = it->range;
        best_size = it->size;
      }
    };
    consider(lists[0].ranges);
    const std::size_t own = stream == nullptr ? 0 : find_list(stream);
    if (own != 0 && own != lists.size()) consider(lists[own].ranges);
    if (best == kNone) {
      std::uint32_t pending = kNone;
      std::size_t pending_size = 0;
      for (std::size_t i = 1; i < lists.size(); ++i) {
        if (i == own) continue;
        const auto it = lists[i].ranges.lower_bound(probe);
        if (it == lists[i].ranges.end()) continue;
        if (order.completed(ranges[it->range].fence)) {
          if (best == kNone || it->size < best_size) {
            best = it->range;
            best_size = it->size;
          }
        } else if (pending == kNone || it->size < pending_size) {
          pending = it->range;
          pending_size = it->size;
        }
      }
      if (best == kNone && pending != kNone) best = pending;
    }
    if (best != kNone) {
      order.wait(ranges[best].fence, stream);  // a pending free: the range stays listed if this throws
      erase_free(best);
    }
    return best;
  }

  // Splits free range `index` at `at` bytes; the new record (the upper part) is returned, free, with the same
  // stream and fence, and not in any list.
  std::uint32_t split(std::uint32_t index, std::size_t at) {
    const std::uint32_t upper = new_range();
    Range& r = ranges[index];
    Range& u = ranges[upper];
    u.offset = r.offset + at;
    u.size = r.size - at;
    u.segment = r.segment;
    u.prev = index;
    u.next = r.next;
    u.free = true;
    u.fence = detail::StreamOrder::share(r.fence);
    if (r.next != kNone) ranges[r.next].prev = upper;
    r.next = upper;
    r.size = at;
    return upper;
  }

  // Hands out `size` bytes from free range `index` (out of every list), aligned; returns the live record.
  std::uint32_t carve(std::uint32_t index, std::size_t size, std::size_t alignment, std::size_t requested) {
    const std::size_t padding =
        detail::alignment_padding(*segments[ranges[index].segment].segment, ranges[index].offset, alignment);
    if (padding != 0) {
      const std::uint32_t aligned = split(index, padding);
      insert_free(index);
      index = aligned;
    }
    if (ranges[index].size > size) insert_free(split(index, size));
    Range& r = ranges[index];
    order.drop(r.fence);
    r.free = false;
    r.requested = requested;
    r.generation = detail::next_generation(r.generation);
    in_use += r.size;
    return index;
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
                            std::to_string(largest_free()) + " bytes");
    }
    const std::size_t target = growth_target(search);
    const std::uint32_t index = new_range();
    segments.reserve(segments.size() + 1);  // nothing can fail once the upstream allocation is made
    Allocation segment;
    try {
      segment = allocate_segment(target, search);
    } catch (...) {
      unused_ranges.push_back(index);
      throw;
    }
    std::uint32_t slot = 0;
    if (unused_segments.empty()) {
      segments.push_back(segment);
      slot = static_cast<std::uint32_t>(segments.size() - 1);
    } else {
      slot = unused_segments.back();
      unused_segments.pop_back();
      segments[slot] = segment;
    }
    Range& r = ranges[index];
    r = Range{};
    r.offset = segment.offset;
    r.size = segment.size;
    r.segment = slot;
    reserved += segment.size;
    ++segment_count;
    ++upstream_allocations;
    return index;
  }

  // --- deallocation ---

  // Merges neighbour `other` (taken out of its list) into range `index` when it is free and the two may
  // merge; returns whether it did.
  bool absorb(std::uint32_t index, std::uint32_t other) {
    if (other == kNone || !ranges[other].free) return false;
    Range& r = ranges[index];
    Range& o = ranges[other];
    const detail::FenceMerge plan = order.merge_plan(r.fence, o.fence);
    if (plan == detail::FenceMerge::No) return false;
    erase_free(other);
    if (plan == detail::FenceMerge::KeepOwn) {
      order.drop(o.fence);
    } else {
      order.drop(r.fence);
      r.fence = o.fence;
      o.fence = detail::FreeFence{};
    }
    if (other == r.prev) {
      r.offset = o.offset;
      r.prev = o.prev;
      if (o.prev != kNone) ranges[o.prev].next = index;
    } else {
      r.next = o.next;
      if (o.next != kNone) ranges[o.next].prev = index;
    }
    r.size += o.size;
    recycle_range(other);
    return true;
  }

  // Frees live range `index` in the order of `stream` (a stream of the pool's device, or nullptr).
  void free_range(std::uint32_t index, Stream* stream) {
    Range& r = ranges[index];
    order.mark_free(r.fence, stream);
    in_use -= r.size;
    r.free = true;
    // Neighbours of other streams that could not merge with each other may both merge with this range.
    while (absorb(index, ranges[index].prev)) {
    }
    while (absorb(index, ranges[index].next)) {
    }
    insert_free(index);
  }

  // Gives every wholly free segment back upstream, in host order; the bytes released.
  std::size_t release_free_segments() {
    std::vector<std::uint32_t> whole;
    for (const StreamFreeList& list : lists) {
      for (const FreeKey& key : list.ranges) {
        const Range& r = ranges[key.range];
        if (r.prev == kNone && r.next == kNone) whole.push_back(key.range);
      }
    }
    std::size_t released = 0;
    for (const std::uint32_t index : whole) {
      Range& r = ranges[index];
      erase_free(index);  // before the fence goes: the fence's stream names the list
      order.settle(r.fence, nullptr);
      const std::uint32_t slot = r.segment;
      upstream.deallocate(segments[slot]);
      released += segments[slot].size;
      reserved -= segments[slot].size;
      segments[slot] = Allocation{};
      unused_segments.push_back(slot);
      --segment_count;
      ++upstream_deallocations;
      recycle_range(index);
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
  if (s.in_use != 0) {
    std::size_t live = 0;
    for (const State::Range& r : s.ranges) live += r.free ? 0 : 1;
    report_misuse("CoalescingPool on " + to_string(device()) + " destroyed with " + std::to_string(live) +
                  " live allocation(s) of " + std::to_string(s.in_use) +
                  " bytes; returning its segments upstream");
  }
  for (State::Range& r : s.ranges) s.order.settle(r.fence, nullptr);
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
  std::uint32_t index = s.take_fit(search, stream);
  if (index == kNone) {
    index = s.grow(search, bytes);
    ++s.misses;
  } else {
    ++s.hits;
  }
  index = s.carve(index, size, alignment, bytes);
  const State::Range& r = s.ranges[index];
  return Allocation{s.segments[r.segment].segment, r.offset, bytes, detail::make_cookie(index, r.generation)};
}

bool CoalescingPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  const std::uint32_t index = detail::cookie_index(allocation.cookie);
  if (!s.is_live(index, allocation)) {
    report_misuse("CoalescingPool::deallocate on " + to_string(device()) + ": allocation of " +
                  std::to_string(allocation.size) + " bytes at offset " + std::to_string(allocation.offset) +
                  " is not live here: already freed, or allocated by another resource");
    return false;
  }
  try {
    if (!detail::is_pool_stream(*this, stream)) {
      report_misuse("CoalescingPool::deallocate on " + to_string(device()) + ": a stream of " +
                    to_string(stream->device()) + " cannot order this free; synchronizing it instead");
      stream->synchronize();
      stream = nullptr;
    }
    s.free_range(index, stream);
  } catch (const std::exception& e) {
    // The range stays allocated here, so the chain above must not count it as freed either.
    report_misuse("CoalescingPool::deallocate on " + to_string(device()) + ": " + e.what() +
                  "; the allocation stays out of use");
    return false;
  }
  return true;
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
  usage.in_use_bytes = s.in_use;
  usage.largest_free_range = s.largest_free();
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
  figures.free_bytes = s.reserved - s.in_use;
  figures.largest_free_range = s.largest_free();
  figures.fragmentation = ResourceUsage{.reserved_bytes = s.reserved,
                                        .in_use_bytes = s.in_use,
                                        .largest_free_range = figures.largest_free_range}
                              .fragmentation();  // the one definition
  figures.segment_count = s.segment_count;
  figures.free_range_count = s.free_range_count;
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
  for (const State::Range& r : s.ranges) {
    if (r.segment == kNone) continue;  // an unused record
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
