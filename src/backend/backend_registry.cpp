#include "unimem/backend/backend_registry.hpp"

#include <string>

#include "unimem/backend/host_backend.hpp"
#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
#if UNIMEM_HAS_OPENCL
#include "unimem/backend/opencl_backend.hpp"
#endif
#if UNIMEM_HAS_CUDA
#include "unimem/backend/cuda_backend.hpp"
#endif

namespace unimem {

bool BackendRegistry::compiled_in(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::OpenCL:
      return UNIMEM_HAS_OPENCL != 0;
    case BackendKind::Cuda:
      return UNIMEM_HAS_CUDA != 0;
    case BackendKind::Host:
    case BackendKind::Simulated:
      return true;
  }
  return false;
}

namespace {
std::unique_ptr<Backend> make_backend(BackendKind kind, const BackendRegistryOptions& options) {
  switch (kind) {
    case BackendKind::Host:
      return std::make_unique<HostBackend>();
    case BackendKind::Simulated:
      return std::make_unique<SimulatedBackend>(options.simulated_devices);
#if UNIMEM_HAS_OPENCL
    case BackendKind::OpenCL:
      return std::make_unique<OpenCLBackend>();
#endif
#if UNIMEM_HAS_CUDA
    case BackendKind::Cuda:
      return std::make_unique<CudaBackend>();
#endif
    default:
      return nullptr;
  }
}
}  // namespace

BackendRegistry::BackendRegistry(const BackendRegistryOptions& options) {
  for (BackendKind kind : kAllBackendKinds) {
    std::unique_ptr<Backend> backend = make_backend(kind, options);
    if (backend) {
      entries_.push_back(Entry{kind, backend->status(), backend.get()});
      owned_.push_back(std::move(backend));
    } else {
      entries_.push_back(Entry{kind,
                               BackendStatus{false, false,
                                             "not compiled in (UNIMEM_WITH_" +
                                                 std::string(kind == BackendKind::Cuda ? "CUDA" : "OPENCL") +
                                                 " was off or its SDK was not found)"},
                               nullptr});
    }
  }
}

BackendRegistry::~BackendRegistry() = default;

Backend* BackendRegistry::find(BackendKind kind) const noexcept {
  for (const Entry& e : entries_) {
    if (e.kind == kind) return e.backend;
  }
  return nullptr;
}

Backend& BackendRegistry::get(BackendKind kind) const {
  Backend* backend = find(kind);
  if (backend == nullptr) {
    throw NotSupported("backend '" + std::string(to_string(kind)) +
                       "' is not compiled into this build of unimem");
  }
  return *backend;
}

std::vector<DeviceId> BackendRegistry::devices() const {
  std::vector<DeviceId> all;
  for (const Entry& e : entries_) {
    if (e.backend == nullptr) continue;
    for (int i = 0; i < e.backend->device_count(); ++i) all.push_back(DeviceId{e.kind, i});
  }
  return all;
}

}  // namespace unimem
