// MirroredBuffer: every location transition with byte checks and transfer counts on memory that keeps two
// copies (the backed simulated device, both PoCL devices), the single copy of host-visible memory (host,
// unified, pinned), and misuse.

#include "unimem/buffer/mirrored_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer_fixture.hpp"
#include "unimem/core/error.hpp"

namespace unimem {
namespace {

using test::contains;
using test::message_of;
using test::ramp;

constexpr std::size_t kCount = 10000;

// A device target and the memory its host copy lives in: the device's pinned memory where it has some.
class MirrorOn : public ::testing::TestWithParam<test::MemoryTarget> {
 protected:
  void SetUp() override {
    std::string why;
    device_memory_ = test::make_resource(GetParam(), why);
    if (device_memory_ == nullptr) GTEST_SKIP() << why;
    Backend& backend = device_memory_->backend();
    if (backend.supports(GetParam().device, MemoryKind::PinnedHost)) {
      host_memory_ = std::make_unique<BackendResource>(backend, GetParam().device, MemoryKind::PinnedHost);
    } else {
      host_memory_ = std::make_unique<BackendResource>(test::shared_registry().host(), 0, MemoryKind::Device);
    }
  }
  [[nodiscard]] MirroredBuffer<float> make() const { return {*device_memory_, *host_memory_, kCount}; }

 private:
  std::unique_ptr<BackendResource> device_memory_;
  std::unique_ptr<BackendResource> host_memory_;
};

void write(std::span<float> span, float start) {
  const std::vector<float> values = ramp<float>(span.size(), start);
  std::copy(values.begin(), values.end(), span.begin());
}

class MirrorWithTwoCopies : public MirrorOn {};

TEST_P(MirrorWithTwoCopies, FreshBufferIsCurrentEverywhere) {
  MirroredBuffer<float> x = make();
  EXPECT_FALSE(x.single_copy());
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.size(), kCount);
  EXPECT_EQ(x.transfers_done(), 0U);
}

TEST_P(MirrorWithTwoCopies, HostWriteThenDeviceReadMovesExactlyOnce) {
  MirroredBuffer<float> x = make();
  write(x.host_span(), 1.0F);
  EXPECT_EQ(x.location(), MirrorLocation::Host);
  EXPECT_EQ(x.transfers_done(), 0U);
  EXPECT_EQ(x.device_view().to_vector(), ramp<float>(kCount, 1.0F));
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.transfers_done(), 1U);
  (void)x.device_view();
  (void)x.host_span_const();
  EXPECT_EQ(x.transfers_done(), 1U);
}

TEST_P(MirrorWithTwoCopies, DeviceWriteThenHostReadMovesExactlyOnce) {
  MirroredBuffer<float> x = make();
  const std::vector<float> values = ramp<float>(kCount, 5.0F);
  x.device_view().copy_from_host(values);  // device work
  x.mark_device_modified();
  EXPECT_EQ(x.location(), MirrorLocation::Device);
  const std::span<const float> host = x.host_span_const();
  EXPECT_TRUE(std::equal(host.begin(), host.end(), values.begin()));
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.transfers_done(), 1U);
  const std::uint64_t avoided = x.transfers_avoided();
  (void)x.host_span_const();  // a read after a read moves nothing
  EXPECT_EQ(x.transfers_done(), 1U);
  EXPECT_EQ(x.transfers_avoided(), avoided + 1);
}

TEST_P(MirrorWithTwoCopies, ReadMappingKeepsBothCurrent) {
  MirroredBuffer<float> x = make();
  x.device_view().copy_from_host(ramp<float>(kCount, 2.0F));
  x.mark_device_modified();
  {
    const MirroredBuffer<float>::Mapping mapped = x.map(MapMode::Read);
    EXPECT_EQ(mapped.mode(), MapMode::Read);
    EXPECT_EQ(mapped.span()[kCount - 1], 2.0F + static_cast<float>(kCount - 1));
  }
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  { const auto again = x.map(MapMode::Read); }
  (void)x.device_view();
  EXPECT_EQ(x.transfers_done(), 1U);
}

TEST_P(MirrorWithTwoCopies, WriteMappingSkipsTheDownloadAndUploadsOnce) {
  MirroredBuffer<float> x = make();
  x.device_view().copy_from_host(ramp<float>(kCount, 2.0F));
  x.mark_device_modified();
  {
    const auto mapped = x.map(MapMode::Write);  // overwrites everything: nothing to download
    write(mapped.span(), 9.0F);
  }
  EXPECT_EQ(x.location(), MirrorLocation::Host);
  EXPECT_EQ(x.transfers_done(), 0U);
  EXPECT_EQ(x.device_view().to_vector(), ramp<float>(kCount, 9.0F));
  EXPECT_EQ(x.transfers_done(), 1U);
}

TEST_P(MirrorWithTwoCopies, ReadWriteMappingDownloadsThenAsyncUploadOnce) {
  MirroredBuffer<float> x = make();
  x.device_view().copy_from_host(ramp<float>(kCount, 3.0F));
  x.mark_device_modified();
  {
    const auto mapped = x.map(MapMode::ReadWrite);
    EXPECT_EQ(mapped.span()[10], 13.0F);  // downloaded first
    mapped.span()[10] = -1.0F;
  }
  EXPECT_EQ(x.location(), MirrorLocation::Host);
  EXPECT_EQ(x.transfers_done(), 1U);
  x.to_device_async().wait();
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.transfers_done(), 2U);
  x.to_device_async().wait();  // current already: nothing queued
  EXPECT_EQ(x.transfers_done(), 2U);
  std::vector<float> expected = ramp<float>(kCount, 3.0F);
  expected[10] = -1.0F;
  EXPECT_EQ(x.device_view().to_vector(), expected);
  EXPECT_EQ(x.transfers_done(), 2U);
}

TEST_P(MirrorWithTwoCopies, AsyncDownloadOnceThenHostReadsWithoutCopying) {
  MirroredBuffer<float> x = make();
  x.device_view().copy_from_host(ramp<float>(kCount, 4.0F));
  x.mark_device_modified();
  TransferFuture download = x.to_host_async();
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  // The host read waits for the queued download instead of copying again.
  EXPECT_EQ(x.host_span_const()[kCount - 1], 4.0F + static_cast<float>(kCount - 1));
  download.wait();
  x.to_host_async().wait();
  EXPECT_EQ(x.transfers_done(), 1U);
}

TEST_P(MirrorWithTwoCopies, MisuseIsATypedErrorNamingTheBuffer) {
  MirroredBuffer<float> x = make();
  write(x.host_span(), 1.0F);
  EXPECT_TRUE(contains(message_of<InvalidArgument>([&] { x.mark_device_modified(); }),
                       "MirroredBuffer<float>::mark_device_modified: the device copy is stale"));
  {
    const auto mapped = x.map(MapMode::ReadWrite);
    EXPECT_TRUE(contains(message_of<InvalidArgument>([&] { (void)x.device_view(); }), "1 host mapping(s)"));
    EXPECT_THROW((void)x.to_device_async(), InvalidArgument);
  }
  MirroredBuffer<float> y = std::move(x);
  EXPECT_EQ(y.location(), MirrorLocation::Host);
  EXPECT_TRUE(contains(
      message_of<InvalidArgument>([&] { (void)x.map(MapMode::Read); }),  // NOLINT(bugprone-use-after-move)
      "MirroredBuffer<float>::map(read): the buffer is empty (default-constructed or moved from)"));
  EXPECT_EQ(y.device_view().to_vector(), ramp<float>(kCount, 1.0F));
}

std::vector<test::MemoryTarget> two_copy_targets() {
  return {{"sim_backed", BackendKind::Simulated, 0, MemoryKind::Device},
          {"opencl_device", BackendKind::OpenCL, 0, MemoryKind::Device},
          {"opencl_second_device", BackendKind::OpenCL, 1, MemoryKind::Device},
          {"cuda_device", BackendKind::Cuda, 0, MemoryKind::Device}};
}
INSTANTIATE_TEST_SUITE_P(Devices, MirrorWithTwoCopies, ::testing::ValuesIn(two_copy_targets()),
                         test::target_name);

class MirrorWithOneCopy : public MirrorOn {};

TEST_P(MirrorWithOneCopy, EveryAccessSharesOneCopyAndMovesNothing) {
  MirroredBuffer<float> x = make();
  EXPECT_TRUE(x.single_copy());
  write(x.host_span(), 1.0F);
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.device_view().to_vector(), ramp<float>(kCount, 1.0F));
  EXPECT_EQ(x.device_view().host_span().data(), x.host_span_const().data());
  x.mark_device_modified();
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  { const auto mapped = x.map(MapMode::ReadWrite); }
  x.to_device_async().wait();
  x.to_host_async().wait();
  EXPECT_EQ(x.location(), MirrorLocation::Both);
  EXPECT_EQ(x.transfers_done(), 0U);
  EXPECT_EQ(x.transfers_avoided(), 7U);
}

std::vector<test::MemoryTarget> one_copy_targets() {
  return {{"host", BackendKind::Host, 0, MemoryKind::Device},
          {"opencl_unified", BackendKind::OpenCL, 0, MemoryKind::Unified},
          {"opencl_pinned", BackendKind::OpenCL, 0, MemoryKind::PinnedHost},
          {"cuda_unified", BackendKind::Cuda, 0, MemoryKind::Unified}};
}
INSTANTIATE_TEST_SUITE_P(HostVisible, MirrorWithOneCopy, ::testing::ValuesIn(one_copy_targets()),
                         test::target_name);

TEST(MirroredBuffer, HostCopyInDeviceOnlyMemoryIsRefused) {
  std::string why;
  Backend* sim = test::backend_with_devices(BackendKind::Simulated, why);
  ASSERT_NE(sim, nullptr) << why;
  BackendResource device(*sim, 0, MemoryKind::Device);
  BackendResource other(*sim, 1, MemoryKind::Device);
  EXPECT_TRUE(
      contains(message_of<InvalidArgument>([&] { const MirroredBuffer<int> x(device, other, 10); }),
               "MirroredBuffer<int>: the host copy's memory (device memory of sim:1) is not host-visible"));
  BackendResource host(test::shared_registry().host(), 0, MemoryKind::Device);
  EXPECT_THROW(const MirroredBuffer<int> x(device, host, 0), InvalidArgument);
}

}  // namespace
}  // namespace unimem
