#pragma once
// BackendRegistry: every backend compiled into this build, constructed once. Backends that are compiled in
// but find no driver or device are present with zero devices; those not compiled in are listed with that
// reason.

#include <memory>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/backend/simulated_backend.hpp"

namespace unimem {

struct BackendRegistryOptions {
  std::vector<SimulatedDeviceSpec> simulated_devices;
};

class BackendRegistry {
 public:
  struct Entry {
    BackendKind kind = BackendKind::Host;
    BackendStatus status;
    Backend* backend = nullptr;  // nullptr when not compiled in
  };

  explicit BackendRegistry(const BackendRegistryOptions& options = {});
  ~BackendRegistry();
  BackendRegistry(const BackendRegistry&) = delete;
  BackendRegistry& operator=(const BackendRegistry&) = delete;
  BackendRegistry(BackendRegistry&&) = delete;
  BackendRegistry& operator=(BackendRegistry&&) = delete;

  // One entry per BackendKind, in kAllBackendKinds order.
  [[nodiscard]] const std::vector<Entry>& entries() const noexcept { return entries_; }
  // The backend of that kind, or nullptr when it is not compiled in.
  [[nodiscard]] Backend* find(BackendKind kind) const noexcept;
  // The backend of that kind; throws NotSupported naming the kind when it is not compiled in.
  [[nodiscard]] Backend& get(BackendKind kind) const;
  [[nodiscard]] Backend& host() const { return get(BackendKind::Host); }
  // Every device of every backend, in entries() order.
  [[nodiscard]] std::vector<DeviceId> devices() const;

  [[nodiscard]] static bool compiled_in(BackendKind kind) noexcept;

 private:
  std::vector<std::unique_ptr<Backend>> owned_;
  std::vector<Entry> entries_;
};

}  // namespace unimem
