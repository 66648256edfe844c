#pragma once
// Devices named on the command line (`--device`): "host", "sim:80GiB", "sim:1GiB:backed", "opencl:1",
// "cuda:0". One BackendRegistry serves them all; each simulated device named adds one device to it.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/backend/backend_registry.hpp"

namespace unimem::cli {

// A device of a registry or manager by name: "host", "opencl:1", "cuda:0", "sim:2" (the third simulated
// device). Throws InvalidArgument naming the text for an unknown backend or a malformed index.
[[nodiscard]] DeviceId parse_device_id(std::string_view text);

struct SelectedDevice {
  std::string text;  // as the user wrote it
  Backend* backend = nullptr;
  int index = 0;

  [[nodiscard]] DeviceInfo info() const { return backend->device_info(index); }
};

// {"spec": as written, "id": "opencl:0", "name": the device's}: how the benchmarks' JSON names a device.
[[nodiscard]] nlohmann::json selected_device_json(const SelectedDevice& device);
// An array of selected_device_json, one per device.
[[nodiscard]] nlohmann::json selected_devices_json(const std::vector<SelectedDevice>& devices);

class DeviceSelection {
 public:
  // Throws InvalidArgument naming the text for an unknown backend, a bad index or a bad simulated device,
  // and NotSupported for a backend that is not compiled in. An empty list selects every host, OpenCL and
  // CUDA device there is.
  explicit DeviceSelection(const std::vector<std::string>& texts);

  [[nodiscard]] const std::vector<SelectedDevice>& devices() const noexcept { return devices_; }
  [[nodiscard]] const SelectedDevice& front() const { return devices_.front(); }
  [[nodiscard]] const BackendRegistry& registry() const noexcept { return *registry_; }

 private:
  std::unique_ptr<BackendRegistry> registry_;
  std::vector<SelectedDevice> devices_;
};

}  // namespace unimem::cli
