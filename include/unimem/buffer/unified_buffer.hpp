#pragma once
// UnifiedBuffer<T>: a Buffer<T> in unified memory (CUDA managed memory, OpenCL fine-grained SVM), which the
// host and the device both address directly. The memory migrates on demand; prefetching moves it ahead of use
// so that the first touch on the other side does not fault page by page.

#include <cstddef>

#include "unimem/backend/backend.hpp"
#include "unimem/buffer/buffer.hpp"
#include "unimem/buffer/raw_buffer.hpp"

namespace unimem {

template <typename T>
class UnifiedBuffer : public Buffer<T> {
 public:
  UnifiedBuffer() noexcept = default;
  // Throws NotSupported naming the device and both kinds unless `resource` serves unified memory; then as
  // Buffer<T>.
  UnifiedBuffer(MemoryResource& resource, std::size_t count, Stream* stream = nullptr)
      : Buffer<T>(require_memory_kind(resource, MemoryKind::Unified, "UnifiedBuffer"), count, stream) {}

  // Migrates the elements to the buffer's device (or to the host) ahead of use: queued on `stream` (of the
  // buffer's device) when given, complete on return otherwise. A hint: backends that cannot migrate do
  // nothing.
  void prefetch_to_device(Stream* stream = nullptr) const {
    this->raw().prefetch(PrefetchTarget::Device, stream);
  }
  void prefetch_to_host(Stream* stream = nullptr) const {
    this->raw().prefetch(PrefetchTarget::Host, stream);
  }
};

}  // namespace unimem
