#pragma once
// FreeRanges: the range engine of the pools that pack large requests tightly (CoalescingPool,
// ExpandablePool). Address-ordered ranges inside segments, free or handed out; best fit over per-stream
// free lists; splitting on allocation and merging free neighbours on deallocation, under the stream-order
// rule of stream_order.hpp. What a segment is (an upstream allocation, a reserved address range) and how
// the pool grows are the pool's; the engine only knows segment numbers and offsets.
//
// A stream's free ranges sit in size bins: 32 bins per power of two (each under 1/32 of its sizes wide),
// each an intrusive list through the records, with a bitmap of the bins in use. Listing and unlisting a
// range cost a few instructions and no heap call; a best fit looks at two bins: the request's own (whose
// ranges may be smaller than the request) and the next one in use (where every range fits). Both are
// scanned whole, so the fit is the exact best fit, the lowest address among equal sizes, as a size-ordered
// tree would give, at a cost that grows with the ranges of nearly one size rather than with all of them.
//
// Not thread-safe: the pool calls it under its own lock.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "resource/pool_support.hpp"
#include "resource/stream_order.hpp"
#include "unimem/backend/segment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem::detail {

inline constexpr std::uint32_t kNoRange = std::numeric_limits<std::uint32_t>::max();

class FreeRanges {
 public:
  // One range of a segment, free or handed out. Ranges of a segment form an address-ordered list (prev/next),
  // so a freed range finds its neighbours without a search.
  struct Range {
    std::size_t offset = 0;     // from the segment's start
    std::size_t size = 0;       // a multiple of the pool's granularity
    std::size_t requested = 0;  // handed out: the caller's byte count
    std::uint32_t segment = kNoRange;
    std::uint32_t prev = kNoRange;
    std::uint32_t next = kNoRange;
    std::uint32_t generation = 0;       // changes each time the record is handed out
    std::uint32_t bin_prev = kNoRange;  // listed free: its neighbours in its size bin
    std::uint32_t bin_next = kNoRange;
    std::uint32_t bin = 0;  // listed free: its size bin, so that unlisting need not compute it again
    bool free = true;       // also true for records not in use
    FreeFence fence;        // free: the stream it was freed on and the event marking the free
  };

  FreeRanges(const MemoryResource& pool, std::string_view pool_name) : order_(pool, pool_name) {
    lists_.emplace_back();  // lists_[0]: ranges any stream may use at once
  }

  [[nodiscard]] StreamOrder& order() noexcept { return order_; }
  [[nodiscard]] Range& operator[](std::uint32_t index) noexcept { return ranges_[index]; }
  [[nodiscard]] const Range& operator[](std::uint32_t index) const noexcept { return ranges_[index]; }
  // Every record, unused ones included (segment == kNoRange).
  [[nodiscard]] const std::vector<Range>& records() const noexcept { return ranges_; }

  // A record for a new free range of `size` bytes at `offset` of `segment`, between `prev` and `next` in its
  // address list (kNoRange: none); in no free list yet.
  std::uint32_t add(std::uint32_t segment, std::size_t offset, std::size_t size, std::uint32_t prev,
                    std::uint32_t next);
  // Forgets free range `index` (out of every list), e.g. when its segment goes back upstream.
  void remove(std::uint32_t index) noexcept;

  // True when `index` is a live range handed out with this generation, offset and requested size.
  [[nodiscard]] bool is_live(std::uint32_t index, std::uint32_t generation, std::size_t offset,
                             std::size_t requested) const noexcept;

  // Takes the best-fitting free range of at least `search` bytes that `stream` may use out of its list: the
  // stream's own frees and ranges ready for every stream first, then other streams' frees whose event has
  // completed, then another stream's free after making `stream` wait for its event. kNoRange if nothing
  // fits.
  std::uint32_t take_fit(std::size_t search, Stream* stream);
  // Hands out `size` bytes from free range `index` (in no list) of `segment`, starting at the first address
  // aligned to `alignment` from `at` bytes into the range (at + padding + size within it); the rest goes back
  // to the lists. Returns the live record.
  std::uint32_t carve(std::uint32_t index, const Segment& segment, std::size_t size, std::size_t alignment,
                      std::size_t requested, std::size_t at = 0);
  // Frees live range `index` in the order of `stream` (nullptr: host order), merging it with the free
  // neighbours the stream-order rule lets it merge with; returns the free range it ended up in (listed).
  std::uint32_t free_range(std::uint32_t index, Stream* stream);

  void insert_free(std::uint32_t index);
  void erase_free(std::uint32_t index);
  // Lists range `taken` (taken by take_fit, in no list) again and takes listed free range `other`, which
  // `stream` may use, instead. Out of line: a rare path, kept apart from the inlined calls of the hot ones.
  void retake(std::uint32_t taken, std::uint32_t other, Stream* stream);

  // Calls fn(index) for listed free ranges of at least `search` bytes, list by list and each list's bins
  // from the smallest sizes up, until fn returns true: a scan for a fit with a property of the pool's own
  // that stops at the first, which is near the smallest of its list (bins are under 1/32 wide).
  template <typename Fn>
  void for_each_fit(std::size_t search, const Fn& fn) const {
    for (const StreamFreeList& list : lists_) {
      for (std::uint32_t bin = next_bin(list, bin_of(search)); bin != kBins; bin = next_bin(list, bin + 1)) {
        for (std::uint32_t i = list.heads[bin]; i != kNoRange; i = ranges_[i].bin_next) {
          if (ranges_[i].size >= search && fn(i)) return;
        }
      }
    }
  }

  // Calls fn(index) for every listed free range.
  template <typename Fn>
  void for_each_free(const Fn& fn) const {
    for_each_fit(0, [&](std::uint32_t index) {
      fn(index);
      return false;
    });
  }

  // Waits for every fence (host order) and drops it: for a pool giving all its memory back.
  void settle_all() noexcept;

  [[nodiscard]] std::size_t largest_free() const noexcept;
  [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
  [[nodiscard]] std::size_t free_range_count() const noexcept { return free_range_count_; }
  // Live ranges now.
  [[nodiscard]] std::size_t live_count() const noexcept;

 private:
  static constexpr unsigned kSubBits = 5;  // 2^5 bins per power of two
  static constexpr std::uint32_t kSub = 1U << kSubBits;
  static constexpr std::uint32_t kBins = (64 - kSubBits + 1) * kSub;  // every std::size_t has a bin
  static constexpr std::uint32_t kBinWords = kBins / 64;

  // The bin of `size`: sizes below kSub have one each; above, the power of two and the kSubBits bits
  // below its top bit. Monotonic in size, so every range of a higher bin is larger.
  [[nodiscard]] static std::uint32_t bin_of(std::size_t size) noexcept;

  struct StreamFreeList {
    Stream* stream = nullptr;
    std::size_t count = 0;
    std::uint64_t words = 0;  // bit w: bins[w] has a bin in use
    std::array<std::uint64_t, kBinWords> bins{};
    std::vector<std::uint32_t> heads = std::vector<std::uint32_t>(kBins, kNoRange);
  };

  // The first bin at or above `from` with ranges in it; kBins if none.
  [[nodiscard]] static std::uint32_t next_bin(const StreamFreeList& list, std::uint32_t from) noexcept;
  // Whether range a comes before range b in best-fit order: smaller, then lower segment and offset.
  [[nodiscard]] bool fits_better(std::uint32_t a, std::uint32_t b) const noexcept;
  // The best-fitting range of `list` of at least `search` bytes; kNoRange if none.
  [[nodiscard]] std::uint32_t best_fit(const StreamFreeList& list, std::size_t search) const noexcept;

  std::uint32_t new_range();
  void recycle_range(std::uint32_t index) noexcept;
  // The list of `stream`'s frees (0 for host order); kNoList when it has none. A constant, not lists_.size(),
  // marks none: the size of a vector of 288-byte lists is a division.
  [[nodiscard]] std::size_t find_list(const Stream* stream) const noexcept;
  static constexpr std::size_t kNoList = std::numeric_limits<std::size_t>::max();
  // A list for `stream`'s frees, from the spare lists when there is one; returns its index.
  std::size_t open_list(Stream* stream);
  // A stream's list goes once it is empty, so that looking lists up stays a short scan.
  void close_list(std::size_t list) noexcept;
  // Splits free range `index` at `at` bytes; the new record (the upper part) is returned, free, with the
  // same stream and fence, and not in any list.
  std::uint32_t split(std::uint32_t index, std::size_t at);
  // Merges neighbour `other` (taken out of its list) into range `index` when it is free and the two may
  // merge; returns whether it did.
  bool absorb(std::uint32_t index, std::uint32_t other);

  StreamOrder order_;
  std::vector<Range> ranges_;
  std::vector<std::uint32_t> unused_ranges_;
  std::vector<StreamFreeList> lists_;
  std::vector<StreamFreeList> spare_lists_;  // emptied lists kept for reuse: no heap call per stream
  std::size_t in_use_ = 0;
  std::size_t free_range_count_ = 0;
};

// The engine's per-call work, inline: each pool call makes several of these calls.

inline std::uint32_t FreeRanges::new_range() {
  if (!unused_ranges_.empty()) {
    const std::uint32_t index = unused_ranges_.back();
    unused_ranges_.pop_back();
    return index;
  }
  if (ranges_.size() >= kNoRange) throw Error("pool: more than 4294967294 ranges");
  ranges_.emplace_back();
  return static_cast<std::uint32_t>(ranges_.size() - 1);
}

inline void FreeRanges::recycle_range(std::uint32_t index) noexcept {
  Range& r = ranges_[index];
  r.free = true;
  r.prev = r.next = r.segment = kNoRange;
  order_.drop(r.fence);
  unused_ranges_.push_back(index);
}

inline bool FreeRanges::is_live(std::uint32_t index, std::uint32_t generation, std::size_t offset,
                                std::size_t requested) const noexcept {
  if (index >= ranges_.size()) return false;
  const Range& r = ranges_[index];
  return !r.free && r.generation == generation && r.offset == offset && r.requested == requested;
}

inline std::size_t FreeRanges::find_list(const Stream* stream) const noexcept {
  if (stream == nullptr) return 0;
  for (std::size_t i = 1; i < lists_.size(); ++i) {
    if (lists_[i].stream == stream) return i;
  }
  return kNoList;
}

inline std::uint32_t FreeRanges::bin_of(std::size_t size) noexcept {
  if (size < kSub) return static_cast<std::uint32_t>(size);
  const auto top = static_cast<unsigned>(std::bit_width(size)) - 1;  // at least kSubBits
  const auto below = static_cast<std::uint32_t>(size >> (top - kSubBits)) - kSub;
  return (top - kSubBits + 1) * kSub + below;
}

inline std::uint32_t FreeRanges::next_bin(const StreamFreeList& list, std::uint32_t from) noexcept {
  if (from >= kBins) return kBins;
  std::uint32_t word = from / 64;
  const std::uint64_t here = list.bins[word] & (~std::uint64_t{0} << (from % 64));
  if (here != 0) return word * 64 + static_cast<std::uint32_t>(std::countr_zero(here));
  const std::uint64_t above = list.words & (~std::uint64_t{0} << (word + 1));
  if (above == 0) return kBins;
  word = static_cast<std::uint32_t>(std::countr_zero(above));
  return word * 64 + static_cast<std::uint32_t>(std::countr_zero(list.bins[word]));
}

inline bool FreeRanges::fits_better(std::uint32_t a, std::uint32_t b) const noexcept {
  const Range& x = ranges_[a];
  const Range& y = ranges_[b];
  if (x.size != y.size) return x.size < y.size;
  if (x.segment != y.segment) return x.segment < y.segment;
  return x.offset < y.offset;
}

inline std::uint32_t FreeRanges::best_fit(const StreamFreeList& list, std::size_t search) const noexcept {
  std::uint32_t best = kNoRange;
  const std::uint32_t own = bin_of(search);
  // The request's own bin may hold smaller ranges; the next bin in use holds only larger ones.
  for (std::uint32_t bin = next_bin(list, own); bin != kBins; bin = next_bin(list, bin + 1)) {
    for (std::uint32_t i = list.heads[bin]; i != kNoRange; i = ranges_[i].bin_next) {
      if (ranges_[i].size >= search && (best == kNoRange || fits_better(i, best))) best = i;
    }
    if (best != kNoRange) break;
  }
  return best;
}

inline void FreeRanges::insert_free(std::uint32_t index) {
  Range& r = ranges_[index];
  std::size_t list = find_list(r.fence.stream);
  if (list == kNoList) list = open_list(r.fence.stream);
  StreamFreeList& l = lists_[list];
  const std::uint32_t bin = bin_of(r.size);
  r.bin = bin;
  r.bin_prev = kNoRange;
  r.bin_next = l.heads[bin];
  if (r.bin_next != kNoRange) {
    ranges_[r.bin_next].bin_prev = index;
  } else {
    l.bins[bin / 64] |= std::uint64_t{1} << (bin % 64);
    l.words |= std::uint64_t{1} << (bin / 64);
  }
  l.heads[bin] = index;
  ++l.count;
  ++free_range_count_;
}

inline void FreeRanges::erase_free(std::uint32_t index) {
  const Range& r = ranges_[index];
  const std::size_t list = find_list(r.fence.stream);
  StreamFreeList& l = lists_[list];
  const std::uint32_t bin = r.bin;
  if (r.bin_prev != kNoRange) {
    ranges_[r.bin_prev].bin_next = r.bin_next;
  } else {
    l.heads[bin] = r.bin_next;
    if (r.bin_next == kNoRange) {
      l.bins[bin / 64] &= ~(std::uint64_t{1} << (bin % 64));
      if (l.bins[bin / 64] == 0) l.words &= ~(std::uint64_t{1} << (bin / 64));
    }
  }
  if (r.bin_next != kNoRange) ranges_[r.bin_next].bin_prev = r.bin_prev;
  --free_range_count_;
  if (--l.count == 0 && list != 0) close_list(list);
}

inline std::uint32_t FreeRanges::take_fit(std::size_t search, Stream* stream) {
  std::uint32_t best = kNoRange;
  const auto consider = [&](std::uint32_t candidate) {
    if (candidate != kNoRange && (best == kNoRange || ranges_[candidate].size < ranges_[best].size)) {
      best = candidate;
    }
  };
  consider(best_fit(lists_[0], search));
  const std::size_t own = stream == nullptr ? 0 : find_list(stream);
  if (own != 0 && own != kNoList) consider(best_fit(lists_[own], search));
  if (best == kNoRange) {
    std::uint32_t pending = kNoRange;
    for (std::size_t i = 1; i < lists_.size(); ++i) {
      if (i == own) continue;
      const std::uint32_t fit = best_fit(lists_[i], search);
      if (fit == kNoRange) continue;
      if (order_.completed(ranges_[fit].fence)) {
        consider(fit);
      } else if (pending == kNoRange || ranges_[fit].size < ranges_[pending].size) {
        pending = fit;
      }
    }
    if (best == kNoRange) best = pending;
  }
  if (best != kNoRange) {
    order_.wait(ranges_[best].fence, stream);  // a pending free: the range stays listed if this throws
    erase_free(best);
  }
  return best;
}

inline std::uint32_t FreeRanges::split(std::uint32_t index, std::size_t at) {
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

inline std::uint32_t FreeRanges::carve(std::uint32_t index, const Segment& segment, std::size_t size,
                                       std::size_t alignment, std::size_t requested, std::size_t at) {
  const std::size_t padding = at + alignment_padding(segment, ranges_[index].offset + at, alignment);
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

inline bool FreeRanges::absorb(std::uint32_t index, std::uint32_t other) {
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

inline std::uint32_t FreeRanges::free_range(std::uint32_t index, Stream* stream) {
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
