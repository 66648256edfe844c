#pragma once
// GranuleBitmap: one bit per granule of an ExpandablePool's reserved range, set while the granule is mapped.
// Packed 64 to a word, so that finding the next mapped (or unmapped) granule and counting mapped granules
// step over whole words: a reclaim scan over a hole hundreds of granules wide, most of them unmapped, costs
// a few instructions per 64 granules instead of several per granule.

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
    size_ = granules;
  }

  [[nodiscard]] bool test(std::size_t g) const noexcept { return ((words_[g / 64] >> (g % 64)) & 1U) != 0; }
  void set(std::size_t first, std::size_t count) noexcept { assign(first, first + count, true); }
  void clear(std::size_t first, std::size_t count) noexcept { assign(first, first + count, false); }

  // Set bits in [first, end).
  [[nodiscard]] std::size_t count(std::size_t first, std::size_t end) const noexcept {
    std::size_t n = 0;
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      n += static_cast<std::size_t>(std::popcount(words_[w] & mask));
      return false;
    });
    return n;
  }

  // Clear bits in [first, end): the unmapped granules of a span.
  [[nodiscard]] std::size_t count_clear(std::size_t first, std::size_t end) const noexcept {
    return end - first - count(first, end);
  }

  // Whether every bit in [first, end) is set (first < end): one word's test when they share a word, as the
  // granules of most allocations do.
  [[nodiscard]] bool all_set(std::size_t first, std::size_t end) const noexcept {
    const std::size_t bit = first % 64;
    if (end - first <= 64 - bit) {
      const std::uint64_t mask = (~std::uint64_t{0} >> (64 - (end - first))) << bit;
      return (words_[first / 64] & mask) == mask;
    }
    return first_with(first, end, false) == end;
  }

  // The lowest granule in [first, end) whose bit is `value`; `end` if none.
  [[nodiscard]] std::size_t first_with(std::size_t first, std::size_t end, bool value) const noexcept {
    std::size_t found = end;
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      const std::uint64_t hits = (value ? words_[w] : ~words_[w]) & mask;
      if (hits == 0) return false;
      found = w * 64 + static_cast<std::size_t>(std::countr_zero(hits));
      return true;
    });
    return found;
  }

  // The highest granule in [first, end) whose bit is set; kNone if none.
  [[nodiscard]] std::size_t last_set(std::size_t first, std::size_t end) const noexcept {
    if (first >= end) return kNone;
    for (std::size_t w = (end - 1) / 64 + 1; w-- > first / 64;) {
      const std::uint64_t hits = words_[w] & word_mask(w, first, end);
      if (hits != 0) return w * 64 + 63 - static_cast<std::size_t>(std::countl_zero(hits));
    }
    return kNone;
  }

 private:
  // The bits of word w that lie in [first, end).
  [[nodiscard]] static std::uint64_t word_mask(std::size_t w, std::size_t first, std::size_t end) noexcept {
    std::uint64_t mask = ~std::uint64_t{0};
    if (first > w * 64) mask &= ~std::uint64_t{0} << (first - w * 64);
    if (end < w * 64 + 64) mask &= ~(~std::uint64_t{0} << (end - w * 64));
    return mask;
  }

  // Calls fn(word, mask) for each word [first, end) reaches, in order, until fn returns true.
  template <typename Fn>
  void for_words(std::size_t first, std::size_t end, const Fn& fn) const noexcept {
    if (first >= end) return;
    for (std::size_t w = first / 64; w <= (end - 1) / 64; ++w) {
      if (fn(w, word_mask(w, first, end))) return;
    }
  }

  void assign(std::size_t first, std::size_t end, bool value) noexcept {
    for_words(first, end, [&](std::size_t w, std::uint64_t mask) {
      words_[w] = value ? (words_[w] | mask) : (words_[w] & ~mask);
      return false;
    });
  }

  std::vector<std::uint64_t> words_;
  std::size_t size_ = 0;
};

}  // namespace unimem::detail
