#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "unimem/backend/types.hpp"

namespace unimem {

// Which kinds of memory a device serves. `host_visible_device` means the host can dereference the device's
// own memory (the host backend, a backed simulated device); it is false for discrete GPUs.
// `host_unified_memory` means the device's memory is the host's own physical memory even where the host
// cannot dereference it (OpenCL's CL_DEVICE_HOST_UNIFIED_MEMORY: CPU devices, integrated GPUs; CUDA's
// integrated GPUs): a copy from pageable memory then moves bytes as fast as one from pinned memory, and
// staging through pinned memory would only add a memcpy.
struct Capabilities {
  bool device_memory = false;
  bool pinned_host = false;
  bool unified = false;
  bool host_visible_device = false;
  bool host_unified_memory = false;
  // Device addresses can be reserved first and backed by memory granule by granule (Backend::map).
  bool virtual_memory = false;

  [[nodiscard]] bool supports(MemoryKind kind) const noexcept;
};

// Free and total bytes now. `estimated` is true where the native API has no free-memory query (OpenCL): free
// is then the total minus what unimem itself has allocated on the device.
struct MemoryInfo {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  bool estimated = false;
};

struct DeviceInfo {
  DeviceId id;
  std::string name;
  std::string vendor;
  std::string driver;  // driver or runtime version, as the backend reports it
  MemoryInfo memory;
  std::size_t max_allocation_bytes = 0;  // largest single allocation the device accepts
  // With capabilities.virtual_memory: the unit Backend::map works in (a power of two), as the native API
  // reports it; 0 otherwise.
  std::size_t virtual_memory_granule = 0;
  Capabilities capabilities;
  std::vector<int> peers;  // indices of devices of the same backend this one can access directly
};

}  // namespace unimem
