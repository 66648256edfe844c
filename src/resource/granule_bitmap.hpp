#pragma once
// GranuleBitmap: one bit per granule of an ExpandablePool's reserved range, set while the granule is mapped.
// Packed 64 to a word, so that finding the next mapped (or unmapped) granule and counting mapped granules
// step over whole words: a reclaim scan over a hole hundreds of granules wide, most of them unmapped, costs
// a few instructions per 64 granules instead of several per granule.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace unimem::detail {

class GranuleBitmap {
 public:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Grows (or shrinks) to `granules` bits; new bits are clear.
  void resize(std::size_t granules) {
    words_.resize((granules + 63) / 64, 0);
    if (granules < size_ && granules % 64 != 0) words_.back() &= tail_mask(granules);  // cut bits stay clear
    size_ = granules;
    set_prefix_ = std::min(set_prefix_, granules);
  }

  [[nodiscard]] bool test(std::size_t g) const noexcept { return ((words_[g / 64] >> (g % 64)) & 1U) != 0; }
  void set(std::size_t first, std::size_t count) noexcept {
    assign(first, first + count, true);
    if (first <= set_prefix_) set_prefix_ = first_with(std::max(set_prefix_, first + count), size_, false);
  }
  void clear(std::size_t first, std::size_t count) noexcept {
    assign(first, first + count, false);
    if (count != 0) set_prefix_ = std::min(set_prefix_, first);
  }

  // Set bits in [first, end). Mapped granules come in runs, so most words a span reaches are wholly set or
  // wholly clear within it; a wholly set one counts its mask's width (contiguous bits, measured from its
  // ends), and only a word holding a run's edge takes a population count (a libgcc call of a dozen
  // instructions where the build may not assume the CPU has the instruction). Out of line, as first_with:
  // for_words calls fn from three places, and inlined into the pools' allocation paths that pushed their
  // free-list calls past GCC's inlining limits.
  [[nodiscard, gnu::noinline]] std::size_t count(std::size_t first, std::size_t end) const noexcept {
    std::size_t n = 0;
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      const std::uint64_t bits = words_[w] & mask;
      if (bits == mask) {
        n += static_cast<std::size_t>(64 - std::countl_zero(mask) - std::countr_zero(mask));
      } else if (bits != 0) {
        n += static_cast<std::size_t>(std::popcount(bits));
      }
      return false;
    });
    return n;
  }

  // Clear bits in [first, end): the unmapped granules of a span.
  [[nodiscard]] std::size_t count_clear(std::size_t first, std::size_t end) const noexcept {
    return end - first - count(first, end);
  }

  // Whether every bit in [first, end) is set (first < end): a compare inside the set prefix (where a pool
  // that has not unmapped below its allocations works), else one word's test when they share a word, as the
  // granules of most allocations do.
  [[nodiscard]] bool all_set(std::size_t first, std::size_t end) const noexcept {
    if (end <= set_prefix_) return true;
    const std::size_t bit = first % 64;
    if (end - first <= 64 - bit) {
      const std::uint64_t mask = (~std::uint64_t{0} >> (64 - (end - first))) << bit;
      return (words_[first / 64] & mask) == mask;
    }
    return first_with(first, end, false) == end;
  }

  // The lowest granule in [first, end) whose bit is `value`; `end` if none. Out of line: see count().
  [[nodiscard, gnu::noinline]] std::size_t first_with(std::size_t first, std::size_t end,
                                                      bool value) const noexcept {
    std::size_t found = end;
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      const std::uint64_t hits = (value ? words_[w] : ~words_[w]) & mask;
      if (hits == 0) return false;
      found = w * 64 + static_cast<std::size_t>(std::countr_zero(hits));
      return true;
    });
    return found;
  }

  // The highest granule in [first, end) whose bit is `value`; kNone if none.
  [[nodiscard]] std::size_t last_with(std::size_t first, std::size_t end, bool value) const noexcept {
    if (first >= end) return kNone;
    const std::size_t low = first / 64;
    const std::size_t high = (end - 1) / 64;
    for (std::size_t w = high + 1; w-- > low;) {
      std::uint64_t hits = value ? words_[w] : ~words_[w];
      if (w == high) hits &= tail_mask(end);
      if (w == low) hits &= head_mask(first);
      if (hits != 0) return w * 64 + 63 - static_cast<std::size_t>(std::countl_zero(hits));
    }
    return kNone;
  }

 private:
  // The bits of first's word from first up, and of the word holding end - 1 up to it.
  [[nodiscard]] static std::uint64_t head_mask(std::size_t first) noexcept {
    return ~std::uint64_t{0} << (first % 64);
  }
  [[nodiscard]] static std::uint64_t tail_mask(std::size_t end) noexcept {
    return ~std::uint64_t{0} >> (63 - (end - 1) % 64);
  }

  // Calls fn(word, mask) for each word [first, end) reaches, in order, until fn returns true; mask holds the
  // word's bits inside [first, end). Only the two end words have partial masks, so the words between (most of
  // a long scan) cost a load and a test each.
  template <typename Fn>
  void for_words(std::size_t first, std::size_t end, const Fn& fn) const noexcept {
    if (first >= end) return;
    const std::size_t low = first / 64;
    const std::size_t high = (end - 1) / 64;
    if (low == high) {
      fn(low, head_mask(first) & tail_mask(end));
      return;
    }
    if (fn(low, head_mask(first))) return;
    for (std::size_t w = low + 1; w < high; ++w) {
      if (fn(w, ~std::uint64_t{0})) return;
    }
    fn(high, tail_mask(end));
  }

  void assign(std::size_t first, std::size_t end, bool value) noexcept {
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      words_[w] = value ? (words_[w] | mask) : (words_[w] & ~mask);
      return false;
    });
  }

  std::vector<std::uint64_t> words_;
  std::size_t size_ = 0;
  std::size_t set_prefix_ = 0;  // bits [0, set_prefix_) are all set
};

}  // namespace unimem::detail
