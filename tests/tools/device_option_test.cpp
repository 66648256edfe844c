#include "unimem/device_option.hpp"

#include <gtest/gtest.h>

#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem::cli {
namespace {

TEST(DeviceSelection, NamesHostAndSimulatedDevices) {
  const DeviceSelection selection({"host", "sim:2GiB", "sim:1GiB:backed", "host:0"});
  ASSERT_EQ(selection.devices().size(), 4U);
  EXPECT_EQ(selection.devices()[0].backend->kind(), BackendKind::Host);
  EXPECT_EQ(selection.devices()[1].info().memory.total_bytes, 2 * GiB);
  EXPECT_EQ(selection.devices()[2].index, 1);
  EXPECT_EQ(selection.devices()[2].info().memory.total_bytes, GiB);
  EXPECT_EQ(selection.devices()[3].text, "host:0");
}

TEST(DeviceSelection, AnEmptyListSelectsEveryRealDevice) {
  const DeviceSelection selection({});
  ASSERT_FALSE(selection.devices().empty());
  EXPECT_EQ(selection.front().text, "host:0");
  for (const auto& device : selection.devices()) EXPECT_NE(device.backend->kind(), BackendKind::Simulated);
  EXPECT_EQ(selection.devices().size(), selection.registry().devices().size());
}

TEST(DeviceSelection, RejectsUnknownBackendsAndBadIndices) {
  for (const char* text : {"gpu", "host:1", "host:x", "opencl:-1", "sim:0", "sim:1GiB:fast"}) {
    try {
      const DeviceSelection selection({text});
      ADD_FAILURE() << text << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace unimem::cli
