#pragma once
// Vocabulary shared by every layer: which backend, which device, which kind of memory.

#include <cstdint>
#include <string>
#include <string_view>

namespace unimem {

enum class BackendKind : std::uint8_t { Host, OpenCL, Cuda, Simulated };

enum class MemoryKind : std::uint8_t {
  Device,      // memory of the device itself (GPU memory, a cl_mem, a simulated range)
  PinnedHost,  // page-locked host memory the device can DMA from
  Unified,     // managed / shared virtual memory, reachable from host and device
  Host,        // ordinary host memory
};

inline constexpr BackendKind kAllBackendKinds[] = {BackendKind::Host, BackendKind::OpenCL, BackendKind::Cuda,
                                                   BackendKind::Simulated};
inline constexpr MemoryKind kAllMemoryKinds[] = {MemoryKind::Device, MemoryKind::PinnedHost,
                                                 MemoryKind::Unified, MemoryKind::Host};

[[nodiscard]] std::string_view to_string(BackendKind kind) noexcept;
[[nodiscard]] std::string_view to_string(MemoryKind kind) noexcept;

// A device: the backend it belongs to and its index there.
struct DeviceId {
  BackendKind backend = BackendKind::Host;
  int index = 0;

  friend bool operator==(const DeviceId&, const DeviceId&) = default;
};

// "opencl:1", "host:0".
[[nodiscard]] std::string to_string(const DeviceId& id);

}  // namespace unimem
