#include "unimem/backend/backend_registry.hpp"

#include <gtest/gtest.h>

#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(BackendRegistry, ListsEveryKindInOrder) {
  const BackendRegistry registry;
  ASSERT_EQ(registry.entries().size(), std::size(kAllBackendKinds));
  for (std::size_t i = 0; i < registry.entries().size(); ++i) {
    const auto& entry = registry.entries()[i];
    EXPECT_EQ(entry.kind, kAllBackendKinds[i]);
    EXPECT_EQ(entry.status.compiled_in, BackendRegistry::compiled_in(entry.kind));
    EXPECT_EQ(entry.backend != nullptr, entry.status.compiled_in);
    EXPECT_FALSE(entry.status.detail.empty());
    if (entry.backend != nullptr) {
      EXPECT_EQ(entry.backend->kind(), entry.kind);
    }
  }
  EXPECT_TRUE(registry.host().status().available);
}

TEST(BackendRegistry, CompiledInMatchesTheBuild) {
  EXPECT_TRUE(BackendRegistry::compiled_in(BackendKind::Host));
  EXPECT_TRUE(BackendRegistry::compiled_in(BackendKind::Simulated));
  EXPECT_EQ(BackendRegistry::compiled_in(BackendKind::OpenCL), UNIMEM_HAS_OPENCL != 0);
  EXPECT_EQ(BackendRegistry::compiled_in(BackendKind::Cuda), UNIMEM_HAS_CUDA != 0);
  const BackendRegistry registry;
  for (BackendKind kind : kAllBackendKinds) {
    if (BackendRegistry::compiled_in(kind)) {
      EXPECT_NE(registry.find(kind), nullptr);
    } else {
      EXPECT_EQ(registry.find(kind), nullptr);
      EXPECT_THROW((void)registry.get(kind), NotSupported);
    }
  }
}

TEST(BackendRegistry, SimulatedDevicesComeFromOptions) {
  const BackendRegistry registry(BackendRegistryOptions{
      {SimulatedDeviceSpec::parse("80GiB"), SimulatedDeviceSpec::parse("1GiB:backed")}});
  const Backend& sim = registry.get(BackendKind::Simulated);
  ASSERT_EQ(sim.device_count(), 2);
  EXPECT_EQ(sim.device_info(0).memory.total_bytes, 80 * GiB);
  int sim_devices = 0;
  int host_devices = 0;
  for (const DeviceId& id : registry.devices()) {
    sim_devices += id.backend == BackendKind::Simulated ? 1 : 0;
    host_devices += id.backend == BackendKind::Host ? 1 : 0;
  }
  EXPECT_EQ(sim_devices, 2);
  EXPECT_EQ(host_devices, 1);
}

}  // namespace
}  // namespace unimem
