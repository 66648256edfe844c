#pragma once
// Shared backends for the backend tests: one instance per backend case, created on first use and kept for the
// whole test program (device discovery is not free, and a backend outlives its streams and segments).

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"

namespace unimem::test {

// The registry all backend tests share. It adds two backed simulated devices (copies within and between
// devices) and one unbacked one (address ranges only).
inline BackendRegistry& shared_registry() {
  static BackendRegistry registry(
      BackendRegistryOptions{{SimulatedDeviceSpec{.capacity_bytes = 2 * GiB, .backed = true},
                              SimulatedDeviceSpec{.capacity_bytes = 1 * GiB, .backed = true},
                              SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}}});
  return registry;
}

// The backend of `kind` when it has at least one device; otherwise nullptr and `why` says what is missing.
inline Backend* backend_with_devices(BackendKind kind, std::string& why) {
  const auto& entries = shared_registry().entries();
  for (const auto& entry : entries) {
    if (entry.kind != kind) continue;
    if (entry.backend == nullptr) {
      why = std::string(to_string(kind)) + " backend not compiled in: " + entry.status.detail;
      return nullptr;
    }
    if (entry.backend->device_count() == 0) {
      why = std::string(to_string(kind)) + " backend has no device: " + entry.status.detail;
      return nullptr;
    }
    return entry.backend;
  }
  why = "unknown backend";
  return nullptr;
}

// In a test:  std::string why; Backend* b = backend_with_devices(kind, why); if (b == nullptr) GTEST_SKIP()
// << why;

}  // namespace unimem::test
