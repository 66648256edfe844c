#include "resource/free_ranges.hpp"

#include <algorithm>
#include <bit>

#include "resource/pool_support.hpp"
#include "unimem/core/error.hpp"

namespace unimem::detail {

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

std::size_t FreeRanges::open_list(Stream* stream) {
  if (spare_lists_.empty()) {
    lists_.emplace_back();
  } else {
    lists_.push_back(std::move(spare_lists_.back()));
    spare_lists_.pop_back();
  }
  lists_.back().stream = stream;
  return lists_.size() - 1;
}

void FreeRanges::close_list(std::size_t list) noexcept {
  // An empty list's bins are all clear: it is kept as it is for the next stream.
  spare_lists_.push_back(std::move(lists_[list]));
  if (list != lists_.size() - 1) lists_[list] = std::move(lists_.back());
  lists_.pop_back();
}

std::size_t FreeRanges::largest_free() const noexcept {
  std::size_t largest = 0;
  for (const StreamFreeList& list : lists_) {
    if (list.words == 0) continue;
    const auto word = static_cast<std::uint32_t>(63 - std::countl_zero(list.words));
    const auto bin = word * 64 + static_cast<std::uint32_t>(63 - std::countl_zero(list.bins[word]));
    for (std::uint32_t i = list.heads[bin]; i != kNoRange; i = ranges_[i].bin_next) {
      largest = std::max(largest, ranges_[i].size);
    }
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

void FreeRanges::retake(std::uint32_t taken, std::uint32_t other, Stream* stream) {
  // As take_fit: wait (if it throws, both ranges stay where they were), and keep the fence, which names the
  // list `other` is unlisted from; carve drops it.
  order_.wait(ranges_[other].fence, stream);
  insert_free(taken);
  erase_free(other);
}

}  // namespace unimem::detail
