// The unimem command-line tool: `unimem info` today; replay, bench and report follow.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/platform.hpp"
#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
#include "unimem/info_command.hpp"

namespace {

unimem::BackendRegistryOptions registry_options(const std::vector<std::string>& sim_specs) {
  unimem::BackendRegistryOptions options;
  for (const auto& spec : sim_specs)
    options.simulated_devices.push_back(unimem::SimulatedDeviceSpec::parse(spec));
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"unimem: one memory manager for CUDA, OpenCL and host memory"};
  app.set_version_flag("--version", std::string("unimem ") + UNIMEM_VERSION);
  app.require_subcommand(1);

  std::vector<std::string> sim_specs;
  bool json = false;
  auto* info = app.add_subcommand("info", "List backends, devices, memory, capabilities and peer access");
  info->add_option("--sim", sim_specs, "Add a simulated device, e.g. 80GiB or 1GiB:backed (repeatable)");
  info->add_flag("--json", json, "Print JSON instead of a table");

  CLI11_PARSE(app, argc, argv);

  try {
    if (info->parsed()) {
      const unimem::BackendRegistry registry(registry_options(sim_specs));
      const unimem::PlatformInfo platform = unimem::detect_platform();
      if (json) {
        std::cout << unimem::cli::info_json(registry, platform).dump(2) << '\n';
      } else {
        std::cout << unimem::cli::info_table(registry, platform);
      }
    }
  } catch (const unimem::Error& e) {
    std::cerr << "unimem: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
