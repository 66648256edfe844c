#pragma once
// RawBuffer: owns one allocation of `count` elements of a run-time element type, from a MemoryResource. It is
// the untyped core of Buffer<T> (and what code that stores buffers of several types keeps, e.g. named
// buffers): Buffer<T> adopts one only when T is its element type.
//
// Lifetime: the resource is held by reference and must outlive the buffer (and so must the stream given at
// construction). The destructor gives the allocation back through resource.deallocate, ordered on that
// stream; after waiting for the buffer's own stream, if it created one. Asynchronous work the caller queued
// on other streams must have completed first, as for any stream-ordered memory.
//
// Streams: a buffer made with a stream allocates, frees and orders its synchronous work on it. A buffer made
// without one works in host order until it is first asked for asynchronous work without a stream
// (own_stream()); it then creates a stream of its own and orders all its later work on it, so that a
// synchronous copy always sees the asynchronous ones queued before it.
//
// Not thread-safe: one thread at a time uses a buffer, as with a standard container.

#include <cstddef>
#include <memory>
#include <string_view>

#include "unimem/buffer/raw_view.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class RawBuffer {
 public:
  RawBuffer() noexcept = default;
  // Allocates `count` elements (aligned to at least kDefaultAlignment and to the element's alignment),
  // ordered on `stream` when given. Throws InvalidArgument for a zero count, an overflowing size, an unknown
  // element type or a stream of another backend or device; what the resource throws (OutOfMemory, ...)
  // otherwise.
  RawBuffer(MemoryResource& resource, ElementType element, std::size_t count, Stream* stream = nullptr);
  ~RawBuffer();
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;
  RawBuffer(RawBuffer&& other) noexcept;
  RawBuffer& operator=(RawBuffer&& other) noexcept;

  [[nodiscard]] bool empty() const noexcept { return resource_ == nullptr; }
  // Throws InvalidArgument on an empty buffer.
  [[nodiscard]] MemoryResource& resource() const;
  // Exactly what resource().allocate() returned (so allocation().size is bytes()).
  [[nodiscard]] const Allocation& allocation() const noexcept { return view_.allocation(); }
  [[nodiscard]] const ElementType& element_type() const noexcept { return view_.element_type(); }
  [[nodiscard]] std::size_t size() const noexcept { return view_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return view_.bytes(); }
  [[nodiscard]] DeviceId device() const noexcept { return view_.device(); }
  [[nodiscard]] MemoryKind kind() const noexcept { return view_.kind(); }
  [[nodiscard]] Backend* backend() const noexcept { return view_.backend(); }
  // The stream the buffer orders its work on: the one it was made with, or its own once created; nullptr for
  // host order.
  [[nodiscard]] Stream* stream() const noexcept { return view_.stream(); }

  // All of the buffer, ordered on stream().
  [[nodiscard]] const RawView& view() const noexcept { return view_; }
  // The stream for asynchronous work without a stream argument: the one the buffer was made with, or one it
  // creates now on its device and keeps (see the header comment). Throws InvalidArgument on an empty buffer.
  [[nodiscard]] Stream& own_stream();

 private:
  // Gives the allocation back (after the own stream has drained); leaves the buffer empty. Never throws.
  void release() noexcept;

  MemoryResource* resource_ = nullptr;
  RawView view_;
  std::unique_ptr<Stream> created_stream_;  // the stream own_stream() created, if any
  Stream* allocation_stream_ = nullptr;     // the stream given at construction
};

// `resource` when it serves `kind`; otherwise throws NotSupported naming `buffer` (e.g.
// "PinnedBuffer<float>"), the resource's device and both kinds.
MemoryResource& require_memory_kind(MemoryResource& resource, MemoryKind kind, std::string_view buffer);

}  // namespace unimem
