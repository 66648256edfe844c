// Named buffers' double-buffered downloads (start_async_download / wait_for_download) and
// allocate_mirrored, on the backed simulated device and on PoCL.

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/error.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem {
namespace {

using test::kSim0;
using test::manager_options;
using test::message_of;
using test::whole_device_config;

std::vector<float> values_from(float start, std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The default device is the backed simulated device, or the first OpenCL device when the test asks for it.
class NamedDownloads : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (GetParam() == BackendKind::OpenCL) {
      const auto devices = manager_.devices();
      if (std::find(devices.begin(), devices.end(), DeviceId{BackendKind::OpenCL, 0}) == devices.end())
        GTEST_SKIP() << "no OpenCL device";
    }
  }
  void TearDown() override { test::free_named_buffers(manager_); }
  [[nodiscard]] BufferConfig on_device() const {
    BufferConfig config;
    config.device = GetParam() == BackendKind::OpenCL ? DeviceId{BackendKind::OpenCL, 0} : kSim0;
    return config;
  }

  MemoryManager manager_{manager_options(whole_device_config(), {"sim:1GiB:backed"}, kSim0)};
};

TEST_P(NamedDownloads, OldestFirstAfterTheBuffersOwnCopies) {
  manager_.named().create<float>("logits", 4096, on_device());
  const std::vector<float> first = values_from(1.0F, 4096);
  const std::vector<float> second = values_from(-9000.0F, 4096);
  const std::uint64_t before = manager_.named().async_transfer_count();
  TransferFuture upload = manager_.named().copy_from_host_async<float>("logits", first);
  manager_.named().start_async_download<float>("logits");  // ordered after the upload
  upload.wait();
  manager_.named().copy_from_host_async<float>("logits", second).wait();
  manager_.named().start_async_download<float>("logits");
  EXPECT_TRUE(
      contains(message_of<InvalidArgument>([&] { manager_.named().start_async_download<float>("logits"); }),
               "'logits' has two downloads pending"));
  const std::span<const float> a = manager_.named().wait_for_download<float>("logits");
  EXPECT_TRUE(std::equal(a.begin(), a.end(), first.begin(), first.end()));
  const std::span<const float> b = manager_.named().wait_for_download<float>("logits");
  EXPECT_TRUE(std::equal(b.begin(), b.end(), second.begin(), second.end()));
  EXPECT_EQ(manager_.named().async_transfer_count(), before + 4);  // two uploads, two downloads
  EXPECT_TRUE(manager_.check_leaks().unnamed.empty()) << manager_.check_leaks().to_string();
  EXPECT_TRUE(contains(
      message_of<InvalidArgument>([&] { (void)manager_.named().wait_for_download<float>("logits"); }),
      "named buffer 'logits' has no download pending"));
}

TEST_P(NamedDownloads, ManyBuffersDownloadConcurrently) {
  constexpr int kBuffers = 16;
  constexpr int kThreads = 4;
  constexpr int kSteps = 10;
  constexpr std::size_t kCount = 20000;
  for (int i = 0; i < kBuffers; ++i)
    manager_.named().create<int>("b" + std::to_string(i), kCount, on_device());
  const std::uint64_t before = manager_.named().async_transfer_count();
  std::vector<int> errors(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int step = 0; step < kSteps; ++step) {
        // Every buffer of this thread gets a download pending before the first wait.
        std::vector<std::vector<int>> sent;
        for (int i = t; i < kBuffers; i += kThreads) {
          std::vector<int> values(kCount);
          std::iota(values.begin(), values.end(), i * 1000000 + step);
          const std::string name = "b" + std::to_string(i);
          manager_.named().copy_from_host_async<int>(name, values).wait();
          manager_.named().start_async_download<int>(name);
          sent.push_back(std::move(values));
        }
        std::size_t k = 0;
        for (int i = t; i < kBuffers; i += kThreads, ++k) {
          const std::span<const int> got = manager_.named().wait_for_download<int>("b" + std::to_string(i));
          if (!std::equal(got.begin(), got.end(), sent[k].begin(), sent[k].end())) ++errors[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], 0) << "thread " << t;
  EXPECT_EQ(manager_.named().async_transfer_count(), before + 2U * kBuffers * kSteps);
}

TEST_P(NamedDownloads, GrowthAndFreeDropPendingDownloads) {
  manager_.named().create<float>("kv", 1000, on_device());
  manager_.named().start_async_download<float>("kv");
  manager_.named().grow<float>("kv", 5000);
  EXPECT_THROW((void)manager_.named().wait_for_download<float>("kv"), InvalidArgument);
  manager_.named().start_async_download<float>("kv");
  EXPECT_EQ(manager_.named().wait_for_download<float>("kv").size(), manager_.named().get<float>("kv").size());
  manager_.named().start_async_download<float>("kv");
  manager_.named().free("kv");
}

TEST_P(NamedDownloads, BadNamesAndTypesAreTypedErrors) {
  EXPECT_TRUE(
      contains(message_of<InvalidArgument>([&] { manager_.named().start_async_download<float>("nope"); }),
               "no named buffer 'nope'"));
  EXPECT_TRUE(
      contains(message_of<InvalidArgument>([&] { (void)manager_.named().wait_for_download<float>("nope"); }),
               "no named buffer 'nope'"));
  manager_.named().create<float>("x", 10, on_device());
  EXPECT_TRUE(
      contains(message_of<InvalidArgument>([&] { (void)manager_.named().wait_for_download<float>("x"); }),
               "named buffer 'x' has no download pending"));
  EXPECT_THROW(manager_.named().start_async_download<int>("x"), TypeMismatch);
}

TEST_P(NamedDownloads, MirroredBufferFromTheManager) {
  const DeviceId device = *on_device().device;
  MirroredBuffer<float> x = manager_.allocate_mirrored<float>(1000, device);
  EXPECT_EQ(x.device(), device);
  EXPECT_FALSE(x.single_copy());
  std::ranges::fill(x.host_span(), 2.5F);
  EXPECT_EQ(x.device_view().to_vector(), std::vector<float>(1000, 2.5F));
  x.mark_device_modified();
  EXPECT_EQ(x.host_span_const()[999], 2.5F);
  EXPECT_EQ(x.transfers_done(), 2U);
  MirroredBuffer<float> on_host = manager_.allocate_mirrored<float>(10, test::kHost);
  EXPECT_TRUE(on_host.single_copy());
}

INSTANTIATE_TEST_SUITE_P(Devices, NamedDownloads,
                         ::testing::Values(BackendKind::Simulated, BackendKind::OpenCL),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

}  // namespace
}  // namespace unimem
