#include "unimem/resource/limiting_adaptor.hpp"

#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

LimitingAdaptor::LimitingAdaptor(MemoryResource& upstream, std::size_t limit_bytes)
    : ResourceAdaptor(upstream), limit_(limit_bytes) {
  if (limit_bytes == 0) {
    throw InvalidArgument("LimitingAdaptor on " + to_string(device()) +
                          ": a limit of 0 bytes admits nothing");
  }
}

Allocation LimitingAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  std::size_t in_use = in_use_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ - in_use) throw_over_limit(bytes, in_use);
  } while (!in_use_.compare_exchange_weak(in_use, in_use + bytes, std::memory_order_relaxed));
  try {
    return ResourceAdaptor::do_allocate(bytes, stream, alignment);
  } catch (...) {
    in_use_.fetch_sub(bytes, std::memory_order_relaxed);
    throw;
  }
}

bool LimitingAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  if (!ResourceAdaptor::do_deallocate(allocation, stream)) return false;
  (void)release_bytes(in_use_, allocation.size, "LimitingAdaptor");
  return true;
}

void LimitingAdaptor::throw_over_limit(std::size_t bytes, std::size_t in_use) const {
  throw OutOfMemory(bytes, to_string(device()), limit_ - in_use, limit_,
                    "LimitingAdaptor limit " + std::to_string(limit_) + " bytes (" + format_bytes(limit_) +
                        "), " + std::to_string(in_use) + " bytes in use (" + format_bytes(in_use) + ")");
}

}  // namespace unimem
