#pragma once
// A Segment is one raw allocation from a backend: the unit that pools later sub-range (DESIGN decision 1).

#include <cstddef>
#include <cstdint>

#include "unimem/backend/types.hpp"

namespace unimem {

class Backend;

struct Segment {
  std::uint64_t id = 0;  // unique within its backend; 0 for a host view
  DeviceId device;
  MemoryKind kind = MemoryKind::Host;
  std::size_t size = 0;
  // The backend's own handle: a cl_mem, a CUDA device pointer, a host pointer, or a simulated address.
  void* native = nullptr;
  // True when `native` is the address of the segment's first byte (host, CUDA and simulated memory, host
  // views), so that native + offset addresses any byte of it; false for a handle that is not an address (an
  // OpenCL cl_mem) or an address the segment does not start at (OpenCL SVM, aligned inside its allocation).
  // Set by the backend; code above backend/ asks this instead of the backend's kind.
  bool native_is_address = false;
  // Where the host can read and write the segment directly; nullptr when it is not host-visible.
  std::byte* host_ptr = nullptr;
  Backend* owner = nullptr;  // the backend that allocated it (copies go through it); nullptr for a host view

  [[nodiscard]] bool host_visible() const noexcept { return host_ptr != nullptr; }
  [[nodiscard]] bool is_host_view() const noexcept { return owner == nullptr; }
  explicit operator bool() const noexcept { return native != nullptr; }

  // Wraps memory the caller owns (pageable host memory) so that backends can copy to and from it. The view
  // owns nothing; the caller keeps the memory alive until every copy that uses it has completed.
  [[nodiscard]] static Segment host_view(void* data, std::size_t bytes) noexcept;
  // A read-only source: backends never write through a segment passed as a copy source.
  [[nodiscard]] static Segment host_view(const void* data, std::size_t bytes) noexcept;
};

}  // namespace unimem
