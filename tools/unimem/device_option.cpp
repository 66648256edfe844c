#include "unimem/device_option.hpp"

#include <charconv>

#include "unimem/core/error.hpp"

namespace unimem::cli {

namespace {

bool is_simulated(std::string_view text) {
  return text.starts_with("sim:");
}

// The N of "backend:N"; 0 when there is no colon.
int parse_index(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return 0;
  const std::string_view number = text.substr(colon + 1);
  int index = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), index);
  if (ec != std::errc{} || end != number.data() + number.size() || number.empty() || index < 0) {
    throw InvalidArgument("device '" + std::string(text) + "': '" + std::string(number) +
                          "' is not a device index");
  }
  return index;
}

// "opencl:1" -> (OpenCL, 1); "host" -> (Host, 0).
std::pair<BackendKind, int> parse_device(std::string_view text) {
  const std::string_view name = text.substr(0, text.find(':'));
  for (const BackendKind kind : kAllBackendKinds) {
    if (kind != BackendKind::Simulated && to_string(kind) == name) return {kind, parse_index(text)};
  }
  throw InvalidArgument("device '" + std::string(text) +
                        "': unknown backend (expected host, opencl:N, cuda:N or sim:SIZE[:backed])");
}

}  // namespace

DeviceId parse_device_id(std::string_view text) {
  if (is_simulated(text)) {
    return {BackendKind::Simulated, parse_index(text)};
  }
  const auto [kind, index] = parse_device(text);
  return {kind, index};
}

DeviceSelection::DeviceSelection(const std::vector<std::string>& texts) {
  BackendRegistryOptions options;
  for (const auto& text : texts) {
    if (is_simulated(text)) options.simulated_devices.push_back(SimulatedDeviceSpec::parse(text));
  }
  registry_ = std::make_unique<BackendRegistry>(options);
  int next_simulated = 0;
  for (const auto& text : texts) {
    if (is_simulated(text)) {
      devices_.push_back({text, &registry_->get(BackendKind::Simulated), next_simulated++});
      continue;
    }
    const auto [kind, index] = parse_device(text);
    Backend& backend = registry_->get(kind);
    if (index >= backend.device_count()) {
      throw InvalidArgument("device '" + text + "': " + std::string(to_string(kind)) + " has " +
                            std::to_string(backend.device_count()) + " device(s) here (" +
                            backend.status().detail + ")");
    }
    devices_.push_back({text, &backend, index});
  }
  if (texts.empty()) {
    for (const DeviceId& id : registry_->devices()) {
      if (id.backend != BackendKind::Simulated)
        devices_.push_back({to_string(id), &registry_->get(id.backend), id.index});
    }
  }
}

nlohmann::json selected_device_json(const SelectedDevice& device) {
  const DeviceInfo info = device.info();
  return {{"spec", device.text}, {"id", to_string(info.id)}, {"name", info.name}};
}

nlohmann::json selected_devices_json(const std::vector<SelectedDevice>& devices) {
  nlohmann::json list = nlohmann::json::array();
  for (const SelectedDevice& device : devices) list.push_back(selected_device_json(device));
  return list;
}

}  // namespace unimem::cli
