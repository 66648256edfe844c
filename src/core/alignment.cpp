#include "unimem/core/alignment.hpp"

#include <string>

namespace unimem {

namespace {

void check_alignment(std::size_t alignment) {
  if (!is_power_of_two(alignment)) {
    throw InvalidArgument("alignment " + std::to_string(alignment) + " is not a power of two");
  }
}

}  // namespace

std::size_t align_up(std::size_t value, std::size_t alignment) {
  check_alignment(alignment);
  std::size_t bumped = 0;
  if (__builtin_add_overflow(value, alignment - 1, &bumped)) {
    throw InvalidArgument("aligning " + std::to_string(value) + " up to " + std::to_string(alignment) +
                          " overflows");
  }
  return align_down(bumped, alignment);
}

}  // namespace unimem
