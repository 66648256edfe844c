#pragma once
// What the replay and the benchmarks share to time things: the clock, conversions, the median, and a way to
// keep the compiler from removing work whose result is unused.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace unimem::cli {

using Clock = std::chrono::steady_clock;

[[nodiscard]] inline double nanoseconds(Clock::duration d) {
  return std::chrono::duration<double, std::nano>(d).count();
}

[[nodiscard]] inline double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The middle value; the mean of the two middle values for an even count. `values` must not be empty.
[[nodiscard]] inline double median(std::vector<double> values) {
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (values.size() % 2 == 1) return *middle;
  return (*middle + *std::max_element(values.begin(), middle)) / 2.0;
}

// Makes `pointer` look used, so that an allocation (a malloc/free pair in particular) is not optimized away.
// A template, not a const void* parameter: GCC would take that as a read of the (uninitialized) bytes.
template <typename T>
void keep(T* pointer) {
  __asm__ __volatile__("" : : "g"(pointer) : "memory");
}

}  // namespace unimem::cli
