#include "unimem/transfer/transfer_endpoint.hpp"

#include <gtest/gtest.h>

#include <array>
#include <span>
#include <string>

#include "transfer/transfer_fixture.hpp"
#include "unimem/buffer/buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/transfer/transfer_strategy.hpp"

namespace unimem::test {
namespace {

TEST(TransferEndpoint, HostSpansArePageableAndConstOnesReadOnly) {
  std::array<float, 10> values{};
  const std::array<float, 10> constants{};
  const TransferEndpoint out = TransferEndpoint::host(std::span(values));
  const TransferEndpoint in = TransferEndpoint::host(std::span<const float>(constants));
  EXPECT_EQ(out.location(), MemoryLocation::Pageable);
  EXPECT_EQ(out.size, sizeof values);
  EXPECT_EQ(out.host_ptr(), reinterpret_cast<std::byte*>(values.data()));
  EXPECT_FALSE(out.read_only);
  EXPECT_TRUE(in.read_only);
  EXPECT_EQ(in.backend(), nullptr);
  EXPECT_THROW((void)TransferEndpoint::host(std::span<float>()), InvalidArgument);
}

TEST(TransferEndpoint, AnAllocationsWindowStartsAtItsOffsetAndEndsAtItsSize) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  const Allocation a = resource.allocate(1000);
  const TransferEndpoint whole = TransferEndpoint::from(a);
  EXPECT_EQ(whole.offset, a.offset);
  EXPECT_EQ(whole.size, 1000U);
  const TransferEndpoint tail = TransferEndpoint::from(a, 600);
  EXPECT_EQ(tail.offset, a.offset + 600);
  EXPECT_EQ(tail.size, 400U);
  EXPECT_EQ(tail.location(), MemoryLocation::Pageable) << "the host backend's memory is ordinary host memory";
  EXPECT_NE(message_of<InvalidArgument>([&] { (void)TransferEndpoint::from(a, 1000); }).find("1000"),
            std::string::npos);
  EXPECT_THROW((void)TransferEndpoint::from(Allocation{}), InvalidArgument);
  resource.deallocate(a);
}

TEST(TransferEndpoint, ABuffersElementsBecomeBytes) {
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 0, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  BackendResource resource(*sim, 0, MemoryKind::Device);
  Buffer<double> buffer(resource, 8);
  const TransferEndpoint third = TransferEndpoint::from(buffer, 3);
  EXPECT_EQ(third.offset, buffer.allocation().offset + 3 * sizeof(double));
  EXPECT_EQ(third.size, 5 * sizeof(double));
  EXPECT_EQ(third.location(), MemoryLocation::Device);
  EXPECT_EQ(third.device(), (DeviceId{BackendKind::Simulated, 0}));
  EXPECT_EQ(TransferEndpoint::from(buffer.raw(), 2).size, 6 * sizeof(double));
  EXPECT_THROW((void)TransferEndpoint::from(buffer, 8), InvalidArgument);
  EXPECT_THROW((void)TransferEndpoint::from(RawView{}), InvalidArgument);
  const std::string text = third.describe();
  EXPECT_NE(text.find("sim:0 device memory"), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(third.offset)), std::string::npos) << text;
}

TEST(TransferEndpoint, PinnedAndUnifiedMemoryAreTheirOwnLocations) {
  for (const char* label : {"opencl0_pinned", "opencl0_unified", "opencl0_device"}) {
    std::string why;
    const auto memory = TestMemory::make(location(label), 64, why);
    if (memory == nullptr) GTEST_SKIP() << why;
    const MemoryLocation expected = memory->segment().kind == MemoryKind::PinnedHost ? MemoryLocation::Pinned
                                    : memory->segment().kind == MemoryKind::Unified  ? MemoryLocation::Unified
                                                                                     : MemoryLocation::Device;
    EXPECT_EQ(memory->endpoint().location(), expected) << label;
  }
}

TEST(TransferStrategy, NamesRoundTrip) {
  for (const TransferStrategy strategy : kAllTransferStrategies) {
    EXPECT_EQ(parse_transfer_strategy(to_string(strategy)), strategy);
  }
  const std::string message = message_of<InvalidArgument>([] { (void)parse_transfer_strategy("teleport"); });
  EXPECT_NE(message.find("teleport"), std::string::npos);
  EXPECT_NE(message.find("pinned-staging"), std::string::npos);
}

}  // namespace
}  // namespace unimem::test
