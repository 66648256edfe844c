#include "unimem/core/alignment.hpp"

#include <string>

namespace unimem::detail {

void throw_bad_alignment(std::size_t alignment) {
  throw InvalidArgument("alignment " + std::to_string(alignment) + " is not a power of two");
}

void throw_alignment_overflow(std::size_t value, std::size_t alignment) {
  throw InvalidArgument("aligning " + std::to_string(value) + " up to " + std::to_string(alignment) +
                        " overflows");
}

}  // namespace unimem::detail
