#pragma once
// PinnedBuffer<T>: a Buffer<T> in page-locked host memory, the memory devices copy from and to at full speed
// (DMA) and the staging memory of asynchronous transfers. Its elements are always reachable from the host
// (host_span() never throws for it).

#include <cstddef>

#include "unimem/buffer/buffer.hpp"
#include "unimem/buffer/raw_buffer.hpp"

namespace unimem {

template <typename T>
class PinnedBuffer : public Buffer<T> {
 public:
  PinnedBuffer() noexcept = default;
  // Throws NotSupported naming the device and both kinds unless `resource` serves pinned host memory; then
  // as Buffer<T>.
  PinnedBuffer(MemoryResource& resource, std::size_t count, Stream* stream = nullptr)
      : Buffer<T>(require_memory_kind(resource, MemoryKind::PinnedHost, "PinnedBuffer"), count, stream) {}
};

}  // namespace unimem
