#include "unimem/transfer/p2p_manager.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem::test {
namespace {

// Two devices that list each other as peers, the way two GPUs on one NVLink do: device memory the host cannot
// reach (backed by host memory here), synchronous copies, and a count of the peer calls that reach it. It
// stands in for CUDA, whose peer path needs two GPUs.
class PeeredBackend final : public TwoTestDevices {
 public:
  [[nodiscard]] BackendStatus status() const override { return {true, true, "two peered test devices"}; }

  int enables = 0;
  int disables = 0;

 private:
  DeviceInfo do_device_info(int device) const override {
    DeviceInfo info;
    info.id = DeviceId{BackendKind::Simulated, device};
    info.name = "peered test device";
    info.memory = do_memory_info(device);
    info.max_allocation_bytes = GiB;
    info.capabilities.device_memory = true;
    info.peers = {1 - device};
    return info;
  }
  void do_enable_peer_access(int /*device*/, int /*peer*/) override { ++enables; }
  void do_disable_peer_access(int /*device*/, int /*peer*/) override { ++disables; }
};

// Device memory of a backend, freed with it.
class DeviceMemory {
 public:
  DeviceMemory(Backend& backend, int device, std::size_t bytes)
      : backend_(backend), segment_(backend.allocate(device, MemoryKind::Device, bytes)) {}
  ~DeviceMemory() { backend_.deallocate(segment_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  DeviceMemory(DeviceMemory&&) = delete;
  DeviceMemory& operator=(DeviceMemory&&) = delete;

  [[nodiscard]] TransferEndpoint endpoint() const { return TransferEndpoint::from(segment_); }
  void write(const std::vector<std::byte>& bytes) {
    backend_.copy(segment_, 0, Segment::host_view(static_cast<const void*>(bytes.data()), bytes.size()), 0,
                  bytes.size());
  }
  [[nodiscard]] std::vector<std::byte> read() const {
    std::vector<std::byte> bytes(segment_.size);
    backend_.copy(Segment::host_view(bytes.data(), bytes.size()), 0, segment_, 0, bytes.size());
    return bytes;
  }

 private:
  Backend& backend_;
  Segment segment_;
};

TEST(BackendPeerAccess, EnablesOnlyListedPairsOnceAndTracksThem) {
  PeeredBackend backend;
  EXPECT_FALSE(backend.peer_access_enabled(0, 1));
  backend.enable_peer_access(0, 1);
  backend.enable_peer_access(0, 1);
  EXPECT_EQ(backend.enables, 1) << "enabling an enabled pair does nothing";
  EXPECT_TRUE(backend.peer_access_enabled(0, 1));
  EXPECT_FALSE(backend.peer_access_enabled(1, 0)) << "access is one way";
  backend.disable_peer_access(0, 1);
  backend.disable_peer_access(0, 1);
  backend.disable_peer_access(1, 0);
  EXPECT_EQ(backend.disables, 1);
  EXPECT_FALSE(backend.peer_access_enabled(0, 1));
  EXPECT_NE(message_of<InvalidArgument>([&] { backend.enable_peer_access(1, 1); }).find("own peer"),
            std::string::npos);
  EXPECT_NE(message_of<InvalidArgument>([&] { backend.enable_peer_access(0, 2); }).find("device index 2"),
            std::string::npos);
  EXPECT_THROW((void)backend.peer_access_enabled(-1, 0), InvalidArgument);
}

TEST(BackendPeerAccess, DevicesWithoutPeersRefuseNamingBothDevices) {
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 1, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  const std::string message = message_of<NotSupported>([&] { sim->enable_peer_access(0, 1); });
  EXPECT_NE(message.find("sim:0"), std::string::npos) << message;
  EXPECT_NE(message.find("sim:1"), std::string::npos) << message;
  EXPECT_THROW(sim->disable_peer_access(1, 0), NotSupported);
  EXPECT_FALSE(sim->peer_access_enabled(0, 1));
  Backend* opencl = backend_serving(BackendKind::OpenCL, 1, MemoryKind::Device, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  const std::string refused = message_of<NotSupported>([&] { opencl->enable_peer_access(1, 0); });
  EXPECT_NE(refused.find("opencl:1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("opencl:0"), std::string::npos) << refused;
}

TEST(P2PManager, CopiesPeerToPeerWhereEnabledAndStagedWhereNot) {
  PeeredBackend backend;
  TransferEngine engine;
  P2PManager p2p(backend, engine);
  EXPECT_EQ(p2p.device_count(), 2);
  EXPECT_TRUE(p2p.can_access(0, 1));
  EXPECT_FALSE(p2p.can_access(0, 0));
  EXPECT_EQ(p2p.describe(), "0: . +\n1: + .\n");
  DeviceMemory first(backend, 0, MiB + 3);
  DeviceMemory second(backend, 1, MiB + 3);
  const std::vector<std::byte> bytes = pattern(MiB + 3, 30);
  first.write(bytes);
  EXPECT_EQ(p2p.copy(second.endpoint(), first.endpoint(), MiB + 3), TransferStrategy::HostStaged);
  EXPECT_EQ(first_difference(second.read(), bytes), -1);
  EXPECT_EQ(p2p.enable_all(), 2U);
  EXPECT_EQ(p2p.describe(), "0: . E\n1: E .\n");
  const std::vector<std::byte> other = pattern(MiB + 3, 31);
  second.write(other);
  EXPECT_EQ(p2p.copy(first.endpoint(), second.endpoint(), MiB + 3), TransferStrategy::Peer);
  EXPECT_EQ(first_difference(first.read(), other), -1);
  p2p.disable(0, 1);
  EXPECT_TRUE(p2p.enabled(1, 0));
  EXPECT_EQ(p2p.copy(second.endpoint(), first.endpoint(), 100), TransferStrategy::Peer)
      << "one way is enough";
  p2p.disable(1, 0);
  EXPECT_EQ(engine.choose_strategy(second.endpoint(), first.endpoint()), TransferStrategy::HostStaged);
  EXPECT_EQ(engine.statistics()[TransferStrategy::Peer].transfers, 2U);
  EXPECT_EQ(engine.statistics()[TransferStrategy::HostStaged].transfers, 1U);
  EXPECT_THROW((void)p2p.can_access(0, 2), InvalidArgument);
}

TEST(P2PManager, OpenCLDevicesHaveNoPeersAndCopyThroughTheHost) {
  std::string why;
  Backend* opencl = backend_serving(BackendKind::OpenCL, 1, MemoryKind::Device, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  TransferEngine engine;
  P2PManager p2p(*opencl, engine);
  ASSERT_GE(p2p.device_count(), 2);
  EXPECT_FALSE(p2p.can_access(0, 1));
  EXPECT_FALSE(p2p.enabled(0, 1));
  EXPECT_EQ(p2p.enable_all(), 0U);
  EXPECT_THROW(p2p.enable(0, 1), NotSupported);
  DeviceMemory first(*opencl, 0, 3 * MiB + 1);
  DeviceMemory second(*opencl, 1, 3 * MiB + 1);
  const std::vector<std::byte> bytes = pattern(3 * MiB + 1, 32);
  first.write(bytes);
  // Devices whose memory is host RAM (PoCL's) copy directly; others stage through a host buffer.
  const bool host_ram = opencl->device_info(0).capabilities.host_unified_memory &&
                        opencl->device_info(1).capabilities.host_unified_memory;
  EXPECT_EQ(p2p.copy(second.endpoint(), first.endpoint(), 3 * MiB + 1),
            host_ram ? TransferStrategy::Direct : TransferStrategy::HostStaged);
  EXPECT_EQ(first_difference(second.read(), bytes), -1);
  const std::vector<std::byte> staged = pattern(3 * MiB + 1, 33);
  first.write(staged);
  engine.copy(second.endpoint(), first.endpoint(), 3 * MiB + 1,
              TransferOptions{TransferStrategy::HostStaged});
  EXPECT_EQ(first_difference(second.read(), staged), -1);
  std::vector<std::byte> host(16);
  const std::string message = message_of<InvalidArgument>(
      [&] { (void)p2p.copy(TransferEndpoint::host(std::span(host)), first.endpoint(), 16); });
  EXPECT_NE(message.find("destination"), std::string::npos) << message;
}

TEST(P2PManager, CudaPeersNeedTwoGpus) {
  std::string why;
  Backend* cuda = backend_serving(BackendKind::Cuda, 1, MemoryKind::Device, why);
  if (cuda == nullptr) GTEST_SKIP() << why;
  TransferEngine engine;
  P2PManager p2p(*cuda, engine);
  if (!p2p.can_access(0, 1)) GTEST_SKIP() << "cuda:0 cannot access cuda:1 directly on this machine";
  p2p.enable(0, 1);
  EXPECT_TRUE(p2p.enabled(0, 1));
  DeviceMemory first(*cuda, 0, MiB);
  DeviceMemory second(*cuda, 1, MiB);
  const std::vector<std::byte> bytes = pattern(MiB, 33);
  first.write(bytes);
  EXPECT_EQ(p2p.copy(second.endpoint(), first.endpoint(), MiB), TransferStrategy::Peer);
  EXPECT_EQ(first_difference(second.read(), bytes), -1);
  p2p.disable(0, 1);
}

}  // namespace
}  // namespace unimem::test
