#include "unimem/transfer/double_buffered_download.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/buffer/buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {
namespace {

// The device memory downloads come from, and host memory for the ping-pong buffers: the device's pinned
// memory where it has some.
struct DownloadTarget {
  const char* label;  // a location() label of device memory
};

void PrintTo(const DownloadTarget& target, std::ostream* out) {
  *out << target.label;
}

class OnEveryDevice : public ::testing::TestWithParam<DownloadTarget> {
 protected:
  void SetUp() override {
    const Location& where = location(GetParam().label);
    std::string why;
    backend_ = backend_serving(where.backend, where.device, where.kind, why);
    if (backend_ == nullptr) GTEST_SKIP() << why;
    device_ = where.device;
    host_memory_ = backend_->supports(device_, MemoryKind::PinnedHost)
                       ? std::make_unique<BackendResource>(*backend_, device_, MemoryKind::PinnedHost)
                       : std::make_unique<BackendResource>(host_, 0, MemoryKind::Device);
  }

  HostBackend host_;
  Backend* backend_ = nullptr;
  int device_ = 0;
  std::unique_ptr<BackendResource> host_memory_;
};

TEST_P(OnEveryDevice, EachStepsResultArrivesWhileTheNextIsProduced) {
  constexpr std::size_t kCount = 10000;
  constexpr int kSteps = 7;
  BackendResource device_memory(*backend_, device_, MemoryKind::Device);
  // Two result buffers on the device, so that producing step n + 1 never overwrites what step n's download
  // still reads.
  Buffer<std::uint32_t> results[2] = {Buffer<std::uint32_t>(device_memory, kCount),
                                      Buffer<std::uint32_t>(device_memory, kCount)};
  DoubleBufferedDownload download(*backend_, device_, *host_memory_, kCount * sizeof(std::uint32_t));
  const auto expected = [](int step) {
    return ramp<std::uint32_t>(kCount, static_cast<std::uint32_t>(step) * 100000U);
  };
  for (int step = 0; step < kSteps; ++step) {
    results[step % 2].copy_from_host(expected(step));  // "produce"
    download.start_async_download(results[step % 2]);
    if (step > 0) {
      const std::span<const std::uint32_t> previous = download.wait_for_download<std::uint32_t>();
      ASSERT_EQ(previous.size(), kCount);
      EXPECT_TRUE(std::equal(previous.begin(), previous.end(), expected(step - 1).begin()))
          << "step " << step - 1;
    }
    EXPECT_EQ(download.pending(), 1U);
  }
  const std::span<const std::uint32_t> last = download.wait_for_download<std::uint32_t>();
  EXPECT_TRUE(std::equal(last.begin(), last.end(), expected(kSteps - 1).begin()));
  EXPECT_EQ(download.completed(), static_cast<std::uint64_t>(kSteps));
  EXPECT_EQ(download.pending(), 0U);
}

TEST_P(OnEveryDevice, RefusesAThirdDownloadAndOversizedOnes) {
  BackendResource device_memory(*backend_, device_, MemoryKind::Device);
  Buffer<std::byte> source(device_memory, 100);
  DoubleBufferedDownload download(*backend_, device_, *host_memory_, 64);
  const TransferEndpoint from = TransferEndpoint::from(source);
  const std::string too_big = message_of<InvalidArgument>([&] { download.start_async_download(from, 65); });
  EXPECT_NE(too_big.find("65 bytes"), std::string::npos) << too_big;
  EXPECT_THROW(download.start_async_download(from, 0), InvalidArgument);
  EXPECT_THROW((void)download.wait_for_download(), InvalidArgument);
  download.start_async_download(from, 64);
  download.start_async_download(from, 63);
  EXPECT_NE(
      message_of<InvalidArgument>([&] { download.start_async_download(from, 1); }).find("two downloads"),
      std::string::npos);
  EXPECT_EQ(download.wait_for_download().size(), 64U);
  EXPECT_THROW((void)download.wait_for_download<std::uint32_t>(), InvalidArgument)
      << "63 bytes are no uint32s";
  EXPECT_EQ(download.pending(), 0U);
}

const DownloadTarget kTargets[] = {
    {"host_memory"}, {"sim0"}, {"opencl0_device"}, {"opencl1_device"}, {"cuda_device"}};

INSTANTIATE_TEST_SUITE_P(Devices, OnEveryDevice, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<DownloadTarget>& param) {
                           return std::string(param.param.label);
                         });

TEST(DoubleBufferedDownload, RefusesBadSetups) {
  HostBackend host;
  BackendResource host_memory(host, 0, MemoryKind::Device);
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 1, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  EXPECT_THROW(DoubleBufferedDownload(*sim, 0, host_memory, 0), InvalidArgument);
  EXPECT_THROW(DoubleBufferedDownload(*sim, 7, host_memory, 16), InvalidArgument);
  BackendResource sim_memory(*sim, 0, MemoryKind::Device);
  const std::string message =
      message_of<NotSupported>([&] { DoubleBufferedDownload download(*sim, 0, sim_memory, 16); });
  EXPECT_NE(message.find("host-visible"), std::string::npos) << message;
  const std::unique_ptr<Stream> other_device = sim->create_stream(1);
  EXPECT_THROW(DoubleBufferedDownload(*sim, 0, host_memory, 16, other_device.get()), InvalidArgument);
}

TEST(DoubleBufferedDownload, RefusesAnotherDevicesMemoryAndReportsCopyFailures) {
  HostBackend host;
  BackendResource host_memory(host, 0, MemoryKind::Device);
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 1, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  const Segment on_sim1 = sim->allocate(1, MemoryKind::Device, 16);
  const Segment unbacked = sim->allocate(kUnbackedSimDevice, MemoryKind::Device, 16);
  {
    DoubleBufferedDownload from_sim0(*sim, 0, host_memory, 16);
    const std::string message = message_of<InvalidArgument>(
        [&] { from_sim0.start_async_download(TransferEndpoint::from(on_sim1), 16); });
    EXPECT_NE(message.find("sim:1"), std::string::npos) << message;
    DoubleBufferedDownload from_unbacked(*sim, kUnbackedSimDevice, host_memory, 16);
    EXPECT_THROW(from_unbacked.start_async_download(TransferEndpoint::from(unbacked), 16), NotSupported);
    EXPECT_EQ(from_unbacked.pending(), 0U) << "nothing was queued";
  }
  sim->deallocate(on_sim1);
  sim->deallocate(unbacked);
}

}  // namespace
}  // namespace unimem::test
