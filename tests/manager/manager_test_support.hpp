#pragma once
// Managers for the manager tests: configuration written out (never UNIMEM_CONF), simulated devices given
// explicitly, and the default device chosen by the test, so that OpenCL devices present on the machine do not
// change what a test exercises.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem::test {

inline constexpr DeviceId kHost{BackendKind::Host, 0};
inline constexpr DeviceId kSim0{BackendKind::Simulated, 0};
inline constexpr DeviceId kSim1{BackendKind::Simulated, 1};

// Whole devices for the manager: no share held back, so limits are easy to reason about.
inline MemoryConfig whole_device_config() {
  return MemoryConfig::defaults().with_gpu_memory_fraction(1.0).with_min_free_bytes(0);
}

inline ManagerOptions manager_options(MemoryConfig config,
                                      const std::vector<std::string_view>& simulated = {},
                                      std::optional<DeviceId> default_device = kHost) {
  ManagerOptions options;
  options.config = config;
  for (const std::string_view spec : simulated) {
    options.registry.simulated_devices.push_back(SimulatedDeviceSpec::parse(spec));
  }
  options.default_device = default_device;
  return options;
}

// The first managed device that serves `kind`, if any.
inline std::optional<DeviceId> device_serving(const MemoryManager& manager, MemoryKind kind) {
  for (const DeviceId id : manager.devices()) {
    if (manager.device_info(id).capabilities.supports(kind)) return id;
  }
  return std::nullopt;
}

// Frees every named buffer still live, so that a test that keeps some to the end does not end in a leak
// report.
inline void free_named_buffers(MemoryManager& manager) {
  for (const NamedBufferRecord& record : manager.check_leaks().named) manager.named().free(record.name);
}

// Shatters a 64 MiB device's pool: eight 8 MiB buffers, every other one freed, so 32 MiB are free and no free
// range is larger than 8 MiB. Returns the four buffers still live (and four empty ones).
inline std::vector<Buffer<std::byte>> shatter_pool(MemoryManager& manager, DeviceId device) {
  std::vector<Buffer<std::byte>> pieces;
  pieces.reserve(8);
  for (int i = 0; i < 8; ++i)
    pieces.push_back(manager.allocate<std::byte>(8 * MiB, AllocationMode::Pooled, device));
  for (std::size_t i = 0; i < pieces.size(); i += 2) pieces[i] = Buffer<std::byte>();
  return pieces;
}

// The message of what `action` throws as E, or "no error".
template <typename E, typename Action>
std::string message_of(Action action) {
  try {
    action();
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace unimem::test
