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

// Rounds up to a multiple of `alignment`; throws InvalidArgument when `alignment` is not a power of two or on
// overflow.
[[nodiscard]] std::size_t align_up(std::size_t value, std::size_t alignment);

[[nodiscard]] constexpr bool is_aligned(std::size_t value, std::size_t alignment) noexcept {
  return (value & (alignment - 1)) == 0;
}

[[nodiscard]] inline bool is_aligned(const void* ptr, std::size_t alignment) noexcept {
  return is_aligned(reinterpret_cast<std::uintptr_t>(ptr), alignment);
}

}  // namespace unimem
