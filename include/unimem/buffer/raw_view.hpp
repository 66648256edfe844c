#pragma once
// RawView: a non-owning window of whole elements onto an allocation, with the copies, fills and host access
// that every typed buffer offers. It is the untyped core of Buffer<T>, BufferView<T>, Tensor<T> and the
// Workspace's views: all validation happens here, in element units, and every message names the counts, the
// element type, the device and the kind of memory.
//
// Synchronous operations have completed on return. When the memory's owner orders its work on a stream (the
// stream it was allocated on, or the one it created for asynchronous work), they go through that stream and
// synchronize it, so that they see the owner's earlier asynchronous work and never overtake a stream-ordered
// allocation. Asynchronous operations run on the stream the caller passes; the caller keeps the host memory
// alive and leaves it alone until the returned TransferFuture completes.
//
// A view does not keep its memory alive: it must not outlive the buffer (or workspace slot) it looks into.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "unimem/backend/backend.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class RawView {
 public:
  // An empty view: every operation throws InvalidArgument.
  RawView() noexcept = default;
  // The first `count` elements of `element` type at the start of `allocation`. Throws InvalidArgument for an
  // empty allocation, an unknown element type, a zero count, or elements that do not fit the allocation.
  RawView(const Allocation& allocation, ElementType element, std::size_t count, Stream* stream = nullptr);

  [[nodiscard]] bool empty() const noexcept { return !allocation_; }
  // The range the view covers: exactly bytes() bytes.
  [[nodiscard]] const Allocation& allocation() const noexcept { return allocation_; }
  [[nodiscard]] const ElementType& element_type() const noexcept { return element_; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return allocation_.size; }
  [[nodiscard]] DeviceId device() const noexcept { return allocation_.device(); }
  [[nodiscard]] MemoryKind kind() const noexcept { return allocation_.kind(); }
  [[nodiscard]] Backend* backend() const noexcept { return allocation_.backend(); }
  // The stream synchronous operations are ordered on; nullptr for host order.
  [[nodiscard]] Stream* stream() const noexcept { return stream_; }
  [[nodiscard]] bool host_visible() const noexcept { return allocation_.host_ptr() != nullptr; }
  // "100 float on sim:0 (device memory)", for messages.
  [[nodiscard]] std::string describe() const;

  // Copies `count` elements between host memory and elements [offset, offset + count). Throws InvalidArgument
  // when the range runs past the end (naming the counts), and what the backend throws.
  void copy_from_host(const void* src, std::size_t count, std::size_t offset) const;
  void copy_to_host(void* dst, std::size_t count, std::size_t offset) const;
  // The same, queued on `stream` (of this memory's backend and device: InvalidArgument otherwise, as for a
  // bad range). Failures of the copy itself come back through the future.
  [[nodiscard]] TransferFuture copy_from_host_async(const void* src, std::size_t count, std::size_t offset,
                                                    Stream& stream) const;
  [[nodiscard]] TransferFuture copy_to_host_async(void* dst, std::size_t count, std::size_t offset,
                                                  Stream& stream) const;

  // Sets every byte to `value` (one memset).
  void fill_bytes(std::uint8_t value) const;
  // Sets every element to the element_type().size bytes at `element`: one memset when those bytes are all
  // equal, otherwise copies of a host block of the pattern.
  void fill(const void* element) const;

  // Moves the elements' memory towards its device or the host ahead of use (unified memory; a validated no-op
  // for other memory, see Backend::prefetch). Queued on `stream` when given, otherwise done on return.
  void prefetch(PrefetchTarget target, Stream* stream) const;

  // Where the host reads and writes the elements. Throws NotSupported naming the device and the kind of
  // memory when the memory is not host-visible.
  [[nodiscard]] std::byte* host_data() const;

  // Elements [offset, offset + count) as a view of their own. Throws InvalidArgument for a zero count or a
  // range past the end.
  [[nodiscard]] RawView subview(std::size_t offset, std::size_t count) const;
  // The same bytes as elements of `target`. Only raw bytes (std::byte, unsigned char) may become another type
  // or be made from one: anything else throws TypeMismatch naming both types. Throws InvalidArgument when the
  // bytes are not a whole number of targets or not aligned for them.
  [[nodiscard]] RawView as(ElementType target) const;

 private:
  void check_not_empty(std::string_view operation) const;
  void check_elements(std::string_view operation, std::size_t count, std::size_t offset) const;
  void check_stream(std::string_view operation, const Stream& stream) const;
  // Runs a backend operation on the ordering stream and waits for it.
  template <typename Operation>
  void run_ordered(Operation operation) const;

  Allocation allocation_;
  ElementType element_;
  std::size_t count_ = 0;
  Stream* stream_ = nullptr;
};

}  // namespace unimem
