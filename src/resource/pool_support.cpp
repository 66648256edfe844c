#include "resource/pool_support.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem::detail {

std::size_t alignment_padding(const Segment& segment, std::size_t offset, std::size_t alignment) noexcept {
  if (alignment <= kDefaultAlignment) return 0;
  std::uintptr_t base = 0;
  if (segment.host_ptr != nullptr) {
    base = reinterpret_cast<std::uintptr_t>(segment.host_ptr);
  } else if (segment.native_is_address) {
    base = reinterpret_cast<std::uintptr_t>(segment.native);
  }
  const std::uintptr_t start = base + offset;
  return static_cast<std::size_t>(((start + alignment - 1) & ~(alignment - 1)) - start);
}

void check_pool_stream(const MemoryResource& pool, const Stream* stream, std::string_view pool_name) {
  if (is_pool_stream(pool, stream)) [[likely]] {
    return;
  }
  throw InvalidArgument(
      std::string(pool_name) + " on " + to_string(pool.device()) + ": the stream of " +
      to_string(stream->device()) +
      (&stream->backend() == &pool.backend() ? " is another device's" : " belongs to another backend"));
}

}  // namespace unimem::detail
