#pragma once
// Checked size arithmetic: every byte count that comes from a caller goes through these, so an overflow is an
// InvalidArgument naming the operands, never a wrapped-around small allocation.

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "unimem/core/error.hpp"

namespace unimem {

inline constexpr std::size_t KiB = std::size_t{1} << 10U;
inline constexpr std::size_t MiB = std::size_t{1} << 20U;
inline constexpr std::size_t GiB = std::size_t{1} << 30U;

[[noreturn]] void throw_size_overflow(const char* op, std::size_t a, std::size_t b);

[[nodiscard]] inline std::size_t checked_add(std::size_t a, std::size_t b) {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw_size_overflow("+", a, b);
  return r;
}

[[nodiscard]] inline std::size_t checked_mul(std::size_t a, std::size_t b) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw_size_overflow("*", a, b);
  return r;
}

// Bytes needed for `count` elements of T.
template <typename T>
[[nodiscard]] std::size_t bytes_for(std::size_t count) {
  return checked_mul(count, sizeof(T));
}

// Throws InvalidArgument unless [offset, offset + bytes) lies inside [0, size). `what` names the object.
void check_range(std::string_view what, std::size_t offset, std::size_t bytes, std::size_t size);

// "1.50 GiB", "512 B": for messages and tables.
[[nodiscard]] std::string format_bytes(std::size_t bytes);

// Parses "80GiB", "512MiB", "1.5GB", "4096", "64k" (binary multiples for K/M/G/T with or without "iB").
// Throws InvalidArgument naming the text on anything else, including overflow and zero.
[[nodiscard]] std::size_t parse_bytes(std::string_view text);

}  // namespace unimem
