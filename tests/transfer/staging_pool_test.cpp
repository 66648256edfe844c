#include "unimem/transfer/staging_pool.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/fault_injection_adaptor.hpp"

namespace unimem::test {
namespace {

TEST(StagingPool, ReusesGivenBackBuffersAndAllocatesOnlyWhenNoneIsIdle) {
  HostBackend host;
  BackendResource memory(host, 0, MemoryKind::Device);
  StagingPool pool(memory, 4096, 2);
  std::byte* first_data = nullptr;
  {
    StagingPool::Lease a = pool.acquire();
    StagingPool::Lease b = pool.acquire();
    ASSERT_TRUE(a);
    EXPECT_EQ(a.size(), 4096U);
    EXPECT_NE(a.data(), b.data());
    first_data = a.data();
    a.data()[4095] = std::byte{7};  // the whole chunk is there
    EXPECT_EQ(pool.leased(), 2U);
    EXPECT_EQ(pool.allocations(), 2U);
  }
  EXPECT_EQ(pool.leased(), 0U);
  EXPECT_EQ(pool.idle(), 2U);
  {
    const StagingPool::Lease again = pool.acquire();
    EXPECT_EQ(pool.allocations(), 2U) << "an idle buffer was reused";
    EXPECT_EQ(again.data(), first_data) << "the buffer given back last goes out first";
  }
  EXPECT_EQ(memory.live_allocations(), 2U);
  EXPECT_EQ(pool.trim(), 2 * 4096U);
  EXPECT_EQ(memory.live_allocations(), 0U);
}

TEST(StagingPool, KeepsAtMostMaxIdleBuffers) {
  HostBackend host;
  BackendResource memory(host, 0, MemoryKind::Device);
  StagingPool pool(memory, 256, 1);
  {
    std::vector<StagingPool::Lease> leases;
    for (int i = 0; i < 4; ++i) leases.push_back(pool.acquire());
    EXPECT_EQ(memory.live_allocations(), 4U);
    StagingPool::Lease moved = std::move(leases[0]);
    EXPECT_FALSE(leases[0]);
    EXPECT_EQ(pool.leased(), 4U);
  }
  EXPECT_EQ(pool.idle(), 1U);
  EXPECT_EQ(memory.live_allocations(), 1U) << "the others went back to the resource at once";
}

TEST(StagingPool, AFailedAllocationHoldsNothing) {
  HostBackend host;
  BackendResource memory(host, 0, MemoryKind::Device);
  FaultInjectionOptions faults;
  faults.fail_every_nth = 1;
  FaultInjectionAdaptor failing(memory, faults);
  StagingPool pool(failing, 256, 4);
  EXPECT_THROW((void)pool.acquire(), OutOfMemory);
  EXPECT_EQ(pool.leased(), 0U);
  EXPECT_EQ(pool.allocations(), 0U);
  EXPECT_EQ(memory.live_allocations(), 0U);
}

TEST(StagingPool, RefusesMemoryTheHostCannotReachAndEmptyChunks) {
  HostBackend host;
  BackendResource memory(host, 0, MemoryKind::Device);
  EXPECT_THROW(StagingPool(memory, 0, 1), InvalidArgument);
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 0, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  BackendResource device(*sim, 0, MemoryKind::Device);
  const std::string message = message_of<NotSupported>([&] { StagingPool pool(device, 256, 1); });
  EXPECT_NE(message.find("sim:0"), std::string::npos) << message;
}

TEST(StagingPool, ServesPinnedMemoryOfAnOpenCLDevice) {
  std::string why;
  Backend* opencl = backend_serving(BackendKind::OpenCL, 0, MemoryKind::PinnedHost, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  BackendResource pinned(*opencl, 0, MemoryKind::PinnedHost);
  StagingPool pool(pinned, 64 * 1024, 2);
  const StagingPool::Lease lease = pool.acquire();
  EXPECT_EQ(lease.segment().kind, MemoryKind::PinnedHost);
  ASSERT_NE(lease.data(), nullptr);
  lease.data()[0] = std::byte{1};
}

}  // namespace
}  // namespace unimem::test
