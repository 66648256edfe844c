#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem {
namespace {

using test::kHost;
using test::kSim0;
using test::manager_options;
using test::message_of;
using test::whole_device_config;

// Named buffers on the host device (real memory: small sizes), with whatever limit a test gives.
class NamedBuffers : public ::testing::Test {
 protected:
  void TearDown() override { test::free_named_buffers(manager_); }

  MemoryManager manager_{manager_options(whole_device_config())};
};

std::vector<float> iota_floats(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 1.0F);
  return v;
}

TEST_F(NamedBuffers, CreateStartsEmpty) {
  EXPECT_EQ(manager_.named().count(), 0U);
  EXPECT_EQ(manager_.named().bytes(), 0U);
  EXPECT_EQ(manager_.named().allocation_count(), 0U);
  EXPECT_EQ(manager_.named().resize_count(), 0U);
  EXPECT_EQ(manager_.named().async_transfer_count(), 0U);
  EXPECT_TRUE(manager_.check_leaks().clean());
}

TEST(NamedBuffersWithLimit, CreateWithLimit) {
  MemoryManager manager(manager_options(whole_device_config().with_memory_limit(64 * KiB)));
  EXPECT_EQ(manager.config().memory_limit_bytes, 64 * KiB);
  EXPECT_EQ(manager.limit(kHost), 64 * KiB);
}

TEST_F(NamedBuffers, AllocateOne) {
  const BufferView<float> weights = manager_.named().create<float>("weights", 256);
  EXPECT_EQ(weights.size(), 256U);
  EXPECT_EQ(weights.device(), kHost);
  EXPECT_TRUE(manager_.named().contains("weights"));
  EXPECT_EQ(manager_.named().count(), 1U);
  EXPECT_EQ(manager_.named().bytes(), 1024U);
  EXPECT_EQ(manager_.named().allocation_count(), 1U);
}

TEST_F(NamedBuffers, AllocateMany) {
  for (int i = 0; i < 10; ++i) (void)manager_.named().create<int>("buffer" + std::to_string(i), 100 + i);
  EXPECT_EQ(manager_.named().count(), 10U);
  EXPECT_EQ(manager_.named().bytes(), (10 * 100 + 45) * sizeof(int));
  EXPECT_EQ(manager_.named().get<int>("buffer7").size(), 107U);
  EXPECT_EQ(manager_.named().allocation_count(), 10U);
}

TEST_F(NamedBuffers, DuplicateNameIsRejectedNamingIt) {
  const BufferView<int> first = manager_.named().create<int>("cache", 10);
  const std::string message =
      message_of<InvalidArgument>([&] { (void)manager_.named().create<int>("cache", 20); });
  EXPECT_NE(message.find("'cache'"), std::string::npos) << message;
  EXPECT_EQ(manager_.named().get<int>("cache").size(), 10U);
  EXPECT_EQ(manager_.named().bytes(), first.bytes());
}

TEST_F(NamedBuffers, EmptyNameZeroCountAndBadConfigAreRejected) {
  EXPECT_THROW((void)manager_.named().create<int>("", 10), InvalidArgument);
  EXPECT_THROW((void)manager_.named().create<int>("zero", 0), InvalidArgument);
  BufferConfig bad;
  bad.growth_factor = 3.0;
  const std::string message =
      message_of<InvalidArgument>([&] { (void)manager_.named().create<int>("bad", 10, bad); });
  EXPECT_NE(message.find("growth_factor"), std::string::npos) << message;
  EXPECT_EQ(manager_.named().count(), 0U);
}

TEST_F(NamedBuffers, Free) {
  (void)manager_.named().create<int>("temp", 10);
  manager_.named().free("temp");
  EXPECT_FALSE(manager_.named().contains("temp"));
  EXPECT_EQ(manager_.named().bytes(), 0U);
  EXPECT_EQ(manager_.stats(kHost).active_buffers, 0U);
}

TEST_F(NamedBuffers, FreeUnknownIsRejectedNamingIt) {
  const std::string message = message_of<InvalidArgument>([&] { manager_.named().free("nobody"); });
  EXPECT_NE(message.find("'nobody'"), std::string::npos) << message;
}

TEST_F(NamedBuffers, FreeMany) {
  for (int i = 0; i < 20; ++i) (void)manager_.named().create<double>("b" + std::to_string(i), 8);
  for (int i = 0; i < 20; i += 2) manager_.named().free("b" + std::to_string(i));
  EXPECT_EQ(manager_.named().count(), 10U);
  EXPECT_EQ(manager_.named().bytes(), sizeof(double) * 10 * 8);
  for (int i = 1; i < 20; i += 2) manager_.named().free("b" + std::to_string(i));
  EXPECT_EQ(manager_.named().count(), 0U);
  EXPECT_EQ(manager_.named().bytes(), 0U);
}

TEST_F(NamedBuffers, EnsureCapacityWithoutResize) {
  const BufferView<float> before = manager_.named().create<float>("x", 100);
  const BufferView<float> after = manager_.named().grow<float>("x", 80);
  EXPECT_EQ(after.size(), 100U);
  EXPECT_EQ(after.allocation().host_ptr(), before.allocation().host_ptr());
  EXPECT_EQ(manager_.named().resize_count(), 0U);
}

TEST_F(NamedBuffers, EnsureCapacityWithResize) {
  (void)manager_.named().create<float>("x", 100);
  const BufferView<float> grown = manager_.named().grow<float>("x", 120);
  EXPECT_GE(grown.size(), 120U);
  EXPECT_EQ(manager_.named().get<float>("x").size(), grown.size());
  EXPECT_EQ(manager_.named().resize_count(), 1U);
  EXPECT_EQ(manager_.named().bytes(), grown.bytes());
  EXPECT_EQ(manager_.stats(kHost).active_buffers, 1U);
}

TEST_F(NamedBuffers, GrowthFollowsTheBuffersFactor) {
  (void)manager_.named().create<float>("default", 100);
  (void)manager_.named().create<float>("growable", 100, BufferConfig::growable());
  EXPECT_EQ(manager_.named().grow<float>("default", 101).size(), 150U);
  EXPECT_EQ(manager_.named().grow<float>("growable", 101).size(), 200U);
  EXPECT_EQ(manager_.named().grow<float>("default", 1000).size(), 1000U);  // the request beats the factor
}

TEST_F(NamedBuffers, GrowthPastTheMaximumIsRefusedNamingTheFigures) {
  (void)manager_.named().create<float>("fixed", 512, BufferConfig::fixed_size(4096));
  const std::string message =
      message_of<InvalidArgument>([&] { (void)manager_.named().grow<float>("fixed", 2000); });
  EXPECT_NE(message.find("'fixed'"), std::string::npos) << message;
  EXPECT_NE(message.find("8000"), std::string::npos) << message;
  EXPECT_NE(message.find("4096"), std::string::npos) << message;
  EXPECT_EQ(manager_.named().get<float>("fixed").size(), 512U);
  EXPECT_EQ(manager_.named().grow<float>("fixed", 700).size(), 768U);
  // Growth by the factor (1152) stops at the maximum (1024) when the request itself fits.
  EXPECT_EQ(manager_.named().grow<float>("fixed", 800).size(), 1024U);
  EXPECT_THROW((void)manager_.named().create<float>("too_big", 2000, BufferConfig::fixed_size(4096)),
               InvalidArgument);
}

TEST_F(NamedBuffers, ResizePreservesData) {
  const std::vector<float> values = iota_floats(300);
  manager_.named().create<float>("kv", 300).copy_from_host(values);
  const BufferView<float> grown = manager_.named().grow<float>("kv", 1000);
  std::vector<float> head(300);
  grown.copy_to_host(head);
  EXPECT_EQ(head, values);
}

TEST(NamedBuffersOnADevice, ResizePreservesDataInDeviceMemory) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:16MiB:backed"}, kSim0));
  const std::vector<float> values = iota_floats(300);
  BufferView<float> kv = manager.named().create<float>("kv", 300);
  EXPECT_EQ(kv.device(), kSim0);
  kv.copy_from_host(values);
  kv = manager.named().grow<float>("kv", 1000);
  EXPECT_EQ(kv.device(), kSim0);
  std::vector<float> head(300);
  kv.copy_to_host(head);
  EXPECT_EQ(head, values);
  test::free_named_buffers(manager);
}

TEST(NamedBuffersOnADevice, FallenBackBufferGrowsOntoTheDeviceOrHostKeepingData) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:1MiB:backed"}, kSim0));
  const std::vector<float> values = iota_floats(std::size_t{512} * 1024);  // 2 MiB: more than the device
  BufferView<float> big = manager.named().create<float>("big", values.size());
  EXPECT_EQ(big.device(), kHost);
  big.copy_from_host(values);
  big = manager.named().grow<float>("big", values.size() + 1);
  std::vector<float> back(values.size());
  big.copy_to_host(back);
  EXPECT_EQ(back, values);
  EXPECT_EQ(manager.check_leaks().named.at(0).device, kHost);
  EXPECT_EQ(manager.stats(kSim0).fallbacks, 2U);
  test::free_named_buffers(manager);
}

TEST_F(NamedBuffers, Get) {
  const std::vector<float> values = iota_floats(16);
  manager_.named().create<float>("g", 16).copy_from_host(values);
  EXPECT_EQ(manager_.named().get<float>("g").to_vector(), values);
}

TEST_F(NamedBuffers, GetFromAConstManager) {
  (void)manager_.named().create<int>("c", 8);
  manager_.named().get<int>("c").fill(5);
  const MemoryManager& reader = manager_;
  EXPECT_EQ(reader.named().get<int>("c").to_vector(), std::vector<int>(8, 5));
}

TEST_F(NamedBuffers, GetUnknownIsRejectedNamingIt) {
  const std::string message = message_of<InvalidArgument>([&] { (void)manager_.named().get<int>("ghost"); });
  EXPECT_NE(message.find("'ghost'"), std::string::npos) << message;
}

TEST_F(NamedBuffers, GetWithTheWrongTypeNamesBothTypes) {
  (void)manager_.named().create<float>("typed", 8);
  for (const std::string& message :
       {message_of<TypeMismatch>([&] { (void)manager_.named().get<int>("typed"); }),
        message_of<TypeMismatch>([&] { (void)manager_.named().grow<int>("typed", 100); })}) {
    EXPECT_NE(message.find("float"), std::string::npos) << message;
    EXPECT_NE(message.find("int"), std::string::npos) << message;
    EXPECT_NE(message.find("'typed'"), std::string::npos) << message;
  }
  EXPECT_EQ(manager_.named().get<float>("typed").size(), 8U);
}

TEST(NamedBuffersWithLimit, LimitIsEnforcedOnAllocationAndGrowth) {
  // memory_limit_bytes caps each device and the named buffers together; "h" lives on the host, "a" on the
  // simulated device, so that growing "a" needs room under the cap but not next to "h" on one device.
  MemoryManager manager(
      manager_options(whole_device_config().with_memory_limit(64 * KiB), {"sim:1MiB:backed"}));
  BufferConfig on_sim = BufferConfig::growable();
  on_sim.device = kSim0;
  (void)manager.named().create<std::byte>("h", 30 * KiB);
  manager.named().create<std::byte>("a", 20 * KiB, on_sim).fill(std::byte{1});
  try {
    (void)manager.named().create<std::byte>("b", 16 * KiB);
    FAIL() << "named buffers went past the limit";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 16 * KiB);
    EXPECT_EQ(e.free_bytes(), 14 * KiB);
    EXPECT_EQ(e.total_bytes(), 64 * KiB);
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(manager.named().contains("b"));
  EXPECT_THROW((void)manager.named().grow<std::byte>("a", 40 * KiB), OutOfMemory);
  EXPECT_EQ(manager.named().get<std::byte>("a").size(), 20 * KiB);
  EXPECT_EQ(manager.named().bytes(), 50 * KiB);
  // The request fits under the cap; growth by the factor (40 KiB) stops at it (34 KiB).
  const BufferView<std::byte> grown = manager.named().grow<std::byte>("a", 25 * KiB);
  EXPECT_EQ(grown.size(), 34 * KiB);
  EXPECT_EQ(grown.to_vector()[20 * KiB - 1], std::byte{1});
  EXPECT_EQ(manager.named().bytes(), 64 * KiB);
  test::free_named_buffers(manager);
}

TEST_F(NamedBuffers, TotalAndPeakAreTracked) {
  (void)manager_.named().create<std::byte>("a", 1024);
  (void)manager_.named().create<std::byte>("b", 2048);
  EXPECT_EQ(manager_.named().bytes(), 3072U);
  EXPECT_EQ(manager_.named().peak_bytes(), 3072U);
  manager_.named().free("a");
  EXPECT_EQ(manager_.named().bytes(), 2048U);
  EXPECT_EQ(manager_.named().peak_bytes(), 3072U);
  (void)manager_.named().grow<std::byte>("b", 4096);
  EXPECT_EQ(manager_.named().bytes(), 4096U);
  EXPECT_EQ(manager_.named().peak_bytes(), 4096U);
}

TEST_F(NamedBuffers, NoLeaksWhenFreed) {
  (void)manager_.named().create<int>("a", 10);
  (void)manager_.named().create<int>("b", 10);
  manager_.named().free("a");
  manager_.named().free("b");
  EXPECT_TRUE(manager_.check_leaks().clean());
  EXPECT_EQ(manager_.leak_report(), "no live buffers");
}

TEST_F(NamedBuffers, LeakDetectionOfOneBuffer) {
  (void)manager_.named().create<float>("lonely", 25);
  const LeakReport report = manager_.check_leaks();
  ASSERT_EQ(report.named.size(), 1U);
  EXPECT_TRUE(report.unnamed.empty());
  const NamedBufferRecord& r = report.named[0];
  EXPECT_EQ(r.name, "lonely");
  EXPECT_EQ(r.element_type, "float");
  EXPECT_EQ(r.count, 25U);
  EXPECT_EQ(r.bytes, 100U);
  EXPECT_EQ(r.device, kHost);
  EXPECT_EQ(r.mode, AllocationMode::Pooled);
  EXPECT_GE(r.age.count(), 0);
  EXPECT_NE(report.to_string().find("'lonely' 100 bytes (25 float) on host:0"), std::string::npos)
      << report.to_string();
}

TEST_F(NamedBuffers, LeakDetectionOfSeveralBuffersAndUnnamedOnes) {
  (void)manager_.named().create<float>("one", 10);
  (void)manager_.named().create<int>("two", 20);
  const Buffer<double> unnamed = manager_.allocate<double>(5);
  const LeakReport report = manager_.check_leaks();
  ASSERT_EQ(report.named.size(), 2U);
  EXPECT_EQ(report.named[0].name, "one");
  EXPECT_EQ(report.named[1].name, "two");
  EXPECT_EQ(report.named_bytes(), 120U);
  ASSERT_EQ(report.unnamed.size(), 1U);
  EXPECT_EQ(report.unnamed[0].count, 1U);
  EXPECT_EQ(report.unnamed[0].bytes, 40U);
}

TEST(NamedBuffersWithTracking, TheTrackingReportCarriesTheName) {
  MemoryManager manager(manager_options(whole_device_config().with_tracking(true)));
  (void)manager.named().create<float>("tagged_weights", 10);
  EXPECT_NE(manager.leak_report().find("tagged_weights"), std::string::npos) << manager.leak_report();
  test::free_named_buffers(manager);
}

TEST(BufferConfig, DefaultsAndPresets) {
  const BufferConfig d = BufferConfig::defaults();
  EXPECT_EQ(d, BufferConfig{});
  EXPECT_EQ(d.mode, AllocationMode::Pooled);
  EXPECT_FALSE(d.device.has_value());
  EXPECT_DOUBLE_EQ(d.growth_factor, 1.5);
  EXPECT_EQ(d.max_size_bytes, 0U);
  EXPECT_DOUBLE_EQ(BufferConfig::growable().growth_factor, 2.0);
  EXPECT_EQ(BufferConfig::fixed_size(4096).max_size_bytes, 4096U);
  EXPECT_EQ(BufferConfig::pinned_staging().mode, AllocationMode::Pinned);
  for (const BufferConfig& c :
       {d, BufferConfig::growable(), BufferConfig::fixed_size(1), BufferConfig::pinned_staging()}) {
    EXPECT_NO_THROW(c.validate());
  }
  EXPECT_THROW((void)BufferConfig::fixed_size(0), InvalidArgument);
}

TEST(BufferConfig, GrowthFactorOutsideItsRangeIsRejectedNamingIt) {
  for (const double factor : {1.2, 2.5, 0.0, std::numeric_limits<double>::quiet_NaN()}) {
    BufferConfig c;
    c.growth_factor = factor;
    const std::string message = message_of<InvalidArgument>([&] { c.validate(); });
    EXPECT_NE(message.find("growth_factor"), std::string::npos) << factor << ": " << message;
  }
  BufferConfig edge;
  edge.growth_factor = 1.3;
  EXPECT_NO_THROW(edge.validate());
}

TEST_F(NamedBuffers, StatisticsCountAllocationsResizesAndTransfers) {
  (void)manager_.named().create<int>("s", 10);
  (void)manager_.named().grow<int>("s", 20);
  (void)manager_.named().grow<int>("s", 10);
  std::vector<int> out(10);
  manager_.named().copy_to_host_async<int>("s", out).wait();
  EXPECT_EQ(manager_.named().allocation_count(), 1U);
  EXPECT_EQ(manager_.named().resize_count(), 1U);
  EXPECT_EQ(manager_.named().async_transfer_count(), 1U);
  EXPECT_EQ(manager_.stats(kHost).active_buffers, 1U);
}

TEST_F(NamedBuffers, AsyncTransfersRoundTrip) {
  (void)manager_.named().create<float>("async", 64);
  const std::vector<float> values = iota_floats(64);
  TransferFuture up = manager_.named().copy_from_host_async<float>("async", values);
  std::vector<float> back(64);
  TransferFuture down = manager_.named().copy_to_host_async<float>("async", back);
  up.wait();
  down.wait();
  EXPECT_EQ(back, values);
  EXPECT_EQ(manager_.named().async_transfer_count(), 2U);

  std::vector<int> wrong(4);
  EXPECT_THROW((void)manager_.named().copy_to_host_async<int>("async", wrong), TypeMismatch);
  EXPECT_THROW((void)manager_.named().copy_to_host_async<float>("missing", back), InvalidArgument);
  std::vector<float> too_many(65);
  EXPECT_THROW((void)manager_.named().copy_to_host_async<float>("async", too_many), InvalidArgument);
  EXPECT_EQ(manager_.named().async_transfer_count(), 2U);
}

TEST(NamedBuffersOnADevice, AsyncTransferFailureTravelsInTheFuture) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}, kSim0));
  (void)manager.named().create<float>("unbacked", 16);
  std::vector<float> out(16);
  TransferFuture future = manager.named().copy_to_host_async<float>("unbacked", out);
  EXPECT_THROW(future.wait(), NotSupported);
  test::free_named_buffers(manager);
}

TEST(NamedBuffersOnADevice, PinnedStagingWhereADeviceServesIt) {
  MemoryManager manager(manager_options(whole_device_config()));
  const std::optional<DeviceId> device = test::device_serving(manager, MemoryKind::PinnedHost);
  if (!device) GTEST_SKIP() << "no managed device serves pinned host memory";
  BufferConfig staging = BufferConfig::pinned_staging();
  staging.device = device;
  const BufferView<float> view = manager.named().create<float>("staging", 256, staging);
  EXPECT_EQ(view.kind(), MemoryKind::PinnedHost);
  EXPECT_EQ(manager.check_leaks().named.at(0).mode, AllocationMode::Pinned);
  EXPECT_THROW((void)manager.named().create<float>("host_staging", 256, BufferConfig::pinned_staging()),
               NotSupported);
  test::free_named_buffers(manager);
}

TEST_F(NamedBuffers, FullLifecycle) {
  const std::vector<float> values = iota_floats(128);
  manager_.named().create<float>("life", 128, BufferConfig::growable()).copy_from_host(values);
  const BufferView<float> grown = manager_.named().grow<float>("life", 129);
  EXPECT_EQ(grown.size(), 256U);
  std::vector<float> head(128);
  manager_.named().copy_to_host_async<float>("life", head).wait();
  EXPECT_EQ(head, values);
  EXPECT_FALSE(manager_.check_leaks().clean());
  manager_.named().free("life");
  EXPECT_TRUE(manager_.check_leaks().clean());
  EXPECT_EQ(manager_.named().peak_bytes(), 256 * sizeof(float));
  EXPECT_EQ(manager_.stats(kHost).in_use_bytes, 0U);
}

}  // namespace
}  // namespace unimem
