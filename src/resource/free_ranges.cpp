#include "resource/free_ranges.hpp"

#include <algorithm>

#include "resource/pool_support.hpp"
#include "unimem/core/error.hpp"

namespace unimem::detail {

std::uint32_t FreeRanges::new_range() {
  if (!unused_ranges_.empty()) {
    const std::uint32_t index = unused_ranges_.back();
    unused_ranges_.pop_back();
    return index;
  }
  if (ranges_.size() >= kNoRange) throw Error("pool: more than 4294967294 ranges");
  ranges_.emplace_back();
  return static_cast<std::uint32_t>(ranges_.size() - 1);
}

void FreeRanges::recycle_range(std::uint32_t index) noexcept {
  Range& r = ranges_[index];
  r.free = true;
  r.prev = r.next = r.segment = kNoRange;
  order_.drop(r.fence);
  unused_ranges_.push_back(index);
}

std::uint32_t FreeRanges::add(std::uint32_t segment, std::size_t offset, std::size_t size, std::uint32_t prev,
                              std::uint32_t next) {
  const std::uint32_t index = new_range();
  Range& r = ranges_[index];
  const std::uint32_t generation = r.generation;
  r = Range{};
  r.generation = generation;  // a record's generation only moves on, so stale cookies never match again
  r.offset = offset;
  r.size = size;
  r.segment = segment;
  r.prev = prev;
  r.next = next;
  if (prev != kNoRange) ranges_[prev].next = index;
  if (next != kNoRange) ranges_[next].prev = index;
  return index;
}

void FreeRanges::remove(std::uint32_t index) noexcept {
  Range& r = ranges_[index];
  if (r.prev != kNoRange) ranges_[r.prev].next = r.next;
  if (r.next != kNoRange) ranges_[r.next].prev = r.prev;
  recycle_range(index);
}

bool FreeRanges::is_live(std::uint32_t index, std::uint32_t generation, std::size_t offset,
                         std::size_t requested) const noexcept {
  if (index >= ranges_.size()) return false;
  const Range& r = ranges_[index];
  return !r.free && r.generation == generation && r.offset == offset && r.requested == requested;
}

std::size_t FreeRanges::find_list(const Stream* stream) const noexcept {
  for (std::size_t i = 0; i < lists_.size(); ++i) {
    if (lists_[i].stream == stream) return i;
  }
  return lists_.size();
}

void FreeRanges::insert_free(std::uint32_t index) {
  const Range& r = ranges_[index];
  const std::size_t list = find_list(r.fence.stream);
  if (list == lists_.size()) lists_.push_back(StreamFreeList{r.fence.stream, {}});
  const FreeKey key{r.size, r.segment, r.offset, index};
  if (spare_nodes_.empty()) {
    lists_[list].ranges.insert(key);
  } else {
    FreeSet::node_type node = std::move(spare_nodes_.back());
    spare_nodes_.pop_back();
    node.value() = key;
    lists_[list].ranges.insert(std::move(node));
  }
  ++free_range_count_;
}

void FreeRanges::erase_free(std::uint32_t index) {
  const Range& r = ranges_[index];
  const std::size_t list = find_list(r.fence.stream);
  spare_nodes_.push_back(lists_[list].ranges.extract(FreeKey{r.size, r.segment, r.offset, index}));
  --free_range_count_;
  // A stream's list goes once it is empty, so that looking lists up stays a short scan.
  if (list != 0 && lists_[list].ranges.empty()) {
    if (list != lists_.size() - 1) lists_[list] = std::move(lists_.back());
    lists_.pop_back();
  }
}

std::size_t FreeRanges::largest_free() const noexcept {
  std::size_t largest = 0;
  for (const StreamFreeList& list : lists_) {
    if (!list.ranges.empty()) largest = std::max(largest, list.ranges.rbegin()->size);
  }
  return largest;
}

void FreeRanges::settle_all() noexcept {
  for (Range& r : ranges_) order_.settle(r.fence, nullptr);
}

std::size_t FreeRanges::live_count() const noexcept {
  std::size_t live = 0;
  for (const Range& r : ranges_) live += r.free ? 0 : 1;
  return live;
}

std::uint32_t FreeRanges::take_fit(std::size_t search, Stream* stream) {
  const FreeKey probe{search, 0, 0, kNoRange};
  std::uint32_t best = kNoRange;
  std::size_t best_size = 0;
  const auto consider = [&](const FreeSet& set) {
    const auto it = set.lower_bound(probe);
    if (it != set.end() && (best == kNoRange || it->size < best_size)) {
      best = it->range;
      best_size = it->size;
    }
  };
  consider(lists_[0].ranges);
  const std::size_t own = stream == nullptr ? 0 : find_list(stream);
  if (own != 0 && own != lists_.size()) consider(lists_[own].ranges);
  if (best == kNoRange) {
    std::uint32_t pending = kNoRange;
    std::size_t pending_size = 0;
    for (std::size_t i = 1; i < lists_.size(); ++i) {
      if (i == own) continue;
      const auto it = lists_[i].ranges.lower_bound(probe);
      if (it == lists_[i].ranges.end()) continue;
      if (order_.completed(ranges_[it->range].fence)) {
        if (best == kNoRange || it->size < best_size) {
          best = it->range;
          best_size = it->size;
        }
      } else if (pending == kNoRange || it->size < pending_size) {
        pending = it->range;
        pending_size = it->size;
      }
    }
    if (best == kNoRange && pending != kNoRange) best = pending;
  }
  if (best != kNoRange) {
    order_.wait(ranges_[best].fence, stream);  // a pending free: the range stays listed if this throws
    erase_free(best);
  }
  return best;
}

std::uint32_t FreeRanges::split(std::uint32_t index, std::size_t at) {
  const std::uint32_t upper = new_range();
  Range& r = ranges_[index];
  Range& u = ranges_[upper];
  u.offset = r.offset + at;
  u.size = r.size - at;
  u.segment = r.segment;
  u.prev = index;
  u.next = r.next;
  u.free = true;
  u.fence = StreamOrder::share(r.fence);
  if (r.next != kNoRange) ranges_[r.next].prev = upper;
  r.next = upper;
  r.size = at;
  return upper;
}

std::uint32_t FreeRanges::carve(std::uint32_t index, const Segment& segment, std::size_t size,
                                std::size_t alignment, std::size_t requested) {
  const std::size_t padding = alignment_padding(segment, ranges_[index].offset, alignment);
  if (padding != 0) {
    const std::uint32_t aligned = split(index, padding);
    insert_free(index);
    index = aligned;
  }
  if (ranges_[index].size > size) insert_free(split(index, size));
  Range& r = ranges_[index];
  order_.drop(r.fence);
  r.free = false;
  r.requested = requested;
  r.generation = next_generation(r.generation);
  in_use_ += r.size;
  return index;
}

bool FreeRanges::absorb(std::uint32_t index, std::uint32_t other) {
  if (other == kNoRange || !ranges_[other].free) return false;
  Range& r = ranges_[index];
  Range& o = ranges_[other];
  const FenceMerge plan = order_.merge_plan(r.fence, o.fence);
  if (plan == FenceMerge::No) return false;
  erase_free(other);
  if (plan == FenceMerge::KeepOwn) {
    order_.drop(o.fence);
  } else {
    order_.drop(r.fence);
    r.fence = o.fence;
    o.fence = FreeFence{};
  }
  if (other == r.prev) {
    r.offset = o.offset;
    r.prev = o.prev;
    if (o.prev != kNoRange) ranges_[o.prev].next = index;
  } else {
    r.next = o.next;
    if (o.next != kNoRange) ranges_[o.next].prev = index;
  }
  r.size += o.size;
  recycle_range(other);
  return true;
}

std::uint32_t FreeRanges::free_range(std::uint32_t index, Stream* stream) {
  Range& r = ranges_[index];
  order_.mark_free(r.fence, stream);
  in_use_ -= r.size;
  r.free = true;
  // Neighbours of other streams that could not merge with each other may both merge with this range.
  while (absorb(index, ranges_[index].prev)) {
  }
  while (absorb(index, ranges_[index].next)) {
  }
  insert_free(index);
  return index;
}

}  // namespace unimem::detail
