#pragma once
// Buffer<T>: `size()` elements of T in memory from a MemoryResource, owned (RAII, move-only) and typed.
//
//   BackendResource device(backend, 0, MemoryKind::Device);
//   Buffer<float> x(device, 1024);
//   x.copy_from_host(values);                   // synchronous
//   TransferFuture f = x.copy_to_host_async(out);  // on the buffer's own stream; f.wait() rethrows failures
//
// The resource is held by reference and must outlive the buffer; the destructor gives the memory back
// through resource.deallocate. Streams, ordering and thread-safety are those of RawBuffer (raw_buffer.hpp):
// a buffer is used by one thread at a time, and work queued on streams other than its own must have
// completed before it is destroyed. Views (view(), as<U>()) taken before the buffer creates its own stream
// keep ordering their synchronous work in host order.

#include <cstddef>
#include <span>
#include <utility>

#include "unimem/buffer/buffer_access.hpp"
#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_buffer.hpp"

namespace unimem {

template <typename T>
class Buffer : public BufferAccess<T, Buffer<T>> {
  using Access = BufferAccess<T, Buffer<T>>;

 public:
  // An empty buffer: every operation but the accessors throws InvalidArgument.
  Buffer() noexcept = default;
  // Allocates `count` elements from `resource`, ordered on `stream` when given (see RawBuffer).
  Buffer(MemoryResource& resource, std::size_t count, Stream* stream = nullptr)
      : raw_(resource, element_type_of<T>(), count, stream) {}
  // Takes over `raw`. Throws TypeMismatch naming both types unless it holds elements of T.
  explicit Buffer(RawBuffer&& raw) : raw_(adopt(std::move(raw))) {}

  // The resource the memory came from and goes back to.
  [[nodiscard]] MemoryResource& resource() const { return raw_.resource(); }
  // The stream the buffer orders its work on, or nullptr for host order.
  [[nodiscard]] Stream* stream() const noexcept { return raw_.stream(); }
  // The stream asynchronous calls without a stream use (created on first use; see RawBuffer::own_stream).
  [[nodiscard]] Stream& own_stream() { return raw_.own_stream(); }
  [[nodiscard]] const RawView& raw() const noexcept { return raw_.view(); }
  // Gives up the typed handle; the memory stays owned by the returned RawBuffer.
  [[nodiscard]] RawBuffer release_raw() && { return std::move(raw_); }

  using Access::copy_from_host_async;
  using Access::copy_to_host_async;
  // Queued on the buffer's own stream, so that later calls on this buffer see them.
  [[nodiscard]] TransferFuture copy_from_host_async(std::span<const T> data, std::size_t offset = 0) {
    return Access::copy_from_host_async(data, own_stream(), offset);
  }
  [[nodiscard]] TransferFuture copy_to_host_async(std::span<T> out, std::size_t offset = 0) {
    return Access::copy_to_host_async(out, own_stream(), offset);
  }

 private:
  static RawBuffer adopt(RawBuffer&& raw) {
    require_element_type(raw.element_type(), element_type_of<T>(), "Buffer from a RawBuffer");
    return std::move(raw);
  }

  RawBuffer raw_;
};

}  // namespace unimem
