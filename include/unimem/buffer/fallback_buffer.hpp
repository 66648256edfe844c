#pragma once
// FallbackBuffer<T>: a Buffer<T> from a FallbackAdaptor, so that it lives on the device when the device has
// room and, after a fallback, in the adaptor's secondary memory (typically pinned or ordinary host memory).
// Its API is Buffer<T>'s: copies, fills and views work wherever it landed, and host_span() works once it is
// in host memory. The adaptor is held by reference (it must outlive the buffer) and takes the memory back to
// the side that gave it.
//
// fell_back() says which side served the buffer; location() says where its memory is, read from the memory
// itself (pinned or host memory, or any memory of the host backend, is on the host).

#include <cstddef>
#include <cstdint>

#include "unimem/buffer/buffer.hpp"
#include "unimem/resource/fallback_adaptor.hpp"

namespace unimem {

enum class BufferLocation : std::uint8_t { Device, Host };

[[nodiscard]] constexpr BufferLocation location_of(DeviceId device, MemoryKind kind) noexcept {
  const bool host =
      kind == MemoryKind::PinnedHost || kind == MemoryKind::Host || device.backend == BackendKind::Host;
  return host ? BufferLocation::Host : BufferLocation::Device;
}

template <typename T>
class FallbackBuffer : public Buffer<T> {
 public:
  FallbackBuffer() noexcept = default;
  // Allocates `count` elements from `resource`: its primary, or its secondary when the primary is out of
  // memory. Throws OutOfMemory naming both sides when neither has room; otherwise as Buffer<T>.
  FallbackBuffer(FallbackAdaptor& resource, std::size_t count, Stream* stream = nullptr)
      : Buffer<T>(resource, count, stream), fell_back_(resource.is_fallback(this->allocation())) {}

  // True when the adaptor's secondary served the buffer.
  [[nodiscard]] bool fell_back() const noexcept { return fell_back_; }
  [[nodiscard]] BufferLocation location() const noexcept { return location_of(this->device(), this->kind()); }
  [[nodiscard]] bool on_host() const noexcept { return location() == BufferLocation::Host; }

 private:
  bool fell_back_ = false;
};

}  // namespace unimem
