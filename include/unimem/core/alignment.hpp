#pragma once
// Alignment helpers. Alignments are powers of two; align_up is checked (a request near SIZE_MAX fails
// loudly).

#include <cstddef>
#include <cstdint>

#include "unimem/core/error.hpp"

namespace unimem {

inline constexpr std::size_t kCacheLine = 64;
// Every allocation unimem hands out is at least this aligned (CUDA's cudaMalloc guarantees 256).
inline constexpr std::size_t kDefaultAlignment = 256;

[[nodiscard]] constexpr bool is_power_of_two(std::size_t x) noexcept {
  return x != 0 && (x & (x - 1)) == 0;
}

[[nodiscard]] constexpr std::size_t align_down(std::size_t value, std::size_t alignment) noexcept {
  return value & ~(alignment - 1);
}

namespace detail {
[[noreturn]] void throw_bad_alignment(std::size_t alignment);
[[noreturn]] void throw_alignment_overflow(std::size_t value, std::size_t alignment);
}  // namespace detail

// Rounds up to a multiple of `alignment`; throws InvalidArgument when `alignment` is not a power of two or on
// overflow. Inline, the throws out of line: every allocation calls it, mostly with a constant alignment.
[[nodiscard]] inline std::size_t align_up(std::size_t value, std::size_t alignment) {
  if (!is_power_of_two(alignment)) [[unlikely]]
    detail::throw_bad_alignment(alignment);
  std::size_t bumped = 0;
  if (__builtin_add_overflow(value, alignment - 1, &bumped)) [[unlikely]]
    detail::throw_alignment_overflow(value, alignment);
  return align_down(bumped, alignment);
}

[[nodiscard]] constexpr bool is_aligned(std::size_t value, std::size_t alignment) noexcept {
  return (value & (alignment - 1)) == 0;
}

[[nodiscard]] inline bool is_aligned(const void* ptr, std::size_t alignment) noexcept {
  return is_aligned(reinterpret_cast<std::uintptr_t>(ptr), alignment);
}

}  // namespace unimem
