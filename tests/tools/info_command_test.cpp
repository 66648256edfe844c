#include "unimem/info_command.hpp"

#include <gtest/gtest.h>

#include <string>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/config.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(InfoCommand, JsonListsEveryBackendWithDevicesAndPeerMatrix) {
  const BackendRegistry registry(BackendRegistryOptions{{SimulatedDeviceSpec::parse("80GiB")}});
  const auto platform = classify_platform("Linux version 6.1.0 (x) #1 SMP");
  const nlohmann::json doc = nlohmann::json::parse(cli::info_json(registry, platform).dump());
  EXPECT_EQ(doc["unimem_version"], UNIMEM_VERSION);
  EXPECT_EQ(doc["platform"]["memory_visibility"], "system-scope");
  ASSERT_EQ(doc["backends"].size(), registry.entries().size());
  for (const auto& backend : doc["backends"]) {
    const auto& devices = backend["devices"];
    EXPECT_EQ(backend["device_count"], devices.size());
    ASSERT_EQ(backend["peer_access"].size(), devices.size());
    for (std::size_t i = 0; i < devices.size(); ++i) {
      EXPECT_TRUE(backend["peer_access"][i][i].get<bool>()) << "a device always reaches its own memory";
      EXPECT_LE(devices[i]["free_bytes"].get<std::size_t>(), devices[i]["total_bytes"].get<std::size_t>());
      EXPECT_TRUE(devices[i]["capabilities"].contains("unified"));
    }
    if (backend["name"] == "sim") {
      ASSERT_EQ(devices.size(), 1U);
      EXPECT_EQ(devices[0]["total_bytes"], 80 * GiB);
      EXPECT_EQ(devices[0]["id"], "sim:0");
    }
    if (backend["name"] == "cuda" && !UNIMEM_HAS_CUDA) {
      EXPECT_FALSE(backend["compiled_in"].get<bool>());
    }
  }
}

TEST(InfoCommand, JsonAndTableShowVirtualMemoryAndItsGranule) {
  const BackendRegistry registry(BackendRegistryOptions{{SimulatedDeviceSpec::parse("80GiB")}});
  const auto platform = classify_platform("Linux version 6.1.0 (x) #1 SMP");
  const nlohmann::json doc = nlohmann::json::parse(cli::info_json(registry, platform).dump());
  for (const auto& backend : doc["backends"]) {
    for (const auto& device : backend["devices"]) {
      const bool has = device["capabilities"]["virtual_memory"].get<bool>();
      const auto granule = device["virtual_memory_granule"].get<std::size_t>();
      EXPECT_EQ(has, granule != 0) << device["id"];
      if (backend["name"] == "sim") {
        EXPECT_TRUE(has);
        EXPECT_EQ(granule, SimulatedBackend::kGranule);
      }
      if (backend["name"] == "opencl") {
        EXPECT_FALSE(has) << device["id"];
      }
    }
  }
  const std::string table = cli::info_table(registry, platform);
  EXPECT_NE(table.find("virtual"), std::string::npos);
  const auto sim_row = table.find("\nsim:0 ");
  ASSERT_NE(sim_row, std::string::npos) << table;
  const std::string row = table.substr(sim_row + 1, table.find('\n', sim_row + 1) - sim_row - 1);
  EXPECT_NE(row.find(format_bytes(SimulatedBackend::kGranule)), std::string::npos) << row;
  const auto host_row = table.find("\nhost:0 ");
  ASSERT_NE(host_row, std::string::npos) << table;
  const std::string host = table.substr(host_row + 1, table.find('\n', host_row + 1) - host_row - 1);
  EXPECT_NE(host.find(format_bytes(registry.find(BackendKind::Host)->device_info(0).virtual_memory_granule)),
            std::string::npos)
      << host;
}

TEST(InfoCommand, TableNamesBackendsAndPlatform) {
  const BackendRegistry registry;
  const std::string table = cli::info_table(registry, classify_platform("Linux version 5.15-microsoft-WSL2"));
  EXPECT_NE(table.find("WSL2"), std::string::npos);
  EXPECT_NE(table.find("device-scope-only"), std::string::npos);
  for (const char* name : {"host", "opencl", "cuda", "sim"}) {
    EXPECT_NE(table.find(name), std::string::npos) << name;
  }
  EXPECT_NE(table.find("host:0"), std::string::npos);
}

}  // namespace
}  // namespace unimem
