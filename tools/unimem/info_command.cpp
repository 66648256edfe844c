#include "unimem/info_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "unimem/config.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/hybrid_pool.hpp"

namespace unimem::cli {

namespace {

// Row i, column j: device i of the backend can access device j's memory directly.
std::vector<std::vector<bool>> peer_matrix(const std::vector<DeviceInfo>& devices) {
  std::vector<std::vector<bool>> matrix(devices.size(), std::vector<bool>(devices.size(), false));
  for (std::size_t i = 0; i < devices.size(); ++i) {
    matrix[i][i] = true;
    for (int peer : devices[i].peers) {
      if (peer >= 0 && static_cast<std::size_t>(peer) < devices.size())
        matrix[i][static_cast<std::size_t>(peer)] = true;
    }
  }
  return matrix;
}

std::vector<DeviceInfo> device_infos(const BackendRegistry::Entry& entry) {
  std::vector<DeviceInfo> infos;
  if (entry.backend == nullptr) return infos;
  for (int i = 0; i < entry.backend->device_count(); ++i) infos.push_back(entry.backend->device_info(i));
  return infos;
}

nlohmann::json device_json(const DeviceInfo& d) {
  return {
      {"id", to_string(d.id)},
      {"index", d.id.index},
      {"name", d.name},
      {"vendor", d.vendor},
      {"driver", d.driver},
      {"total_bytes", d.memory.total_bytes},
      {"free_bytes", d.memory.free_bytes},
      {"free_bytes_estimated", d.memory.estimated},
      {"max_allocation_bytes", d.max_allocation_bytes},
      {"capabilities",
       {{"device_memory", d.capabilities.device_memory},
        {"pinned_host", d.capabilities.pinned_host},
        {"unified", d.capabilities.unified},
        {"host_visible_device", d.capabilities.host_visible_device},
        {"host_unified_memory", d.capabilities.host_unified_memory},
        {"virtual_memory", d.capabilities.virtual_memory}}},
      {"virtual_memory_granule", d.virtual_memory_granule},
      {"large_pool", to_string(automatic_large_pool(d))},
      {"peers", d.peers},
  };
}

std::string yes_no(bool value) {
  return value ? "yes" : "-";
}

}  // namespace

nlohmann::json info_json(const BackendRegistry& registry, const PlatformInfo& platform) {
  nlohmann::json backends = nlohmann::json::array();
  for (const auto& entry : registry.entries()) {
    const std::vector<DeviceInfo> infos = device_infos(entry);
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& d : infos) devices.push_back(device_json(d));
    backends.push_back({
        {"name", to_string(entry.kind)},
        {"compiled_in", entry.status.compiled_in},
        {"available", entry.status.available},
        {"detail", entry.status.detail},
        {"device_count", infos.size()},
        {"devices", devices},
        {"peer_access", peer_matrix(infos)},
    });
  }
  return {
      {"unimem_version", UNIMEM_VERSION},
      {"platform",
       {{"name", platform.name},
        {"kernel", platform.kernel},
        {"memory_visibility", std::string(to_string(platform.visibility))}}},
      {"backends", backends},
  };
}

std::string info_table(const BackendRegistry& registry, const PlatformInfo& platform) {
  std::string out = fmt::format("unimem {}\nplatform: {} (memory visibility: {})\n\n", UNIMEM_VERSION,
                                platform.name, to_string(platform.visibility));
  out += fmt::format("{:<8} {:<9} {:<9} {}\n", "backend", "compiled", "available", "detail");
  for (const auto& entry : registry.entries()) {
    out += fmt::format("{:<8} {:<9} {:<9} {}\n", to_string(entry.kind), yes_no(entry.status.compiled_in),
                       yes_no(entry.status.available), entry.status.detail);
  }
  out += fmt::format("\n{:<9} {:<40} {:>11} {:>11} {:>11}  {:<6} {:<6} {:<7} {:<12} {:<8} {}\n", "device",
                     "name", "total", "free", "max alloc", "device", "pinned", "unified", "host-visible",
                     "virtual", "large pool");
  for (const auto& entry : registry.entries()) {
    for (const auto& d : device_infos(entry)) {
      std::string name = d.name.size() > 40 ? d.name.substr(0, 37) + "..." : d.name;
      // Virtual memory: the granule map() works in, or "-" without it.
      const std::string virtual_memory =
          d.capabilities.virtual_memory ? format_bytes(d.virtual_memory_granule) : yes_no(false);
      out += fmt::format("{:<9} {:<40} {:>11} {:>11} {:>11}  {:<6} {:<6} {:<7} {:<12} {:<8} {}\n",
                         to_string(d.id), name, format_bytes(d.memory.total_bytes),
                         format_bytes(d.memory.free_bytes) + (d.memory.estimated ? "*" : ""),
                         format_bytes(d.max_allocation_bytes), yes_no(d.capabilities.device_memory),
                         yes_no(d.capabilities.pinned_host), yes_no(d.capabilities.unified),
                         yes_no(d.capabilities.host_visible_device), virtual_memory,
                         to_string(automatic_large_pool(d)));
    }
  }
  out +=
      "(* free memory estimated: the backend has no free-memory query; total minus unimem's own "
      "allocations)\n"
      "(virtual: the granule of Backend::map where the device has virtual memory; large pool: what the "
      "default "
      "stack packs large requests with there)\n";
  for (const auto& entry : registry.entries()) {
    const std::vector<DeviceInfo> infos = device_infos(entry);
    if (infos.size() < 2) continue;
    out += fmt::format("\npeer access, {} (row can access column):\n     ", to_string(entry.kind));
    for (std::size_t j = 0; j < infos.size(); ++j) out += fmt::format("{:>4}", j);
    out += "\n";
    const auto matrix = peer_matrix(infos);
    for (std::size_t i = 0; i < infos.size(); ++i) {
      out += fmt::format("{:>4} ", i);
      for (std::size_t j = 0; j < infos.size(); ++j)
        out += fmt::format("{:>4}", i == j ? "·" : yes_no(matrix[i][j]));
      out += "\n";
    }
  }
  return out;
}

}  // namespace unimem::cli
