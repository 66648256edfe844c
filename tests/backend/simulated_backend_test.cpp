#include "unimem/backend/simulated_backend.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(SimulatedDeviceSpec, Parses) {
  const auto a = SimulatedDeviceSpec::parse("sim:80GiB");
  EXPECT_EQ(a.capacity_bytes, 80 * GiB);
  EXPECT_FALSE(a.backed);
  const auto b = SimulatedDeviceSpec::parse("1GiB:backed");
  EXPECT_EQ(b.capacity_bytes, GiB);
  EXPECT_TRUE(b.backed);
  EXPECT_FALSE(SimulatedDeviceSpec::parse("512MiB:unbacked").backed);
}

TEST(SimulatedDeviceSpec, RejectsBadText) {
  for (const char* text : {"sim:", "sim:0", "sim:80GiB:weird", "eighty", "sim:-1GiB"}) {
    try {
      (void)SimulatedDeviceSpec::parse(text);
      FAIL() << "accepted " << text;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(SimulatedBackend({SimulatedDeviceSpec{}}), InvalidArgument);
}

TEST(SimulatedBackend, UnbackedDeviceHandsOutDisjointRangesUpToCapacity) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 80 * GiB, .backed = false}});
  std::vector<Segment> segments;
  for (int i = 0; i < 7; ++i) segments.push_back(sim.allocate(0, MemoryKind::Device, 10 * GiB + 3));
  for (std::size_t i = 1; i < segments.size(); ++i) {
    const auto prev_end = reinterpret_cast<std::uintptr_t>(segments[i - 1].native) + segments[i - 1].size;
    EXPECT_GE(reinterpret_cast<std::uintptr_t>(segments[i].native), prev_end) << "ranges overlap";
    EXPECT_FALSE(segments[i].host_visible());
  }
  const MemoryInfo mem = sim.memory_info(0);
  EXPECT_EQ(mem.free_bytes, 80 * GiB - 7 * (10 * GiB + 3));
  try {
    (void)sim.allocate(0, MemoryKind::Device, 10 * GiB);
    FAIL() << "allocation past capacity succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 10 * GiB);
    EXPECT_EQ(e.free_bytes(), mem.free_bytes);
    EXPECT_EQ(e.total_bytes(), 80 * GiB);
    EXPECT_EQ(e.device(), "sim:0");
  }
  EXPECT_THROW(sim.memset(segments[0], 0, 0, 16), NotSupported);
  std::vector<char> host(16);
  EXPECT_THROW(sim.copy(Segment::host_view(host.data(), 16), 0, segments[0], 0, 16), NotSupported);
  for (const auto& s : segments) sim.deallocate(s);
  EXPECT_EQ(sim.memory_info(0).free_bytes, 80 * GiB);
  // Freed ranges are not handed out again, so a stale handle never aliases a new allocation.
  const Segment again = sim.allocate(0, MemoryKind::Device, 64);
  EXPECT_GE(reinterpret_cast<std::uintptr_t>(again.native),
            reinterpret_cast<std::uintptr_t>(segments.back().native) + segments.back().size);
  sim.deallocate(again);
}

TEST(SimulatedBackend, BackedDeviceHoldsBytesButIsNotHostVisible) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = true}});
  const Segment s = sim.allocate(0, MemoryKind::Device, 1000);
  EXPECT_FALSE(s.host_visible());
  const std::string text = "simulated but real";
  sim.copy(s, 100, Segment::host_view(text.data(), text.size()), 0, text.size());
  std::string out(text.size(), '\0');
  sim.copy(Segment::host_view(out.data(), out.size()), 0, s, 100, out.size());
  EXPECT_EQ(out, text);
  EXPECT_THROW((void)sim.allocate(0, MemoryKind::Device, MiB), OutOfMemory) << "capacity counts live bytes";
  sim.deallocate(s);
  EXPECT_THROW((void)sim.allocate(0, MemoryKind::PinnedHost, 64), NotSupported);
}

TEST(SimulatedBackend, NoDevicesConfigured) {
  const SimulatedBackend sim;
  EXPECT_EQ(sim.device_count(), 0);
  EXPECT_NE(sim.status().detail.find("--sim"), std::string::npos);
  EXPECT_THROW((void)sim.spec(0), InvalidArgument);
}

}  // namespace
}  // namespace unimem
