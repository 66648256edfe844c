#include "unimem/info_command.hpp"

#include <gtest/gtest.h>

#include <string>

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
