#pragma once
// TransferEndpoint: one end of a transfer, a window of bytes inside a segment. It names memory of any kind on
// any backend and device (pageable host memory through a host view, pinned, unified, device memory) the same
// way, so the transfer engine can choose how to move bytes from where they are to where they go.
//
// An endpoint copies the Segment (a small value) but owns nothing: the memory behind it stays alive and
// untouched by others until every transfer that uses it has completed, and asynchronous work queued on it
// elsewhere (a buffer's own stream) must have completed before a transfer reads or writes it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "unimem/backend/segment.hpp"
#include "unimem/buffer/buffer_access.hpp"
#include "unimem/buffer/raw_view.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

// Where an endpoint's bytes are, as far as moving them goes.
enum class MemoryLocation : std::uint8_t {
  Pageable,  // ordinary host memory: host views, host allocations, the host backend's device memory
  Pinned,    // page-locked host memory a device can DMA from and to
  Unified,   // managed / shared virtual memory, reachable from host and device
  Device,    // memory only its device reaches (a GPU's memory, a cl_mem, a simulated device's range)
};

[[nodiscard]] std::string_view to_string(MemoryLocation location) noexcept;

struct TransferEndpoint {
  Segment segment;
  std::size_t offset = 0;  // of the window's first byte, from the segment's start
  std::size_t size = 0;    // bytes in the window: a transfer stays inside [offset, offset + size)
  bool read_only = false;  // a view of const host memory: only a source

  // The bytes of an allocation, from `byte_offset` into it. Throws InvalidArgument for an empty allocation or
  // an offset at or past its end.
  [[nodiscard]] static TransferEndpoint from(const Allocation& allocation, std::size_t byte_offset = 0);
  // A whole segment (a backend allocation or a host view), from `byte_offset`. Same errors as above.
  [[nodiscard]] static TransferEndpoint from(const Segment& segment, std::size_t byte_offset = 0);
  // The elements of a buffer or view, from element `element_offset`.
  [[nodiscard]] static TransferEndpoint from(const RawView& view, std::size_t element_offset = 0);
  template <typename T, typename Self>
  [[nodiscard]] static TransferEndpoint from(const BufferAccess<T, Self>& buffer,
                                             std::size_t element_offset = 0) {
    return from(buffer.allocation(), bytes_for<T>(element_offset));
  }

  // Pageable host memory the caller owns; read-only for a span of const elements. Throws InvalidArgument for
  // an empty span.
  template <typename T, std::size_t Extent>
  [[nodiscard]] static TransferEndpoint host(std::span<T, Extent> data) {
    return host_bytes(data.data(), data.size_bytes());
  }
  [[nodiscard]] static TransferEndpoint host_bytes(void* data, std::size_t bytes);
  [[nodiscard]] static TransferEndpoint host_bytes(const void* data, std::size_t bytes);

  [[nodiscard]] MemoryLocation location() const noexcept;
  [[nodiscard]] Backend* backend() const noexcept { return segment.owner; }
  [[nodiscard]] DeviceId device() const noexcept { return segment.device; }
  // Where the host reaches the window's first byte; nullptr when the memory is not host-visible.
  [[nodiscard]] std::byte* host_ptr() const noexcept {
    return segment.host_ptr != nullptr ? segment.host_ptr + offset : nullptr;
  }
  // "opencl:0 device memory, bytes [256, 4352) of segment #7", for messages.
  [[nodiscard]] std::string describe() const;
};

}  // namespace unimem
