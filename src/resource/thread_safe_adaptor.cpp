#include "unimem/resource/thread_safe_adaptor.hpp"

namespace unimem {

Allocation ThreadSafeAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  const std::lock_guard lock(mutex_);
  return ResourceAdaptor::do_allocate(bytes, stream, alignment);
}

bool ThreadSafeAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  const std::lock_guard lock(mutex_);
  return ResourceAdaptor::do_deallocate(allocation, stream);
}

std::size_t ThreadSafeAdaptor::do_trim() {
  const std::lock_guard lock(mutex_);
  return ResourceAdaptor::do_trim();
}

ResourceUsage ThreadSafeAdaptor::do_usage() const {
  const std::lock_guard lock(mutex_);
  return ResourceAdaptor::do_usage();
}

}  // namespace unimem
