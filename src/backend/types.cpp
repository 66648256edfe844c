#include "unimem/backend/types.hpp"

#include <string>

#include "unimem/backend/device_info.hpp"
#include "unimem/backend/segment.hpp"

namespace unimem {

std::string_view to_string(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::Host:
      return "host";
    case BackendKind::OpenCL:
      return "opencl";
    case BackendKind::Cuda:
      return "cuda";
    case BackendKind::Simulated:
      return "sim";
  }
  return "unknown";
}

std::string_view to_string(MemoryKind kind) noexcept {
  switch (kind) {
    case MemoryKind::Device:
      return "device";
    case MemoryKind::PinnedHost:
      return "pinned";
    case MemoryKind::Unified:
      return "unified";
    case MemoryKind::Host:
      return "host";
  }
  return "unknown";
}

std::string to_string(const DeviceId& id) {
  return std::string(to_string(id.backend)) + ":" + std::to_string(id.index);
}

bool Capabilities::supports(MemoryKind kind) const noexcept {
  switch (kind) {
    case MemoryKind::Device:
      return device_memory;
    case MemoryKind::PinnedHost:
      return pinned_host;
    case MemoryKind::Unified:
      return unified;
    case MemoryKind::Host:
      return true;
  }
  return false;
}

Segment Segment::host_view(void* data, std::size_t bytes) noexcept {
  Segment s;
  s.size = bytes;
  s.native = data;
  s.native_is_address = true;
  s.host_ptr = static_cast<std::byte*>(data);
  return s;
}

Segment Segment::host_view(const void* data, std::size_t bytes) noexcept {
  // The const is dropped only to fit the struct; backends never write to a copy's source.
  return host_view(const_cast<void*>(data), bytes);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

}  // namespace unimem
