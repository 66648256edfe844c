#include "unimem/backend/host_backend.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

TEST(HostBackend, OneHostVisibleDeviceBackedByRam) {
  HostBackend host;
  EXPECT_TRUE(host.status().available);
  ASSERT_EQ(host.device_count(), 1);
  const DeviceInfo info = host.device_info(0);
  EXPECT_TRUE(info.capabilities.host_visible_device);
  EXPECT_FALSE(info.capabilities.pinned_host);
  EXPECT_GT(info.memory.total_bytes, 64 * MiB);
  EXPECT_FALSE(info.memory.estimated);
  const MemoryInfo direct = host_memory_info();
  EXPECT_EQ(direct.total_bytes, info.memory.total_bytes);
}

TEST(HostBackend, DeviceAndHostMemoryAreDirectlyAddressable) {
  HostBackend host;
  for (MemoryKind kind : {MemoryKind::Device, MemoryKind::Host}) {
    const Segment s = host.allocate(0, kind, 1000);
    ASSERT_TRUE(s.host_visible());
    EXPECT_EQ(s.native, s.host_ptr);
    std::memset(s.host_ptr, 0x5A, 1000);
    host.memset(s, 10, 0, 20);
    EXPECT_EQ(s.host_ptr[9], std::byte{0x5A});
    EXPECT_EQ(s.host_ptr[10], std::byte{0});
    EXPECT_EQ(s.host_ptr[29], std::byte{0});
    EXPECT_EQ(s.host_ptr[30], std::byte{0x5A});
    host.deallocate(s);
  }
  EXPECT_THROW((void)host.allocate(0, MemoryKind::PinnedHost, 64), NotSupported);
  EXPECT_THROW((void)host.allocate(0, MemoryKind::Unified, 64), NotSupported);
}

TEST(HostBackend, OverlappingCopyWithinOneSegmentIsAMove) {
  HostBackend host;
  const Segment s = host.allocate(0, MemoryKind::Host, 16);
  for (int i = 0; i < 16; ++i) s.host_ptr[i] = static_cast<std::byte>(i);
  host.copy(s, 2, s, 0, 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.host_ptr[i + 2], static_cast<std::byte>(i));
  host.deallocate(s);
}

TEST(HostBackend, LiveBytesFollowAllocations) {
  HostBackend host;
  const Segment a = host.allocate(0, MemoryKind::Device, 300);
  const Segment b = host.allocate(0, MemoryKind::Host, 700);
  EXPECT_EQ(host.live_bytes(0), 1000U);
  EXPECT_EQ(host.live_segment_count(), 2U);
  host.deallocate(a);
  EXPECT_EQ(host.live_bytes(0), 700U);
  host.deallocate(b);
  EXPECT_EQ(host.live_bytes(0), 0U);
}

}  // namespace
}  // namespace unimem
