#pragma once
// FreeRanges: the range engine of the pools that pack large requests tightly (CoalescingPool,
// ExpandablePool). Address-ordered ranges inside segments, free or handed out; best fit over per-stream
// free lists; splitting on allocation and merging free neighbours on deallocation, under the stream-order
// rule of stream_order.hpp. What a segment is (an upstream allocation, a reserved address range) and how
// the pool grows are the pool's; the engine only knows segment numbers and offsets.
//
// Not thread-safe: the pool calls it under its own lock.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string_view>
#include <vector>

#include "resource/stream_order.hpp"
#include "unimem/backend/segment.hpp"
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
    std::uint32_t generation = 0;  // changes each time the record is handed out
    FreeFence fence;               // free: the stream it was freed on and the event marking the free
    bool free = true;              // also true for records not in use
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
  // Hands out `size` bytes from free range `index` (in no list) of `segment`, aligned to `alignment`; the
  // rest goes back to the lists. Returns the live record.
  std::uint32_t carve(std::uint32_t index, const Segment& segment, std::size_t size, std::size_t alignment,
                      std::size_t requested);
  // Frees live range `index` in the order of `stream` (nullptr: host order), merging it with the free
  // neighbours the stream-order rule lets it merge with; returns the free range it ended up in (listed).
  std::uint32_t free_range(std::uint32_t index, Stream* stream);

  void insert_free(std::uint32_t index);
  void erase_free(std::uint32_t index);

  // Calls fn(index) for every listed free range.
  template <typename Fn>
  void for_each_free(const Fn& fn) const {
    for (const StreamFreeList& list : lists_) {
      for (const FreeKey& key : list.ranges) fn(key.range);
    }
  }

  // Waits for every fence (host order) and drops it: for a pool giving all its memory back.
  void settle_all() noexcept;

  [[nodiscard]] std::size_t largest_free() const noexcept;
  [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
  [[nodiscard]] std::size_t free_range_count() const noexcept { return free_range_count_; }
  // Live ranges now.
  [[nodiscard]] std::size_t live_count() const noexcept;

 private:
  // Free ranges sort by size, then address: the first one not smaller than a request is its best fit, and
  // among equal sizes the lowest address wins.
  struct FreeKey {
    std::size_t size = 0;
    std::uint32_t segment = 0;
    std::size_t offset = 0;
    std::uint32_t range = kNoRange;  // the record the key stands for; not part of the order

    friend bool operator<(const FreeKey& a, const FreeKey& b) noexcept {
      if (a.size != b.size) return a.size < b.size;
      if (a.segment != b.segment) return a.segment < b.segment;
      return a.offset < b.offset;
    }
  };
  using FreeSet = std::set<FreeKey>;

  struct StreamFreeList {
    Stream* stream = nullptr;
    FreeSet ranges;
  };

  std::uint32_t new_range();
  void recycle_range(std::uint32_t index) noexcept;
  [[nodiscard]] std::size_t find_list(const Stream* stream) const noexcept;
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
  std::vector<FreeSet::node_type> spare_nodes_;  // set nodes kept for reuse: no heap call per free range
  std::size_t in_use_ = 0;
  std::size_t free_range_count_ = 0;
};

}  // namespace unimem::detail
